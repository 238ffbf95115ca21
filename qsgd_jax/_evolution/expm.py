"""The dense reference: $Y \\leftarrow e^{\\eta A} Y$, the exact Carleman flow over one GD step."""

from __future__ import annotations

from typing import Any, ClassVar

import jax
from jaxtyping import Array, Inexact

from .base import AbstractEvolution, Blocks


class Expm(AbstractEvolution):
    """$Y(t+1) = e^{\\eta A}\\,Y(t)$ by `jax.scipy.linalg.expm` of the dense generator (DESIGN §2,
    form "flow"): the reference the truncated Taylor series approximates. Small sizes only
    (the `dim x dim` matrix is formed).

    **Arguments:** none.
    """

    name: ClassVar[str] = "expm"
    flow: ClassVar[bool] = True

    def matrix(self, op: Any) -> Inexact[Array, "dim dim"]:
        """The dense per-step map $e^{\\eta A}$ of an operator.

        **Arguments:** `op` (the `CarlemanOperator`).

        **Returns:** the `(dim, dim)` matrix.
        """
        return jax.scipy.linalg.expm(op.poly.eta * op.to_dense(which="generator"))

    def step(self, op: Any, blocks: Blocks) -> Blocks:
        """$Y \\mapsto e^{\\eta A} Y$.

        **Arguments:** `op` (the `CarlemanOperator`), `blocks` (the state).

        **Returns:** the new blocks.
        """
        return op.unflatten(self.matrix(op) @ op.flatten(op.truncate(blocks)))

    def reference(self) -> AbstractEvolution:
        """Itself: the exact flow has no Taylor-truncation error.

        **Returns:** `self`.
        """
        return self
