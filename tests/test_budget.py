"""Error budget of a flow-form window: each term against an independent reference."""

import jax.numpy as jnp
import numpy as np
import scipy.integrate
import scipy.linalg

import qsgd_jax as qj


def _setup(eta=0.1):
    loss = qj.problems.random_cubic_loss(seed=2, g_scale=0.01, t_scale=0.3, u_scale=0.3)
    return loss, qj.gd_map(loss, jnp.zeros(4), None, eta=eta)


def test_budget_terms_match_scipy_references():
    loss, poly = _setup()
    steps = 20
    b = qj.error_budget(
        poly, loss.u0, steps, order=2, method=qj.TruncatedTaylor(3)
    ).raise_if_failed()
    # exact gradient flow from scipy, GD by hand
    f = poly.field

    def rhs(_, u):
        return np.asarray(f(jnp.asarray(u)))

    ts = 0.1 * np.arange(steps + 1)
    flow = scipy.integrate.solve_ivp(
        rhs, (0, ts[-1]), np.asarray(loss.u0), t_eval=ts, rtol=1e-12, atol=1e-14
    ).y.T
    gd = [np.asarray(loss.u0)]
    for _ in range(steps):
        gd.append(np.asarray(poly(jnp.asarray(gd[-1]))))
    gd = np.stack(gd)
    np.testing.assert_allclose(b.time_discretization, np.linalg.norm(flow - gd, axis=1), atol=1e-9)
    # Carleman flow by scipy expm of the independently checked dense A
    op = qj.carleman(poly, 2)
    a = np.asarray(op.to_dense(which="generator"))
    y0 = np.asarray(op.flatten(op.lift(loss.u0)))
    y_exp = np.stack([scipy.linalg.expm(t * a) @ y0 for t in ts])[:, 1:5]
    np.testing.assert_allclose(
        b.carleman_truncation, np.linalg.norm(y_exp - flow, axis=1), atol=1e-9
    )
    # the total is bounded by the sum of the terms (triangle inequality)
    parts = b.taylor_truncation + b.carleman_truncation + b.time_discretization
    assert bool(jnp.all(b.total <= parts + 1e-14))


def test_each_term_responds_to_its_own_knob_only():
    loss, poly = _setup()
    base = qj.error_budget(poly, loss.u0, 15, order=2, method=qj.TruncatedTaylor(2))
    more_k = qj.error_budget(poly, loss.u0, 15, order=2, method=qj.TruncatedTaylor(6))
    more_n = qj.error_budget(poly, loss.u0, 15, order=4, method=qj.TruncatedTaylor(2))
    # Taylor order: Taylor term falls, the other two unchanged
    assert float(jnp.max(more_k.taylor_truncation)) < 1e-3 * float(jnp.max(base.taylor_truncation))
    np.testing.assert_allclose(more_k.carleman_truncation, base.carleman_truncation, atol=1e-12)
    np.testing.assert_allclose(more_k.time_discretization, base.time_discretization, atol=1e-12)
    # Carleman order: Carleman term falls, discretization unchanged
    assert float(jnp.max(more_n.carleman_truncation)) < 0.1 * float(
        jnp.max(base.carleman_truncation)
    )
    np.testing.assert_allclose(more_n.time_discretization, base.time_discretization, atol=1e-12)
    # Time discretization is first order in eta at fixed flow time (1 = 10 x 0.1 = 20 x 0.05)
    _, half = _setup(eta=0.05)
    t_half = qj.error_budget(
        half, loss.u0, 20, order=2, method=qj.TruncatedTaylor(4)
    ).time_discretization[-1]
    ratio = float(base.time_discretization[10] / t_half)
    assert 1.8 < ratio < 2.2, ratio


def test_relative_budget_and_lcu_report():
    loss, poly = _setup()
    b = qj.error_budget(poly, loss.u0, 5, order=2, method=qj.TruncatedTaylor(4, segments=2))
    rel = b.relative()
    np.testing.assert_allclose(rel["total"], b.total / b.gd_norm, rtol=1e-12)
    assert b.lcu.success_probability.shape == (5, 2)
    assert bool(jnp.all((b.lcu.success_probability > 0) & (b.lcu.success_probability <= 1)))
