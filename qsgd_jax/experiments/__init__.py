"""Experiments: thin compositions of the library with `ci` / `cpu` / `paper` presets.

`run_experiment(name, preset, overrides, out)` writes `results.json`, PNG figures and
`report.md` into `out` (default `results/<name>/`) atomically; `qsgd-jax list` / `qsgd-jax run`
are the command-line front end. Importing this package registers every experiment.

The studies built on the library live here too: `kappa_scaling` ($\\kappa$ vs $T$ in the two
regimes), `early_late` (window error vs start step) and `carleman_demo` (`qsgd-jax demo`).
"""

from .._cli import main as main  # the `qsgd-jax` command line, callable with an argv list
from .._progress import (
    PROGRESS_ENV_VAR as PROGRESS_ENV_VAR,
    progress as progress,
    progress_counter as progress_counter,
)
from . import (
    carleman as carleman,
    carleman_scale as carleman_scale,
    figure2 as figure2,
    hybrid as hybrid,
    scaling as scaling,
    spectra as spectra,
    sweeps as sweeps,
)
from ._demo import carleman_demo as carleman_demo
from ._early_late import early_late as early_late
from ._framework import (
    PRESETS as PRESETS,
    REGISTRY as REGISTRY,
    Experiment as Experiment,
    ExperimentError as ExperimentError,
    Output as Output,
    RunResult as RunResult,
    get_experiment as get_experiment,
    resolve_config as resolve_config,
    run_experiment as run_experiment,
)
from ._kappa_scaling import KappaScaling as KappaScaling, kappa_scaling as kappa_scaling

# Registration order is the order of `qsgd-jax list` and `qsgd-jax run all`.
ORDER = ("carleman", "carleman_scale", "spectra", "hybrid", "scaling", "sweeps", "figure2")
