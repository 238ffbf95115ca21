"""Experiment registry, presets with typed overrides, and atomic result folders.

An experiment is a thin composition of library calls: `run(config, progress) -> Output`, where
`config` is a preset (`ci`: seconds, run by the tests; `cpu`: minutes on 2 cores; `paper`: GPU,
paper scale) updated by `key=value` overrides whose types are checked against the preset's.
`run_experiment` writes `results.json` (every number), the PNG figures and `report.md` into a
temporary folder beside the destination and moves it into place only when everything succeeded,
so a failed or interrupted run never leaves a half-written results folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

PRESETS = ("ci", "cpu", "paper")


class ExperimentError(ValueError):
    """Bad input to an experiment: unknown name / preset / override, wrong type, bad folder."""


@dataclasses.dataclass
class Output:
    """What an experiment returns.

    **Fields:** `results` (JSON-able dict of every number), `figures` (file stem → matplotlib
    figure), `report` (Markdown body), `table` (a short Markdown summary table, also printed).
    """

    results: dict
    figures: dict
    report: str
    table: str


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A registered experiment: `name`, one-line `summary`, what it `shows`, the `presets`
    (`ci`, `cpu`, `paper` → dict of settings), `choices` (allowed values of string settings)
    and the `run(config, progress)` function."""

    name: str
    summary: str
    shows: str
    presets: Mapping[str, Mapping[str, Any]]
    run: Callable[[dict, Callable[[str], None]], Output]
    choices: Mapping[str, tuple] = dataclasses.field(default_factory=dict)


REGISTRY: dict[str, Experiment] = {}


def register(exp: Experiment) -> Experiment:
    """Add an experiment to the registry (names are unique; all three presets, same keys)."""
    if exp.name in REGISTRY:
        raise ValueError(f"experiment {exp.name!r} is already registered")
    if set(exp.presets) != set(PRESETS):
        raise ValueError(f"experiment {exp.name!r} needs presets {PRESETS}, has {set(exp.presets)}")
    keys = {p: set(v) for p, v in exp.presets.items()}
    if len({frozenset(k) for k in keys.values()}) != 1:
        raise ValueError(f"experiment {exp.name!r}: presets have different keys: {keys}")
    REGISTRY[exp.name] = exp
    return exp


def get_experiment(name: str) -> Experiment:
    """The registered experiment `name`, or an `ExperimentError` listing the known ones."""
    if name not in REGISTRY:
        raise ExperimentError(
            f"unknown experiment {name!r}; known experiments: {', '.join(REGISTRY)} "
            "(see `qsgd-jax list`)."
        )
    return REGISTRY[name]


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _convert(key: str, text: str, default: Any, choices: tuple | None) -> Any:
    """Parse `text` to the type of the preset value `default`."""

    def fail(kind: str) -> ExperimentError:
        return ExperimentError(
            f"override {key}={text!r}: expected {kind} (the preset value is {default!r})."
        )

    if isinstance(default, bool):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise fail("a boolean (true/false)")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise fail("an integer") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise fail("a number") from None
    if isinstance(default, tuple):
        elem = default[0] if default else 0.0
        parts = [p for p in text.split(",") if p.strip()]
        if not parts:
            raise fail("a comma-separated list")
        return tuple(_convert(key, p.strip(), elem, None) for p in parts)
    if isinstance(default, str) or default is None:
        if choices is not None and text not in choices:
            raise ExperimentError(
                f"override {key}={text!r}: must be one of {', '.join(map(str, choices))}."
            )
        return text
    raise fail(type(default).__name__)  # pragma: no cover - presets use the types above


def resolve_config(
    exp: Experiment, preset: str, overrides: Iterable[str] | Mapping[str, Any] = ()
) -> dict[str, Any]:
    """The preset's settings updated by overrides (`"key=value"` strings or a dict).

    String values are parsed to the preset value's type (bool, int, float, comma-separated
    tuple, or a string from `exp.choices`); dict values are converted the same way via `str`.
    Raises `ExperimentError` for an unknown preset or key, or a value of the wrong type.
    """
    if preset not in exp.presets:
        raise ExperimentError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}.")
    config = dict(exp.presets[preset])
    if isinstance(overrides, Mapping):
        items = [(k, v) for k, v in overrides.items()]
    else:
        items = []
        for item in overrides:
            if "=" not in item:
                raise ExperimentError(f"override {item!r} must look like key=value.")
            k, v = item.split("=", 1)
            items.append((k.strip(), v.strip()))
    for key, value in items:
        if key not in config:
            raise ExperimentError(
                f"experiment {exp.name!r} has no setting {key!r}; settings: "
                f"{', '.join(sorted(config))}."
            )
        if not isinstance(value, str):
            value = ",".join(map(str, value)) if isinstance(value, tuple | list) else str(value)
        config[key] = _convert(key, value, config[key], exp.choices.get(key))
    return config


