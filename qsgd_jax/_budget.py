"""The one error budget: each term of a window's error measured on the same run.

With $u_t$ the GD iterates of the Taylor model, $u(\\tau)$ its exact gradient flow,
$y_1^{\\mathrm{ref}}$ the reference Carleman flow ($e^{\\eta A}$, or a longer Taylor series where
$A$ is matrix-free) and $y_1$ the method's run,

$$y_1(t) - u_t = \\underbrace{y_1(t) - y_1^{\\mathrm{ref}}(t)}_{\\text{Taylor truncation}}
+ \\underbrace{y_1^{\\mathrm{ref}}(t) - u(t\\eta)}_{\\text{Carleman truncation}}
+ \\underbrace{u(t\\eta) - u_t}_{\\text{time discretization}}$$

for a flow method (`TruncatedTaylor`, `Expm`); for `Discrete` / `Euler` the Carleman term is
$y_1 - u_t$ and the other two do not apply (NaN). `budget_step` advances the references by one
GD step and measures the terms; `quantum_window` calls it once per step of its scan (with the
step's own Taylor model) and `error_budget` over a fixed map. The one flow reference is
`reference_flow` (classical RK4 with fixed substeps: under `lax.scan` at model scale an adaptive
solver would cost a while loop per step; 64 substeps per step are far below the tests'
tolerances at the small sizes of `error_budget`). See the error-budget math page.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Float, Inexact, Int

from ._carleman import carleman
from ._errors import check_int_range, check_memory
from ._evolution import (
    AbstractEvolution,
    LCUReport,
    TruncatedTaylor,
    as_evolution,
    drive,
    with_initial,
)
from ._evolution.taylor import lcu_report
from ._polynomial import PolynomialMap
from ._status import (
    RESULTS,
    AbstractResult,
    apply_throw,
    argument_status,
    finite_status,
    first_nonfinite_step,
)
from ._taylor import block_encoding_normalization

WINDOW_SUBSTEPS = 8  # RK4 substeps per GD step of a window's reference flow
BUDGET_SUBSTEPS = 64  # ... of `error_budget` (small sizes, error studies)


def reference_flow(field, u: Inexact[Array, " n"], eta, substeps: int = WINDOW_SUBSTEPS):
    """The gradient flow $\\dot u = f(u)$ over one GD step (time $\\eta$), by RK4.

    **Arguments:** `field` (the field $f$), `u` (the start), `eta` (the flow time $\\eta$),
    `substeps` (static number of RK4 steps).

    **Returns:** $u(\\eta)$.
    """
    h = eta / substeps

    def sub(u, _):
        k1 = field(u)
        k2 = field(u + 0.5 * h * k1)
        k3 = field(u + 0.5 * h * k2)
        k4 = field(u + h * k3)
        return u + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4), None

    return jax.lax.scan(sub, u, None, length=substeps)[0]


def _norm(x):
    return jnp.linalg.norm(x, axis=-1)


def budget_step(
    method: AbstractEvolution,
    op,
    y1: Inexact[Array, " n"],
    refs: tuple,
    *,
    advance_reference: Callable | None = None,
    substeps: int = WINDOW_SUBSTEPS,
):
    """Advance the references by one GD step and measure the error terms of the method's $y_1$.

    **Arguments:**

    - `method`: the evolution method that produced `y1`.
    - `op`: the step's `CarlemanOperator` (its map is the step's Taylor model).
    - `y1`: the method's $y_1$ after the step.
    - `refs`: `(u_poly, u_flow, Y_ref)` before the step (GD on the Taylor model, its flow, the
      reference Carleman state; the last two are only advanced for flow methods).
    - `advance_reference`: `(op, Y_ref) -> Y_ref`, one step of the reference Carleman flow
      (default: one step of `method.reference()`).
    - `substeps`: RK4 substeps of the reference flow.

    **Returns:** `(refs, terms)`: the advanced references and a dict of norms ("carleman",
    and for flow methods "taylor" and "time").
    """
    u_poly, u_flow, Y_ref = refs
    field, eta = op.poly.field, op.eta
    u_poly = u_poly + eta * field(u_poly)
    if not method.flow:
        return (u_poly, u_flow, Y_ref), {"carleman": _norm(y1 - u_poly)}
    if advance_reference is None:
        reference = method.reference()
        if reference is None:
            raise TypeError(
                f"`{type(method).__name__}` sets `flow = True` but its `reference()` is None: a "
                "flow method names the method its Taylor term is measured against (e.g. "
                "`Expm()`)."
            )
        advance_reference = reference.apply
    u_flow = reference_flow(field, u_flow, eta, substeps)
    Y_ref = advance_reference(op, Y_ref)
    terms = {
        "taylor": _norm(y1 - Y_ref[1]),
        "carleman": _norm(Y_ref[1] - u_flow),
        "time": _norm(u_flow - u_poly),
    }
    return (u_poly, u_flow, Y_ref), terms


def gradient_flow(poly: PolynomialMap, u0: Inexact[Array, " n"], steps: int, *, substeps=64):
    """The exact gradient flow $u(t\\eta)$, $t = 0..T$, of the map's field (`reference_flow`).

    **Arguments:** `poly` (the map: its field and $\\eta$), `u0` (the start), `steps` ($T$),
    `substeps` (RK4 substeps per GD step).

    **Returns:** the flow, shape `(T+1, n)`.
    """
    check_int_range("steps", steps, 0)

    def body(u, _):
        u = reference_flow(poly.field, u, poly.eta, substeps)
        return u, u

    return jnp.concatenate([u0[None], jax.lax.scan(body, u0, None, length=steps)[1]])


class ErrorBudget(AbstractResult):
    """The error budget of a run, per GD step $t = 0..T$ (absolute norms).

    **Fields:** `taylor_truncation`, `carleman_truncation`, `time_discretization` (NaN where a
    term does not apply to the method), `total` ($\\lVert y_1(t) - u_t\\rVert$, at most the sum
    of the terms), `gd_norm` ($\\lVert u_t\\rVert$, for relative versions), `lcu` (the
    `LCUReport` of a `TruncatedTaylor` run, else `None`), `status` and `nonfinite_step` (the
    first step $t$ where one of the runs has a NaN or inf, -1 if none).
    """

    taylor_truncation: Float[Array, " T1"]
    carleman_truncation: Float[Array, " T1"]
    time_discretization: Float[Array, " T1"]
    total: Float[Array, " T1"]
    gd_norm: Float[Array, " T1"]
    lcu: LCUReport | None
    status: RESULTS
    nonfinite_step: Int[Array, ""]
    what = "Error budget"

    def relative(self) -> dict[str, Float[Array, " T1"]]:
        """Each term divided by $\\lVert u_t\\rVert$ (0 where both vanish).

        **Returns:** a dict of the four terms.
        """
        scale = jnp.where(self.gd_norm == 0, 1.0, self.gd_norm)
        names = ("taylor_truncation", "carleman_truncation", "time_discretization", "total")
        return {k: getattr(self, k) / scale for k in names}


def error_budget(
    poly: PolynomialMap,
    u0: Inexact[Array, " n"],
    steps: int,
    *,
    order: int,
    method: AbstractEvolution | str | None = None,
    memory_limit: int | None = None,
    throw: bool = True,
) -> ErrorBudget:
    """Measure each error term of an evolution method on a fixed GD map.

    **Arguments:**

    - `poly`: the GD map (its field $f$ and step $\\eta$).
    - `u0`: start point $u(0)$, shape `(n,)`.
    - `steps`: GD steps $T$.
    - `order`: Carleman order $N$.
    - `method`: the evolution method (a value or shorthand; default `TruncatedTaylor(K=4)`).
    - `memory_limit`: bytes allowed for the dense $A$ and $e^{\\eta A}$ (the exact reference).
    - `throw`: when a run produced a NaN or inf, raise `NonFiniteError` naming the first
      non-finite step (under `jit`: at run time); `throw=False` returns the result with
      `status` and `nonfinite_step`.

    **Returns:** an `ErrorBudget`.
    """
    check_int_range("steps", steps, 0)
    # The default is built here, not as a default argument: a TruncatedTaylor holds an array,
    # and creating one at import would initialize JAX's backend (before jax.distributed).
    method = TruncatedTaylor(4) if method is None else as_evolution(method)
    op = carleman(poly, order, memory_limit=memory_limit)
    check_memory(
        f"The dense flow-form reference (expm of a {op.dim} x {op.dim} Carleman matrix)",
        4 * op.dim**2 * jnp.dtype(poly.dtype).itemsize,
        memory_limit,
    )
    return apply_throw(_budget(method, op, u0, steps=steps), throw)


@eqx.filter_jit
def _budget(method, op, u0, *, steps):
    generator = op.to_dense(which="generator")
    expm = jax.scipy.linalg.expm(op.eta * generator)  # the reference, formed once

    def observe(x, op, Y, stats, refs):
        refs, terms = budget_step(
            method,
            op,
            Y[1],
            refs,
            advance_reference=lambda op, Yr: op.unflatten(expm @ op.flatten(Yr)),
            substeps=BUDGET_SUBSTEPS,
        )
        terms.update(total=_norm(Y[1] - refs[0]), gd=_norm(refs[0]))
        return refs, terms

    Y0 = op.truncate(op.lift(u0))
    run = drive(method, op, Y0, jnp.arange(steps), observe=observe, carry=(u0, u0, Y0))
    out, dtype = run.out, u0.dtype

    def series(name):
        if name not in out:  # a term that does not apply to the method
            return jnp.full((steps + 1,), jnp.nan, dtype)
        return with_initial(jnp.zeros((), dtype), out[name])

    lcu = None
    if isinstance(method, TruncatedTaylor):
        a = lx.MatrixLinearOperator(generator)
        alpha = method.alpha
        if alpha is None:
            alpha = block_encoding_normalization(a, method.alpha_method)
        ratio = run.stats["norm_ratio"]
        lcu = lcu_report(
            method, a, op.eta, alpha.astype(dtype), ratio, exact_error=True, dtype=dtype
        )
    # A run with a NaN or inf makes every term it enters non-finite from that step on.
    measured = [series(name) for name in out]
    return ErrorBudget(
        taylor_truncation=series("taylor"),
        carleman_truncation=series("carleman"),
        time_discretization=series("time"),
        total=series("total"),
        gd_norm=with_initial(_norm(u0), out["gd"]),
        lcu=lcu,
        status=argument_status(method.arguments_ok(), finite_status(*measured)),
        nonfinite_step=first_nonfinite_step(*measured),
    )
