"""qsgd-jax: run the experiments that reproduce the paper's findings, or the Carleman demo.

  qsgd-jax list                                   list experiments and their presets
  qsgd-jax run hybrid --preset cpu                the paper's pipeline vs optax SGD (minutes)
  qsgd-jax run carleman --set steps=100           override a preset setting (type-checked)
  qsgd-jax run all --preset ci --out results/ci   every experiment, into results/ci/<name>/
  qsgd-jax demo                                   Carleman error of orders 1..4 on a toy loss

Each run writes results.json (every number), PNG plots and report.md into its results folder
(default results/<name>/), only once the run has succeeded. Presets: ci (seconds), cpu (minutes
on 2 CPU cores), paper (GPU, paper scale).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ._progress import PROGRESS_ENV_VAR


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _list() -> int:
    from .experiments import ORDER, REGISTRY
    from .experiments._framework import _fmt

    for name in ORDER:
        exp = REGISTRY[name]
        print(f"{name:10s} {exp.summary}\n{'':10s} shows: {exp.shows}")
        ci, cpu = exp.presets["ci"], exp.presets["cpu"]
        print(f"{'':10s} settings (ci / cpu preset values):")
        for k in ci:
            print(f"{'':12s}{k} = {_fmt(ci[k])} / {_fmt(cpu[k])}")
    print("\nRun one with `qsgd-jax run NAME --preset ci|cpu|paper [--set key=value ...]`.")
    return 0


def _run(args, parser) -> int:
    from ._status import NonFiniteError
    from .experiments import ORDER, REGISTRY, ExperimentError, run_experiment
    from .experiments._framework import get_experiment, resolve_config

    names = list(ORDER) if args.name == "all" else [args.name]
    try:  # validate everything before running anything
        for name in names:
            resolve_config(get_experiment(name), args.preset, args.set if len(names) == 1 else ())
        if len(names) > 1 and args.set:
            raise ExperimentError("--set applies to one experiment; run them one at a time.")
    except ExperimentError as e:
        parser.error(str(e))
    diverged = False
    for name in names:
        out = args.out if len(names) == 1 else (args.out or Path("results")) / name
        print(f"== {name} ({REGISTRY[name].summary}), preset {args.preset}", flush=True)
        try:
            res = run_experiment(name, args.preset, args.set, out)
        except ExperimentError as e:
            parser.error(str(e))
        except (ValueError, NonFiniteError) as e:  # bad input the library caught, or a run
            # that diverged (NaN/inf at a named step): a message, not a traceback
            parser.error(f"{name} stopped, nothing was written: {e}")
        print(res.output.table)
        for line in res.output.warnings:
            print(f"warning: {line}", flush=True)
        diverged |= bool(res.output.warnings)
        print(
            f"\n{name}: {res.seconds:.1f} s; report {res.report}; data {res.json}; plots "
            + ", ".join(str(p) for p in res.figures),
            flush=True,
        )
    if diverged and args.strict:
        print("qsgd-jax: a run diverged (see the warnings above); exiting with status 3 (--strict)")
        return 3
    return 0


def main(argv: list[str] | None = None) -> int:
    """The `qsgd-jax` command line (module docstring), callable with an argument list.

    **Arguments:**

    - `argv`: the arguments without the program name (default: `sys.argv[1:]`).

    **Returns:** the exit status (0 on success; bad input exits with argparse's status 2; with
    `--strict`, 3 when a run diverged).
    """
    # Progress bars (stderr) are on for command-line runs unless the user switched them off.
    os.environ.setdefault(PROGRESS_ENV_VAR, "1")
    parser = argparse.ArgumentParser(
        prog="qsgd-jax", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{list,run,demo}")
    sub.add_parser("list", help="list the experiments, what they show and their settings")
    run = sub.add_parser(
        "run",
        help="run one experiment (or all) with a preset and overrides",
        description="Run an experiment; its report, JSON and plots go to the results folder.",
    )
    run.add_argument("name", help="experiment name (see `qsgd-jax list`) or 'all'")
    run.add_argument(
        "--preset", default="ci", help="ci (seconds), cpu (minutes), paper (GPU); default ci"
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a preset setting; repeatable; lists are comma-separated, "
        "e.g. --set sparse_steps=100 --set hidden=64,64",
    )
    run.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 3 when a window or a baseline run diverged (default: warn)",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results folder (default results/<name>; with 'all': a parent folder)",
    )
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

    if args.command == "list":
        return _list()
    if args.command == "run":
        return _run(args, run)
    if args.command == "demo":
        if not 0 < args.eta < 2 / 3.3:
            demo.error(
                f"--eta must lie in (0, {2 / 3.3:.3f}) for the toy loss to be dissipative "
                f"(its largest Hessian eigenvalue is 3.3), got {args.eta}"
            )
        from .experiments._demo import carleman_demo, format_table, write_demo

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
