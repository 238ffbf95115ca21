"""Input checks of the read-out: the support, the state and the number of shots.

Concrete values are checked eagerly, before any sampling; traced values (under `jit`, `vmap`,
`sweep`) get the boolean tests `state_ok` / `shots_ok`, which the callers turn into run-time
errors (`equinox.error_if`) or NaN results.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .._errors import InvalidArgumentError, check_finite, check_number, in_interval, is_concrete


def check_support(support, n: int, vector: str) -> None:
    """Raise unless `support` is a 1-D integer array of distinct indices into `n` entries."""
    support = support if isinstance(support, jax.core.Tracer) else jnp.asarray(support)
    if support.ndim != 1 or not jnp.issubdtype(support.dtype, jnp.integer):
        raise InvalidArgumentError(
            f"`support` must be a 1-D integer index array, got shape {support.shape} "
            f"and dtype {support.dtype}."
        )
    if support.shape[0] > n:
        raise InvalidArgumentError(
            f"`support` has {support.shape[0]} entries but {vector} has only {n}; the "
            "support must be a subset of its indices."
        )
    if is_concrete(support):
        idx = np.asarray(support)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise InvalidArgumentError(
                f"`support` indices must lie in [0, {n - 1}], got min {idx.min()} and "
                f"max {idx.max()}."
            )
        if np.unique(idx).size != idx.size:
            raise InvalidArgumentError(
                "`support` has repeated indices; each index must appear once."
            )


def _norm_tol(dtype) -> float:
    return 1e-4 if jnp.finfo(dtype).bits <= 32 else 1e-9


def check_state(name: str, psi, support) -> None:
    """Raise unless `psi` is a non-empty 1-D state of unit norm (on `support` if given)."""
    if psi.ndim != 1:
        raise InvalidArgumentError(
            f"`{name}` must be a 1-D amplitude vector, got shape {psi.shape}."
        )
    if psi.shape[0] == 0:
        raise InvalidArgumentError(f"`{name}` is empty; tomography needs at least one amplitude.")
    n = psi.shape[0]
    if support is not None:
        check_support(support, n, f"the vector `{name}`")
    check_finite(name, psi)
    if is_concrete(psi):
        sq = np.abs(np.asarray(psi, dtype=np.complex128 if np.iscomplexobj(psi) else None))
        norm = float(np.sqrt(np.sum(sq**2)))
        if support is not None:
            norm_on = float(np.sqrt(np.sum(sq[np.asarray(support)] ** 2)))
        else:
            norm_on = norm
        tol = _norm_tol(psi.dtype)
        if abs(norm - 1) > tol or abs(norm_on - 1) > tol:
            where = "" if support is None else f" (on the support: {norm_on:.6g})"
            raise InvalidArgumentError(
                f"`{name}` must be a normalized state, ||{name}||_2 = 1 within {tol:g}, got "
                f"{norm:.6g}{where}; divide by the norm first (the norm itself is estimated "
                "separately, see `estimate_norm`)."
            )


def state_ok(psi, sub) -> Array:
    """Traced: `psi` finite and of unit norm on the whole vector and on the support `sub`."""
    tol = _norm_tol(psi.dtype)
    finite = jnp.all(jnp.isfinite(psi))
    norm = jnp.linalg.norm(psi)
    norm_on = jnp.linalg.norm(sub)
    return finite & (jnp.abs(norm - 1) <= tol) & (jnp.abs(norm_on - 1) <= tol)


def check_shots(shots, *, integer: bool = True) -> None:
    """Raise unless `shots` is one real number, and, if concrete, a finite integer >= 1.

    `integer=False` allows any real value >= 1 (the Gaussian surrogate is smooth in $N$). A
    traced `shots` has its type and shape checked here and its value at run time (see
    `tomography`) or through a result's status.
    """
    if _is_infinite(shots):
        raise InvalidArgumentError(
            f"`shots` must be a finite integer >= 1, got {shots!r}; an infinite number of shots "
            "is the exact read-out (pass method=Exact() instead of sampling)."
        )
    check_number(
        "shots",
        shots,
        low=1,
        integer=integer,
        rule="must be an integer >= 1" if integer else "must be a real number >= 1",
    )


def _is_infinite(x) -> bool:
    """A concrete real float scalar that is +-inf (the "infinite shots" mistake)."""
    if not is_concrete(x) or isinstance(x, bool):
        return False
    arr = np.asarray(x) if isinstance(x, (int, float, np.ndarray, np.generic, jax.Array)) else None
    return arr is not None and arr.ndim == 0 and arr.dtype.kind == "f" and bool(np.isinf(arr))


def shots_ok(shots: Array, integer: bool = True) -> Array:
    """Traced: `shots` is finite and >= 1 (and an integer, unless `integer=False`)."""
    return in_interval(jnp.asarray(shots), 1, integer=integer)
