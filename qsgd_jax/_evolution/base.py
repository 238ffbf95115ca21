"""The interface of the evolution methods: one step of the truncated Carleman recursion.

A method is a small `eqx.Module` passed as a value (`evolve(op, Y0, T, method=Euler())`,
`WindowConfig(method=TruncatedTaylor(K=6, segments=2))`). Given a `CarlemanOperator`, which
applies the discrete map $B$ and the generator $A$ of the Carleman state (DESIGN §2), the method
decides which one it uses and how: `step(op, Y)` is its per-step linear map $M$ (the map of the
history system, $M = B$, $I + \\eta A$, $T_K(hA)^r$ or $e^{\\eta A}$). Adding a method is one new
file in this folder.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import equinox as eqx
from jaxtyping import Array, Inexact

Blocks = tuple[Inexact[Array, "..."], ...]


class AbstractEvolution(eqx.Module):
    """How the truncated Carleman state advances by one GD step.

    **Arguments:** those of each method (see `Discrete`, `Euler`, `TruncatedTaylor`, `Expm`).

    **Class attributes:** `name` (the method's short name, as reported in window summaries);
    `flow` (default `False`; `True` when the method approximates the Carleman flow
    $e^{\\eta A}$ and `reference()` returns the method it is measured against: its error budget
    then has Taylor-truncation and time-discretization terms; otherwise its Carleman term is
    measured against GD directly).

    Subclasses implement `step`; methods built on the discrete map override `operator`.
    """

    name: ClassVar[str]
    flow: ClassVar[bool] = False

    def operator(self, op: Any, blocks: Blocks) -> Blocks:
        """The linear operator the method is built on, applied to a state.

        **Arguments:** `op` (the `CarlemanOperator`), `blocks` (the state).

        **Returns:** $A Y$ (the generator; `Discrete` returns $B Y$).
        """
        return op.generator(blocks)

    def init(self, op: Any, blocks: Blocks) -> Blocks:
        """The initial state as the method steps it (the blocks above the order zeroed).

        **Arguments:** `op` (the `CarlemanOperator`), `blocks` (e.g. `op.lift(u0)`).

        **Returns:** the truncated blocks.
        """
        return op.truncate(blocks)

    @abc.abstractmethod
    def step(self, op: Any, blocks: Blocks) -> Blocks:
        """One GD step of the truncated Carleman recursion, $Y \\mapsto M Y$.

        **Arguments:** `op` (the `CarlemanOperator` of the step: its map and order), `blocks`
        (the state, $y_0$ first).

        **Returns:** the new blocks ($y_0$ fixed, blocks above the order zero).
        """

    def reference(self) -> AbstractEvolution | None:
        """The method the error budget compares a flow method against (`None`: not a flow
        method, its Carleman term is measured against GD directly).

        **Returns:** an `AbstractEvolution` or `None`.
        """
        return None
