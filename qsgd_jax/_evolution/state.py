"""How the driver stores the Carleman state: the interface, and dense blocks.

A representation is a value passed to the driver (and as `WindowConfig(state=...)`):
`DenseState()` keeps the blocks $y_j$ as tensors of shape `(s,)*j` (any order, small $s$);
`FactoredState(...)` (`factored.py`) keeps $y_2 = A B^\\top$ in low-rank factors (order $\\le 2$,
any model size).
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Inexact

from .._carleman import Blocks, carleman_bytes
from .base import AbstractEvolution


class AbstractCarlemanState(eqx.Module):
    """How the Carleman state is stored; an evolution method steps it.

    **Arguments:** those of each representation (`DenseState`, `FactoredState`).

    `zero` gives the lift of $u_0 = 0$, `start` prepares a run, `step(method, op, Y, ms)` is
    one GD step of `method` with the step's `CarlemanOperator`, `y1` and `block_norms` read it.
    """

    @abc.abstractmethod
    def check(self, *, max_order: int, method: AbstractEvolution) -> None:
        """Raise `ValueError` if this representation cannot run the given order and method.

        **Arguments:** `max_order` ($N_{\\max}$), `method` (the evolution method).
        """

    @abc.abstractmethod
    def state_bytes(self, s: int, max_order: int, num_steps: int, itemsize: int) -> int:
        """Bytes of the stored state for `s` active parameters after `num_steps` steps.

        **Returns:** the byte count.
        """

    @abc.abstractmethod
    def zero(self, s: int, max_order: int, num_steps: int, dtype) -> Any:
        """The lift of $u_0 = 0$ for `s` active parameters (sized for `num_steps` steps).

        **Returns:** the state.
        """

    def start(self, method: AbstractEvolution, op, y) -> tuple[Any, Any]:
        """Prepare a run: the initial state and the method's own state.

        **Arguments:** `method`, `op` (the operator of the first step), `y` (the state).

        **Returns:** `(y, method_state)`.
        """
        return y, method.init(op, y)

    @abc.abstractmethod
    def step(self, method: AbstractEvolution, op, y, method_state) -> tuple[Any, Any, dict]:
        """One GD step of `method` with the step's `CarlemanOperator` `op`.

        **Returns:** `(y, method_state, stats)`.
        """

    @abc.abstractmethod
    def y1(self, y) -> Inexact[Array, " s"]:
        """The degree-1 block $y_1$ (the estimate of $u$)."""

    @abc.abstractmethod
    def block_norms(self, y, max_order: int) -> Float[Array, " N1"]:
        """$\\lVert y_j\\rVert$ for $j = 0..N_{\\max}$ (Frobenius norms)."""

    def dropped(self, y) -> Float[Array, ""]:
        """Cumulative Frobenius norm of what compression dropped (0: nothing is dropped)."""
        return jnp.zeros((), self.y1(y).dtype)


class DenseState(AbstractCarlemanState):
    """Dense Carleman blocks $y_j$ of shape `(s,)*j`: any order $N$ and method; $s^N$ memory.

    **Arguments:** none.
    """

    def check(self, *, max_order: int, method: AbstractEvolution) -> None:
        pass

    def state_bytes(self, s: int, max_order: int, num_steps: int, itemsize: int) -> int:
        return carleman_bytes(s, max_order, itemsize)

    def zero(self, s: int, max_order: int, num_steps: int, dtype) -> Blocks:
        return tuple(
            jnp.ones((), dtype) if j == 0 else jnp.zeros((s,) * j, dtype)
            for j in range(max_order + 1)
        )

    def start(self, method: AbstractEvolution, op, y: Any):
        y = op.truncate(y)
        return y, method.init(op, y)

    def step(self, method: AbstractEvolution, op, y: Blocks | Inexact[Array, " d"], method_state):
        return method.step(op, y, method_state)

    def y1(self, y: Blocks) -> Inexact[Array, " s"]:
        return y[1]

    def block_norms(self, y: Blocks, max_order: int) -> Float[Array, " N1"]:
        return jnp.stack([jnp.linalg.norm(b.reshape(-1)) for b in y])
