"""The string shorthands of the read-out methods (converted by the one `as_choice`)."""

from __future__ import annotations

from .._choice import as_choice
from ._base import AbstractReadout
from ._exact import Exact
from ._gaussian import GaussianSurrogate
from ._sampled import Sampled

_SHORTHANDS = {"exact": Exact, "sample": Sampled, "gaussian": GaussianSurrogate}


def as_readout(value: AbstractReadout | str, name: str = "method") -> AbstractReadout:
    """Return the read-out method `value`, converting a string shorthand.

    **Arguments:**

    - `value`: an `AbstractReadout` (returned as is) or one of the shorthands `"exact"`
      (`Exact()`), `"sample"` (`Sampled()`), `"gaussian"` (`GaussianSurrogate()`).
    - `name`: the caller's argument name, used in the error message.

    **Returns:** an `AbstractReadout`.

    **Raises:** `InvalidChoiceError` (a `TypeError` and a `ValueError`) naming `name` and the
    value for anything else.
    """
    return as_choice(value, AbstractReadout, _SHORTHANDS, name, "a read-out method", "Sampled()")
