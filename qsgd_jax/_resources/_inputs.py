"""What a cost estimate takes: the measured inputs of one window and the user's assumptions."""

from __future__ import annotations

import math

import equinox as eqx
import numpy as np

from .._carleman import carleman_dim
from .._errors import InvalidArgumentError, check_int_range
from .._history_scale import ScaleScan
from ._classical import StepCosts
from ._physical import PhysicalModel
from ._qlsa import COSTA_NUMERICAL, AbstractQLSA
from ._quantity import check_assumption

# Why an input is unavailable, and how to get it (the notes of unavailable quantities).
NO_KAPPA = (
    "the window's report has no κ/P (NaN): it was made with `history=False` or "
    "`diagnostics=False`. Rerun it with `WindowConfig(..., diagnostics=True, history=True)`, "
    "or pass `scan=qsgd_jax.linsys.scale_scan(...)` of its history system"
)
NO_STEP = (
    "no classical step costs: pass `step=qsgd_jax.resources.step_costs(loss_fn, params, "
    "batch)` (XLA's FLOPs of one SGD step and one HVP; shapes suffice)"
)


class Assumptions(eqx.Module):
    r"""The user knobs of a cost estimate, each with a default (DESIGN §2, "End-to-end cost").

    **Arguments:**

    - `eps`: the QLSA's precision $\varepsilon \in (0, 1)$ (default $10^{-2}$).
    - `eps_tomo`: the $\ell_2$ read-out error $\varepsilon_{\mathrm{tomo}} \in (0, 1)$; `None`
      (default): the tolerated error measured by the window-validity study when given
      (`MeasuredInputs.tolerated_error`), else $10^{-2}$.
    - `delta`: failure probability of the worst-case sample bound, in (0, 1) (0.05).
    - `norm_error`: relative error of $\lVert y_1\rVert$ from amplitude estimation, in (0, 1)
      (`None`: $\varepsilon_{\mathrm{tomo}}$).
    - `qlsa`: the QLSA the totals and the choice of the $y_0$ scale use (default
      `COSTA_NUMERICAL`; every estimate also lists HHL, CKS and both Costa constants).
    - `normalization`: the block encoding's $\alpha$: `"norm"` ($\alpha = \lVert L\rVert$, the
      tightest valid one; default) or `"sparse"` (sparse access, $\alpha_s = s_{\mathrm{row}}
      \max|L_{ij}|$, needs a dense `ScaleScan`).
    - `bits`: $b$, the fixed-point width of coherent arithmetic (16).
    - `toffolis_per_flop`: Toffolis per arithmetic operation at $b$ bits (`None`:
      $(b^2 + b)/2$, the mean of a schoolbook multiplication, $\approx b^2$, and an addition,
      $\approx b$: XLA counts a multiply-add as two FLOPs).
    - `qlsa_ancillas`: the QLSA's own ancillas (dilation, interpolation, reflection, signal
      qubits; default 4).
    - `workspace_qubits`: scratch qubits of the coherent arithmetic (`None`: $3b$, one
      multiply-add in flight; the network's intermediate values are not modelled).
    - `qram_qubits_per_entry`: $c_q$, QRAM qubits per stored number (bucket brigade, 1).
    - `upload_gates_per_entry`: $c_g$, gates of sparse state preparation per non-zero (1).
    - `physical`: the `PhysicalModel` (qubit model, QEC scheme, error budget, power).
    - `accelerator`, `flop_rate`, `accelerator_watts`: the classical baseline's device, its
      sustained FLOP/s and power (default: an NVIDIA H100 SXM at half its 67 TFLOP/s FP32
      peak, 700 W board power).
    - `sparsity_exponent`: $\sigma$ in $s \propto n^\sigma$ for the break-even model size
      (1: a fixed sparsity fraction).

    Every number is checked: NaN, infinite or negative values are refused, naming the field.
    """

    eps: float = eqx.field(default=1e-2, static=True)
    eps_tomo: float | None = eqx.field(default=None, static=True)
    delta: float = eqx.field(default=0.05, static=True)
    norm_error: float | None = eqx.field(default=None, static=True)
    qlsa: AbstractQLSA = eqx.field(default=COSTA_NUMERICAL, static=True)
    normalization: str = eqx.field(default="norm", static=True)
    bits: int = eqx.field(default=16, static=True)
    toffolis_per_flop: float | None = eqx.field(default=None, static=True)
    qlsa_ancillas: int = eqx.field(default=4, static=True)
    workspace_qubits: int | None = eqx.field(default=None, static=True)
    qram_qubits_per_entry: float = eqx.field(default=1.0, static=True)
    upload_gates_per_entry: float = eqx.field(default=1.0, static=True)
    physical: PhysicalModel = eqx.field(default_factory=PhysicalModel, static=True)
    accelerator: str = eqx.field(default="NVIDIA H100 SXM, FP32 at 50% of peak", static=True)
    flop_rate: float = eqx.field(default=3.35e13, static=True)
    accelerator_watts: float = eqx.field(default=700.0, static=True)
    sparsity_exponent: float = eqx.field(default=1.0, static=True)

    def __check_init__(self):
        for name in ("eps", "delta"):
            check_assumption(name, getattr(self, name), strict=True, high=1.0)
        for name in ("eps_tomo", "norm_error"):
            if getattr(self, name) is not None:
                check_assumption(name, getattr(self, name), strict=True, high=1.0)
        for name in (
            "toffolis_per_flop",
            "qram_qubits_per_entry",
            "upload_gates_per_entry",
            "flop_rate",
            "accelerator_watts",
            "sparsity_exponent",
            "qlsa_ancillas",
            "workspace_qubits",
        ):
            if getattr(self, name) is not None:
                check_assumption(name, getattr(self, name))
        check_assumption("flop_rate", self.flop_rate, strict=True)
        check_int_range("bits", self.bits, 1)
        check_int_range("qlsa_ancillas", self.qlsa_ancillas, 0)
        if self.workspace_qubits is not None:
            check_int_range("workspace_qubits", self.workspace_qubits, 0)
        if self.normalization not in ("norm", "sparse"):
            raise InvalidArgumentError(
                f"`normalization` must be 'norm' or 'sparse', got {self.normalization!r}."
            )
        if not isinstance(self.qlsa, AbstractQLSA):
            raise InvalidArgumentError(
                f"`qlsa` must be a QLSA (HHL(), ChildsKothariSomma(), DiscreteAdiabatic()), "
                f"got {self.qlsa!r}."
            )
        if not isinstance(self.physical, PhysicalModel):
            raise InvalidArgumentError(
                f"`physical` must be a PhysicalModel, got {self.physical!r}."
            )


