"""Experiment registry, presets with typed overrides, and atomic result folders.

An experiment is a thin composition of library calls: `run(config, progress) -> Output`, where
`config` is a preset (`ci`: seconds, run by the tests; `cpu`: minutes on 2 cores; `paper`: GPU,
paper scale) updated by `key=value` overrides whose types are checked against the preset's and
whose values are checked against the experiment's declared `Range`s, all before anything runs.
`run_experiment` writes `results.json` (every number), the PNG figures and `report.md` into a
temporary folder beside the destination and moves it into place only when everything succeeded,
so a failed or interrupted run (an exception, Ctrl-C or SIGTERM) never leaves a half-written
results folder, nor its temporary folder.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .._resources import markdown_table as markdown_table  # the one table writer

PRESETS = ("ci", "cpu", "paper")


class ExperimentError(ValueError):
    """Bad input to an experiment: unknown name / preset / override, wrong type, bad folder.

    **Arguments:** the message (as for `ValueError`).
    """


@dataclasses.dataclass
class Output:
    """What an experiment returns.

    **Fields:** `results` (JSON-able dict of every number), `figures` (file stem → matplotlib
    figure), `report` (Markdown body), `table` (a short Markdown summary table, also printed),
    `warnings` (one line per divergence the run met: a flagged window, a diverged baseline;
    printed by the command line, listed in the report and in `results.json`).
    """

    results: dict
    figures: dict
    report: str
    table: str
    warnings: tuple[str, ...] = ()


def hybrid_warnings(result, label: str = "") -> tuple[str, ...]:
    """The warning lines of a `HybridResult`: each flagged window and each diverged run.

    **Arguments:** `result` (a `HybridResult`), `label` (prefix naming the run, e.g. a mode).

    **Returns:** a tuple of lines.
    """
    head = f"{label}: " if label else ""
    lines = [
        f"{head}quantum window at step {f['start']} diverged ({f['error']}); {f['instead']} instead"
        for f in result.fallbacks
    ]
    lines += [
        f"{head}the {'baseline SGD' if d['run'] == 'sgd' else 'hybrid'} run diverged at step "
        f"{d['step']}: {d['why']}"
        for d in result.divergences
    ]
    return tuple(lines)


@dataclasses.dataclass(frozen=True)
class Range:
    """The allowed values of a numeric setting (of each element, for a list setting).

    `[low, high]`, open on a side with `low_open` / `high_open` (`None`: unbounded); `integer`
    also requires whole numbers (e.g. a float shot count); values must be finite. `what` says in
    words what the setting is, for the message.

    **Fields:** `low`, `high`, `low_open`, `high_open`, `integer`, `what` (above).
    """

    low: float | int | None = None
    high: float | int | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    what: str = ""

    def describe(self) -> str:
        """The range in words, e.g. "an integer in [1, inf)"."""
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        kind = "an integer" if self.integer else "a finite number"
        return f"{kind} in {left}{lo}, {hi}{right}" + (f" ({self.what})" if self.what else "")

    def contains(self, v: Any) -> bool:
        """Whether one number `v` is allowed."""
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            return False
        if self.integer and v != round(v):
            return False
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        return self.high is None or (v < self.high if self.high_open else v <= self.high)

    def check(self, key: str, value: Any) -> None:
        """Raise `ExperimentError` unless `value` (a number, or each element of a tuple) fits."""
        items = value if isinstance(value, tuple) else (value,)
        bad = [v for v in items if not self.contains(v)]
        if bad:
            each = "each element of " if isinstance(value, tuple) else ""
            raise ExperimentError(
                f"setting {key}={_fmt(value)}: {each}{key} must be {self.describe()}; "
                f"{', '.join(map(str, bad))} is not."
            )


COUNT = Range(1, integer=True)
"""An integer >= 1 (sizes, steps, repeats)."""
NONNEGATIVE_INT = Range(0, integer=True)
"""An integer >= 0 (seeds, start steps, optional counts)."""
POSITIVE = Range(0, low_open=True)
"""A finite number > 0 (learning rates, times, tolerances)."""
FRACTION = Range(0, 1, high_open=True, what="a fraction")
"""A number in [0, 1) (sparsities)."""


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A registered experiment: `name`, one-line `summary`, what it `shows`, the `presets`
    (`ci`, `cpu`, `paper` → dict of settings), `choices` (allowed values of string settings),
    `ranges` (a `Range` for every numeric setting: checked on every override before the run)
    and the `run(config, progress)` function.

    **Fields:** as listed above.
    """

    name: str
    summary: str
    shows: str
    presets: Mapping[str, Mapping[str, Any]]
    run: Callable[[dict, Callable[[str], None]], Output]
    choices: Mapping[str, tuple] = dataclasses.field(default_factory=dict)
    ranges: Mapping[str, Range] = dataclasses.field(default_factory=dict)


def _is_numeric(value: Any) -> bool:
    items = value if isinstance(value, tuple) else (value,)
    return bool(items) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in items
    )


REGISTRY: dict[str, Experiment] = {}


