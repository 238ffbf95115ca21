"""Progress bars for the loops a user waits for (pre-training, windows, Lanczos steps, sweeps).

One helper around `tqdm`, so that every long host-side loop of the library shows progress the
same way: on stderr (stdout stays the program's output, e.g. a Markdown table), off by default
inside library calls (a library should not print unless asked), switched on by the CLI and the
experiments. Bars belong on host-side Python loops only, never inside jitted code and never
around a timed benchmark region (drawing a bar costs host time).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")

PROGRESS_ENV_VAR = "QSGD_JAX_PROGRESS"
"""Environment variable that switches bars on (`1`) or off (`0`) where `enabled=None`."""


def progress_default() -> bool:
    """Whether progress bars are on for callers that pass `enabled=None`.

    **Returns:** `True` where the environment variable `QSGD_JAX_PROGRESS` is `1` (or `true`,
    `yes`, `on`), `False` otherwise (unset: off).
    """
    value = os.environ.get(PROGRESS_ENV_VAR, "").strip().lower()
    return value in ("1", "true", "yes", "on")


def _check(enabled, total) -> bool:
    if enabled is None:
        enabled = progress_default()
    if not isinstance(enabled, bool):
        raise TypeError(f"`enabled` must be True, False or None, got {enabled!r}.")
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
        raise ValueError(f"`total` must be a non-negative int or None, got {total!r}.")
    return enabled


def progress(
    iterable: Iterable[T],
    *,
    enabled: bool | None = False,
    desc: str | None = None,
    total: int | None = None,
) -> Iterable[T]:
    """Iterate over `iterable`, drawing a `tqdm` bar on stderr when `enabled`.

    **Arguments:**

    - `iterable`: what to iterate over (consumed lazily, item by item).
    - `enabled`: draw a bar (`True`), do not (`False`, the default of library calls), or follow
      the environment variable `QSGD_JAX_PROGRESS` (`None`).
    - `desc`: the bar's label, e.g. `"pre-training"`.
    - `total`: the number of items, when `iterable` has no `len` (a generator).

    **Returns:** an iterable over the items of `iterable`, unchanged: a `tqdm` bar, or, disabled,
    `iterable` itself (`tqdm` is then not imported).
    """
    enabled = _check(enabled, total)
    if not enabled:
        return iterable
    # The plain (text) bar, not `tqdm.auto`: its notebook widget needs ipywidgets and warns
    # without it. `dynamic_ncols` follows terminal resizes.
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, file=sys.stderr, dynamic_ncols=True)


class _NoBar:
    """What `progress_counter` returns when disabled: the bar's interface, doing nothing."""

    def update(self, n: int = 1) -> None:
        del n

    def set_postfix_str(self, s: str) -> None:
        del s

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_counter(
    *, total: int | None, enabled: bool | None = False, desc: str | None = None
) -> Any:
    """A progress bar advanced by hand, for loops that are not a plain iteration.

    E.g. a `while` loop that advances by a window's length:
    `with progress_counter(total=T, enabled=True) as bar: ... bar.update(n)`.

    **Arguments:**

    - `total`: the count at completion (e.g. steps), or `None` if unknown.
    - `enabled`, `desc`: as for `progress`.

    **Returns:** a `tqdm` bar on stderr, or, disabled, an object with the same `update`,
    `set_postfix_str`, `close` and context-manager methods that does nothing.
    """
    enabled = _check(enabled, total)
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True)


__all__ = ["PROGRESS_ENV_VAR", "progress", "progress_counter", "progress_default"]
