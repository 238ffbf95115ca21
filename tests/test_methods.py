"""The evolution methods under every transformation, each against a dense numpy/scipy oracle.

One list of methods; each test runs them all (lineax's tests/test_vmap.py layout): the
Carleman state after T steps from the lift of u0 is M^T lift(u0) with M the method's one-step
matrix, assembled with np.kron (B, I + eta A, T_K(hA)^r, expm(eta A)).
"""

import math

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from helpers import METHODS, Midpoint, dense_discrete, dense_generator, random_map

import qsgd_jax as qj

N, ORDER, STEPS = 3, 2, 3
_, _F1, _F2 = random_map(N, seed=4, scale=0.3)
F0, F1, F2 = 0.3 * np.ones(N), _F1 - np.eye(N), _F2  # the field (f0, f1, f2) of the map
U0 = np.array([0.2, -0.1, 0.15])


def _step_matrix(method, eta):
    """The oracle's one-step matrix of a method at learning rate eta (numpy, float64)."""
    A = dense_generator(F0, F1, F2, ORDER)
    if isinstance(method, qj.Discrete):
        return dense_discrete(eta * F0, np.eye(N) + eta * F1, eta * F2, ORDER)
    if isinstance(method, qj.Euler):
        return np.eye(A.shape[0]) + eta * A
    if isinstance(method, qj.Expm):
        return scipy.linalg.expm(eta * A)
    if isinstance(method, Midpoint):
        return np.eye(A.shape[0]) + eta * A + (eta * A) @ (eta * A) / 2
    r, K = method.segments, int(method.K)
    hA = (eta / r) * A
    T = sum(np.linalg.matrix_power(hA, k) / math.factorial(k) for k in range(K + 1))
    return np.linalg.matrix_power(T, r)


def _oracle(method, eta, u0=U0):
    lift = np.concatenate([[1.0], u0, np.kron(u0, u0)])
    y = np.linalg.matrix_power(_step_matrix(method, eta), STEPS) @ lift
    return y[1 : 1 + N]


def _run(method, eta, u0):
    eta = jnp.asarray(eta)
    poly = qj.polynomial_map(eta * F0, jnp.eye(N) + eta * F1, eta * F2, eta=eta, symmetric=False)
    op = qj.carleman(poly, ORDER)
    return qj.evolve(op, op.lift(u0), STEPS, method=method).y1[-1]


def _id(m):
    return type(m).__name__


