"""The "flow" form and the error budget of a window, each term measured on the same run.

Form "flow" evolves the Carleman image of gradient flow, $Y(\\tau) = e^{\\tau A} Y(0)$, with $A$
the PNAS Carleman matrix (`carleman(poly, N, form="euler")` applies it). One GD step is flow
time $\\eta$; the quantum algorithm applies $T_K(hA)^r$ with $h = \\eta / r$ instead.

With $u_t$ the GD iterates, $u(\\tau)$ the exact gradient flow of the same Taylor model,
$y_1^{\\exp}$ the exact truncated-Carleman flow and $y_1^{K}$ its truncated-Taylor evolution,

$$y_1^{K}(t) - u_t = \\underbrace{y_1^{K}(t) - y_1^{\\exp}(t)}_{\\text{Taylor truncation}}
+ \\underbrace{y_1^{\\exp}(t) - u(t\\eta)}_{\\text{Carleman truncation}}
+ \\underbrace{u(t\\eta) - u_t}_{\\text{time discretization}},$$

and `error_budget` reports the norm of each term separately (DESIGN §2), plus the total. The
exact flow $u(\\tau)$ comes from `diffrax` (Tsit5, tight tolerances); $e^{\\eta A}$ from `expm`, so
this is a study at small sizes.
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Inexact, Int

from ._carleman import carleman
from ._errors import check_int_range, check_memory
from ._evolve import gd_trajectory
from ._polynomial import PolynomialMap
from ._status import (
    RESULTS,
    finite_status,
    first_nonfinite_step,
    raise_if_failed,
    throw_if_failed,
)
from ._taylor import LCUReport, taylor_evolve


def gradient_flow(poly: PolynomialMap, u0: Inexact[Array, " n"], steps: int, *, rtol=1e-10):
    """The exact gradient flow $u(t\\eta)$, $t = 0..T$, of the map's field (diffrax Tsit5)."""
    field = poly.field
    eta = poly.eta
    ts = eta * jnp.arange(steps + 1, dtype=u0.dtype)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, u, args: field(u)),
        diffrax.Tsit5(),
        t0=ts[0],
        t1=ts[-1],
        dt0=eta / 8,
        y0=u0,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=rtol * 1e-2),
        max_steps=100_000,
        throw=False,  # a diverging flow is reported (inf after the failure), not an exception
    )
    # u(0) = u0 exactly, even when the solver failed on its first step
    return sol.ys.at[0].set(u0)


class ErrorBudget(eqx.Module):
    """The error budget of a flow-form window, per GD step $t = 0..T$ (absolute norms).

    **Fields:** `taylor_truncation`, `carleman_truncation`, `time_discretization`, `total`
    ($\\lVert y_1^K(t) - u_t\\rVert$, at most the sum of the three), `gd_norm`
    ($\\lVert u_t\\rVert$, for relative versions), `lcu` (the `LCUReport` of the Taylor run),
    `status` and `nonfinite_step` (the first step $t$ where one of the four runs has a NaN or
    inf, -1 if none).
    """

    taylor_truncation: Float[Array, " T1"]
    carleman_truncation: Float[Array, " T1"]
    time_discretization: Float[Array, " T1"]
    total: Float[Array, " T1"]
    gd_norm: Float[Array, " T1"]
    lcu: LCUReport
    status: RESULTS
    nonfinite_step: Int[Array, ""]

    def relative(self) -> dict[str, Float[Array, " T1"]]:
        """Each term divided by $\\lVert u_t\\rVert$ (0 where both vanish)."""
        scale = jnp.where(self.gd_norm == 0, 1.0, self.gd_norm)
        names = ("taylor_truncation", "carleman_truncation", "time_discretization", "total")
        return {k: getattr(self, k) / scale for k in names}

    def raise_if_failed(self) -> ErrorBudget:
        """Raise `RuntimeError` (naming the first non-finite step) unless every run is finite."""
        raise_if_failed(self.status, "Error budget", self.nonfinite_step)
        return self


def error_budget(
    poly: PolynomialMap,
    u0: Inexact[Array, " n"],
    steps: int,
    *,
    order: int,
    taylor_order: int,
    segments: int = 1,
    memory_limit: int | None = None,
    throw: bool = True,
) -> ErrorBudget:
    """Measure the three error terms of a truncated-Taylor flow-form window.

    **Arguments:**

    - `poly`: the GD map (its field $f$ and step $\\eta$).
    - `u0`: start point $u(0)$, shape `(n,)`.
    - `steps`: GD steps $T$.
    - `order`: Carleman order $N$.
    - `taylor_order`: Taylor order $K$ of $T_K(hA)$.
    - `segments`: segments $r$ per GD step ($h = \\eta / r$).
    - `memory_limit`: bytes allowed for the dense $A$ and $e^{\\eta A}$.
    - `throw`: on a concrete (eager) call where a run produced a NaN or inf, raise
      `RuntimeError` naming the first non-finite step; under `jit`/`vmap` (or with
      `throw=False`) the result carries `status` and `nonfinite_step` instead.
    """
    check_int_range("steps", steps, 0)
    op = carleman(poly, order, form="euler", memory_limit=memory_limit)
    check_memory(
        f"The dense flow-form reference (expm of a {op.dim} x {op.dim} Carleman matrix)",
        4 * op.dim**2 * jnp.dtype(poly.dtype).itemsize,
        memory_limit,
    )
    a = op.to_dense(memory_limit=memory_limit)
    y0 = op.flatten(op.lift(u0))
    taylor = taylor_evolve(
        a, y0, tau=poly.eta, num_steps=steps, order=taylor_order, segments=segments
    )
    budget = _budget(poly, op.n, a, y0, u0, taylor, steps=steps)
    throw_if_failed(budget, throw=throw)
    return budget


@eqx.filter_jit
def _budget(poly, n, a, y0, u0, taylor, *, steps):
    step = jax.scipy.linalg.expm(poly.eta * a)

    def body(y, _):
        y = step @ y
        return y, y

    _, ys = jax.lax.scan(body, y0, None, length=steps)
    y_exp = jnp.concatenate([y0[None], ys])[:, 1 : 1 + n]
    y_taylor = taylor.ys[:, 1 : 1 + n]
    flow = gradient_flow(poly, u0, steps)
    gd = gd_trajectory(poly, u0, steps)

    def norm(x):
        return jnp.linalg.norm(x, axis=-1)

    status = finite_status(y_taylor, y_exp, flow, gd)
    step = first_nonfinite_step(y_taylor, y_exp, flow, gd)
    return ErrorBudget(
        taylor_truncation=norm(y_taylor - y_exp),
        carleman_truncation=norm(y_exp - flow),
        time_discretization=norm(flow - gd),
        total=norm(y_taylor - gd),
        gd_norm=norm(gd),
        lcu=taylor.report,
        status=status,
        nonfinite_step=step,
    )