def register(exp: Experiment) -> Experiment:
    """Add an experiment to the registry (names are unique; all three presets, same keys).

    **Arguments:**

    - `exp`: the experiment.

    **Returns:** `exp` (so that a module can keep it).
    """
    if exp.name in REGISTRY:
        raise ValueError(f"experiment {exp.name!r} is already registered")
    if set(exp.presets) != set(PRESETS):
        raise ValueError(f"experiment {exp.name!r} needs presets {PRESETS}, has {set(exp.presets)}")
    keys = {p: set(v) for p, v in exp.presets.items()}
    if len({frozenset(k) for k in keys.values()}) != 1:
        raise ValueError(f"experiment {exp.name!r}: presets have different keys: {keys}")
    settings = exp.presets[PRESETS[0]]
    missing = sorted(k for k, v in settings.items() if _is_numeric(v) and k not in exp.ranges)
    if missing:
        raise ValueError(f"experiment {exp.name!r}: numeric settings {missing} need a `Range`")
    unknown = sorted(set(exp.ranges) - set(settings))
    if unknown:
        raise ValueError(f"experiment {exp.name!r}: ranges for unknown settings {unknown}")
    for preset, values in exp.presets.items():  # the presets themselves must be valid
        for k, rng in exp.ranges.items():
            try:
                rng.check(k, values[k])
            except ExperimentError as e:
                raise ValueError(f"experiment {exp.name!r}, preset {preset!r}: {e}") from None
    REGISTRY[exp.name] = exp
    return exp


def get_experiment(name: str) -> Experiment:
    """The registered experiment `name`, or an `ExperimentError` listing the known ones.

    **Arguments:**

    - `name`: the experiment's name.

    **Returns:** the `Experiment`.
    """
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
    Raises `ExperimentError` for an unknown preset or key, a value of the wrong type, or one
    outside the setting's declared `Range` (`exp.ranges`).

    **Arguments:**

    - `exp`: the experiment.
    - `preset`: `"ci"`, `"cpu"` or `"paper"`.
    - `overrides`: `["key=value", ...]` or a dict.

    **Returns:** the configuration dict.
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
        if key in exp.ranges:
            exp.ranges[key].check(key, config[key])
    return config


def progress_printer(name: str, stream=None) -> Callable[[str], None]:
    """A `progress(message)` callback printing `[elapsed] name: message` to stderr.

    **Arguments:**

    - `name`: the experiment's name (the prefix).
    - `stream`: where to print (default `sys.stderr`).

    **Returns:** the callback.
    """
    t0 = time.perf_counter()

    def progress(msg: str) -> None:
        print(
            f"[{time.perf_counter() - t0:7.1f}s] {name}: {msg}",
            file=stream or sys.stderr,
            flush=True,
        )

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
    """Where a run wrote its files (`folder`, `json`, `report`, `figures`) and its `output`.

    **Fields:** `folder`, `json`, `report`, `figures` (paths), `output` (the `Output`),
    `seconds` (wall time of the run).
    """

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

    - `name`: a registered experiment (a key of `REGISTRY`; `qsgd-jax list`).
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
    progress = progress or progress_printer(name)
    restore = _raise_on_sigterm()  # before the temporary folder exists: no window without it
    try:
        tmp = _prepare_folder(out)
    except BaseException:
        restore()
        raise
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
            "warnings": list(output.warnings),
        }
        (tmp / "results.json").write_text(json.dumps(record, indent=1, default=_json_default))
        figures = []
        for stem, fig in output.figures.items():
            fig.savefig(tmp / f"{stem}.png", dpi=110)
            plt.close(fig)
            figures.append(f"{stem}.png")
        sets = " ".join(
            f"--set {k}={_fmt(v)}" for k, v in config.items() if v != exp.presets[preset][k]
        )
        report = [
            f"# {name}: {exp.summary}",
            "",
            f"Preset `{preset}`, {seconds:.1f} s. Reproduce: "
            f"`qsgd-jax run {name} --preset {preset}{' ' + sets if sets else ''}`.",
            "",
            output.report.strip(),
            "",
            *(
                ["## Warnings", "", *[f"- **{w}**" for w in output.warnings], ""]
                if output.warnings
                else []
            ),
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
            markdown_table(["setting", "value"], [[k, _fmt(v)] for k, v in config.items()]),
            "",
        ]
        (tmp / "report.md").write_text("\n".join(report))
        _commit(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        plt.close("all")
        raise
    finally:
        restore()
    return RunResult(
        out, out / "results.json", out / "report.md", [out / f for f in figures], output, seconds
    )


class Terminated(SystemExit):
    """Raised inside a run when the process gets SIGTERM, so the run cleans up and exits.

    **Arguments:** the exit status (128 + the signal number).
    """


def _raise_on_sigterm() -> Callable[[], None]:
    """Turn SIGTERM into a `Terminated` exception for the duration of a run.

    Python's default SIGTERM action kills the process without unwinding, which would leave the
    temporary results folder behind; as an exception it unwinds through the run's cleanup. The
    exit status stays 128 + 15, as for a process killed by SIGTERM. Returns the function that
    restores the previous handler (a no-op outside the main thread, where handlers cannot be set).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None:  # installed outside Python: restore the default action
        previous = signal.SIG_DFL

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut cleanup
        raise Terminated(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


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
