r"""The exact read-out: infinitely many shots, $\hat\psi = \psi$, no samples."""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Inexact, PRNGKeyArray

from ._base import AbstractReadout


class Exact(AbstractReadout):
    r"""The exact read-out ("infinite shots"): $\hat\psi = \psi$ and no measurement.

    It costs no samples and ignores `shots` (they are not checked). With a known norm the
    downloaded vector is $y_1$ itself, bit for bit: the reference against which the other
    methods' read-out error is measured. Works under `jit`, `vmap` and `grad` (the identity).

    **Arguments:** none.
    """

    integer_shots: ClassVar[bool] = False

    def estimate(
        self, key: PRNGKeyArray, psi: Inexact[Array, " s"], shots: ArrayLike
    ) -> Inexact[Array, " s"]:
        del key, shots
        return psi

    def rounds(self, is_complex: bool) -> int:
        return 0

    def rescale(
        self,
        y: Inexact[Array, " s"],
        psi_hat: Inexact[Array, " s"],
        norm: Float[Array, ""],
        norm_hat: Float[Array, ""],
    ) -> Inexact[Array, " s"]:
        r"""$\hat u = y\,\widehat{\|y\|}/\|y\|$: exactly $y$ when the norm is known.

        Scaling $y$ rather than $\psi = y/\|y\|$ avoids the rounding of the round trip
        $\|y\|\,(y/\|y\|)$. **Arguments** / **Returns:** as `AbstractReadout.rescale`.
        """
        del psi_hat
        scaled = y * (norm_hat / norm).astype(y.dtype)
        return jnp.where(norm_hat == norm, y, scaled)