def progress_printer(name: str, stream=None) -> Callable[[str], None]:
    """A `progress(message)` callback printing `[elapsed] name: message` to stderr."""
    t0 = time.perf_counter()

    def progress(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f}s] {name}: {msg}", file=stream or sys.stderr,
              flush=True)  # fmt: skip

    return progress


def _versions() -> dict[str, str]:
    import jax

    from .. import __version__

    return {
        "qsgd_jax": __version__,
        "jax": jax.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "devices": str(len(jax.devices())),
    }


def _prepare_folder(out: Path) -> Path:
    """Check that `out` can be written and return a fresh temporary folder beside it."""
    if out.exists() and not out.is_dir():
        raise ExperimentError(f"output folder {str(out)!r} exists and is not a folder.")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as e:
        raise ExperimentError(
            f"cannot write the output folder {str(out)!r}: {e.strerror or e}. "
            "Choose another folder with --out."
        ) from None


def _commit(tmp: Path, out: Path) -> None:
    """Move the finished `tmp` folder to `out`, replacing an old `out` only at the end."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}-{time.time_ns()}"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@dataclasses.dataclass
class RunResult:
    """Where a run wrote its files (`folder`, `json`, `report`, `figures`) and its `output`."""

    folder: Path
    json: Path
    report: Path
    figures: list[Path]
    output: Output
    seconds: float


def run_experiment(
    name: str,
    preset: str = "ci",
    overrides: Iterable[str] | Mapping[str, Any] = (),
    out: str | Path | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Run experiment `name` at `preset` with `overrides`, writing into `out` atomically.

    **Arguments:**

    - `name`: a registered experiment (`list_experiments()`).
    - `preset`: "ci", "cpu" or "paper".
    - `overrides`: `["key=value", ...]` or a dict; types are checked against the preset.
    - `out`: results folder (default `results/<name>`); replaced only when the run succeeded.
    - `progress`: callback for progress lines (default: print to stderr).

    **Returns:** a `RunResult` with the paths. Raises `ExperimentError` on bad input before
    any computation.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exp = get_experiment(name)
    config = resolve_config(exp, preset, overrides)
    out = Path(out) if out is not None else Path("results") / name
    tmp = _prepare_folder(out)
    progress = progress or progress_printer(name)
    t0 = time.perf_counter()
    try:
        output = exp.run(config, progress)
        seconds = time.perf_counter() - t0
        record = {
            "experiment": name,
            "preset": preset,
            "config": config,
            "seconds": seconds,
            "versions": _versions(),
            "results": output.results,
        }
        (tmp / "results.json").write_text(json.dumps(record, indent=1, default=_json_default))
        figures = []
        for stem, fig in output.figures.items():
            fig.savefig(tmp / f"{stem}.png", dpi=110)
            plt.close(fig)
            figures.append(f"{stem}.png")
        sets = " ".join(f"--set {k}={_fmt(v)}" for k, v in config.items()
                        if v != exp.presets[preset][k])  # fmt: skip
        report = [
            f"# {name}: {exp.summary}",
            "",
            f"Preset `{preset}`, {seconds:.1f} s. Reproduce: "
            f"`qsgd-jax run {name} --preset {preset}{' ' + sets if sets else ''}`.",
            "",
            output.report.strip(),
            "",
            "## Summary",
            "",
            output.table.strip(),
            "",
            "## Figures",
            "",
            *[f"![{f}]({f})" for f in figures],
            "",
            "## Settings",
            "",
            "| setting | value |",
            "|---|---|",
            *[f"| {k} | {_fmt(v)} |" for k, v in config.items()],
            "",
        ]
        (tmp / "report.md").write_text("\n".join(report))
        _commit(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        plt.close("all")
        raise
    return RunResult(out, out / "results.json", out / "report.md",
                     [out / f for f in figures], output, seconds)  # fmt: skip


def _fmt(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, tuple) else str(v)


def _json_default(o: Any):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, tuple | set):
        return list(o)
    raise TypeError(f"not JSON-serializable: {type(o).__name__}")


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table; floats are printed with 4 significant digits."""

    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
