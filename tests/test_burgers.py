"""The PNAS viscous Burgers benchmark (Liu et al. 2021, Fig. 1): grid and field against finite
differences, R against numpy and the figure caption, forward-Euler Carleman against plain Euler,
the reference against scipy, and the convergence in N against the published figure."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import qsgd_jax as qj

# Time-maximum absolute l2 errors read off the article's Fig. 1 (log axis, a few per cent).
PUBLISHED_MAX_ERROR = {1: 0.123, 2: 0.0591, 3: 0.0294}
PUBLISHED_R = 43.59


def _numpy_pnas(n=16):
    """The PNAS discretization written out independently: nodes, F1, F2 (n x n^2, row-major
    u (x) u), the forcing profile, u0."""
    dx = 1 / (n - 1)
    x = np.linspace(-0.5, 0.5, n)
    u_0 = 1 / np.sqrt(n - 1)
    nu = u_0 / 20
    f1 = np.zeros((n, n))
    f2 = np.zeros((n, n * n))
    for i in range(1, n - 1):  # boundary rows stay zero
        f1[i, i - 1 : i + 2] = np.array([1.0, -2.0, 1.0]) * nu / dx**2
        f2[i, (i + 1) * n + (i + 1)] = -1 / (4 * dx)
        f2[i, (i - 1) * n + (i - 1)] = 1 / (4 * dx)
    profile = u_0 * np.exp(-((x - 0.25) ** 2) / (2 * (1 / 32) ** 2))
    return x, dx, nu, f1, f2, profile, -u_0 * np.sin(2 * np.pi * x)


def test_pnas_grid_and_field_are_the_finite_difference_rhs():
    prob = qj.problems.burgers_problem()
    n, dx = 16, 1 / 15
    u_0 = 1 / np.sqrt(15)
    np.testing.assert_allclose(np.asarray(prob.x), np.linspace(-0.5, 0.5, n), atol=1e-15)
    assert prob.variant == "pnas" and abs(prob.dx - dx) < 1e-15
    assert abs(prob.velocity - u_0) < 1e-15 and abs(prob.nu - u_0 / 20) < 1e-15
    np.testing.assert_allclose(np.asarray(prob.u0), -u_0 * np.sin(2 * np.pi * prob.x), atol=1e-15)
    u = np.random.default_rng(0).standard_normal(n)
    t = 0.3
    force = u_0 * np.exp(-((np.asarray(prob.x) - 0.25) ** 2) / (2 / 32**2)) * np.cos(2 * np.pi * t)
    direct = force.copy()  # boundary nodes: only the (untouched) forcing
    i = np.arange(1, n - 1)
    direct[i] += prob.nu * (u[i + 1] - 2 * u[i] + u[i - 1]) / dx**2
    direct[i] -= (u[i + 1] ** 2 - u[i - 1] ** 2) / (4 * dx)
    got = np.asarray(prob.field_at(t)(jnp.asarray(u)))
    np.testing.assert_allclose(got, direct, rtol=1e-12, atol=1e-14)
    assert got[0] != 0 or force[0] == 0  # F0 is not zeroed at the boundary


def test_interior_variant_is_the_dirichlet_rhs():
    prob = qj.problems.burgers_problem(16, 20.0, variant="interior")
    n, dx, nu = 16, 1 / 17, 1 / 20
    np.testing.assert_allclose(np.asarray(prob.x)[[0, -1]], [-0.5 + dx, 0.5 - dx])
    u = np.random.default_rng(1).standard_normal(n)
    up = np.concatenate([[0.0], u, [0.0]])  # Dirichlet boundaries outside the grid
    direct = (
        nu * (up[2:] - 2 * up[1:-1] + up[:-2]) / dx**2
        - (up[2:] ** 2 - up[:-2] ** 2) / (4 * dx)
        + np.exp(-((np.asarray(prob.x) - 0.25) ** 2) / (2 / 32**2)) * np.cos(2 * np.pi * 0.3)
    )
    np.testing.assert_allclose(np.asarray(prob.field_at(0.3)(jnp.asarray(u))), direct, rtol=1e-12)
    assert np.all(np.asarray(qj.problems.burgers_problem(16, forced=False).forcing) == 0)


def test_r_number_matches_numpy_and_the_figure_caption():
    prob = qj.problems.burgers_problem()
    ts = np.linspace(0.0, 3.0, 4000)
    got = qj.problems.burgers_r_number(prob, jnp.asarray(ts))
    x, dx, nu, f1, f2, profile, u0 = _numpy_pnas()
    eigs = np.linalg.eigvals(f1)
    assert np.sum(np.abs(eigs) < 1e-12) == 2  # the two boundary rows
    lam1 = eigs[np.abs(eigs) > 1e-12].real.max()
    # analytic: the 14 interior nodes carry the Dirichlet Laplacian of spacing dx
    np.testing.assert_allclose(lam1, -4 * nu / dx**2 * np.sin(np.pi / 30) ** 2, rtol=1e-10)
    f0_max = max(np.linalg.norm(profile * np.cos(2 * np.pi * t)) for t in ts)
    r = (np.linalg.norm(u0) * np.linalg.norm(f2, 2) + f0_max / np.linalg.norm(u0)) / abs(lam1)
    np.testing.assert_allclose(got["R"], r, rtol=1e-10)
    np.testing.assert_allclose(got["lambda1"], lam1, rtol=1e-10)
    assert abs(got["R"] / PUBLISHED_R - 1) < 0.01, got["R"]


def test_order_one_without_f2_is_plain_forward_euler():
    prob = qj.problems.burgers_problem()
    lin = eqx.tree_at(lambda p: p.field.f2, prob, jnp.zeros_like(prob.field.f2))
    ts = np.linspace(0.0, 0.5, 201)
    _, _, _, f1, _, profile, u0 = _numpy_pnas()
    u, want = u0.copy(), [u0.copy()]
    for k in range(len(ts) - 1):
        u = u + (ts[k + 1] - ts[k]) * (profile * np.cos(2 * np.pi * ts[k]) + f1 @ u)
        want.append(u)
    want = np.asarray(want)
    for order in (1, 2):  # f2 = 0 decouples y1 from the higher blocks
        got = qj.problems.burgers_carleman(lin, jnp.asarray(order), jnp.asarray(ts), max_order=2)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        np.asarray(qj.problems.burgers_euler(lin, jnp.asarray(ts))), want, atol=1e-14
    )


def test_nonlinear_euler_and_reference_match_numpy_and_scipy():
    prob = qj.problems.burgers_problem()
    _, _, _, f1, f2, profile, u0 = _numpy_pnas()

    def rhs(t, u):
        return profile * np.cos(2 * np.pi * t) + f1 @ u + f2 @ np.kron(u, u)

    ts = np.linspace(0.0, 1.0, 201)
    u, want = u0.copy(), [u0.copy()]
    for k in range(len(ts) - 1):
        u = u + (ts[k + 1] - ts[k]) * rhs(ts[k], u)
        want.append(u)
    euler = np.asarray(qj.problems.burgers_euler(prob, jnp.asarray(ts)))
    np.testing.assert_allclose(euler, np.asarray(want), atol=1e-13)
    exact = solve_ivp(rhs, (0, 1), u0, method="DOP853", t_eval=ts, rtol=1e-12, atol=1e-14).y.T
    ref = np.asarray(qj.problems.burgers_reference(prob, jnp.asarray(ts), 1e-10))
    assert np.abs(ref - exact).max() < 1e-8
    assert np.abs(euler - exact).max() > 1e-5  # the Euler time error is visible at this dt


def test_convergence_in_n_matches_the_published_figure():
    """The article's setup (t in [0, 3], 4000 points), N = 1..3; N = 4 runs in the experiment."""
    prob = qj.problems.burgers_problem()
    out = qj.problems.burgers_errors(prob, (1, 2, 3))
    assert out["error_kind"] == "absolute" and out["setup"]["num_times"] == 4000
    errs = {int(k): v["max_error"] for k, v in out["orders"].items()}
    for n_ord, pub in PUBLISHED_MAX_ERROR.items():
        assert abs(errs[n_ord] / pub - 1) < 0.05, (n_ord, errs[n_ord], pub)
    assert errs[1] > errs[2] > errs[3] > 10 * out["euler"]["max_error"]


