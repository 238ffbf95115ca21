"""Truncated-Taylor / LCU evolution against scipy's expm and hand-computed LCU figures."""

import math

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
import scipy.linalg as sl

from qsgd_jax.circuit import (
    block_encoding_normalization,
    lcu_coefficient_sum,
    required_order,
    taylor_apply,
    taylor_error_bound,
    taylor_evolve,
    taylor_truncation_error,
)


def _problem(d=5, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(d, d)) * scale / math.sqrt(d), rng.normal(size=d)


def test_converges_to_expm_under_a_priori_bound():
    A, y = _problem()
    h = 0.7
    norm = np.linalg.norm(A, 2)
    E = sl.expm(h * A)
    sweep = jax.jit(
        jax.vmap(lambda K: taylor_apply(jnp.asarray(A), jnp.asarray(y), h, K, max_terms=13))
    )
    zs = np.asarray(sweep(jnp.arange(14)))
    errs = []
    for K in range(14):
        TK = sum(np.linalg.matrix_power(h * A, k) / math.factorial(k) for k in range(K + 1))
        np.testing.assert_allclose(zs[K], TK @ y, atol=1e-13)
        err = np.linalg.norm(zs[K] - E @ y) / np.linalg.norm(y)
        op_err = np.linalg.norm(TK - E, 2)
        bound = (h * norm) ** (K + 1) / math.factorial(K + 1) * math.exp(h * norm)
        np.testing.assert_allclose(float(taylor_error_bound(h * norm, K)), bound, rtol=1e-12)
        assert err <= op_err * (1 + 1e-9) + 1e-14
        assert op_err <= bound * (1 + 1e-9) + 1e-14
        errs.append(err)
    assert errs[-1] < 1e-12
    assert all(b < a for a, b in zip(errs[:8], errs[1:9], strict=True))
    np.testing.assert_allclose(
        float(taylor_truncation_error(jnp.asarray(A), h, 6)),
        np.linalg.norm(
            sum(np.linalg.matrix_power(h * A, k) / math.factorial(k) for k in range(7)) - E, 2
        ),
        rtol=1e-8,
    )


def test_evolve_matches_expm_stepping_and_matrix_free_forms():
    A, y = _problem(6, 1)
    tau, steps, r, K = 0.5, 5, 3, 12
    ref = [y]
    E = sl.expm(tau * A)
    for _ in range(steps):
        ref.append(E @ ref[-1])
    res = taylor_evolve(
        jnp.asarray(A),
        jnp.asarray(y),
        tau=tau,
        num_steps=steps,
        order=K,
        segments=r,
        exact_error=False,
    )
    np.testing.assert_allclose(np.asarray(res.ys), np.asarray(ref), atol=1e-11)
    Aj = jnp.asarray(A)
    alpha = float(np.linalg.norm(A, 2))
    fop = lx.FunctionLinearOperator(lambda v: Aj @ v, jax.ShapeDtypeStruct((6,), jnp.float64))
    for op in (fop, lambda v: Aj @ v):
        res2 = taylor_evolve(
            op, jnp.asarray(y), tau=tau, num_steps=steps, order=K, segments=r, alpha=alpha
        )
        np.testing.assert_allclose(np.asarray(res2.ys), np.asarray(res.ys), atol=1e-13)
        assert np.isnan(float(res2.report.truncation_error))


def test_lcu_report_hand_computed():
    A, y = _problem(4, 2)
    tau, r, K = 0.6, 2, 5
    alpha = 1.7 * np.linalg.norm(A, 2)
    res = taylor_evolve(
        jnp.asarray(A), jnp.asarray(y), tau=tau, num_steps=2, order=K, segments=r, alpha=alpha
    )
    h = tau / r
    s = sum((h * alpha) ** k / math.factorial(k) for k in range(K + 1))
    np.testing.assert_allclose(float(res.report.coefficient_sum), s, rtol=1e-13)
    np.testing.assert_allclose(float(lcu_coefficient_sum(h, alpha, K, 9)), s, rtol=1e-13)
    TK = sum(np.linalg.matrix_power(h * A, k) / math.factorial(k) for k in range(K + 1))
    probs, v = [], y
    for _ in range(2 * r):
        w = TK @ v
        probs.append((w @ w) / (s**2 * (v @ v)))
        v = w
    np.testing.assert_allclose(
        np.asarray(res.report.success_probability).ravel(), probs, rtol=1e-12
    )
    assert res.report.success_probability.shape == (2, r)
    np.testing.assert_allclose(
        float(res.report.truncation_error),
        np.linalg.norm(TK - sl.expm(h * A), 2),
        rtol=1e-8,
        atol=1e-15,
    )
    bound = (h * alpha) ** (K + 1) / math.factorial(K + 1) * math.exp(h * alpha)
    np.testing.assert_allclose(float(res.report.error_bound), bound, rtol=1e-12)


