r"""The differentiable Gaussian surrogate of the sampled read-out."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray

from ._base import AbstractReadout
from ._bounds import interference_rounds
from ._moments import real_moments, safe_sqrt, tomography_std


class GaussianSurrogate(AbstractReadout):
    r"""Differentiable surrogate of `Sampled`: $\hat\psi = m + \sigma \odot z$, $z \sim
    \mathcal N(0, I)$.

    Real amplitudes: $m$ and $\sigma^2$ are the sampler's exact per-entry mean and variance
    (`tomography_mean`, `tomography_std`; sign errors of unresolved entries included).
    Complex amplitudes: $\psi$ plus radial and tangential noise of the delta method's
    variances. It costs the sampler's samples, $N$ may be any real >= 1 (the estimate is
    smooth in $\psi$ and $N$), and it runs under `jit`, `vmap` and `grad`.

    **Arguments:** none.
    """

    integer_shots: ClassVar[bool] = False

    def estimate(
        self, key: PRNGKeyArray, psi: Inexact[Array, " s"], shots: ArrayLike
    ) -> Inexact[Array, " s"]:
        if jnp.iscomplexobj(psi):
            std_r, std_t = tomography_std(psi, shots)
            z = jax.random.normal(key, (2,) + psi.shape, std_r.dtype)
            mag = jnp.abs(psi)
            safe = jnp.where(mag > 0, mag, 1)
            unit = jnp.where(mag > 0, psi / safe.astype(psi.dtype), jnp.ones_like(psi))
            noise = (std_r * z[0]).astype(psi.dtype) + 1j * (std_t * z[1]).astype(psi.dtype)
            return psi + unit * noise
        mean, var = real_moments(psi, shots)
        return mean + safe_sqrt(var) * jax.random.normal(key, psi.shape, psi.dtype)

    def rounds(self, is_complex: bool) -> int:
        return interference_rounds(is_complex)
