"""Exact evolution of the truncated Carleman system, the exact GD reference, and their error.

`evolve` iterates the per-step map of an evolution method (`Discrete()`: $Y(t+1) = BY(t)$,
`Euler()`: $Y(t) + \\eta A Y(t)$, `TruncatedTaylor(K, r)`, `Expm()`) with the one driver.
`gd_trajectory` iterates the nonlinear GD map itself, $u_{t+1} = F(u_t)$. `carleman_error`
gives the Carleman-truncation part of the error budget,
$\\lVert y_1(t) - u_t^{\\mathrm{GD}} \\rVert$ (see the error-budget math page).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Inexact, Int

from ._carleman import CarlemanOperator
from ._errors import check_int_range
from ._evolution import AbstractEvolution, Blocks, Discrete, as_evolution, drive, with_initial
from ._polynomial import PolynomialMap
from ._status import (
    RESULTS,
    AbstractResult,
    apply_throw,
    argument_status,
    finite_status,
    first_nonfinite_step,
)


class Trajectory(AbstractResult):
    """A Carleman run: $y_1(t)$ and the block norms $\\lVert y_j(t)\\rVert$ for $t = 0..T$.

    **Fields:** `y1` shape `(T+1, n)`; `block_norms` shape `(T+1, N_max+1)` (Frobenius norms,
    blocks above the order are 0); `final` the state at $T$; `status` a `RESULTS`;
    `nonfinite_step` the first step $t$ with a NaN or inf (-1 when all are finite).
    """

    y1: Inexact[Array, "T1 n"]
    block_norms: Float[Array, "T1 N1"]
    final: Blocks
    status: RESULTS
    nonfinite_step: Int[Array, ""]
    what = "Carleman evolution"


def evolve(
    op: CarlemanOperator,
    Y0: Blocks,
    steps: int,
    *,
    method: AbstractEvolution | str = Discrete(),
    throw: bool = False,
) -> Trajectory:
    """Run `steps` steps of the linear Carleman recursion from `Y0` (use `op.lift(u0)`).

    **Arguments:**

    - `op`: the `CarlemanOperator` (its map $F$ and order $N$).
    - `Y0`: initial blocks, as returned by `op.lift`.
    - `steps`: number of steps $T$ (a static Python int).
    - `method`: the evolution method (`Discrete()`, the default, `Euler()`,
      `TruncatedTaylor(K, segments)`, `Expm()`, or the shorthand of one).
    - `throw`: raise `NonFiniteError` (eagerly, or at run time under `jit`) when the run
      produced a NaN or inf; default `False`, the `Trajectory` carries `status`.

    **Returns:** a `Trajectory` with $t = 0..T$.
    """
    check_int_range("steps", steps, 0)
    if len(Y0) != op.max_order + 1:
        raise ValueError(
            f"`Y0` must have max_order + 1 = {op.max_order + 1} blocks, got {len(Y0)}."
        )
    return apply_throw(_evolve(as_evolution(method), op, Y0, steps), throw)


@eqx.filter_jit
def _evolve(method, op, Y0, steps):
    Y0 = op.truncate(Y0)
    run = drive(method, op, Y0, jnp.arange(steps))
    y1s, norms = run.out
    y1 = with_initial(op.project(Y0), y1s)
    norms = with_initial(jnp.stack([jnp.linalg.norm(y.reshape(-1)) for y in Y0]), norms)
    status = argument_status(method.arguments_ok(), finite_status(y1, norms))
    return Trajectory(y1, norms, run.final, status, first_nonfinite_step(y1, norms))


@eqx.filter_jit
def gd_trajectory(poly: PolynomialMap, u0: Inexact[Array, " n"], steps: int):
    """The exact nonlinear GD iterates $u_{t+1} = F(u_t)$.

    **Arguments:** `poly` (the map $F$), `u0` (shape `(n,)`), `steps` ($T$, static).

    **Returns:** the iterates, shape `(T+1, n)`.
    """
    check_int_range("steps", steps, 0)

    def body(u, _):
        u = poly(u)
        return u, u

    _, us = jax.lax.scan(body, u0, None, length=steps)
    return jnp.concatenate([u0[None], us])


class CarlemanError(AbstractResult):
    """Carleman-truncation error $\\lVert y_1(t) - u_t^{\\mathrm{GD}}\\rVert$, $t = 0..T$.

    **Fields:** `trajectory`, `gd` (the GD iterates), `absolute`, `relative`, `status`,
    `nonfinite_step`. `relative` divides by $\\lVert u_t^{\\mathrm{GD}}\\rVert$ (0 where both
    vanish); `max_relative` is its maximum over $t$; `status` is `RESULTS.nonfinite` when the
    Carleman run or the GD reference has a NaN or inf, first at step `nonfinite_step` (-1 if
    none).
    """

    trajectory: Trajectory
    gd: Inexact[Array, "T1 n"]
    absolute: Float[Array, " T1"]
    relative: Float[Array, " T1"]
    status: RESULTS
    nonfinite_step: Int[Array, ""]
    what = "Carleman error study"

    @property
    def max_relative(self) -> Float[Array, ""]:
        """The maximum over $t$ of `relative`."""
        return jnp.max(self.relative, axis=-1)


def carleman_error(
    op: CarlemanOperator,
    u0: Inexact[Array, " n"],
    steps: int,
    *,
    method: AbstractEvolution | str = Discrete(),
    throw: bool = True,
) -> CarlemanError:
    """Evolve the lift of `u0` and the exact GD map for `steps` steps and compare them.

    **Arguments:**

    - `op`: the `CarlemanOperator`.
    - `u0`: the start point $u_0$, shape `(n,)`.
    - `steps`: number of steps $T$ (a static Python int).
    - `method`: the evolution method (default `Discrete()`), as in `evolve`.
    - `throw`: when a run produced a NaN or inf, raise `NonFiniteError` (a `RuntimeError`):
      eagerly naming the first non-finite step, under `jit`/`vmap` at run time. With
      `throw=False` the result is returned and carries `status` and `nonfinite_step`.

    **Returns:** a `CarlemanError`.
    """
    check_int_range("steps", steps, 0)
    return apply_throw(_carleman_error(as_evolution(method), op, u0, steps), throw)


@eqx.filter_jit
def _carleman_error(method, op, u0, steps):
    traj = _evolve(method, op, op.lift(u0), steps)
    gd = gd_trajectory(op.poly, u0, steps)
    absolute = jnp.linalg.norm(traj.y1 - gd, axis=-1)
    scale = jnp.linalg.norm(gd, axis=-1)
    relative = jnp.where(absolute == 0, 0.0, absolute / jnp.where(scale == 0, 1.0, scale))
    relative = jnp.where((scale == 0) & (absolute > 0), jnp.inf, relative)
    status = argument_status(method.arguments_ok(), finite_status(traj.y1, gd))
    step = first_nonfinite_step(traj.y1, gd)
    return CarlemanError(traj, gd, absolute, relative.astype(absolute.dtype), status, step)
