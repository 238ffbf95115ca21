"""Forward Euler (PNAS): $Y \\leftarrow Y + \\eta A Y$ with the continuous Carleman matrix $A$."""

from __future__ import annotations

from typing import Any, ClassVar

from .base import AbstractEvolution, Blocks


class Euler(AbstractEvolution):
    """$Y(t+1) = Y(t) + \\eta A\\,Y(t)$ (Liu et al., PNAS 2021; DESIGN §2, form "euler"). Equals
    `Discrete()` up to $O(\\eta^2)$ per step.

    **Arguments:** none.
    """

    name: ClassVar[str] = "euler"
    flow: ClassVar[bool] = False

    def step(self, op: Any, blocks: Blocks) -> Blocks:
        """$Y \\mapsto Y + \\eta A Y$.

        **Arguments:** `op` (the `CarlemanOperator`), `blocks` (the state).

        **Returns:** the new blocks.
        """
        ay = op.generator(blocks)
        eta = op.poly.eta
        return tuple(y + eta * a for y, a in zip(op.truncate(blocks), ay, strict=True))
