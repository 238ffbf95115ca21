r"""Logical → physical cost through a well-kept estimator: Microsoft's resource estimator.

The `qdk` package (the maintained successor of `qsharp`, whose `qsharp.estimator` now only
re-exports it and warns that it is deprecated) turns logical counts — logical qubits and
Toffoli (CCZ) gates — into surface-code physical qubits and run time under a named qubit model
(gate times, error rates), a QEC scheme and an error budget, with T factories (magic-state
distillation) laid out by the estimator (PSSPC layout). It is chosen over Qualtran's
surface-code models because it takes bare logical counts (no circuit or bloq needed) and
computes code distance and factory layout itself.

The estimator counts run time in nanoseconds as a 64-bit integer, which overflows past
$\approx 1.5\cdot 10^{15}$ Toffolis, and a window's runs can exceed that. A run is therefore
passed as $k$ equal sequential chunks: each chunk gets the counts divided by $k$ and the error
budget divided by $k$, so the required logical error rate per qubit-cycle and per magic state,
hence the code distance and the factories, are those of the whole run, and the run time is
$k$ times that of a chunk (checked against a direct call where the direct call fits).
"""

from __future__ import annotations

import math
import os

import equinox as eqx

from .._errors import InvalidArgumentError, check_int_range, check_number, check_positive

CHUNK_TOFFOLIS = 10**12
"""Largest Toffoli count passed to the estimator in one call (see the module docstring)."""

QUBIT_MODELS = (
    "qubit_gate_ns_e3",
    "qubit_gate_ns_e4",
    "qubit_gate_us_e3",
    "qubit_gate_us_e4",
    "qubit_maj_ns_e4",
    "qubit_maj_ns_e6",
)
QEC_SCHEMES = ("surface_code", "floquet_code")


class EstimatorNotInstalledError(ImportError):
    """The resource estimator (`qdk`, a dependency without a wheel on some platforms) is missing:
    `pip install qdk`."""


def estimator():
    """Import the estimator module (`qdk.estimator`), or raise `EstimatorNotInstalledError`.

    The package would post a usage event to Microsoft when imported and at exit; a library
    does not do that on its user's behalf (and tests run offline), so telemetry is turned off
    unless the user has set `QDK_PYTHON_TELEMETRY` themselves.
    """
    os.environ.setdefault("QDK_PYTHON_TELEMETRY", "none")
    try:
        import qdk.estimator as est
    except ImportError as e:
        raise EstimatorNotInstalledError(
            "physical qubits and run time come from Microsoft's resource estimator, which is "
            "not installed: run `pip install qdk`, or call "
            "`estimate(..., physical=False)` for the logical counts only."
        ) from e
    return est


def estimator_available() -> bool:
    """Whether `qdk` is importable (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("qdk") is not None


class PhysicalModel(eqx.Module):
    """Assumptions of the logical → physical step (all user knobs).

    **Arguments:**

    - `qubit`: the estimator's qubit model (`QUBIT_MODELS`; default `"qubit_gate_ns_e3"`:
      superconducting-like, 50 ns gates, $10^{-3}$ error rates).
    - `qec`: `"surface_code"` (default) or `"floquet_code"` (Majorana qubit models only).
    - `error_budget`: total failure probability of one run, in (0, 1) (default $10^{-3}$).
    - `max_code_distance`: the largest code distance allowed (default: the estimator's, 50).
    - `power_watts`: power drawn by the quantum computer while it runs, W (default 25 kW: a
      dilution refrigerator with its compressor, control electronics and decoding; an
      assumption — energy = power × time as in Tu et al., arXiv:2502.11239, whose energy
      model is rooted in the cooling power).
    """

    qubit: str = eqx.field(default="qubit_gate_ns_e3", static=True)
    qec: str = eqx.field(default="surface_code", static=True)
    error_budget: float = eqx.field(default=1e-3, static=True)
    max_code_distance: int | None = eqx.field(default=None, static=True)
    power_watts: float = eqx.field(default=25e3, static=True)

    def __check_init__(self):
        if self.qubit not in QUBIT_MODELS:
            raise InvalidArgumentError(
                f"`qubit` must be one of {QUBIT_MODELS}, got {self.qubit!r}."
            )
        if self.qec not in QEC_SCHEMES:
            raise InvalidArgumentError(f"`qec` must be one of {QEC_SCHEMES}, got {self.qec!r}.")
        check_number(
            "error_budget", self.error_budget, low=0, high=1, low_open=True, high_open=True
        )
        if self.max_code_distance is not None:
            check_int_range("max_code_distance", self.max_code_distance, 1)
        check_positive("power_watts", self.power_watts, strict=False)

    def params(self, error_budget: float) -> dict:
        """The estimator's parameters for one call with `error_budget`."""
        qec: dict = {"name": self.qec}
        if self.max_code_distance is not None:
            qec["maxCodeDistance"] = int(self.max_code_distance)
        return {
            "qubitParams": {"name": self.qubit},
            "qecScheme": qec,
            "errorBudget": float(error_budget),
        }


class PhysicalCost(eqx.Module):
    """What the estimator says one run costs (Python numbers).

    **Fields:** `physical_qubits`, `seconds` (one run), `code_distance`, `t_factories`;
    `chunks` $k$ and the `counts` and `params` of one chunk's call (what a direct call of the
    estimator takes: `qdk.estimator.LogicalCounts(counts).estimate(params)`).
    """

    physical_qubits: int = eqx.field(static=True)
    seconds: float = eqx.field(static=True)
    code_distance: int = eqx.field(static=True)
    t_factories: int = eqx.field(static=True)
    chunks: int = eqx.field(static=True)
    counts: dict = eqx.field(static=True)
    params: dict = eqx.field(static=True)


def physical_cost(toffolis: float | int, logical_qubits: int, model: PhysicalModel) -> PhysicalCost:
    """Physical qubits and run time of one run of `toffolis` Toffolis on `logical_qubits`.

    **Arguments:**

    - `toffolis`: Toffoli (CCZ) gates of one run, $\\ge 1$.
    - `logical_qubits`: algorithmic logical qubits, $\\ge 1$.
    - `model`: the `PhysicalModel`.

    **Returns:** a `PhysicalCost`.

    **Raises:** `EstimatorNotInstalledError`; the estimator's own `EstimatorError` when it cannot
    lay the run out (e.g. the code distance needed exceeds `max_code_distance`).
    """
    check_positive("toffolis", toffolis)
    check_int_range("logical_qubits", logical_qubits, 1)
    est = estimator()
    total = math.ceil(float(toffolis))
    chunks = max(1, math.ceil(total / CHUNK_TOFFOLIS))
    counts = {"numQubits": int(logical_qubits), "cczCount": math.ceil(total / chunks)}
    params = model.params(model.error_budget / chunks)
    r = est.LogicalCounts(counts).estimate(params)
    pc = r["physicalCounts"]
    return PhysicalCost(
        physical_qubits=int(pc["physicalQubits"]),
        seconds=float(pc["runtime"]) * 1e-9 * chunks,
        code_distance=int(r["logicalQubit"]["codeDistance"]),
        t_factories=int(pc["breakdown"]["numTfactories"]),
        chunks=chunks,
        counts=counts,
        params=params,
    )
