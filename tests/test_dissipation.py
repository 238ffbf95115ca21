"""Dissipation diagnostics against numpy eigendecompositions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_map

import qsgd_jax as qj


def test_dense_diagnostics_match_numpy():
    loss = qj.problems.random_cubic_loss(seed=1)
    eta = 0.3
    poly = qj.gd_map(loss, jnp.zeros(4), None, eta=eta)
    u_in = jnp.array([0.1, 0.2, -0.1, 0.05])
    d = qj.dissipation(poly, u_in)
    lam = np.linalg.eigvalsh(loss.H)
    np.testing.assert_allclose(np.sort(-np.asarray(d.eigenvalues)), lam, atol=1e-12)
    np.testing.assert_allclose(d.spectral_radius, np.max(np.abs(1 - eta * lam)), atol=1e-12)
    np.testing.assert_allclose(d.re_lambda1, -lam.min(), atol=1e-12)
    f2 = -0.5 * loss.T.reshape(4, 16)
    r = (
        np.linalg.norm(u_in) * np.linalg.norm(f2, 2) + np.linalg.norm(loss.g) / np.linalg.norm(u_in)
    ) / lam.min()
    np.testing.assert_allclose(d.r_number, r, rtol=1e-10)
    # discrete dissipation <=> 0 < eta * lambda < 2
    assert bool(d.discrete_dissipative) == bool(np.all((eta * lam > 0) & (eta * lam < 2)))
    big = qj.dissipation(qj.gd_map(loss, jnp.zeros(4), None, eta=2.1 / lam.max()), u_in)
    assert not bool(big.discrete_dissipative) and bool(big.continuous_dissipative)


def test_lanczos_extremes_match_dense_for_matrix_free_field():
    rng = np.random.default_rng(0)
    n = 40
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.linspace(-0.2, 3.0, n)
    h = q @ np.diag(lam) @ q.T

    def loss(theta, batch):
        return 0.5 * theta @ jnp.asarray(h) @ theta

    poly = qj.gd_map(loss, jnp.zeros(n), None, eta=0.1, degree=1, matrix_free=True)
    d = qj.dissipation(poly, method="lanczos", lanczos_depth=n, key=jax.random.key(1))
    np.testing.assert_allclose(-np.max(d.eigenvalues), lam.min(), atol=1e-8)
    np.testing.assert_allclose(-np.min(d.eigenvalues), lam.max(), atol=1e-8)
    np.testing.assert_allclose(d.spectral_radius, 1 + 0.1 * 0.2, atol=1e-8)
    assert d.method == "lanczos" and not bool(d.continuous_dissipative)


def test_nonsymmetric_map_uses_general_eigenvalues():
    F0, F1, _ = random_map(4, seed=3, degree=1)
    poly = qj.polynomial_map(F0, F1, eta=0.5)
    d = qj.dissipation(poly, jnp.ones(4))
    mu = np.linalg.eigvals((F1 - np.eye(4)) / 0.5)
    np.testing.assert_allclose(d.spectral_radius, np.max(np.abs(np.linalg.eigvals(F1))), atol=1e-12)
    np.testing.assert_allclose(d.re_lambda1, np.max(mu.real), atol=1e-12)


def test_bad_input():
    loss = qj.problems.random_cubic_loss()
    poly = qj.gd_map(loss, jnp.zeros(4), None, eta=0.1)
    with pytest.raises(ValueError, match="method"):
        qj.dissipation(poly, method="qr")
    with pytest.raises(ValueError, match="lanczos_depth"):
        qj.dissipation(poly, method="lanczos", lanczos_depth=10)
    with pytest.raises(ValueError, match="u_in"):
        qj.dissipation(poly, jnp.ones(3))
