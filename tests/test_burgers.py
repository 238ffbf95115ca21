"""The PNAS viscous Burgers benchmark: the discretized field and the reference solver.

The convergence in N at the PNAS setup (16 points, Re0 = 20, N = 1..4) is checked on the
`carleman` experiment's output in test_experiments.py, which runs it once.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from qsgd_jax._burgers import burgers_carleman, burgers_problem, burgers_reference


def test_field_is_the_central_difference_burgers_rhs():
    prob = burgers_problem(16, 20.0)
    n, dx, nu = 16, 1 / 17, 1 / 20
    np.testing.assert_allclose(np.asarray(prob.x)[[0, -1]], [-0.5 + dx, 0.5 - dx])
    u = np.random.default_rng(0).standard_normal(n)
    up = np.concatenate([[0.0], u, [0.0]])  # Dirichlet boundaries
    direct = (
        nu * (up[2:] - 2 * up[1:-1] + up[:-2]) / dx**2
        - (up[2:] ** 2 - up[:-2] ** 2) / (4 * dx)
        + np.asarray(prob.forcing) * np.cos(2 * np.pi * 0.3)
    )
    np.testing.assert_allclose(np.asarray(prob.field_at(0.3)(jnp.asarray(u))), direct, rtol=1e-12)
    # the forcing is the PNAS Gaussian centred at x = L0/4, width L0/32, amplitude U0 = 1
    assert abs(float(prob.x[int(np.argmax(prob.forcing))]) - 0.25) < dx
    assert np.all(np.asarray(burgers_problem(16, forced=False).forcing) == 0)


def test_unforced_small_amplitude_is_linear_and_order_one_matches():
    prob = burgers_problem(8, 20.0, forced=False)
    prob = type(prob)(prob.x, 1e-3 * prob.u0, prob.forcing, prob.field, prob.nu, prob.reynolds)
    ts = jnp.linspace(0.0, 0.5, 6)
    ref = np.asarray(burgers_reference(prob, ts, 1e-10))
    lin = np.asarray(burgers_carleman(prob, jnp.asarray(1), ts, 1e-10, max_order=2))
    quad = np.asarray(burgers_carleman(prob, jnp.asarray(2), ts, 1e-10, max_order=2))
    scale = np.abs(ref).max()
    assert np.abs(lin - ref).max() / scale < 1e-2  # nonlinearity ~ amplitude
    assert np.abs(quad - ref).max() < 1e-2 * np.abs(lin - ref).max()


def test_bad_input():
    with pytest.raises(ValueError, match="num_points"):
        burgers_problem(2)
    with pytest.raises(ValueError, match="reynolds"):
        burgers_problem(16, -1.0)
