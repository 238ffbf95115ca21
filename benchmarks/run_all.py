"""Run every benchmark (`benchmarks/bench_*.py`) and rewrite their sections of BENCHMARKS.md.

    python benchmarks/run_all.py             # all, full sizes
    python benchmarks/run_all.py --quick     # all, small sizes (seconds to a minute each)
    python benchmarks/run_all.py carleman    # only bench_carleman.py

Each module's `run(quick)` returns a Markdown section; it replaces the block between
`<!-- bench:NAME -->` markers, so sections of benchmarks not run this time are kept. The machine
description is written above every section it produced, since absolute times only compare on the
same machine.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "BENCHMARKS.md"
HEADER = (
    "# Benchmarks\n\n"
    "Regenerate with `python benchmarks/run_all.py` (add `--quick` for small sizes, or name "
    "benchmarks to run only those). Every figure is a ratio against a baseline measured in the "
    "same process; absolute times only compare on the same machine. Each section names its "
    "machine.\n"
)


def _replace_section(doc: str, name: str, body: str) -> str:
    block = f"<!-- bench:{name} -->\n{body.strip()}\n<!-- /bench:{name} -->"
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
    if pattern.search(doc):
        return pattern.sub(lambda _: block, doc)
    return doc.rstrip() + "\n\n" + block + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from _harness import OUT, machine

    OUT.mkdir(exist_ok=True)
    available = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    names = args.names or available
    unknown = sorted(set(names) - set(available))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {available}")
    doc = DOC.read_text() if DOC.exists() else HEADER
    if not doc.startswith("# Benchmarks"):
        doc = HEADER
    for name in names:
        print(f"[{name}] running{' (quick)' if args.quick else ''} ...", flush=True)
        t0 = time.perf_counter()
        module = importlib.import_module(f"bench_{name}")
        body = module.run(quick=args.quick)
        stamp = time.strftime("%Y-%m-%d")
        body = f"{body.strip()}\n\n_{machine()} Measured {stamp}._"
        doc = _replace_section(doc, name, body)
        DOC.write_text(doc)
        print(f"[{name}] done in {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
