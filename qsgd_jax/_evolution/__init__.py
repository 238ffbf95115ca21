"""The evolution-method family (one file per method), the Carleman state representations and
the one driver that scans them."""

from __future__ import annotations

from .._choice import as_choice
from .base import AbstractEvolution as AbstractEvolution, Blocks as Blocks
from .discrete import Discrete as Discrete
from .driver import Run as Run, drive as drive, with_initial as with_initial
from .euler import Euler as Euler
from .expm import Expm as Expm
from .factored import FactoredState as FactoredState, FactoredY as FactoredY
from .state import AbstractCarlemanState as AbstractCarlemanState, DenseState as DenseState
from .taylor import (
    LCUReport as LCUReport,
    TaylorEvolution as TaylorEvolution,
    TruncatedTaylor as TruncatedTaylor,
    taylor_evolve as taylor_evolve,
)

_METHODS = {"discrete": Discrete, "euler": Euler, "taylor": TruncatedTaylor, "expm": Expm}
_STATES = {"dense": DenseState, "factored": FactoredState}


def as_evolution(method, name: str = "method") -> AbstractEvolution:
    """An evolution method value, or its shorthand: "discrete", "euler", "taylor"
    (`TruncatedTaylor()`, $K = 4$) or "expm".

    **Arguments:** `method` (the value or shorthand), `name` (the argument, for errors).

    **Returns:** the method value.
    """
    example = "qsgd_jax.TruncatedTaylor(K=4)"
    return as_choice(method, AbstractEvolution, _METHODS, name, "an evolution method", example)


def as_state(state, name: str = "state") -> AbstractCarlemanState:
    """A Carleman state representation, or its shorthand: "dense" or "factored".

    **Arguments:** `state` (the value or shorthand), `name` (the argument, for errors).

    **Returns:** the representation.
    """
    example = "qsgd_jax.FactoredState()"
    what = "a Carleman state representation"
    return as_choice(state, AbstractCarlemanState, _STATES, name, what, example)
