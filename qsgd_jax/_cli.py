"""Command line: `qsgd-jax demo` (the Carleman demo on an embedded toy problem)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qsgd-jax", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="Carleman error of orders 1..4 against exact GD on a toy cubic loss"
    )
    demo.add_argument("--out", type=Path, default=Path("results/demo"), help="output folder")
    demo.add_argument("--steps", type=_positive_int, default=60, help="GD steps (default 60)")
    demo.add_argument("--eta", type=float, default=0.1, help="learning rate (default 0.1)")
    demo.add_argument(
        "--max-order", type=_positive_int, default=4, help="largest Carleman order (default 4)"
    )
    args = parser.parse_args(argv)

    if args.command == "demo":
        if not 0 < args.eta < 2 / 3.3:
            parser.error(
                f"--eta must lie in (0, {2 / 3.3:.3f}) for the toy loss to be dissipative "
                f"(its largest Hessian eigenvalue is 3.3), got {args.eta}"
            )
        from ._demo import carleman_demo, format_table, write_demo

        print(f"Carleman demo: n = 4 toy cubic loss, eta = {args.eta}, {args.steps} steps")
        result = carleman_demo(
            orders=tuple(range(1, args.max_order + 1)), steps=args.steps, eta=args.eta
        )
        print(result["dissipation"]["summary"])
        print(format_table(result))
        paths = write_demo(result, args.out)
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
