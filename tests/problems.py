"""Explicit polynomial losses whose Taylor models are known in closed form."""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np


def sym3(t):
    """Symmetrize a 3-tensor over all index permutations."""
    return sum(np.transpose(t, p) for p in itertools.permutations(range(3))) / 6


class CubicLoss:
    """L(theta) = g.theta + 1/2 theta H theta + 1/6 T(theta, theta, theta), n = 4.

    H has eigenvalues `eigs`; its Taylor model at 0 is exact (g, H, T), so the degree-2 GD map
    is F0 = -eta g, F1 = I - eta H, F2 = -(eta/2) T.
    """

    def __init__(
        self, seed=2, g_scale=0.01, t_scale=0.3, u_scale=0.4, eigs=(0.55, 1.4667, 2.3833, 3.3)
    ):
        rng = np.random.default_rng(seed)
        n = len(eigs)
        q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        self.n = n
        self.H = q @ np.diag(eigs) @ q.T
        self.g = g_scale * rng.standard_normal(n)
        self.T = t_scale * sym3(rng.standard_normal((n, n, n)))
        self.u0 = jnp.asarray(u_scale * rng.standard_normal(n))  # a start point of norm ~u_scale

    def __call__(self, theta, batch=None):
        g, h, t = (jnp.asarray(a, theta.dtype) for a in (self.g, self.H, self.T))
        return (
            jnp.dot(g, theta)
            + 0.5 * theta @ h @ theta
            + jnp.einsum("abc,a,b,c->", t, theta, theta, theta) / 6
        )
