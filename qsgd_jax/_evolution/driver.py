"""The one evolution driver: every Carleman evolution of the library is this `lax.scan`.

As diffrax's `diffeqsolve` owns the loop over `AbstractSolver.step`, `drive` owns the loop over
`AbstractEvolution.step`: `evolve`, `carleman_error`, `error_budget`, the quantum window, the
pruned-window sweep target, the truncated-Taylor evolution of a flat generator and the Burgers
benchmark all call it; methods and callers never loop over steps themselves. The Carleman state
representation (dense blocks or the factored order-2 form) is a value the driver carries, and
the operator may change from step to step (a window's per-batch Taylor models, Burgers' forcing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PyTree

from .base import AbstractEvolution
from .state import AbstractCarlemanState, DenseState


class Run(eqx.Module):
    """What `drive` returns.

    **Fields:** `final` (the state after the last step), `carry` (the observer's carry after
    the last step), `out` (the observer's per-step outputs, stacked on a leading step axis of
    length $T$), `stats` (the method's per-step statistics, stacked the same way).
    """

    final: Any
    carry: Any
    out: PyTree
    stats: dict[str, Array]


def drive(
    method: AbstractEvolution,
    operator: Any,
    Y0: Any,
    xs: PyTree,
    *,
    state: AbstractCarlemanState = DenseState(),
    observe: Callable[[Any, Any, Any, dict, Any], tuple[Any, PyTree]] | None = None,
    carry: Any = None,
) -> Run:
    """Advance `Y0` by one step of `method` for each entry of `xs`.

    **Arguments:**

    - `method`: the evolution method (an `AbstractEvolution` value).
    - `operator`: the `CarlemanOperator` of every step (any `eqx.Module` with its methods), or
      a plain function `x -> CarlemanOperator` giving the operator of the step with scan input
      `x` (e.g. the step's own Taylor model).
    - `Y0`: the initial state in the representation of `state`.
    - `xs`: the scan inputs, one per step (e.g. `jnp.arange(T)`; a pytree of arrays with a
      leading axis $T$).
    - `state`: the Carleman state representation (`DenseState()` or `FactoredState(...)`).
    - `observe`: `observe(x, op, Y, stats, carry) -> (carry, out)`, called after each step
      with the new state (default: no carry, out $= (y_1, \\lVert y_j\\rVert_j)$).
    - `carry`: the observer's initial carry.

    **Returns:** a `Run`.
    """
    op_at = None if isinstance(operator, eqx.Module) else operator
    if observe is None:

        def observe(x, op, Y, stats, c):
            return c, (state.y1(Y), state.block_norms(Y, op.max_order))

    # The operator of the first step (a placeholder input for a run of zero steps).
    first = jax.tree_util.tree_map(
        lambda a: a[0] if len(a) else jnp.zeros(a.shape[1:], a.dtype), xs
    )
    Y0, mstate = state.start(method, operator if op_at is None else op_at(first), Y0)

    def body(c, x):
        Y, ms, oc = c
        op = operator if op_at is None else op_at(x)
        Y, ms, stats = state.step(method, op, Y, ms)
        oc, out = observe(x, op, Y, stats, oc)
        return (Y, ms, oc), (out, stats)

    (final, _, carry), (out, stats) = jax.lax.scan(body, (Y0, mstate, carry), xs)
    return Run(final, carry, out, stats)


def with_initial(first: Array, rest: Array) -> Array:
    """Prepend the value at $t = 0$ to a per-step series of $t = 1..T$.

    **Arguments:** `first` (the value at step 0), `rest` (shape `(T, ...)`).

    **Returns:** shape `(T+1, ...)`.
    """
    return jnp.concatenate([jnp.asarray(first, rest.dtype)[None], rest])