def test_alpha_from_norm_and_sparsity():
    A = np.array([[1.0, -3.0, 0.0], [0.0, 2.0, 0.0], [0.5, 0.0, 0.0]])
    a_norm = float(block_encoding_normalization(jnp.asarray(A), "norm"))
    a_sp = float(block_encoding_normalization(jnp.asarray(A), "sparsity"))
    assert a_norm == pytest.approx(np.linalg.norm(A, 2), rel=1e-12)
    assert a_sp == pytest.approx(2 * 3.0)  # s = max(row 2, col 2) = 2, max |A_ij| = 3
    assert a_sp >= a_norm
    res = taylor_evolve(
        jnp.asarray(A),
        jnp.ones(3),
        tau=0.1,
        num_steps=1,
        order=3,
        alpha_method="sparsity",
        exact_error=False,
    )
    assert float(res.report.alpha) == pytest.approx(6.0)


def test_traced_order_does_not_recompile_and_vmaps():
    A, y = _problem(4, 3)
    Aj, yj = jnp.asarray(A), jnp.asarray(y)
    traces = []

    @jax.jit
    def final(K, tau):
        traces.append(1)
        return taylor_evolve(Aj, yj, tau=tau, num_steps=3, order=K, max_terms=10, alpha=2.0).ys[-1]

    outs = [final(jnp.asarray(K), jnp.asarray(0.3)) for K in range(0, 11)]
    assert len(traces) == 1
    ref = np.linalg.matrix_power(sl.expm(0.3 * A), 3) @ y
    errs = [np.linalg.norm(np.asarray(o) - ref) for o in outs]
    assert errs[-1] < 1e-8 < errs[2]
    vm = jax.vmap(final)(jnp.arange(0, 11), jnp.full(11, 0.3))
    np.testing.assert_allclose(np.asarray(vm), np.asarray(outs), atol=1e-14)
    eager = taylor_evolve(Aj, yj, tau=0.3, num_steps=3, order=4).ys[-1]
    np.testing.assert_allclose(np.asarray(outs[4]), np.asarray(eager), atol=1e-14)


def test_grad_of_final_error_wrt_step_matches_finite_differences():
    A, y = _problem(4, 4)
    Aj, yj = jnp.asarray(A), jnp.asarray(y)
    target = jnp.asarray(np.linalg.matrix_power(sl.expm(0.25 * A), 4) @ y)

    def loss(tau):
        ys = taylor_evolve(Aj, yj, tau=tau, num_steps=4, order=3, segments=2, alpha=3.0).ys
        return jnp.sum((ys[-1] - target) ** 2)

    loss = jax.jit(loss)
    g = jax.grad(loss)(jnp.asarray(0.2))
    eps = 1e-6
    fd = (loss(0.2 + eps) - loss(0.2 - eps)) / (2 * eps)
    np.testing.assert_allclose(float(g), float(fd), rtol=1e-6)
    assert abs(float(g)) > 1e-3


def test_float32_is_kept():
    A, y = _problem(3, 5)
    res = taylor_evolve(
        jnp.asarray(A, jnp.float32),
        jnp.asarray(y, jnp.float32),
        tau=0.1,
        num_steps=2,
        order=4,
        exact_error=False,
    )
    assert res.ys.dtype == jnp.float32
    assert res.report.coefficient_sum.dtype == jnp.float32


def test_required_order():
    K = required_order(1.0, 1e-10, 40)
    assert float(taylor_error_bound(1.0, K)) <= 1e-10 < float(taylor_error_bound(1.0, K - 1))


def test_bad_input():
    A, y = _problem(3, 6)
    Aj, yj = jnp.asarray(A), jnp.asarray(y)
    with pytest.raises(ValueError, match="order"):
        taylor_evolve(Aj, yj, tau=0.1, num_steps=1, order=-1)
    with pytest.raises(ValueError, match="too large"):
        taylor_evolve(Aj, yj, tau=30.0, num_steps=1, order=20, tol=1e-8)
    with pytest.raises(ValueError, match="cannot reach"):
        taylor_evolve(Aj, yj, tau=0.5, num_steps=1, order=2, max_terms=30, tol=1e-12)
    with pytest.raises(ValueError, match="alpha"):
        taylor_evolve(Aj, yj, tau=0.1, num_steps=1, order=3, alpha=0.5 * np.linalg.norm(A, 2))
    with pytest.raises(ValueError, match="non-finite"):
        taylor_evolve(Aj.at[0, 1].set(jnp.nan), yj, tau=0.1, num_steps=1, order=3)
    with pytest.raises(ValueError, match="square"):
        taylor_evolve(jnp.ones((3, 2)), yj, tau=0.1, num_steps=1, order=3)
    with pytest.raises(ValueError, match="order"):
        taylor_apply(Aj, yj, 0.1, 5, max_terms=3)
