"""The one converter for arguments that choose an algorithm: a value, or its string shorthand.

Where several algorithms do one job (evolution methods, read-out methods, norm estimators,
Carleman state representations) the argument takes a method value (`TruncatedTaylor(K=6)`).
The command line and the experiment presets spell them as strings; this is the one place that
turns those strings into values and the one exception type for a bad choice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ._errors import InvalidArgumentError

T = TypeVar("T")


class InvalidChoiceError(InvalidArgumentError):
    """A choice argument is neither a value of its family nor one of its shorthands.

    An `InvalidArgumentError`, so both a `ValueError` (a bad value) and a `TypeError` (a wrong
    type): either `except` clause catches it.

    **Arguments:** the message.
    """


def as_choice(
    value,
    family: type[T],
    shorthands: dict[str, Callable[[], T]],
    name: str,
    what: str,
    example: str,
) -> T:
    """Return `value` if it is a member of `family`, else build its string shorthand.

    **Arguments:**

    - `value`: the argument.
    - `family`: the abstract class of the allowed values (e.g. `AbstractEvolution`).
    - `shorthands`: string -> constructor of the default value it stands for.
    - `name`: the caller's argument name, for the error message.
    - `what`: the family in words (e.g. "an evolution method"), for the error message.
    - `example`: an example value, shown in the error message.

    **Returns:** the value. Raises `InvalidChoiceError` naming the argument, the value and
    the allowed shorthands otherwise.
    """
    if isinstance(value, family):
        return value
    if isinstance(value, str) and value in shorthands:
        return shorthands[value]()
    raise InvalidChoiceError(
        f"`{name}` must be {what} such as `{example}` or one of the shorthands "
        f"{tuple(shorthands)}, got {value!r}."
    )
