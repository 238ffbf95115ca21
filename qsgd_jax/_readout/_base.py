r"""The read-out interface: how a window's output state is turned into numbers.

A read-out method estimates a unit state $\psi$ (the window's normalized output $y_1 /
\|y_1\|$ on the active set, dimension $s$) from $N$ shots per measurement round, and says what
that costs. Methods are small `equinox.Module`s passed as values (`tomography(key, psi, N,
method=Sampled())`); adding one is one new subclass.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Inexact, PRNGKeyArray


class AbstractReadout(eqx.Module):
    r"""Abstract base class of the read-out methods (`Exact`, `Sampled`, `GaussianSurrogate`).

    Subclasses implement `estimate` and `rounds` and declare `integer_shots`; the checks of
    the state and of the shots (eager and traced) are done once by the callers (`tomography`,
    `download`), so `estimate` only ever sees valid input.

    **Class attributes:**

    - `integer_shots`: whether $N$ must be an integer (a sampler) or may be any real >= 1
      (a surrogate smooth in $N$).
    """

    integer_shots: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def estimate(
        self, key: PRNGKeyArray, psi: Inexact[Array, " s"], shots: ArrayLike
    ) -> Inexact[Array, " s"]:
        r"""Estimate $\hat\psi$ from $N$ shots per round.

        **Arguments:**

        - `key`: PRNG key (same key, same estimate).
        - `psi`: a valid state ($s$,), finite with $\|\psi\|_2 = 1$, real or complex.
        - `shots`: $N$, valid for this method (ignored where `rounds` is 0).

        **Returns:** $\hat\psi$ ($s$,), dtype of `psi`.
        """

    @abc.abstractmethod
    def rounds(self, is_complex: bool) -> int:
        """Measurement rounds of $N$ shots each that one estimate costs.

        **Arguments:**

        - `is_complex`: whether the amplitudes are complex.

        **Returns:** the number of rounds (0 for a read-out that measures nothing).
        """

    @property
    def uses_shots(self) -> bool:
        """Whether the method measures at all (if not, `shots` is ignored and not checked)."""
        return self.rounds(False) > 0

    def samples(self, shots: ArrayLike, is_complex: bool, dtype) -> Float[Array, ""]:
        r"""Tomography samples one estimate costs: `rounds` $\times N$.

        Each sample is one full run of the window, so the samples multiply the quantum cost.

        **Arguments:**

        - `shots`: $N$ per round (may be traced; ignored when `rounds` is 0).
        - `is_complex`: whether the amplitudes are complex.
        - `dtype`: real dtype of the result.

        **Returns:** the number of samples, a scalar of `dtype` (exactly 0 without rounds).
        """
        rounds = self.rounds(is_complex)
        if rounds == 0:  # `shots` may be inf here: 0 * inf would be NaN
            return jnp.zeros((), dtype)
        return rounds * jnp.asarray(shots).astype(dtype)

    def rescale(
        self,
        y: Inexact[Array, " s"],
        psi_hat: Inexact[Array, " s"],
        norm: Float[Array, ""],
        norm_hat: Float[Array, ""],
    ) -> Inexact[Array, " s"]:
        r"""The vector estimate $\hat u = \widehat{\|y\|}\,\hat\psi$ from the state estimate.

        **Arguments:**

        - `y`: the exact vector ($s$,), $\psi = y/\|y\|$.
        - `psi_hat`: the estimate $\hat\psi$ ($s$,) returned by `estimate`.
        - `norm`: $\|y\|$.
        - `norm_hat`: the norm estimate $\widehat{\|y\|}$.

        **Returns:** $\hat u$ ($s$,), dtype of `y`.
        """
        del y, norm
        return norm_hat.astype(psi_hat.dtype) * psi_hat
