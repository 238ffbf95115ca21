"""The interface of the evolution methods: one step of the truncated Carleman recursion.

A method is a small `eqx.Module` passed as a value (`evolve(op, Y0, T, method=Euler())`,
`WindowConfig(method=TruncatedTaylor(K=6, segments=2))`). Given a `CarlemanOperator`, which
applies the discrete map $B$ and the generator $A$ of the Carleman state (see the Carleman math
page), the method decides which one it uses and how. As a diffrax solver, it never loops:
`init(op, Y0)` gives its own state, `step(op, Y, state)` advances one GD step and returns
`(Y, state, stats)`, and the one driver (`qsgd_jax._evolution.driver.drive`) scans it. Its
per-step linear map $M$ ($B$, $I + \\eta A$, $T_K(hA)^r$ or $e^{\\eta A}$) is also the map of
the history system (`flat_step`). Adding a method is one new file in this folder.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Inexact

if TYPE_CHECKING:
    from .._carleman import CarlemanOperator

Blocks = tuple[Inexact[Array, "..."], ...]


class AbstractEvolution(eqx.Module):
    """How the truncated Carleman state advances by one GD step.

    **Arguments:** those of each method (see `Discrete`, `Euler`, `TruncatedTaylor`, `Expm`).

    **Class attributes:** `name` (the method's short name, as reported in window summaries);
    `flow` (default `False`; `True` when the method approximates the Carleman flow
    $e^{\\eta A}$ and `reference()` returns the method it is measured against: its error budget
    then has Taylor-truncation and time-discretization terms; otherwise its Carleman term is
    measured against GD directly).

    Subclasses implement `step` (and `init` when they carry a state across steps); methods
    built on the discrete map override `operator`.
    """

    name: ClassVar[str]
    flow: ClassVar[bool] = False

    def operator(self, op: CarlemanOperator, blocks: Blocks) -> Blocks:
        """The linear operator the method is built on, applied to a state.

        **Arguments:** `op` (the `CarlemanOperator`), `blocks` (the state).

        **Returns:** $A Y$ (the generator; `Discrete` returns $B Y$).
        """
        return op.generator(blocks)

    def init(self, op: CarlemanOperator, blocks: Any) -> Any:
        """The method's own state before the first step (`None`: it carries nothing).

        **Arguments:** `op` (the operator of the first step), `blocks` (the initial state, in
        the representation the driver carries: dense blocks, factored, or a flat vector).

        **Returns:** a pytree, passed to and returned by every `step`.
        """
        return None

    @abc.abstractmethod
    def step(
        self, op: CarlemanOperator, blocks: Blocks, state: Any
    ) -> tuple[Blocks, Any, dict[str, Array]]:
        """One GD step of the truncated Carleman recursion, $Y \\mapsto M Y$.

        **Arguments:** `op` (the `CarlemanOperator` of the step: its map and order), `blocks`
        (the state, $y_0$ first), `state` (the method's own state).

        **Returns:** `(blocks, state, stats)`: the new blocks ($y_0$ fixed, blocks above the
        order zero), the method's new state and a dict of per-step statistics (arrays of a
        fixed shape; `{}` when there are none).
        """

    def reference(self) -> AbstractEvolution | None:
        """The method the error budget compares a flow method against (`None`: not a flow
        method, its Carleman term is measured against GD directly).

        **Returns:** an `AbstractEvolution` or `None`.
        """
        return None

    def arguments_ok(self):
        """Whether the method's traced values are valid (run-time side of its door checks).

        **Returns:** a traceable bool (`True` for a method without traced values); a run ORs
        it into its status (`RESULTS.invalid_argument` where it is false).
        """
        return jnp.ones((), bool)

    def apply(self, op: CarlemanOperator, blocks: Blocks) -> Blocks:
        """One step from a fresh method state: the per-step linear map $M Y$.

        **Arguments:** `op` (the `CarlemanOperator`), `blocks` (the state).

        **Returns:** the blocks of $M Y$.
        """
        return self.step(op, blocks, self.init(op, blocks))[0]

    def flat_step(self, op: CarlemanOperator, v: Inexact[Array, " dim"]) -> Inexact[Array, " dim"]:
        """$M v$ on flat Carleman vectors (the map of the history system).

        **Arguments:** `op` (the `CarlemanOperator`), `v` (shape `(dim,)`).

        **Returns:** $M v$, shape `(dim,)`.
        """
        return op.flatten(self.apply(op, op.unflatten(v)))

    def matrix(self, op: CarlemanOperator, *, memory_limit: int | None = None):
        """The dense `(dim, dim)` matrix of the per-step map $M$ (small sizes only).

        **Arguments:** `op` (the `CarlemanOperator`), `memory_limit` (bytes allowed).

        **Returns:** the matrix $M$.
        """
        from .._errors import check_memory

        check_memory(f"A dense {op.dim} x {op.dim} step matrix", 8 * op.dim**2, memory_limit)
        return _dense_columns(self, op)


@eqx.filter_jit
def _dense_columns(method, op):
    eye = jnp.eye(op.dim, dtype=op.dtype)
    return jax.vmap(lambda v: method.flat_step(op, v), in_axes=1, out_axes=1)(eye)
