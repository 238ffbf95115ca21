"""Carleman evolution against exact GD: truncation error, forms, PNAS bound, divergence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_map

import qsgd_jax as qj


def test_degree_one_order_one_is_exact_gd():
    F0, F1, _ = random_map(5, seed=1, degree=1, scale=0.1)
    poly = qj.polynomial_map(F0, F1, eta=0.1)
    u0 = jnp.linspace(-0.3, 0.3, 5)
    err = qj.carleman_error(qj.carleman(poly, 1), u0, 30)
    gd = [np.asarray(u0)]
    for _ in range(30):
        gd.append(F0 + F1 @ gd[-1])
    np.testing.assert_allclose(err.gd, np.stack(gd), atol=1e-12)
    np.testing.assert_allclose(err.trajectory.y1, np.stack(gd), atol=1e-12)
    assert float(jnp.max(err.absolute)) < 1e-12


def test_discrete_and_euler_differ_by_eta_squared_per_step():
    loss = qj.problems.random_cubic_loss()
    u0 = jnp.array([0.2, -0.1, 0.15, 0.1])

    def one_step_gap(eta):
        poly = qj.gd_map(loss, jnp.zeros(4), None, eta=eta)
        d, e = qj.carleman(poly, 3), qj.carleman(poly, 3)
        Y = d.lift(u0)
        return max(
            float(jnp.linalg.norm((a - b).reshape(-1)))
            for a, b in zip(qj.Discrete().apply(d, Y), qj.Euler().apply(e, Y), strict=True)
        )

    gaps = [one_step_gap(eta) for eta in (0.04, 0.02, 0.01)]
    ratios = [gaps[0] / gaps[1], gaps[1] / gaps[2]]
    np.testing.assert_allclose(ratios, 4.0, rtol=0.05)  # O(eta^2): halving eta quarters it


def test_cubic_loss_error_falls_geometrically_with_order():
    # Dissipative cubic loss (Hessian eigenvalues in [0.55, 3.3]), n = 4, eta = 0.1.
    loss = qj.problems.random_cubic_loss(seed=2, g_scale=0.01, t_scale=0.3, u_scale=0.4)
    poly = qj.gd_map(loss, jnp.zeros(4), None, eta=0.1)
    u0 = loss.u0
    diss = qj.dissipation(poly, u0)
    assert bool(diss.discrete_dissipative)
    assert float(diss.r_number) == pytest.approx(0.44, abs=0.01)  # R < 1
    errs = [
        float(qj.carleman_error(qj.carleman(poly, N), u0, 60).max_relative) for N in (1, 2, 3, 4)
    ]
    assert all(a > b for a, b in zip(errs, errs[1:], strict=False)), errs
    # measured: 1.6e-1, 1.6e-2, 1.5e-3, 1.3e-4 (ratio ~1200)
    assert errs[0] / errs[3] > 100, errs


@pytest.mark.parametrize("eta", [0.1, 0.01])
def test_pnas_bound_holds_for_f0_zero(eta):
    loss = qj.problems.random_cubic_loss(seed=2, g_scale=0.0, t_scale=0.5, u_scale=0.3)
    poly = qj.gd_map(loss, jnp.zeros(4), None, eta=eta)
    u0 = loss.u0
    diss = qj.dissipation(poly, u0)
    assert float(diss.r_number) < 1 and float(diss.f0_norm) == 0
    steps = int(round(6 / eta))
    t = eta * np.arange(steps + 1)
    for order in (1, 2, 3, 4):
        err = qj.carleman_error(qj.carleman(poly, order), u0, steps).absolute
        bound = diss.pnas_bound(t, order)
        assert bool(jnp.all(err <= bound + 1e-15)), (order, float(jnp.max(err - bound)))


def test_non_dissipative_map_is_reported_and_error_unbounded():
    loss = qj.problems.random_cubic_loss(seed=2, eigs=(-0.8, 0.5, 1.0, 2.0))
    poly = qj.gd_map(loss, jnp.zeros(4), None, eta=0.1)
    u0 = jnp.asarray(0.3 * np.random.default_rng(0).standard_normal(4))
    diss = qj.dissipation(poly, u0)
    assert not bool(diss.discrete_dissipative)
    assert "NOT dissipative" in diss.summary()
    assert float(diss.r_number) == np.inf
    err = qj.carleman_error(qj.carleman(poly, 2), u0, 60)
    # the negative-curvature mode grows like 1.08^t: the error keeps growing
    assert float(err.absolute[60]) > 10 * float(err.absolute[20]) > 0


def test_divergence_is_detected_not_returned_as_numbers():
    F0, F1, F2 = random_map(3, seed=0, scale=3.0)
    poly = qj.polynomial_map(F0, F1, F2, eta=0.1)
    err = qj.carleman_error(qj.carleman(poly, 2), jnp.ones(3), 400, throw=False)
    assert err.status == qj.RESULTS.nonfinite
    with pytest.raises(RuntimeError, match="non-finite"):
        err.raise_if_failed()


def test_block_norms_of_exact_lift():
    loss = qj.problems.random_cubic_loss()
    op = qj.carleman(qj.gd_map(loss, jnp.zeros(4), None, eta=0.1), 3, max_order=4)
    u0 = jnp.array([0.3, 0.1, -0.2, 0.0])
    traj = qj.evolve(op, op.lift(u0), 3)
    r = float(jnp.linalg.norm(u0))
    np.testing.assert_allclose(traj.block_norms[0], [1, r, r**2, r**3, 0.0], rtol=1e-12)
    assert traj.status == qj.RESULTS.successful


def test_float32_evolution_stays_float32_and_close_to_float64():
    loss = qj.problems.random_cubic_loss()
    poly = qj.gd_map(loss, jnp.zeros(4, jnp.float32), None, eta=0.1)
    assert poly.dtype == jnp.float32
    u0 = jnp.array([0.2, -0.1, 0.15, 0.1], jnp.float32)
    err = qj.carleman_error(qj.carleman(poly, 3), u0, 20)
    assert err.trajectory.y1.dtype == jnp.float32
    poly64 = qj.gd_map(loss, jnp.zeros(4), None, eta=0.1)
    ref = qj.carleman_error(qj.carleman(poly64, 3), u0.astype(jnp.float64), 20)
    np.testing.assert_allclose(err.trajectory.y1, ref.trajectory.y1, atol=1e-6)


def test_jit_matches_eager():
    loss = qj.problems.random_cubic_loss()
    poly = qj.gd_map(loss, jnp.zeros(4), None, eta=0.1)
    u0 = jnp.array([0.2, -0.1, 0.15, 0.1])
    eager = qj.carleman_error(qj.carleman(poly, 2), u0, 10).absolute
    jitted = jax.jit(lambda u: qj.carleman_error(qj.carleman(poly, 2), u, 10).absolute)(u0)
    np.testing.assert_allclose(jitted, eager, atol=1e-14)


def test_bad_steps_and_blocks():
    F0, F1, F2 = random_map(3, seed=0)
    op = qj.carleman(qj.polynomial_map(F0, F1, F2, eta=0.1), 2)
    with pytest.raises(ValueError, match="steps"):
        qj.evolve(op, op.lift(jnp.ones(3)), -1)
    with pytest.raises(ValueError, match="blocks"):
        qj.evolve(op, op.lift(jnp.ones(3))[:2], 3)
    with pytest.raises(ValueError, match="shape"):
        op.lift(jnp.ones(4))
