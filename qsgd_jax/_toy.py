"""An explicit cubic loss whose Taylor model is known in closed form (demos and tests)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float


class CubicLoss(eqx.Module):
    """The toy cubic loss, whose degree-2 Taylor model at 0 is exact.

    $L(\\theta) = g^\\top\\theta + \\tfrac12\\theta^\\top H\\theta
    + \\tfrac16\\mathcal{T}(\\theta, \\theta, \\theta)$.

    Its gradient, Hessian and third derivative at 0 are exactly $g, H, \\mathcal{T}$, so the
    degree-2 GD map is exact: $F_0 = -\\eta g$, $F_1 = I - \\eta H$, $F_2 = -\\tfrac{\\eta}{2}
    \\mathcal{T}_{(1)}$. Call it as `loss(params, batch)` (`batch` is ignored). Build a random
    one with `random_cubic_loss`.

    **Fields:**

    - `g`: the gradient at 0, shape `(n,)`.
    - `H`: the symmetric Hessian, shape `(n, n)`.
    - `T`: the symmetric third-derivative tensor $\\mathcal{T}$, shape `(n, n, n)`.
    - `u0`: a suggested start point, shape `(n,)` (not part of the loss).
    """

    g: Float[Array, " n"]
    H: Float[Array, "n n"]
    T: Float[Array, "n n n"]
    u0: Float[Array, " n"]

    @property
    def n(self) -> int:
        """The dimension $n$ of $\\theta$."""
        return self.g.shape[0]

    def __call__(self, theta: Float[Array, " n"], batch: Any = None) -> Float[Array, ""]:
        """The loss $L(\\theta)$, computed in `theta`'s dtype.

        **Arguments:**

        - `theta`: the parameters, shape `(n,)`.
        - `batch`: ignored (the loss has no data); accepted so that the loss has the library's
          `loss_fn(params, batch)` signature.

        **Returns:** the scalar $L(\\theta)$.
        """
        g, h, t = (a.astype(theta.dtype) for a in (self.g, self.H, self.T))
        cubic = jnp.einsum("abc,a,b,c->", t, theta, theta, theta)
        return jnp.dot(g, theta) + 0.5 * theta @ h @ theta + cubic / 6


def random_cubic_loss(
    seed: int = 2,
    *,
    eigs: ArrayLike | Sequence[float] | None = None,
    n: int = 4,
    g_scale: float = 0.01,
    t_scale: float = 0.3,
    u_scale: float = 0.4,
) -> CubicLoss:
    """A random toy cubic loss (`CubicLoss`) with prescribed Hessian eigenvalues.

    $H = Q\\,\\mathrm{diag}(\\lambda)\\,Q^\\top$ with a random orthogonal $Q$; $g$, $u_0$ and the
    symmetrized $\\mathcal{T}$ are Gaussian, drawn with NumPy's generator in float64 (and stored
    so where `jax_enable_x64` is on).

    **Arguments:**

    - `seed`: numpy seed.
    - `eigs`: Hessian eigenvalues (default: `n` values evenly spaced in [0.55, 3.3], a
      dissipative spectrum for $\\eta < 2/3.3$).
    - `g_scale`, `t_scale`: scales of the gradient and of the symmetric third-order tensor.
    - `u_scale`: scale of the suggested start point `u0` (stored on the result).
    - `n`: the dimension, when `eigs` is not given.

    **Returns:** a `CubicLoss` of dimension `len(eigs)` (or `n`).
    """
    eigs = np.linspace(0.55, 3.3, n) if eigs is None else np.asarray(eigs, dtype=float)
    n = eigs.shape[0]
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    h = q @ np.diag(eigs) @ q.T
    g = g_scale * rng.standard_normal(n)
    t = rng.standard_normal((n, n, n))
    t = t_scale * sum(np.transpose(t, p) for p in itertools.permutations(range(3))) / 6
    u0 = u_scale * rng.standard_normal(n)
    return CubicLoss(*(jnp.asarray(a) for a in (g, h, t, u0)))
