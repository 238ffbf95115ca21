r"""Sparse download of a window's output: tomography + norm estimation, scattered into θ̂.

The window ends in a state $\propto y_1$ on the active set (dimension $s$). Download
estimates its direction with a read-out method (`tomography`) and its norm with a norm
estimator (`estimate_norm`), forms $\hat u = \widehat{\|y_1\|}\hat\psi$ and scatters
$\hat\theta = \bar\theta + \hat u$ into the full parameter vector, with every pruned entry
exactly 0 (`docs/math/readout.md`). Each tomography sample is one full run of the window, so the
samples multiply the quantum cost.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Inexact, Int, PRNGKeyArray

from .._errors import InvalidArgumentError, check_finite, is_concrete
from ._base import AbstractReadout
from ._checks import check_shots, check_support
from ._norm_estimation import AbstractNormEstimation, KnownNorm, as_norm_estimation, estimate_norm
from ._sampled import Sampled
from ._shorthand import as_readout
from ._tomography import tomography
from ._upload import UploadCost, upload_cost


class Readout(eqx.Module):
    r"""Result of one download.

    **Fields:**

    - `theta_hat`: $\hat\theta$ ($n$,), $\bar\theta + \hat u$ on the support, exactly 0
      elsewhere.
    - `u_hat`: $\hat u = \widehat{\|y_1\|}\hat\psi$ on the support ($s$,).
    - `error`: achieved read-out error $\|\hat u - y_1\|_2$ against the exact vector.
    - `relative_error`: `error` $/\,\|y_1\|_2$.
    - `error_linf`: $\|\hat u - y_1\|_\infty$.
    - `state_error`: tomography alone, $\|\hat\psi - \psi\|_2$.
    - `norm_hat`: $\widehat{\|y_1\|}$.
    - `shots`: shots $N$ per measurement round (inf for the exact read-out).
    - `samples`: tomography samples, `rounds` $\times N$ (each one run of the window; 0 for
      the exact read-out).
    - `window_runs`: cost added to the quantum total, in runs of the window:
      `samples` + `norm_runs`; the quantum total is (QLSA queries) × (amplification rounds) ×
      `window_runs`.
    - `rounds`, `norm_runs`: measurement rounds (2 real, 3 complex, 0 exact); runs spent on
      the norm.
    - `upload`: cost of re-uploading $\hat\theta$ (`UploadCost`).
    """

    theta_hat: Inexact[Array, " n"]
    u_hat: Inexact[Array, " s"]
    error: Float[Array, ""]
    relative_error: Float[Array, ""]
    error_linf: Float[Array, ""]
    state_error: Float[Array, ""]
    norm_hat: Float[Array, ""]
    shots: Float[Array, ""]
    samples: Float[Array, ""]
    window_runs: Float[Array, ""]
    rounds: int = eqx.field(static=True)
    norm_runs: int = eqx.field(static=True)
    upload: UploadCost


def download(
    key: PRNGKeyArray,
    y1: Inexact[Array, " s"],
    shots: ArrayLike,
    *,
    support: Int[Array, " m"],
    theta_bar: Inexact[Array, " n"],
    method: AbstractReadout | str = Sampled(),
    norm: AbstractNormEstimation | str = KnownNorm(),
    norm_scale: ArrayLike | None = None,
    throw: bool = True,
) -> Readout:
    r"""Download a window's output $y_1$ and form $\hat\theta = \bar\theta + \hat u$.

    $\psi = y_1/\|y_1\|$ is estimated by `tomography` with $N$ = `shots` per round and the
    read-out `method`; the norm by `norm` (known, or amplitude estimation, which needs
    `norm_scale`); $\hat u = \widehat{\|y_1\|}\hat\psi$ is scattered onto `support`. With
    `Exact()` and a known norm, $\hat u = y_1$ bit for bit and nothing is sampled.

    **Arguments:**

    - `key`: PRNG key (same key, same read-out).
    - `y1`: the exact window output on the active set ($s$,), not normalized, non-zero.
    - `shots`: shots $N$ per round, integer >= 1 (traced; any real >= 1 for
      `GaussianSurrogate`; ignored and unchecked for `Exact`).
    - `support`: indices of the active set in the full vector ($s$,), $s \le n$, distinct.
    - `theta_bar`: the upload point $\bar\theta$ ($n$,); its pruned entries are ignored.
    - `method`: the read-out method, `Sampled()` (default, measurement statistics),
      `GaussianSurrogate()` (differentiable) or `Exact()`, or the shorthand `"sample"`,
      `"gaussian"`, `"exact"`.
    - `norm`: the norm estimator, `KnownNorm()` (default) or
      `AmplitudeEstimation(num_queries=M)`, or the shorthand `"known"` /
      `"amplitude_estimation"`.
    - `norm_scale`: for amplitude estimation, $c \ge \|y_1\|$ with landing probability
      $(\|y_1\|/c)^2$.
    - `throw`: with traced input, raise at run time (`equinox.error_if`) when `y1` is
      non-finite or zero or `shots` is not a finite integer >= 1 (default); with `False`
      the estimate is NaN instead, for callers that report a status of their own.

    **Returns:** a `Readout` ($\hat\theta$ of shape ($n$,), $\hat u$ of shape ($s$,), the
    errors against $y_1$ and the costs).
    """
    method = as_readout(method)
    norm = as_norm_estimation(norm, "norm")
    y1 = jnp.asarray(y1)
    theta_bar = jnp.asarray(theta_bar)
    support = jnp.asarray(support)
    if y1.ndim != 1 or theta_bar.ndim != 1:
        raise InvalidArgumentError(
            f"`y1` and `theta_bar` must be 1-D, got shapes {y1.shape} and {theta_bar.shape}."
        )
    if not jnp.issubdtype(y1.dtype, jnp.inexact):
        raise InvalidArgumentError(f"`y1` must be a float or complex array, got dtype {y1.dtype}.")
    if jnp.iscomplexobj(y1) and not jnp.iscomplexobj(theta_bar):
        raise InvalidArgumentError(
            "`y1` is complex but `theta_bar` is real; pass a complex `theta_bar`."
        )
    check_support(support, theta_bar.shape[0], "`theta_bar`")
    if support.shape[0] != y1.shape[0]:
        raise InvalidArgumentError(
            f"`y1` has {y1.shape[0]} entries but `support` has {support.shape[0]}; y1 must be "
            "given on the support (one entry per active index)."
        )
    check_finite("y1", y1)
    check_finite("theta_bar", theta_bar)
    if method.uses_shots:
        check_shots(shots, integer=method.integer_shots)
    norm_y = jnp.linalg.norm(y1)
    if is_concrete(norm_y) and not float(norm_y) > 0:
        raise InvalidArgumentError(
            "`y1` is the zero vector; a state (and its direction) needs ||y1|| > 0."
        )
    if throw and not is_concrete(y1):
        norm_y = eqx.error_if(
            norm_y,
            ~(jnp.isfinite(norm_y) & (norm_y > 0)),
            "`y1` must be finite and non-zero (checked at run time: the value is traced).",
        )
    # The norm first: it checks `norm_scale` before the tomography's work.
    key_norm = jax.random.fold_in(key, 0x5EAD)  # independent of the tomography's draws
    norm_hat = estimate_norm(key_norm, norm_y, method=norm, scale=norm_scale)
    psi = y1 / norm_y.astype(y1.dtype)
    psi_hat = tomography(key, psi, shots, method=method, throw=throw)
    u_hat = method.rescale(y1, psi_hat, norm_y, norm_hat)
    out_dtype = theta_bar.dtype
    theta_hat = (
        jnp.zeros(theta_bar.shape, out_dtype)
        .at[support]
        .set(theta_bar[support].astype(out_dtype) + u_hat.astype(out_dtype))
    )
    err = jnp.linalg.norm(u_hat - y1)
    is_complex = bool(jnp.iscomplexobj(y1))
    rdtype = norm_y.dtype
    samples = method.samples(shots, is_complex, rdtype)
    n_shots = (
        jnp.asarray(shots).astype(rdtype) if method.uses_shots else jnp.asarray(jnp.inf, rdtype)
    )
    return Readout(
        theta_hat=theta_hat,
        u_hat=u_hat,
        error=err,
        relative_error=err / norm_y,
        error_linf=jnp.max(jnp.abs(u_hat - y1)),
        state_error=jnp.linalg.norm(psi_hat - psi),
        norm_hat=norm_hat,
        shots=n_shots,
        samples=samples,
        window_runs=samples + norm.runs,
        rounds=method.rounds(is_complex),
        norm_runs=norm.runs,
        upload=upload_cost(int(y1.shape[0]), int(theta_bar.shape[0])),
    )
