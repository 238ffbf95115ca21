"""Carleman operator: matrix-free matvec against dense Kronecker assembly, forms, traced order."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import dense_discrete, dense_generator, random_map

import qsgd_jax as qj


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("degree", [1, 2])
@pytest.mark.parametrize("n", [2, 5])
def test_matvec_equals_kronecker_assembly(n, degree, order):
    if n == 5 and order == 4:
        n = 4  # keeps the dense oracle (dim 341) fast; n = 5 is covered at N <= 3
    eta = 0.1
    F0, F1, F2 = random_map(n, seed=10 * n + order, degree=degree)
    poly = qj.polynomial_map(F0, F1, F2, eta=eta)
    f2 = None if F2 is None else F2 / eta
    for which, oracle in (
        ("discrete", dense_discrete(F0, F1, F2, order)),
        ("generator", dense_generator(F0 / eta, (F1 - np.eye(n)) / eta, f2, order)),
    ):
        # to_dense applies the matrix-free map to every basis vector
        dense = qj.carleman(poly, order).to_dense(which=which)
        np.testing.assert_allclose(dense, oracle, rtol=0, atol=1e-12 * np.abs(oracle).max())


def test_euler_step_is_identity_plus_eta_a():
    n, order, eta = 3, 3, 0.05
    F0, F1, F2 = random_map(n, seed=1)
    op = qj.carleman(qj.polynomial_map(F0, F1, F2, eta=eta), order)
    a = op.to_dense(which="generator")
    np.testing.assert_allclose(qj.Euler().matrix(op), np.eye(op.dim) + eta * a, atol=1e-13)
    # PNAS block structure: y0 row is zero, and A_j^k = 0 unless |j - k| <= 1.
    offs = np.cumsum([0] + [n**j for j in range(order + 1)])
    assert np.all(np.asarray(a)[0] == 0)
    for j in range(order + 1):
        for k in range(order + 1):
            if abs(j - k) > 1:
                assert np.all(np.asarray(a)[offs[j] : offs[j + 1], offs[k] : offs[k + 1]] == 0)


def test_bcoo_export_matches_dense():
    F0, F1, F2 = random_map(3, seed=3)
    op = qj.carleman(qj.polynomial_map(F0, F1, F2, eta=0.1), 2)
    np.testing.assert_array_equal(op.to_bcoo().todense(), op.to_dense())


def test_lift_project_roundtrip():
    F0, F1, F2 = random_map(3, seed=4)
    op = qj.carleman(qj.polynomial_map(F0, F1, F2, eta=0.1), 3)
    u = jnp.array([0.3, -0.2, 0.5])
    Y = op.lift(u)
    np.testing.assert_allclose(Y[3], np.einsum("a,b,c->abc", u, u, u))
    np.testing.assert_array_equal(op.project(Y), u)
    np.testing.assert_array_equal(op.unflatten(op.flatten(Y))[2], Y[2])
    assert op.dim == 1 + 3 + 9 + 27


def test_traced_order_masks_blocks_and_matches_static_order():
    F0, F1, F2 = random_map(3, seed=5)
    poly = qj.polynomial_map(F0, F1, F2, eta=0.1)
    u = jnp.array([0.1, -0.2, 0.15])

    def core(order):
        op = qj.carleman(poly, order, max_order=4)
        return qj.evolve(op, op.lift(u), 5).y1

    run = jax.jit(chex.assert_max_traces(core, n=1))
    for order in (1, 2, 3, 4):
        exact = qj.carleman(poly, order)
        want = qj.evolve(exact, exact.lift(u), 5).y1
        np.testing.assert_allclose(run(jnp.asarray(order)), want, atol=1e-13)
    # vmapped over orders: one more compiled program, traced once for all orders
    batched = jax.jit(jax.vmap(chex.assert_max_traces(lambda k: core(k), n=1)))
    out = batched(jnp.arange(1, 5))
    np.testing.assert_allclose(out[2], run(jnp.asarray(3)), atol=1e-13)
    batched(jnp.array([4, 3, 2, 1]))


def test_float32_stays_float32():
    F0, F1, F2 = (x.astype(np.float32) for x in random_map(3, seed=6))
    op = qj.carleman(qj.polynomial_map(F0, F1, F2, eta=np.float32(0.1)), 3)
    Y = qj.Discrete().apply(op, op.lift(jnp.ones(3, jnp.float32)))
    assert all(y.dtype == jnp.float32 for y in Y)


def test_bad_input_is_refused_before_work():
    F0, F1, F2 = random_map(3, seed=7)
    poly = qj.polynomial_map(F0, F1, F2, eta=0.1)
    with pytest.raises(ValueError, match="order"):
        qj.carleman(poly, 0)
    with pytest.raises(ValueError, match="order"):
        qj.carleman(poly, 5, max_order=4)
    with pytest.raises(ValueError, match="which"):
        qj.carleman(poly, 2).to_dense(which="rk4")
    with pytest.raises(qj.MemoryLimitError, match="Carleman state of order 4"):
        qj.carleman(poly, 4, memory_limit=1000)
    with pytest.raises(ValueError, match="max_order"):
        jax.jit(lambda k: qj.carleman(poly, k).order)(2)
    with pytest.raises(ValueError, match="F1"):
        qj.polynomial_map(F0, F1[:2], F2)
    with pytest.raises(ValueError, match="F2"):
        qj.polynomial_map(F0, F1, F2[:, :2])
    bad = F1.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="`F1` has 1 non-finite"):
        qj.polynomial_map(F0, bad)
    with pytest.raises(ValueError, match="eta"):
        qj.polynomial_map(F0, F1, F2, eta=0.0)


def test_traced_order_out_of_range_raises_at_run_time():
    F0, F1, F2 = random_map(3, seed=8)
    poly = qj.polynomial_map(F0, F1, F2, eta=0.1)
    run = jax.jit(lambda k: qj.carleman(poly, k, max_order=3).order)
    assert run(3) == 3
    with pytest.raises(Exception, match="order"):
        run(7).block_until_ready()
