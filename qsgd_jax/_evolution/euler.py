"""Forward Euler (PNAS): $Y \\leftarrow Y + \\eta A Y$ with the continuous Carleman matrix $A$."""

from __future__ import annotations

from typing import ClassVar

from .base import AbstractEvolution, Blocks


class Euler(AbstractEvolution):
    """$Y(t+1) = Y(t) + \\eta A\\,Y(t)$ (Liu et al., PNAS 2021; the Euler Carleman form).
    Equals `Discrete()` up to $O(\\eta^2)$ per step.

    **Arguments:** none.
    """

    name: ClassVar[str] = "euler"

    def step(self, op, blocks: Blocks, state):
        """$Y \\mapsto Y + \\eta A Y$.

        **Arguments:** `op` (the `CarlemanOperator`), `blocks` (the state), `state` (unused).

        **Returns:** `(Y + eta A Y, None, {})`.
        """
        ay = op.generator(blocks)
        new = tuple(y + op.eta * a for y, a in zip(op.truncate(blocks), ay, strict=True))
        return new, state, {}
