"""History-state system against dense assembly, numpy SVD and the recursion itself."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

import qsgd_jax as qj
from qsgd_jax.experiments import kappa_scaling
from qsgd_jax.linsys import (
    affine_gd_map,
    amplification_rounds,
    condition_number,
    history_report,
    history_system,
    target_probability,
    taylor_history_system,
)


def _maps(d=4, T=6, seed=0, scale=0.45):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, d, d)) * scale, rng.normal(size=d)


def test_solution_equals_recursion_all_forms():
    Ms, y0 = _maps()
    T, p, d = Ms.shape[0], 3, Ms.shape[1]
    Mj = jnp.asarray(Ms)
    rec = [y0]
    for t in range(T):
        rec.append(Ms[t] @ rec[-1])
    rec += [rec[-1]] * p
    systems = [
        history_system(Mj, T, p, kind="stacked"),
        history_system(lambda t, x: Mj[t - 1] @ x, T, p, kind="function", dim=d),
    ]
    for L in systems:
        np.testing.assert_allclose(np.asarray(L.solution(jnp.asarray(y0))), rec, atol=1e-12)
    D = np.asarray(systems[0].to_dense())
    np.testing.assert_allclose(D, np.asarray(systems[1].to_dense()), atol=0)
    # dense assembly of I - sum |t><t-1| (x) M_t - idle shifts
    ref = np.eye((T + p + 1) * d)
    for t in range(1, T + p + 1):
        ref[t * d : (t + 1) * d, (t - 1) * d : t * d] -= Ms[t - 1] if t <= T else np.eye(d)
    np.testing.assert_allclose(D, ref, atol=0)
    # constant map, cross-checked with lineax
    L = history_system(Mj[0], T, p)
    b = L.rhs(jnp.asarray(y0))
    x_lx = lx.linear_solve(L.as_lineax(), b, lx.LU()).value
    np.testing.assert_allclose(np.asarray(L.solve(b)), np.asarray(x_lx), atol=1e-12)
    rng = np.random.default_rng(1)
    v = jnp.asarray(rng.normal(size=L.size))
    Dc = np.asarray(L.to_dense())
    np.testing.assert_allclose(np.asarray(L.rmv(v)), Dc.T @ np.asarray(v), atol=1e-12)
    np.testing.assert_allclose(np.asarray(L.solve(v)), np.linalg.solve(Dc, v), atol=1e-10)
    np.testing.assert_allclose(
        np.asarray(L.solve_transpose(v)), np.linalg.solve(Dc.T, v), atol=1e-10
    )


def test_bcow_expanded_system():
    rng = np.random.default_rng(2)
    d, T, K, p, h = 3, 4, 3, 2, 0.3
    A = rng.normal(size=(d, d))
    y0 = rng.normal(size=d)
    L = taylor_history_system(jnp.asarray(A), T, h, K, p)
    assert L.num_blocks == T * (K + 1) + p + 1
    D = np.asarray(L.to_dense())
    x = np.linalg.solve(D, np.asarray(L.rhs(jnp.asarray(y0))))
    np.testing.assert_allclose(np.asarray(L.solution(jnp.asarray(y0))).ravel(), x, atol=1e-12)
    TK = sum(np.linalg.matrix_power(h * A, k) / np.prod(np.arange(1, k + 1)) for k in range(K + 1))
    blocks = x.reshape(-1, d)
    np.testing.assert_allclose(blocks[-1], np.linalg.matrix_power(TK, T) @ y0, atol=1e-12)
    np.testing.assert_allclose(blocks[1], h * A @ y0, atol=1e-13)  # x_{0,1} = hA x_{0,0}
    s = np.linalg.svd(D, compute_uv=False)
    np.testing.assert_allclose(float(condition_number(L).kappa), s[0] / s[-1], rtol=0.05)


@pytest.mark.parametrize("inverse", ["triangular", "cg"])
def test_matrix_free_kappa_within_5_percent(inverse):
    Ms, y0 = _maps(d=5, T=30, seed=3, scale=0.3)
    L = history_system(jnp.asarray(Ms), 30, 10, kind="stacked")
    assert L.size > 150  # larger than the Lanczos iteration count: not an exact run
    s = np.linalg.svd(np.asarray(L.to_dense()), compute_uv=False)
    if inverse == "cg":
        est = condition_number(L.as_lineax(), inverse="cg", num_iters=60)
    else:
        est = condition_number(L, num_iters=60)
    np.testing.assert_allclose(float(est.sigma_max), s[0], rtol=0.05)
    np.testing.assert_allclose(float(est.sigma_min), s[-1], rtol=0.05)
    np.testing.assert_allclose(float(est.kappa), s[0] / s[-1], rtol=0.05)
    dense = condition_number(L, method="dense")
    np.testing.assert_allclose(float(dense.kappa), s[0] / s[-1], rtol=1e-10)


def test_target_probability_and_report():
    rng = np.random.default_rng(4)
    n, eta, T, p = 3, 0.2, 8, 8
    H = np.diag([0.5, 1.0, 2.0])
    g = rng.normal(size=n)
    M = affine_gd_map(jnp.asarray(g), jnp.asarray(H), eta)
    np.testing.assert_allclose(
        np.asarray(M)[1:, 0], -eta * g, atol=1e-15
    )  # [[1, 0], [-eta g, I - eta H]]
    L = history_system(M, T, p)
    y0 = jnp.asarray(np.concatenate([[1.0], rng.normal(size=n)]))
    rep = history_report(L, y0, slice(1, None))
    D = np.asarray(L.to_dense())
    x = np.linalg.solve(D, np.asarray(L.rhs(y0))).reshape(-1, n + 1)
    P = np.sum(x[T:, 1:] ** 2) / np.sum(x**2)
    np.testing.assert_allclose(float(rep.target_probability), P, rtol=1e-12)
    np.testing.assert_allclose(
        float(target_probability(L, x.ravel(), jnp.arange(1, n + 1))), P, rtol=1e-12
    )
    assert float(rep.amplification_rounds) == np.ceil(np.pi / (4 * np.sqrt(P)))
    assert float(amplification_rounds(0.25)) == 2.0
    s = np.linalg.svd(D, compute_uv=False)
    np.testing.assert_allclose(float(rep.kappa), s[0] / s[-1], rtol=1e-10)
    np.testing.assert_allclose(float(rep.norm), s[0], rtol=1e-10)
    assert rep.qubits == 5 + 2  # ceil(log2 17) + ceil(log2 4)


def test_jit_vmap_grad_through_solve():
    rng = np.random.default_rng(5)
    H = jnp.asarray(np.diag([0.5, 1.5]))
    g = jnp.asarray(rng.normal(size=2))
    y0 = jnp.asarray([1.0, 0.3, -0.2])

    def P_of(eta):
        L = history_system(affine_gd_map(g, H, eta), 5, 5)
        return target_probability(L, L.solve(L.rhs(y0)), slice(1, None))

    Ps = jax.jit(jax.vmap(P_of))(jnp.asarray([0.1, 0.2]))
    np.testing.assert_allclose(np.asarray(Ps), [float(P_of(0.1)), float(P_of(0.2))], rtol=1e-12)
    gr = jax.grad(P_of)(jnp.asarray(0.1))
    fd = (P_of(0.1 + 1e-6) - P_of(0.1 - 1e-6)) / 2e-6
    np.testing.assert_allclose(float(gr), float(fd), rtol=1e-5)


def test_kappa_regimes_linear_vs_quadratic():
    res = kappa_scaling((20, 40, 80), method="dense", idle="T")
    assert 0.7 < res.exponent_dissipative < 1.3
    assert res.exponent_almost > res.exponent_dissipative + 0.4
    assert np.all(np.asarray(res.kappa_almost) > np.asarray(res.kappa_dissipative))


def test_bad_input():
    Ms, _ = _maps()
    with pytest.raises(ValueError, match="non-finite"):
        history_system(jnp.asarray(Ms[0]).at[0, 0].set(jnp.inf), 3)
    with pytest.raises(ValueError, match="shape"):
        history_system(jnp.asarray(Ms), 4, kind="stacked")
    with pytest.raises(ValueError, match="num_steps"):
        history_system(jnp.asarray(Ms[0]), -1)
    with pytest.raises(ValueError, match="order"):
        taylor_history_system(jnp.asarray(Ms[0]), 2, 0.1, -1)
    with pytest.raises(ValueError, match="dim"):
        history_system(lambda t, x: x, 3, kind="function")
    L = history_system(jnp.asarray(Ms[0]), 3)
    with pytest.raises(ValueError, match="y0"):
        L.rhs(jnp.ones(3))


# --- The article's form (Eq. 6): no idle padding ---------------------------------------------


def test_article_form_is_the_default_unpadded_system():
    # Eq. 6 of the article: T + 1 blocks, I on the diagonal, -M_t below, nothing else.
    Ms, y0 = _maps(d=3, T=5)
    T, d = Ms.shape[0], Ms.shape[1]
    L = qj.linsys.history_system(jnp.asarray(Ms), T, kind="stacked")
    assert L.num_blocks == T + 1 and L.idle == 0 and L.size == (T + 1) * d
    ref = np.eye((T + 1) * d)
    for t in range(1, T + 1):
        ref[t * d : (t + 1) * d, (t - 1) * d : t * d] = -Ms[t - 1]
    np.testing.assert_array_equal(np.asarray(L.to_dense()), ref)
    # The target is the final time alone: P = |x_T|^2 / sum_t |x_t|^2 from the recursion.
    xs = [y0]
    for t in range(T):
        xs.append(Ms[t] @ xs[-1])
    xs = np.asarray(xs)
    P = float(qj.linsys.target_probability(L, L.solve(L.rhs(jnp.asarray(y0)))))
    assert pytest.approx(np.sum(xs[-1] ** 2) / np.sum(xs**2), rel=1e-12) == P
    rep = qj.linsys.history_report(L, jnp.asarray(y0), method="dense")
    sv = np.linalg.svd(ref, compute_uv=False)
    assert float(rep.kappa) == pytest.approx(sv[0] / sv[-1], rel=1e-10)
    # The same default for the BCOW expansion: T (K + 1) + 1 blocks.
    Lt = qj.linsys.taylor_history_system(jnp.asarray(Ms[0]), T, 0.1, 2)
    assert Lt.num_blocks == T * 3 + 1 and Lt.idle == 0


def test_kappa_scaling_article_form_against_numpy_svd():
    # kappa_scaling's documented construction (n = 6, eta = 0.1, seed 0), rebuilt in numpy, and
    # the unpadded system (its default) assembled densely: kappa from numpy's SVD.
    n, eta, Ts = 6, 0.1, (20, 40, 80)
    res = kappa_scaling(Ts, method="dense")
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = np.linspace(0.5, 3.0, n)
    g = rng.normal(size=n) / np.sqrt(n)
    M = np.eye(n + 1)
    M[1:, 0] = -eta * g
    M[1:, 1:] -= eta * (Q * lam) @ Q.T
    want = []
    for T in Ts:
        L = np.eye((T + 1) * (n + 1))
        for t in range(1, T + 1):
            L[t * (n + 1) : (t + 1) * (n + 1), (t - 1) * (n + 1) : t * (n + 1)] = -M
        sv = np.linalg.svd(L, compute_uv=False)
        want.append(sv[0] / sv[-1])
    np.testing.assert_allclose(np.asarray(res.kappa_dissipative), want, rtol=1e-8)
    # Both regimes survive without padding: ~T vs clearly faster.
    assert 0.7 < res.exponent_dissipative < 1.3
    assert res.exponent_almost > res.exponent_dissipative + 0.4
    with pytest.raises(ValueError, match="`idle`"):
        kappa_scaling(Ts, idle=-1)