def test_ode_method_is_exact_for_the_linear_problem():
    """With f2 = 0 the order-1 Carleman system is the ODE itself: integrated to tolerance it is
    the reference, while forward Euler on the same grid keeps its O(dt) error."""
    prob = qj.problems.burgers_problem(6)
    lin = eqx.tree_at(lambda p: p.field.f2, prob, jnp.zeros_like(prob.field.f2))
    ts = jnp.linspace(0.0, 0.5, 26)
    ref = np.asarray(qj.problems.burgers_reference(lin, ts, 1e-10))
    ode = np.asarray(qj.problems.burgers_carleman(lin, 1, ts, method="ode", rtol=1e-10))
    euler = np.asarray(qj.problems.burgers_carleman(lin, 1, ts))
    assert np.abs(ode - ref).max() < 1e-8
    assert np.abs(euler - ref).max() > 1e-4


def test_bad_input():
    with pytest.raises(ValueError, match="num_points"):
        qj.problems.burgers_problem(2)
    with pytest.raises(ValueError, match="reynolds"):
        qj.problems.burgers_problem(16, -1.0)
    with pytest.raises(ValueError, match="variant"):
        qj.problems.burgers_problem(variant="periodic")
    with pytest.raises(ValueError, match="velocity"):
        qj.problems.burgers_problem(velocity=0.0)
    prob = qj.problems.burgers_problem(4)
    with pytest.raises(ValueError, match="method"):
        qj.problems.burgers_carleman(prob, 1, jnp.linspace(0.0, 1.0, 3), method="rk4")
    with pytest.raises(ValueError, match="num_times"):  # dt = 1.5: forward Euler blows up
        qj.problems.burgers_errors(qj.problems.burgers_problem(), (1, 2), num_times=3)
    with pytest.raises(ValueError, match="orders"):
        qj.problems.burgers_errors(prob, ())
    with pytest.raises(ValueError, match="increasing"):
        qj.problems.burgers_euler(prob, jnp.asarray([0.0, 0.2, 0.1]))
