"""The y0 scale c of a history system: kappa_c, P_c and alpha_s against a NumPy oracle, the scale
an estimate chooses against a scan over c, jit, bad input."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qsgd_jax.linsys import affine_gd_map, history_report, history_system, log_scales, scale_scan
from qsgd_jax.resources import COSTA_NUMERICAL, Assumptions, MeasuredInputs, estimate

NAN = float("nan")


def _map(n=3, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    H = (q * np.linspace(0.5, 3.0, n)) @ q.T
    return np.asarray(affine_gd_map(jnp.asarray(rng.normal(size=n)), jnp.asarray(H), 0.2))


def _oracle(M, T, c):
    """Dense L_c of D_c M D_c^{-1}, its kappa, P (target: block 1 at t = T) and alpha_s."""
    d = M.shape[0]
    D = np.diag([c] + [1.0] * (d - 1))
    Mc = D @ M @ np.linalg.inv(D)
    L = np.eye((T + 1) * d)
    for t in range(1, T + 1):
        L[t * d : (t + 1) * d, (t - 1) * d : t * d] = -Mc
    sv = np.linalg.svd(L, compute_uv=False)
    b = np.zeros((T + 1) * d)
    b[0] = c
    x = np.linalg.solve(L, b).reshape(T + 1, d)
    P = np.sum(x[T, 1:] ** 2) / np.sum(x**2)
    nz = L != 0
    alpha = max(nz.sum(0).max(), nz.sum(1).max()) * np.abs(L).max()
    return sv[0] / sv[-1], P, alpha


def test_scale_scan_matches_the_dense_oracle():
    M, T = _map(), 6
    scales = np.array([0.05, 0.3, 1.0, 4.0])
    sc = scale_scan(lambda t, x: jnp.asarray(M) @ x, T, 4, scales, target=slice(1, 4))
    assert sc.method == "dense"
    for i, c in enumerate(scales):
        k, P, alpha = _oracle(M, T, c)
        assert float(sc.kappa[i]) == pytest.approx(k, rel=1e-9)
        assert float(sc.target_probability[i]) == pytest.approx(P, rel=1e-9)
        assert float(sc.sparse_normalization[i]) == pytest.approx(alpha, rel=1e-12)
    rep = history_report(history_system(jnp.asarray(M), T), jnp.eye(4)[0], slice(1, 4))
    assert float(sc.kappa[2]) == pytest.approx(float(rep.kappa), rel=1e-9)  # c = 1
    # the trade-off: P falls and kappa settles as c grows past the size of u
    assert np.all(np.diff(np.asarray(sc.target_probability)) < 0)
    assert float(sc.kappa[0]) > float(sc.kappa[2])
    lz = scale_scan(
        lambda t, x: jnp.asarray(M) @ x,
        T,
        4,
        scales,
        target=slice(1, 4),
        method="lanczos",
        num_iters=28,
    )
    np.testing.assert_allclose(np.asarray(lz.kappa), np.asarray(sc.kappa), rtol=1e-6)
    assert np.all(np.isnan(np.asarray(lz.sparse_normalization)))


def test_chosen_scale_minimizes_the_reported_cost():
    M, T = _map(seed=1), 8
    scales = np.asarray(log_scales(1.0, 2.0, 9))
    sc = scale_scan(lambda t, x: jnp.asarray(M) @ x, T, 4, scales, target=slice(1, 4))
    inp = MeasuredInputs(
        kappa=NAN,
        sigma_max=NAN,
        sigma_min=NAN,
        target_probability=NAN,
        active_size=3,
        num_params=3,
        num_steps=T,
        idle=0,
        max_order=1,
        scan=sc,
    )
    est = estimate(inp, Assumptions(eps=1e-3), physical=False)
    costs = []
    for c in scales:  # an independent scan over c
        k, P, _ = _oracle(M, T, c)
        costs.append(COSTA_NUMERICAL.queries(k, 1e-3) * math.ceil(math.pi / (4 * math.sqrt(P))))
    best = int(np.argmin(costs))
    assert est.value("y0_scale") == pytest.approx(scales[best])
    reported = est.value("queries Costa (estimate)") * est.value("rounds")
    assert reported == pytest.approx(costs[best], rel=1e-9)
    assert all(reported <= c * (1 + 1e-12) for c in costs)
    assert 0 < best < len(scales) - 1  # an interior optimum: c matters
    k, P, alpha = _oracle(M, T, scales[best])
    assert est.value("kappa") == pytest.approx(k) and est.value("alpha_sparse") == pytest.approx(
        alpha
    )
    sparse = estimate(inp, Assumptions(eps=1e-3, normalization="sparse"), physical=False)
    assert sparse.value("kappa_effective") >= est.value("kappa_effective")


def test_scale_scan_under_jit_and_bad_input():
    M = jnp.asarray(_map())
    run = jax.jit(lambda c0: scale_scan(lambda t, x: M @ x, 4, 4, log_scales(c0, 1.0, 3)).kappa)
    direct = scale_scan(lambda t, x: M @ x, 4, 4, log_scales(2.0, 1.0, 3)).kappa
    np.testing.assert_allclose(np.asarray(run(2.0)), np.asarray(direct), rtol=1e-10)
    step = lambda t, x: M @ x  # noqa: E731
    with pytest.raises(ValueError, match="scales"):
        scale_scan(step, 4, 4, np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="scales"):
        scale_scan(step, 4, 4, np.array([]))
    with pytest.raises(ValueError, match="method"):
        scale_scan(step, 4, 4, np.array([1.0]), method="svd")
    with pytest.raises(ValueError, match="center"):
        log_scales(-1.0)
