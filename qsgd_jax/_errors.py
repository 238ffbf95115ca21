"""Input validation shared by every module: clear errors raised before any expensive work.

Every check names the argument, the offending value and what is allowed. Checks on array
*values* (finiteness, normalization) only run on concrete arrays; under `jit` the values are
tracers and the check is skipped (shapes and static arguments are always checked).
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PyTree

MEMORY_FRACTION = 0.5
"""Default memory limit, as a fraction of the memory available when the check runs."""


class MemoryLimitError(ValueError):
    """An allocation was refused because its estimate exceeds the configured memory limit.

    Raised by `check_memory` before any array is allocated; a `ValueError`, so callers that
    catch bad input catch it too.

    **Arguments:**

    - `message`: what was refused, its estimated size, the limit, and how to proceed.
    """


def is_concrete(x: PyTree) -> bool:
    """Whether a pytree holds no tracers, so that its values can be inspected now.

    **Arguments:**

    - `x`: an array, a Python number or a pytree of them.

    **Returns:** `True` outside `jit`/`vmap`/`grad` tracing (no leaf is a `jax.core.Tracer`),
    `False` otherwise.
    """
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(x))


def check_finite_tree(name: str, tree: PyTree) -> None:
    """Raise `ValueError` naming the leaf if a concrete pytree has a NaN or infinite entry.

    The data-finiteness check of every entry point that takes parameters or a batch: a NaN in
    the data otherwise surfaces much later as a "divergence" of the dynamics. Leaves that are
    tracers (under `jit`/`vmap`) or not floating point are skipped.

    **Arguments:**

    - `name`: the argument's name, used in the message (`params`, `batch`).
    - `tree`: an array or a pytree of arrays.

    **Raises:** `ValueError` naming the leaf, the number of non-finite entries, and the first
    one's index and value.
    """
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    for path, leaf in leaves:
        if isinstance(leaf, jax.core.Tracer):
            continue
        if isinstance(leaf, jax.Array):
            if not jnp.issubdtype(leaf.dtype, jnp.inexact):
                continue  # integer labels, PRNG keys: nothing to check
            # reduce on the device (one bool comes back, not the data); evaluated now even
            # inside a trace, where the leaf is a concrete constant
            with jax.ensure_compile_time_eval():
                if bool(jnp.all(jnp.isfinite(leaf))):
                    continue
        try:
            arr = np.asarray(leaf)
        except (TypeError, ValueError):  # a non-array leaf: nothing to check
            continue
        if arr.dtype.kind not in "fc" or np.all(np.isfinite(arr)):
            continue
        bad = ~np.isfinite(arr)
        first = tuple(int(i) for i in np.argwhere(bad)[0]) if arr.ndim else ()
        where = f"`{name}{jax.tree_util.keystr(path)}`" if path else f"`{name}`"
        raise ValueError(
            f"{where} has {int(bad.sum())} non-finite (NaN or inf) entries out of {arr.size} "
            f"(the first at index {first}, value {arr[first]!r}); all entries must be finite. "
            "Clean the data (or the parameters) before building the model."
        )


check_finite = check_finite_tree
"""The same check under its short name (an array is a one-leaf pytree)."""

LOW_PRECISION = ("float16", "bfloat16")


def check_real_float(name: str, dtype: Any) -> None:
    """Refuse complex and half-precision dtypes where the library needs real float32/float64.

    Loss-derived fields are real (complex inputs would be silently mixed with real Hessians),
    and float16/bfloat16 Taylor models lose digits the diagnostics rely on (a 7 % error on a
    simple map), so both are errors rather than silent results.

    **Arguments:**

    - `name`: the argument's name, used in the message.
    - `dtype`: anything `numpy.dtype` accepts (a dtype, a type, a name).

    **Raises:** `TypeError` for a complex dtype or one of `LOW_PRECISION`.
    """
    dt = np.dtype(dtype)
    if np.issubdtype(dt, np.complexfloating):
        raise TypeError(
            f"`{name}` has complex dtype {dt}; this entry point needs a real float32 or float64 "
            "array (GD maps of real losses are real). Pass the real part, or split real and "
            "imaginary parts into separate parameters."
        )
    if dt.name in LOW_PRECISION:
        raise TypeError(
            f"`{name}` has dtype {dt}, whose precision is too low for Taylor models and "
            "Carleman diagnostics (errors of several percent); cast it to float32 or float64."
        )


def check_int_range(name: str, value: Any, low: int | None = None, high: int | None = None) -> None:
    """Raise unless a concrete integer (or integer array) lies in `[low, high]`.

    Traced values are not checked. Integral floats (`3.0`) are accepted.

    **Arguments:**

    - `name`: the argument's name, used in the message.
    - `value`: a Python or NumPy/JAX integer, or an array of them (every entry is checked).
    - `low`, `high`: the inclusive bounds; `None` leaves that side open.

    **Raises:** `TypeError` for a non-integer, `ValueError` for a non-finite or out-of-range
    value.
    """
    if not is_concrete(value):
        return
    arr = np.asarray(value)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be a finite integer, got {value!r}.")
    if arr.dtype.kind not in "iub" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
        raise TypeError(f"`{name}` must be an integer, got {value!r} of dtype {arr.dtype}.")
    lo = -math.inf if low is None else low
    hi = math.inf if high is None else high
    if np.any(arr < lo) or np.any(arr > hi):
        raise ValueError(f"`{name}` must lie in [{lo}, {hi}], got {value!r}.")


def check_positive(name: str, value: Any, *, strict: bool = True) -> None:
    """Raise `ValueError` unless a concrete number (or array) is finite and $> 0$.

    Traced values are not checked.

    **Arguments:**

    - `name`: the argument's name, used in the message.
    - `value`: a number or an array of numbers (every entry is checked).
    - `strict`: require $> 0$ (default) or, with `False`, $\\ge 0$.
    """
    if not is_concrete(value):
        return
    arr = np.asarray(value)
    ok = np.all(np.isfinite(arr)) and (np.all(arr > 0) if strict else np.all(arr >= 0))
    if not ok:
        rel = "> 0" if strict else ">= 0"
        raise ValueError(f"`{name}` must be finite and {rel}, got {value!r}.")


def available_memory_bytes() -> int:
    """The memory currently available to this process, in bytes.

    **Returns:** Linux's `MemAvailable` from `/proc/meminfo`; elsewhere the free physical pages
    (`os.sysconf`); 8 GiB when neither can be read.
    """
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 8 * 2**30


def default_memory_limit() -> int:
    """The memory limit, in bytes, that every memory check uses when given none.

    **Returns:** the environment variable `QSGD_JAX_MEMORY_LIMIT` (bytes) where set, otherwise
    `MEMORY_FRACTION` of `available_memory_bytes()` at the time of the call.
    """
    env = os.environ.get("QSGD_JAX_MEMORY_LIMIT")
    if env:
        return int(float(env))
    return int(MEMORY_FRACTION * available_memory_bytes())


def check_memory(what: str, nbytes: int, limit: int | None = None) -> None:
    """Raise `MemoryLimitError` when an allocation's estimate exceeds the memory limit.

    Called before the allocation, so that a too-large request fails at once with advice
    instead of exhausting the machine.

    **Arguments:**

    - `what`: the allocation, as the start of a sentence ("A dense Taylor model with s = 4 ...").
    - `nbytes`: its estimated size in bytes.
    - `limit`: bytes allowed (default: `default_memory_limit()`).
    """
    limit = default_memory_limit() if limit is None else int(limit)
    if nbytes > limit:
        raise MemoryLimitError(
            f"{what} needs an estimated {_human(nbytes)}, above the memory limit of "
            f"{_human(limit)}. Lower the size (dimension, order, steps), pass a larger "
            "`memory_limit=`, or set QSGD_JAX_MEMORY_LIMIT (bytes)."
        )


def _human(nbytes: int | float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(nbytes) < 1024:
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    return f"{nbytes:.3g} TiB"
