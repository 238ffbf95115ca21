"""The dense reference: $Y \\leftarrow e^{\\eta A} Y$, the exact Carleman flow over one GD step."""

from __future__ import annotations

from typing import ClassVar

import jax
from jaxtyping import Array, Inexact

from .base import AbstractEvolution, Blocks


class Expm(AbstractEvolution):
    """$Y(t+1) = e^{\\eta A}\\,Y(t)$ by `jax.scipy.linalg.expm` of the dense generator (the flow
    form): the reference the truncated Taylor series approximates. Small sizes only (the
    `dim x dim` matrix is formed).

    **Arguments:** none.
    """

    name: ClassVar[str] = "expm"
    flow: ClassVar[bool] = True

    def matrix(self, op, *, memory_limit: int | None = None) -> Inexact[Array, "dim dim"]:
        """The dense per-step map $e^{\\eta A}$ of an operator.

        **Arguments:** `op` (the `CarlemanOperator`), `memory_limit` (bytes allowed).

        **Returns:** the `(dim, dim)` matrix.
        """
        a = op.to_dense(which="generator", memory_limit=memory_limit)
        return jax.scipy.linalg.expm(op.eta * a)

    def step(self, op, blocks: Blocks, state):
        """$Y \\mapsto e^{\\eta A} Y$.

        **Arguments:** `op` (the `CarlemanOperator`), `blocks` (the state), `state` (unused).

        **Returns:** `(e^{eta A} Y, None, {})`.
        """
        new = op.unflatten(self.matrix(op) @ op.flatten(op.truncate(blocks)))
        return new, state, {}

    def reference(self) -> AbstractEvolution:
        """Itself: the exact flow has no Taylor-truncation error.

        **Returns:** `self`.
        """
        return self
