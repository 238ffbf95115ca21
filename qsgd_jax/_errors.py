"""Input validation shared by every module: clear errors raised before any expensive work.

Every check names the argument, the offending value and what is allowed, and raises one type,
`InvalidArgumentError`. Checks happen at the door, where the value is concrete: the type and
shape of an argument always (a boolean, complex or vector value where a real scalar is needed
is refused even when traced), its value when it is known. A value that is traced (under `jit`,
`vmap`, `grad`) is checked when the program runs instead: `error_if_invalid` threads a
run-time check on the outputs of entry points without a result object, and the result objects
report it as `RESULTS.invalid_argument` (`qsgd_jax._status`). Door checks cost nothing at run
time and keep programs in JAX's persistent compilation cache; a run-time check holds a host
callback, which keeps its program out of that cache, so it is only added where the value is
traced.

An argument these checks validate is annotated `ArrayLike` rather than `Float[ArrayLike, ""]`:
the check, whose message names the value and what to do, is then the one that speaks, also
under the test suite's run-time type checker.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from equinox.internal import unvmap_any
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


class InvalidArgumentError(ValueError, TypeError):
    """An argument has a value, a type or a shape the function does not accept.

    Raised by every shared check of this module (and by `sweep`'s grid checks), always naming
    the argument, the offending value and what is allowed. It is both a `ValueError` and a
    `TypeError`, so either `except` clause catches it: a wrong type (a complex or boolean
    learning rate, a vector where a scalar is needed) and a wrong value (a negative sparsity)
    are one family, a bad argument.

    A *traced* value (under `jit`, `vmap` or `grad`) is checked when the program runs
    (`error_if_invalid`); JAX reports the failure as a `JaxRuntimeError`, a `RuntimeError`
    whose message ends with this error's message.

    **Arguments:** the message.
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
    """Raise `InvalidArgumentError` naming the leaf if a concrete pytree has a NaN or inf entry.

    The data-finiteness check of every entry point that takes parameters or a batch: a NaN in
    the data otherwise surfaces much later as a "divergence" of the dynamics. Leaves that are
    tracers (under `jit`/`vmap`) or not floating point are skipped.

    **Arguments:**

    - `name`: the argument's name, used in the message (`params`, `batch`).
    - `tree`: an array or a pytree of arrays.

    **Raises:** `InvalidArgumentError` (a `ValueError`) naming the leaf, the number of
    non-finite entries, and the first one's index and value.
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
        raise InvalidArgumentError(
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

    **Raises:** `InvalidArgumentError` (a `TypeError`) for a complex dtype or one of
    `LOW_PRECISION`.
    """
    dt = np.dtype(dtype)
    if np.issubdtype(dt, np.complexfloating):
        raise InvalidArgumentError(
            f"`{name}` has complex dtype {dt}; this entry point needs a real float32 or float64 "
            "array (GD maps of real losses are real). Pass the real part, or split real and "
            "imaginary parts into separate parameters."
        )
    if dt.name in LOW_PRECISION:
        raise InvalidArgumentError(
            f"`{name}` has dtype {dt}, whose precision is too low for Taylor models and "
            "Carleman diagnostics (errors of several percent); cast it to float32 or float64."
        )


def _fmt(value: Any) -> str:
    """A short rendering of an argument's value for a message (`-0.5`, `[0.1, 0.2]`)."""
    if value is None or type(value) in (bool, int, float, complex, str):
        return repr(value)
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - any object: fall back to its repr
        return repr(value)
    if arr.dtype == object:
        return repr(value)
    if arr.ndim == 0:
        return repr(arr.item())
    if arr.size <= 10:
        return repr(arr.tolist())
    return np.array2string(arr, threshold=10, separator=", ")


def interval_text(
    low: float | int | None = None,
    high: float | int | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> str:
    """The interval `[low, high)` as text; a missing bound is written `-inf` / `inf`.

    **Arguments:** the bounds (`None`: unbounded) and whether each is excluded.

    **Returns:** e.g. `"[0, 1)"`, `"(0, inf)"`.
    """
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    lo = "-inf" if low is None else f"{low:g}" if isinstance(low, float) else str(low)
    hi = "inf" if high is None else f"{high:g}" if isinstance(high, float) else str(high)
    return f"{left}{lo}, {hi}{right}"


def in_interval(
    x: Any,
    low: float | int | None = None,
    high: float | int | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> Any:
    """Entry by entry: `x` is finite, lies between the bounds and (with `integer`) is integral.

    The one range predicate of the library: NumPy in, NumPy out for concrete checks; JAX in,
    JAX out (traceable) for run-time checks and result statuses.

    **Arguments:**

    - `x`: a real number or array (NumPy or JAX, possibly traced).
    - `low`, `high`: the bounds (`None`: unbounded on that side).
    - `low_open`, `high_open`: exclude the bound itself.
    - `integer`: also require integral values.

    **Returns:** a bool array of the shape of `x`.
    """
    xp = jnp if isinstance(x, jax.Array) else np
    x = xp.asarray(x)
    if not xp.issubdtype(x.dtype, xp.floating):  # strict promotion: compare floats to floats
        x = x.astype(xp.float64 if xp is np else jnp.result_type(float))
    ok = xp.isfinite(x)
    if low is not None:
        ok = ok & ((x > low) if low_open else (x >= low))
    if high is not None:
        ok = ok & ((x < high) if high_open else (x <= high))
    if integer:
        ok = ok & (x == xp.round(x))
    return ok


def _is_empty(low, high, low_open, high_open) -> bool:
    if low is None or high is None:
        return False
    return low > high or (low == high and (low_open or high_open))


def check_number(
    name: str,
    value: Any,
    *,
    low: float | int | None = None,
    high: float | int | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    scalar: bool = True,
    rule: str | None = None,
    empty: str | None = None,
    finite: bool = True,
) -> None:
    """The door check of a numeric argument: its type and shape always, its value if concrete.

    Refused, naming the argument and the value: a boolean, a complex number, anything not a
    real number; a vector where a scalar is needed (`scalar=True`, the default: a function
    that takes several values says so and passes `False`); NaN or inf; a non-integral value
    where an integer is needed; a value outside the bounds; and a bound pair that leaves no
    value at all (`empty` says why, as what is missing: "`x` holds no examples"). A traced
    value (under `jit`/`vmap`/`grad`) has its dtype and shape checked here and its value at
    run time by the caller (`error_if_invalid`) or through a result's status.

    **Arguments:**

    - `name`: the argument's name, used in the message.
    - `value`: a Python or NumPy/JAX number (or an array of them with `scalar=False`).
    - `low`, `high`, `low_open`, `high_open`, `integer`: the allowed values, as `in_interval`.
    - `scalar`: require a single number.
    - `rule`: the phrase after the name in the range message (default: "must lie in" and the
      interval).
    - `empty`: the reason shown when the bounds leave no allowed value.
    - `finite`: refuse NaN and inf (default; with `False` and no bounds only the type and
      shape are checked).

    **Raises:** `InvalidArgumentError` (a `ValueError` and a `TypeError`).
    """
    what = "an integer" if integer else "a real number"
    if isinstance(value, jax.core.Tracer):
        dtype, shape = np.dtype(value.dtype), tuple(value.shape)
    else:
        try:
            arr = np.asarray(value)
        except Exception:  # noqa: BLE001 - e.g. a ragged list
            raise InvalidArgumentError(
                f"`{name}` must be {what}, got {value!r} of type {type(value).__name__}."
            ) from None
        dtype, shape = arr.dtype, arr.shape
    if dtype.kind == "b":
        raise InvalidArgumentError(f"`{name}` must be {what}, got the boolean {_fmt(value)}.")
    if dtype.kind == "c":
        raise InvalidArgumentError(
            f"`{name}` must be {what}, got {_fmt(value)} of complex dtype {dtype}; pass a real "
            "value (complex values would be cast silently, dropping the imaginary part)."
        )
    if dtype.kind not in "iuf" or dtype.name == "object":
        raise InvalidArgumentError(
            f"`{name}` must be {what}, got {value!r} of type {type(value).__name__}."
        )
    if scalar and shape != ():
        raise InvalidArgumentError(
            f"`{name}` must be a scalar ({what}), got an array of shape {shape}: "
            f"{_fmt(value)}. To run several values, `jax.vmap` over them or pass them as a "
            "grid axis of `qsgd_jax.sweep`."
        )
    if isinstance(value, jax.core.Tracer):
        return
    if _is_empty(low, high, low_open, high_open):
        span = interval_text(low, high, low_open=low_open, high_open=high_open)
        why = f" {empty}" if empty else ""
        raise InvalidArgumentError(
            f"`{name}` cannot be chosen: no value is allowed (the range {span} is empty).{why}"
        )
    if not finite and low is None and high is None:
        return
    if not np.all(np.isfinite(arr)):
        kind = "integer" if integer else "real number"
        raise InvalidArgumentError(f"`{name}` must be a finite {kind}, got {_fmt(value)}.")
    if integer and not np.all(arr == np.round(arr)):
        raise InvalidArgumentError(
            f"`{name}` must be an integer, got {_fmt(value)} of dtype {arr.dtype}."
        )
    ok = in_interval(arr, low, high, low_open=low_open, high_open=high_open)
    if not np.all(ok):
        rule = rule or "must lie in " + interval_text(
            low, high, low_open=low_open, high_open=high_open
        )
        got = _fmt(value) if arr.ndim == 0 else f"{_fmt(arr[~ok])} among {_fmt(value)}"
        raise InvalidArgumentError(f"`{name}` {rule}, got {got}.")


def check_int_range(
    name: str,
    value: Any,
    low: int | None = None,
    high: int | None = None,
    *,
    scalar: bool = True,
    empty: str | None = None,
) -> None:
    """Raise unless a concrete integer lies in `[low, high]` (`check_number` for integers).

    Traced values have their dtype and shape checked only. Integral floats (`3.0`) are
    accepted; booleans, complex numbers, NaN and vectors (unless `scalar=False`) are not.

    **Arguments:**

    - `name`: the argument's name, used in the message.
    - `value`: a Python or NumPy/JAX integer (an array of them with `scalar=False`: every
      entry is checked).
    - `low`, `high`: the inclusive bounds; `None` leaves that side open.
    - `scalar`: require a single integer.
    - `empty`: why no value is allowed when `high < low` (phrased as what is missing).

    **Raises:** `InvalidArgumentError` (a `ValueError` and a `TypeError`).
    """
    lo = -math.inf if low is None else low
    hi = math.inf if high is None else high
    check_number(
        name,
        value,
        low=low,
        high=high,
        integer=True,
        scalar=scalar,
        rule=f"must lie in [{lo}, {hi}]",
        empty=empty,
    )


def check_positive(name: str, value: Any, *, strict: bool = True, scalar: bool = True) -> None:
    """Raise unless a concrete real number is finite and $> 0$ (`check_number`).

    Traced values have their dtype and shape checked only.

    **Arguments:**

    - `name`: the argument's name, used in the message.
    - `value`: a real number (an array of them with `scalar=False`: every entry is checked).
    - `strict`: require $> 0$ (default) or, with `False`, $\\ge 0$.
    - `scalar`: require a single number.

    **Raises:** `InvalidArgumentError` (a `ValueError` and a `TypeError`).
    """
    rel = "> 0" if strict else ">= 0"
    check_number(
        name, value, low=0, low_open=strict, scalar=scalar, rule=f"must be finite and {rel}"
    )


def check_choice(name: str, value: Any, allowed: tuple) -> None:
    """Raise unless a plain mode flag (a `Literal` argument) is one of `allowed`.

    **Arguments:** `name` (the argument), `value`, `allowed` (the accepted values).

    **Raises:** `InvalidArgumentError` naming the argument, the value and the choices.
    """
    try:
        ok = not isinstance(value, (bool, np.bool_)) and value in allowed
    except (TypeError, ValueError):  # an array or an unhashable value
        ok = False
    if not ok:
        raise InvalidArgumentError(f"`{name}` must be one of {allowed}, got {value!r}.")


def check_nonempty(name: str, size: int, what: str, advice: str = "") -> None:
    """Raise when a data argument holds nothing, saying so (not a derived, empty range).

    **Arguments:**

    - `name`: the argument (`x`, `batches`, `nodes`).
    - `size`: how many items it holds (examples, batches, nodes).
    - `what`: the items, plural (`"examples"`).
    - `advice`: an optional sentence on what to pass instead.

    **Raises:** `InvalidArgumentError` when `size` is 0.
    """
    if int(size) == 0:
        tail = f" {advice}" if advice else ""
        raise InvalidArgumentError(f"`{name}` is empty: it holds 0 {what}.{tail}")


_AT_RUN_TIME = " (checked at run time because the value is traced under jit, vmap or grad)."


def _describe_values(value: np.ndarray, ok: np.ndarray) -> str:
    """The offending entries of a (possibly vmapped) value, for a run-time message."""
    if value.ndim == 0 or ok.shape != value.shape:
        return _fmt(value)
    return f"{_fmt(value[~ok])} among {_fmt(value)}"


def describe_nonfinite(value: np.ndarray, ok: np.ndarray) -> str:
    """For `error_if_invalid`: count and first index of the NaN/inf entries of an array."""
    bad = ~np.isfinite(value)
    first = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.any() and value.ndim else ()
    return (
        f"{int(bad.sum())} non-finite (NaN or inf) entries of {value.size}, the first at index "
        f"{first}" + (f", value {_fmt(value[first])}" if bad.any() else "")
    )


def error_if_invalid(
    x: PyTree,
    ok: Any,
    name: str,
    rule: str,
    value: Any,
    *,
    describe: Callable[[np.ndarray, np.ndarray], str] | None = None,
) -> PyTree:
    """Thread the check of a traced argument onto `x`: the program raises if `ok` is false.

    For a value that is only known when the program runs (under `jit`, `vmap`, `grad`), the
    counterpart of the door checks: every entry point that has no result object (whose status
    could report the failure) returns `error_if_invalid(out, ok, ...)` instead of clipping the
    value. A concrete `ok` is decided at once (no run-time cost); a traced one adds a host
    callback behind a `lax.cond`, taken only on failure, whose message names the argument and
    its offending value, e.g. "`sparsity` must lie in [0, 1), got 1.5". The callback is an
    effect (`jax.debug.callback`), so the check stays in the program even where only a
    gradient of `x` is used; under `vmap` it covers every entry of the batch (the message
    shows the first offending entry); tangents pass through unchanged.

    A program holding such a check is not written to JAX's persistent compilation cache (no
    program with host callbacks is), so library code checks concrete values at the door and
    calls this only where the user's value is traced.

    **Arguments:**

    - `x`: the outputs the check is threaded on (a pytree; its array leaves depend on it).
    - `ok`: bool, `True` where the argument is valid (same shape as `value`, or a scalar).
    - `name`: the argument's name.
    - `rule`: the phrase after the name, e.g. "must lie in [0, 1)".
    - `value`: the argument's value (shown in the message).
    - `describe`: `describe(value, ok) -> str` renders the offending value (default: the
      invalid entries; `describe_nonfinite` for arrays that must be finite).

    **Returns:** `x` (raises `InvalidArgumentError` at once if `ok` is concrete and false).
    """
    describe = _describe_values if describe is None else describe
    if is_concrete((ok, value)):
        okn = np.asarray(ok)
        if not okn.all():
            got = describe(np.asarray(value), okn)
            raise InvalidArgumentError(f"`{name}` {rule}, got {got}.")
        return x
    ok, value = jnp.asarray(ok), jnp.asarray(value)

    def raise_error(v, o):
        v, o = np.asarray(v), np.asarray(o)
        if o.all():  # under `vmap` the callback runs once per entry of the batch
            return
        raise InvalidArgumentError(f"`{name}` {rule}, got {describe(v, o)}{_AT_RUN_TIME}")

    def fail(dynamic, value, ok):
        # an effect (a debug callback), not a pure callback: never removed as dead code, also
        # where only a gradient is used
        jax.debug.callback(raise_error, value, ok)
        return dynamic

    dynamic, static = eqx.partition(x, eqx.is_array)

    @jax.custom_jvp  # keep the check out of autodiff: tangents pass through unchanged
    def guard(dynamic, value, ok):
        return jax.lax.cond(unvmap_any(~ok), fail, lambda d, v, o: d, dynamic, value, ok)

    @guard.defjvp
    def _guard_jvp(primals, tangents):
        return guard(*primals), tangents[0]

    return eqx.combine(guard(dynamic, value, ok), static)


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
