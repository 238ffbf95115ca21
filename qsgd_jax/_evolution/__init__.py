"""The evolution-method family (one file per method) and the string shorthand for it."""

from __future__ import annotations

from .base import AbstractEvolution as AbstractEvolution, Blocks as Blocks
from .discrete import Discrete as Discrete
from .euler import Euler as Euler
from .expm import Expm as Expm
from .taylor import (
    LCUReport as LCUReport,
    TaylorEvolution as TaylorEvolution,
    TruncatedTaylor as TruncatedTaylor,
    taylor_evolve as taylor_evolve,
)

SHORTHANDS = ("discrete", "euler", "taylor", "expm")


def as_evolution(method, *, taylor_order=4, segments: int = 1) -> AbstractEvolution:
    """Resolve a method argument: a method value, or its string shorthand.

    **Arguments:**

    - `method`: an `AbstractEvolution` (returned as is) or one of "discrete", "euler",
      "taylor", "expm" (the `form=` spelling of `carleman` and `WindowConfig`).
    - `taylor_order`, `segments`: $K$ and $r$ of "taylor".

    **Returns:** the method value. Raises `ValueError` naming the allowed values otherwise.
    """
    if isinstance(method, AbstractEvolution):
        return method
    make = {
        "discrete": Discrete,
        "euler": Euler,
        "taylor": lambda: TruncatedTaylor(taylor_order, segments),
        "expm": Expm,
    }
    if not isinstance(method, str) or method not in make:
        raise ValueError(
            f"`form` must be one of {SHORTHANDS} or an evolution method such as "
            f"`qsgd_jax.TruncatedTaylor(K=4)`, got {method!r}."
        )
    return make[method]()
