r"""Vector-state tomography simulated from its measurement statistics (`docs/math/readout.md`).

The window's output is a normalized state $|\psi\rangle \propto y_1$ on the active set
(dimension $s$). Its amplitudes are estimated the way a quantum computer would
(Kerenidis–Prakash vector-state tomography, arXiv:1812.03584, Alg. 4.1):

1. **basis round**: $N$ copies measured in the computational basis give multinomial counts
   $n_i \sim \mathrm{Mult}(N, |\psi_i|^2)$ and magnitudes $r_i = \sqrt{n_i/N}$;
2. **interference round(s)**: $N$ copies of $(|0\rangle|\psi\rangle + e^{i\alpha}|1\rangle
   |r\rangle)/\sqrt2$, Hadamard on the control, measured: outcome $(b, i)$ has probability
   $\tfrac14|\psi_i + (-1)^b e^{i\alpha} r_i|^2$, so $P(0,i) - P(1,i) = r_i
   \mathrm{Re}(e^{-i\alpha}\psi_i)$. Real amplitudes need one round ($\alpha = 0$, sign
   $\hat\sigma_i = \mathrm{sign}(n_{0i} - n_{1i})$), complex ones two ($\alpha = 0, \pi/2$,
   phase $\hat\varphi_i = \arg[(n_{0i} - n_{1i}) + i(n'_{0i} - n'_{1i})]$).

The estimate is $\hat\psi_i = r_i \hat\sigma_i$ (or $r_i e^{i\hat\varphi_i}$). Counts are
drawn exactly (`multinomial_counts`), in $O(s)$ draws whatever the number of shots.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray

from ._base import AbstractReadout
from ._bounds import interference_rounds
from ._moments import real_dtype
from ._multinomial import multinomial


class Sampled(AbstractReadout):
    r"""Tomography from exact measurement statistics (module docstring).

    $\hat\psi_i = \hat\sigma_i\sqrt{n_i/N}$ (real) or $\sqrt{n_i/N}\,e^{i\hat\varphi_i}$
    (complex), using `interference_rounds` $\times N$ copies; $N$ must be an integer >= 1
    (traced: sweeps over shots do not recompile). Runs under `jit` and `vmap`; not
    differentiable (use `GaussianSurrogate` under `grad`).

    **Arguments:** none.
    """

    integer_shots: ClassVar[bool] = True

    def estimate(
        self, key: PRNGKeyArray, psi: Inexact[Array, " s"], shots: ArrayLike
    ) -> Inexact[Array, " s"]:
        rdtype = real_dtype(psi)
        n = jnp.asarray(shots).astype(rdtype)
        k_basis, k_re, k_im = jax.random.split(key, 3)
        counts = multinomial(k_basis, jnp.abs(psi) ** 2, n)
        r = jnp.sqrt(counts / n)

        def interference(k, phase):
            # P(b, i) = |psi_i + (-1)^b e^{i alpha} r_i|^2 / 4, outcomes ordered (i, b).
            ref = r.astype(psi.dtype) if phase is None else phase * r.astype(psi.dtype)
            probs = jnp.stack([jnp.abs(psi + ref) ** 2, jnp.abs(psi - ref) ** 2], axis=1) / 4
            c = multinomial(k, probs.reshape(-1).astype(rdtype), n).reshape(-1, 2)
            return c[:, 0] - c[:, 1]

        if jnp.iscomplexobj(psi):
            d_re = interference(k_re, None)
            d_im = interference(k_im, jnp.asarray(1j, psi.dtype))
            phase = jnp.arctan2(d_im, d_re)  # arctan2(0, 0) = 0: no counts, phase 0
            return r.astype(psi.dtype) * jnp.exp(1j * phase.astype(psi.dtype))
        d = interference(k_re, None)
        return jnp.where(d >= 0, r, -r).astype(psi.dtype)

    def rounds(self, is_complex: bool) -> int:
        return interference_rounds(is_complex)