class MeasuredInputs(eqx.Module):
    r"""The measured inputs of one window's cost (usually from `measured_inputs(report)`).

    **Fields:**

    - `kappa`, `sigma_max`, `sigma_min`, `target_probability`: of the history system at
      $c = 1$ (NaN: not measured).
    - `active_size` $s$, `num_params` $n$, `num_steps` $T$, `idle` $p$, `max_order` $N$.
    - `kappa_scope`: `"full"` or `"order-1 block"` (what $\kappa$ and $P$ are of).
    - `scan`: a `ScaleScan` of the same history system over $y_0$ scales, or `None`.
    - `step`: the `StepCosts` of one step on one batch, or `None`.
    - `tolerated_error`: the read-out error the dynamics tolerate (window validity), or `None`.
    """

    kappa: float = eqx.field(static=True)
    sigma_max: float = eqx.field(static=True)
    sigma_min: float = eqx.field(static=True)
    target_probability: float = eqx.field(static=True)
    active_size: int = eqx.field(static=True)
    num_params: int = eqx.field(static=True)
    num_steps: int = eqx.field(static=True)
    idle: int = eqx.field(static=True)
    max_order: int = eqx.field(static=True)
    kappa_scope: str = eqx.field(default="full", static=True)
    scan: ScaleScan | None = None
    step: StepCosts | None = eqx.field(default=None, static=True)
    tolerated_error: float | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        check_int_range("active_size", self.active_size, 1)
        check_int_range("num_params", self.num_params, self.active_size)
        check_int_range("num_steps", self.num_steps, 1)
        check_int_range("idle", self.idle, 0)
        check_int_range("max_order", self.max_order, 1)
        if self.tolerated_error is not None:
            check_assumption("tolerated_error", self.tolerated_error, strict=True, high=1.0)
        if self.scan is not None and not isinstance(self.scan, ScaleScan):
            raise InvalidArgumentError(
                f"`scan` must be a ScaleScan (qsgd_jax.linsys.scale_scan), got {self.scan!r}."
            )
        if self.step is not None and not isinstance(self.step, StepCosts):
            raise InvalidArgumentError(
                f"`step` must be a StepCosts (qsgd_jax.resources.step_costs), got {self.step!r}."
            )

    @property
    def carleman_dim(self) -> int:
        """$d$ of the full order-$N$ Carleman state."""
        return carleman_dim(self.active_size, self.max_order)


def _scalar(report, name: str) -> float:
    value = getattr(report, name)
    arr = np.asarray(value)
    if arr.ndim != 0:
        raise InvalidArgumentError(
            f"`report.{name}` has shape {arr.shape}: a cost estimate is of one window. Index "
            "one window of a batched report, e.g. `jax.tree_util.tree_map(lambda x: x[i], "
            "report)`."
        )
    return float(arr)


def measured_inputs(
    report,
    *,
    step: StepCosts | None = None,
    scan: ScaleScan | None = None,
    tolerated_error: float | None = None,
) -> MeasuredInputs:
    """The measured inputs of one window, from its `WindowReport` (concrete, not batched).

    **Arguments:**

    - `report`: a `qsgd_jax.WindowReport`.
    - `step`: `step_costs(loss_fn, params, batch)` of the window's model (for Toffolis per
      query, data QRAM and the classical baseline), or `None`.
    - `scan`: a `ScaleScan` of the window's history system (to choose the $y_0$ scale); default:
      the report's own `scale_scan` if it has one, else the report's $c = 1$ figures are used.
    - `tolerated_error`: the read-out error the dynamics tolerate, or `None`.

    **Returns:** a `MeasuredInputs`.
    """
    for name in ("kappa", "target_probability", "history_size", "active_size", "num_steps"):
        if not hasattr(report, name):
            raise InvalidArgumentError(
                f"`report` must be a WindowReport (from `qsgd_jax.quantum_window`), got "
                f"{type(report).__name__} without `{name}`."
            )
    s, N, T = int(report.active_size), int(report.max_order), int(report.num_steps)
    d = carleman_dim(s, N)
    idle = int(report.history_size) // d - T - 1
    values = {
        k: _scalar(report, k) for k in ("kappa", "sigma_max", "sigma_min", "target_probability")
    }
    values = {k: (v if math.isfinite(v) else math.nan) for k, v in values.items()}
    return MeasuredInputs(
        **values,
        active_size=s,
        num_params=int(report.num_params),
        num_steps=T,
        idle=idle,
        max_order=N,
        kappa_scope=str(report.kappa_scope),
        scan=scan if scan is not None else getattr(report, "scale_scan", None),
        step=step,
        tolerated_error=tolerated_error,
    )
