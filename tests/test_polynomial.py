"""Polynomial GD maps: explicit arrays, loss-derived Taylor models, matrix-free actions, grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsgd_jax as qj


def test_loss_derived_map_matches_hand_derived():
    loss = qj.problems.random_cubic_loss()
    eta = 0.1
    poly = qj.gd_map(loss, jnp.zeros(loss.n), None, eta=eta)
    np.testing.assert_allclose(poly.F0, -eta * loss.g, atol=1e-14)
    np.testing.assert_allclose(poly.F1, np.eye(loss.n) - eta * loss.H, atol=1e-14)
    np.testing.assert_allclose(poly.F2, -eta / 2 * loss.T, atol=1e-14)
    # For a cubic loss the degree-2 Taylor model is exact: one map step is one GD step.
    u = jnp.array([0.2, -0.1, 0.3, 0.05])
    np.testing.assert_allclose(poly(u), u - eta * jax.grad(loss)(u), atol=1e-14)


def test_taylor_model_around_nonzero_point_and_mask():
    loss = qj.problems.random_cubic_loss(seed=3)
    theta_bar = jnp.array([0.3, 0.0, -0.2, 0.4])
    mask = jnp.array([True, False, True, True])
    poly = qj.gd_map(loss, theta_bar, None, eta=0.05, mask=mask)
    assert poly.n == 3
    act = np.array([0, 2, 3])
    base = np.where(np.asarray(mask), theta_bar, 0.0)
    g = np.asarray(jax.grad(loss)(jnp.asarray(base)))[act]
    hess = np.asarray(jax.hessian(loss)(jnp.asarray(base)))[np.ix_(act, act)]
    np.testing.assert_allclose(poly.F0, -0.05 * g, atol=1e-13)
    np.testing.assert_allclose(poly.F1, np.eye(3) - 0.05 * hess, atol=1e-13)
    t_full = loss.T  # third derivative of a cubic is constant
    np.testing.assert_allclose(poly.F2, -0.025 * t_full[np.ix_(act, act, act)], atol=1e-13)


def test_pytree_params_ravel_consistently():
    def loss(p, batch):
        x, y = batch
        pred = jnp.tanh(x @ p["w"]) @ p["v"]
        return 0.5 * jnp.mean((pred - y) ** 2)

    key = jax.random.key(1)
    k1, k2, k3 = jax.random.split(key, 3)
    params = {"w": 0.5 * jax.random.normal(k1, (3, 2)), "v": jax.random.normal(k2, (2,))}
    batch = (jax.random.normal(k3, (8, 3)), jnp.ones(8))
    dense = qj.gd_map(loss, params, batch, eta=0.1)
    free = qj.gd_map(loss, params, batch, eta=0.1, matrix_free=True)
    u = 0.1 * jnp.arange(8.0)
    np.testing.assert_allclose(free(u), dense(u), atol=1e-12)
    np.testing.assert_allclose(free.F1, dense.F1, atol=1e-12)
    np.testing.assert_allclose(free.F2, dense.F2, atol=1e-12)
    x = jnp.outer(u, u[::-1])
    np.testing.assert_allclose(free.field.quadratic(x), dense.field.quadratic(x), atol=1e-12)


def test_matrix_free_carleman_equals_dense_carleman():
    loss = qj.problems.random_cubic_loss(seed=4)
    theta = jnp.array([0.1, 0.2, -0.1, 0.0])
    dense = qj.carleman(qj.gd_map(loss, theta, None, eta=0.1), 2)
    free = qj.carleman(qj.gd_map(loss, theta, None, eta=0.1, matrix_free=True), 2)
    Y = dense.lift(jnp.array([0.3, -0.2, 0.1, 0.2]))
    for a, b in zip(dense.discrete_map(Y), free.discrete_map(Y), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_grad_through_evolution_wrt_eta_and_theta_bar_matches_finite_differences():
    loss = qj.problems.random_cubic_loss(seed=5)
    u0 = jnp.array([0.2, -0.1, 0.1, 0.05])

    def final_loss(eta, theta_bar):
        op = qj.carleman(qj.gd_map(loss, theta_bar, None, eta=eta), 3)
        y1 = qj.evolve(op, op.lift(u0), 10).y1[-1]
        return loss(theta_bar + y1)

    eta, theta_bar = 0.1, jnp.array([0.05, 0.0, -0.05, 0.1])
    g_eta, g_theta = jax.grad(final_loss, argnums=(0, 1))(eta, theta_bar)
    h = 1e-6
    fd_eta = (final_loss(eta + h, theta_bar) - final_loss(eta - h, theta_bar)) / (2 * h)
    np.testing.assert_allclose(g_eta, fd_eta, rtol=1e-6)
    for i in range(4):
        e = jnp.zeros(4).at[i].set(h)
        fd = (final_loss(eta, theta_bar + e) - final_loss(eta, theta_bar - e)) / (2 * h)
        np.testing.assert_allclose(g_theta[i], fd, rtol=1e-6, atol=1e-10)


def test_vmap_over_eta_and_initial_points():
    loss = qj.problems.random_cubic_loss()
    u0s = 0.1 * jax.random.normal(jax.random.key(2), (5, 4))

    def run(eta, u0):
        op = qj.carleman(qj.gd_map(loss, jnp.zeros(4), None, eta=eta), 2)
        return qj.evolve(op, op.lift(u0), 4).y1[-1]

    etas = jnp.array([0.05, 0.1, 0.2])
    got = jax.jit(jax.vmap(jax.vmap(run, (None, 0)), (0, None)))(etas, u0s)
    assert got.shape == (3, 5, 4)
    np.testing.assert_allclose(got[1, 3], run(0.1, u0s[3]), atol=1e-13)


def test_bad_input():
    loss = qj.problems.random_cubic_loss()
    with pytest.raises(ValueError, match="no active entries"):
        qj.gd_map(loss, jnp.zeros(4), None, eta=0.1, mask=jnp.zeros(4, bool))
    with pytest.raises(ValueError, match="`mask` has 3 entries"):
        qj.gd_map(loss, jnp.zeros(4), None, eta=0.1, mask=jnp.ones(3, bool))
    with pytest.raises(ValueError, match="`params` has 1 non-finite"):
        qj.gd_map(loss, jnp.array([0.0, jnp.nan, 0, 0]), None, eta=0.1)
    with pytest.raises(ValueError, match="degree"):
        qj.gd_map(loss, jnp.zeros(4), None, eta=0.1, degree=3)
    with pytest.raises(ValueError, match="eta"):
        qj.gd_map(loss, jnp.zeros(4), None, eta=-0.1)
    with pytest.raises(qj.MemoryLimitError, match="s = 4"):
        qj.gd_map(loss, jnp.zeros(4), None, eta=0.1, memory_limit=100)
