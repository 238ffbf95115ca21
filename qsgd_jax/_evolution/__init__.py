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


def as_evolution(
    method, *, taylor_order=4, segments: int = 1, name: str = "method"
) -> AbstractEvolution:
    """Resolve a method argument: a method value, or its string shorthand.

    **Arguments:**

    - `method`: an `AbstractEvolution` (returned as is) or one of "discrete", "euler",
      "taylor", "expm" (the `form=` spelling of `carleman` and `WindowConfig`).
    - `taylor_order`, `segments`: $K$ and $r$ of "taylor".
    - `name`: the caller's argument name, for the error message.

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
            f"`{name}` must be one of {SHORTHANDS} or an evolution method such as "
            f"`qsgd_jax.TruncatedTaylor(K=4)`, got {method!r}."
        )
    return make[method]()


def method_or_form(method, form, *, taylor_order=4, segments: int = 1) -> AbstractEvolution:
    """The method of a call that takes `method=` (a value) or its shorthand `form=` (a string).

    **Arguments:** `method` (an `AbstractEvolution`, a shorthand string, or `None`), `form` (a
    shorthand string or `None`), `taylor_order` / `segments` ($K$, $r$ of "taylor").

    **Returns:** the method value; `Discrete()` when neither is given. Raises `ValueError` when
    both are given (one would be silently ignored).
    """
    if method is not None and form is not None:
        raise ValueError(
            f"Pass the evolution method as `method=` or as its shorthand `form=`, not both; got "
            f"method={method!r} and form={form!r}."
        )
    if method is None:
        return as_evolution(
            "discrete" if form is None else form,
            taylor_order=taylor_order,
            segments=segments,
            name="form",
        )
    return as_evolution(method, taylor_order=taylor_order, segments=segments)
