"""The string shorthands of the read-out methods, converted in one place."""

from __future__ import annotations

from .._errors import InvalidArgumentError
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

    **Raises:** `TypeError` naming `name` and the value for anything else.
    """
    if isinstance(value, AbstractReadout):
        return value
    if isinstance(value, str) and value in _SHORTHANDS:
        return _SHORTHANDS[value]()
    raise InvalidArgumentError(
        f"`{name}` must be a read-out method, Exact(), Sampled() or GaussianSurrogate() (or "
        f"the shorthand 'exact', 'sample' or 'gaussian'), got {value!r}."
    )