@pytest.mark.parametrize("method", METHODS, ids=_id)
def test_jit(method):
    got = jax.jit(lambda e, u: _run(method, e, u))(0.1, jnp.asarray(U0))
    np.testing.assert_allclose(got, _oracle(method, 0.1), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("method", METHODS, ids=_id)
def test_vmap_over_eta(method):
    etas = np.array([0.05, 0.1, 0.2])
    got = jax.vmap(lambda e: _run(method, e, jnp.asarray(U0)))(jnp.asarray(etas))
    want = np.stack([_oracle(method, e) for e in etas])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("method", METHODS, ids=_id)
def test_grad_wrt_eta(method):
    g = jax.grad(lambda e: jnp.sum(_run(method, e, jnp.asarray(U0))))(0.1)
    h = 1e-6
    fd = (np.sum(_oracle(method, 0.1 + h)) - np.sum(_oracle(method, 0.1 - h))) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("method", METHODS, ids=_id)
def test_jvp_wrt_u0(method):
    v = np.array([1.0, 0.5, -2.0])
    _, tangent = jax.jvp(lambda u: _run(method, 0.1, u), (jnp.asarray(U0),), (jnp.asarray(v),))
    h = 1e-6
    fd = (_oracle(method, 0.1, U0 + h * v) - _oracle(method, 0.1, U0 - h * v)) / (2 * h)
    np.testing.assert_allclose(tangent, fd, rtol=1e-6, atol=1e-9)


def test_string_shorthand_and_bad_method():
    assert qj.WindowConfig(0.1, 2, method="taylor").method.max_terms == 4
    cfg = qj.WindowConfig(0.1, 2, method=qj.Expm(), readout=qj.readout.Sampled())
    assert isinstance(cfg.method, qj.Expm) and isinstance(cfg.readout, qj.readout.Sampled)
    assert isinstance(
        qj.WindowConfig(0.1, 2, readout="gaussian").readout, qj.readout.GaussianSurrogate
    )
    poly = qj.polynomial_map(F0, np.eye(N) + F1, F2, eta=1.0)
    assert isinstance(qj.carleman(poly, 2), qj.CarlemanOperator)
    with pytest.raises(ValueError, match="`method` must be .*'discrete'.*got 'rk4'"):
        qj.evolve(qj.carleman(poly, 2), qj.carleman(poly, 2).lift(jnp.zeros(N)), 1, method="rk4")
    with pytest.raises(TypeError, match="`method` must be .*got 'rk4'"):  # the one converter
        qj.error_budget(poly, jnp.zeros(N), 1, order=1, method="rk4")
    with pytest.raises(ValueError, match="`K`"):
        qj.TruncatedTaylor(-1)
    with pytest.raises(ValueError, match=r"`order` must lie in \[1, inf\], got 0"):
        qj.WindowConfig(0.1, 2, order=0)  # named as `order`, not as the derived `max_order`
    with pytest.raises(ValueError, match="`method` must be .*got 'rk4'"):
        qj.WindowConfig(0.1, 2, method="rk4")
    # The shorthand keywords left the entry points: an unknown keyword, not a silent default.
    for call in (
        lambda: qj.carleman(poly, 2, form="discrete"),
        lambda: qj.WindowConfig(0.1, 2, form="taylor"),
        lambda: qj.error_budget(poly, jnp.zeros(N), 1, order=1, taylor_order=2),
    ):
        with pytest.raises(TypeError, match="unexpected keyword"):
            call()


def test_jitted_call_with_throw_raises_at_run_time():
    # u_t = 1e100^t u_0 overflows float64 at t = 4
    op = qj.carleman(qj.polynomial_map(np.zeros(2), np.eye(2) * 1e100, eta=1.0), 1)
    run = jax.jit(lambda u: qj.carleman_error(op, u, 10).absolute)
    with pytest.raises(Exception, match="non-finite values"):
        jax.block_until_ready(run(jnp.ones(2)))
    # a finite start (zero stays zero) passes the same compiled check
    np.testing.assert_array_equal(run(jnp.zeros(2)), np.zeros(11))
    quiet = jax.jit(lambda u: qj.carleman_error(op, u, 10, throw=False).status)
    assert quiet(jnp.ones(2)) == qj.RESULTS.nonfinite


def test_a_user_method_runs_in_a_window_with_its_budget():
    """A method defined outside the library (one class, no other change) in a quantum window.

    Degree 1, order 1, one step from u0 = 0: Midpoint gives u1 = eta f0 + (eta^2 / 2) f1 f0
    with f0 = -g and f1 = -H, checked against jax.grad and a jvp-of-grad HVP of the loss.
    """
    data = qj.ml.load_digits(dtype=jnp.float64)
    model = qj.ml.make_mlp(data.input_shape, 10, hidden=(4,), dtype=jnp.float64)
    params = model.init(jax.random.key(0))
    mask = qj.ml.prune_mask(params, 0.9)
    params = qj.ml.apply_mask(params, mask)
    batch = qj.ml.make_batches(data.x_train, data.y_train, jax.random.key(1), 64, 1)
    full = jax.tree_util.tree_map(lambda b: b[0], batch)
    eta = 0.2
    cfg = qj.WindowConfig(eta, 1, method=Midpoint(), batching="full", history=False)
    p_hat, rep = qj.quantum_window(model.loss_fn, params, mask, full, cfg, jax.random.key(0))
    assert rep.summary()["status"] == qj.RESULTS[qj.RESULTS.successful]
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    keep = np.flatnonzero(np.asarray(jax.flatten_util.ravel_pytree(mask)[0]))
    loss = lambda x: model.loss_fn(unravel(flat.at[keep].set(x)), full)  # noqa: E731
    x0 = flat[keep]
    g = jax.grad(loss)(x0)
    hvp = lambda v: jax.jvp(jax.grad(loss), (x0,), (v,))[1]  # noqa: E731
    f0 = -g
    want = eta * f0 + 0.5 * eta**2 * (-hvp(f0))  # u1 = (I + eta f1 / 2) eta f0 from u0 = 0
    got = jax.flatten_util.ravel_pytree(p_hat)[0][keep] - x0
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-10, atol=1e-12)
