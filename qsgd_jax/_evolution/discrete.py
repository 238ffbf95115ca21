"""Discrete power: the exact lift of the GD map, $Y \\leftarrow B Y$ (truncated at order $N$)."""

from __future__ import annotations

from typing import ClassVar

from .base import AbstractEvolution, Blocks


class Discrete(AbstractEvolution):
    """$Y(t+1) = B\\,Y(t)$ with $B_{j,k} = \\sum_{\\sum w = k} F_{w_1}\\otimes\\dots\\otimes
    F_{w_j}$ (the discrete Carleman form). Order 1 with $F_2 = 0$ is exact GD.

    **Arguments:** none.
    """

    name: ClassVar[str] = "discrete"

    def operator(self, op, blocks: Blocks) -> Blocks:
        """$B Y$ (the method is built on the discrete map).

        **Arguments:** `op` (the `CarlemanOperator`), `blocks` (the state).

        **Returns:** the blocks of $B Y$.
        """
        return op.discrete_map(blocks)

    def step(self, op, blocks: Blocks, state):
        """$Y \\mapsto B Y$.

        **Arguments:** `op` (the `CarlemanOperator`), `blocks` (the state), `state` (unused).

        **Returns:** `(B Y, None, {})`.
        """
        return op.discrete_map(blocks), state, {}
