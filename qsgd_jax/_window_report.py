"""What a quantum window measured: the `WindowReport` (error budget, dissipation, $\\kappa$,
$P$, read-out cost) and the resource table built from it."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ._dissipation import Dissipation
from ._history_scale import ScaleScan
from ._status import RESULTS, AbstractResult


class WindowReport(AbstractResult):
    """What a window measured (the error budget of the window math page; NaN where a term does
    not apply or `diagnostics=False`).

    **Fields:** per step $t = 0..T_q$ (absolute $\\ell_2$ norms on the active set):
    `model_error` ($u^{\\mathrm{poly}} - u^{\\mathrm{GD}}$), `carleman_error`,
    `time_discretization`, `taylor_truncation`, `total_error` ($y_1 - u^{\\mathrm{GD}}$),
    `gd_norm` ($\\lVert u^{\\mathrm{GD}}_t\\rVert$), `block_norms` ($\\lVert y_j(t)\\rVert$);
    `readout_error` ($\\lVert\\hat u - y_1(T_q)\\rVert$), `final_error` ($\\lVert\\hat u -
    u^{\\mathrm{GD}}_{T_q}\\rVert$); `dissipation` at the window start; `kappa`, `sigma_max`,
    `sigma_min`, `target_probability` $P$, `amplification_rounds` of the history system (at the
    $y_0$ scale $c = 1$) and `scale_scan` (its figures on the scales of
    `WindowConfig.y0_scales`, entry 0 at $c = 1$; `None` without `history`);
    `window_runs` (tomography samples + norm-estimation runs); `diverged_step` (first step at
    which the norms blew up or the error outgrew `max_relative_error`, $-1$ if none) and
    `status`; `y1` ($y_1(t)$ when kept); `compression_error` (cumulative Frobenius norm of
    what a compressing factored state dropped, 0 otherwise); `state` ("dense" or "factored"),
    `state_bytes` (bytes of the stored Carleman state) and `dense_state_bytes` (what the dense
    state of the same order would need); `kappa_scope` ("full": $\\kappa$ and $P$ of the whole
    Carleman history system, or "order-1 block": of its $(y_0, y_1)$ block, when the full
    Carleman space does not fit, i.e. with the factored state); `method` (the evolution
    method's name).
    """

    model_error: Float[Array, " T1"]
    carleman_error: Float[Array, " T1"]
    time_discretization: Float[Array, " T1"]
    taylor_truncation: Float[Array, " T1"]
    total_error: Float[Array, " T1"]
    gd_norm: Float[Array, " T1"]
    block_norms: Float[Array, "T1 N1"]
    readout_error: Float[Array, ""]
    final_error: Float[Array, ""]
    dissipation: Dissipation | None
    kappa: Float[Array, ""]
    sigma_max: Float[Array, ""]
    sigma_min: Float[Array, ""]
    target_probability: Float[Array, ""]
    amplification_rounds: Float[Array, ""]
    scale_scan: ScaleScan | None
    window_runs: Float[Array, ""]
    diverged_step: Int[Array, ""]
    status: RESULTS
    y1: Float[Array, "T1 s"] | None
    compression_error: Float[Array, " T1"]
    num_steps: int = eqx.field(static=True)
    active_size: int = eqx.field(static=True)
    num_params: int = eqx.field(static=True)
    max_order: int = eqx.field(static=True)
    method: str = eqx.field(static=True)
    history_size: int = eqx.field(static=True)
    history_qubits: int = eqx.field(static=True)
    state: str = eqx.field(static=True)
    state_bytes: int = eqx.field(static=True)
    dense_state_bytes: int = eqx.field(static=True)
    kappa_scope: str = eqx.field(static=True)

    def relative(self) -> dict[str, Float[Array, " T1"]]:
        """Each per-step term divided by $\\lVert u^{\\mathrm{GD}}_t\\rVert$ (1 where it is 0)."""
        scale = jnp.where(self.gd_norm == 0, 1.0, self.gd_norm)
        names = (
            "model_error",
            "carleman_error",
            "time_discretization",
            "taylor_truncation",
            "total_error",
        )
        return {k: getattr(self, k) / scale for k in names}

    what = "Quantum window"

    def failed_step(self) -> Int[Array, "..."]:
        """The step at which the window diverged, -1 where it stayed bounded."""
        return self.diverged_step

    def _headline(self, failed: int, total: int, step: int) -> str:
        return (
            f"Quantum window diverged at step {step} of {self.num_steps} (first of {failed} of "
            f"{total} windows)."
        )

    def resources(self, assumptions=None, **kwargs: Any):
        """The end-to-end cost of this window from its measured figures: `qsgd_jax.resources.
        estimate(self, assumptions, **kwargs)`. Concrete reports only.

        **Arguments:** `assumptions` (a `qsgd_jax.resources.Assumptions`, default its defaults),
        `**kwargs` (`step`, `scan`, `tolerated_error`, `physical`, as `estimate`).

        **Returns:** a `CostEstimate`, every number labelled.
        """
        from ._resources import estimate

        return estimate(self, assumptions, **kwargs)

    @property
    def succeeded(self) -> bool:
        """Whether the (concrete) window's status is `RESULTS.successful` (every run of a
        batched report)."""
        return bool(np.all(np.asarray(self.status._value) == RESULTS.successful._value))

    def summary(self) -> dict[str, Any]:
        """JSON-able summary of the final-step figures."""
        rel = self.relative()
        out = {k: float(v[-1]) for k, v in rel.items()}
        out.update(
            readout_error=float(self.readout_error),
            final_error=float(self.final_error),
            kappa=float(self.kappa),
            target_probability=float(self.target_probability),
            amplification_rounds=float(self.amplification_rounds),
            window_runs=float(self.window_runs),
            diverged_step=int(self.diverged_step),
            status=RESULTS[self.status],
            num_steps=self.num_steps,
            method=self.method,
            active_size=self.active_size,
            history_size=self.history_size,
            state=self.state,
            state_bytes=self.state_bytes,
            dense_state_bytes=self.dense_state_bytes,
            kappa_scope=self.kappa_scope,
            compression_error=float(self.compression_error[-1]),
        )
        if self.dissipation is not None:
            out["spectral_radius"] = float(self.dissipation.spectral_radius)
            out["re_lambda1"] = float(self.dissipation.re_lambda1)
        return out
