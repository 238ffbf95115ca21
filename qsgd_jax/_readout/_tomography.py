r"""`tomography`: estimate a normalized state with a read-out method, input checked once."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Inexact, Int, PRNGKeyArray

from .._errors import InvalidArgumentError, is_concrete
from ._base import AbstractReadout
from ._checks import check_shots, check_state, shots_ok, state_ok
from ._sampled import Sampled
from ._shorthand import as_readout


def tomography(
    key: PRNGKeyArray,
    psi: Inexact[Array, " n"],
    shots: ArrayLike,
    *,
    support: Int[Array, " s"] | None = None,
    method: AbstractReadout | str = Sampled(),
    throw: bool = True,
) -> Inexact[Array, " n"]:
    r"""Estimate a normalized state's amplitudes from $N$ shots per measurement round.

    `method=Sampled()` (default) draws the actual measurement statistics:
    $\hat\psi_i = \hat\sigma_i\sqrt{n_i/N}$, using `interference_rounds` $\times N$ copies.
    `GaussianSurrogate()` is the differentiable surrogate $\hat\psi = m + \sigma \odot z$ with
    the sampler's per-entry mean and variance (`tomography_mean`, `tomography_std`); use it
    under `grad`. `Exact()` returns $\psi$ itself and ignores `shots`.

    Bad input raises before any sampling: concretely when the values are known, and, when
    `psi` or `shots` are traced (`jit`, `vmap`, `sweep`), at run time through
    `equinox.error_if` (non-finite or non-normalized state, shots not a finite integer
    >= 1). With `throw=False` the traced checks do not raise and the estimate is NaN
    instead (for callers that report a status of their own).

    **Arguments:**

    - `key`: PRNG key (same key, same estimate).
    - `psi`: the state ($n$,), real or complex, $\|\psi\|_2 = 1$ (on `support` if given).
    - `shots`: shots $N$ per round, an integer >= 1 (for `GaussianSurrogate` any real >= 1:
      the surrogate is differentiable in $N$; unused by `Exact`); traced, so it may be
      vmapped.
    - `support`: optional indices of the known support ($s$,), $s \le n$; the state is
      measured there and the estimate is exactly 0 elsewhere.
    - `method`: the read-out method, an `AbstractReadout` (`Sampled()`,
      `GaussianSurrogate()`, `Exact()`) or its shorthand `"sample"`, `"gaussian"`, `"exact"`.
    - `throw`: raise at run time on invalid traced input (default) or return NaN.

    **Returns:** the estimate $\hat\psi$ ($n$,), same dtype as `psi`.
    """
    method = as_readout(method)
    psi = jnp.asarray(psi)
    if not jnp.issubdtype(psi.dtype, jnp.inexact):
        raise InvalidArgumentError(
            f"`psi` must be a float or complex array, got dtype {psi.dtype}."
        )
    check_state("psi", psi, support)
    if method.uses_shots:
        check_shots(shots, integer=method.integer_shots)
        shots = jnp.asarray(shots)
    sub = psi if support is None else psi[support]
    traced = not is_concrete((psi, shots))
    ok = jnp.ones((), bool)
    if traced:
        ok = state_ok(psi, sub)
        if throw:
            sub = eqx.error_if(
                sub,
                ~ok,
                "`psi` must be a finite, normalized state (||psi||_2 = 1, on the support if "
                "given); checked at run time because the value is traced.",
            )
        if method.uses_shots:
            ok_shots = shots_ok(shots, integer=method.integer_shots)
            if throw:
                shots = eqx.error_if(
                    shots,
                    ~ok_shots,
                    "`shots` must be a finite integer >= 1 (a finite real >= 1 for the "
                    "Gaussian surrogate); checked at run time because the value is traced.",
                )
            ok = ok & ok_shots
            shots = jnp.where(ok, shots, jnp.ones_like(shots))
        # Invalid values would hang the binomial sampler (inf shots) or feed it NaN: sample a
        # harmless stand-in and return NaN (reached only with throw=False or EQX_ON_ERROR=nan).
        sub = jnp.where(ok, sub, jnp.zeros_like(sub).at[0].set(1))
    est = method.estimate(key, sub, shots)
    if traced:
        est = jnp.where(ok, est, jnp.full_like(est, jnp.nan))
    if support is None:
        return est
    return jnp.zeros_like(psi).at[support].set(est)
