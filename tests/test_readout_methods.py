"""The read-out method family: every method under jit and vmap, the exact read-out returning the
vector bit for bit (and differentiable), the string shorthands equal to the values, bad method
values, the norm estimators.

Oracles: the eager call (jit and vmap must reproduce it lane by lane), the input vector itself
(exact read-out), the analytic gradient of a linear function of theta_hat, and the cost formulas
rounds x N (2 real, 3 complex) and 2 (M - 1) + 1.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsgd_jax as qj

METHODS = [qj.readout.Exact(), qj.readout.Sampled(), qj.readout.GaussianSurrogate()]
IDS = ["exact", "sampled", "gaussian"]
N_FULL, S = 20, 6


def _state(key, s=S, complex_=False):
    x = jax.random.normal(key, (s,))
    if complex_:
        x = x.astype(jnp.complex128) * jnp.exp(1j * jnp.arange(s, dtype=jnp.complex128))
    return x / jnp.linalg.norm(x).astype(x.dtype)


def _problem(key):
    k1, k2 = jax.random.split(key)
    support = jnp.asarray(np.sort(np.random.default_rng(3).permutation(N_FULL)[:S]))
    return 0.4 * jax.random.normal(k1, (S,)), support, jax.random.normal(k2, (N_FULL,))


@pytest.mark.parametrize("method", METHODS, ids=IDS)
def test_tomography_jit_and_vmap_reproduce_eager_calls(getkey, method):
    psi, keys = _state(getkey()), jax.random.split(getkey(), 3)
    eager = np.stack([np.asarray(qj.readout.tomography(k, psi, 1000, method=method)) for k in keys])
    jitted = jax.jit(lambda k, n: qj.readout.tomography(k, psi, n, method=method))
    np.testing.assert_allclose(jitted(keys[0], 1000), eager[0], rtol=1e-12, atol=1e-15)
    batched = jax.jit(jax.vmap(lambda k: qj.readout.tomography(k, psi, 1000, method=method)))(keys)
    np.testing.assert_allclose(batched, eager, rtol=1e-12, atol=1e-15)
    shots = jnp.array([100, 1000, 10_000])
    over_shots = jax.jit(jax.vmap(lambda n: qj.readout.tomography(keys[0], psi, n, method=method)))(
        shots
    )
    np.testing.assert_allclose(over_shots[1], eager[0], rtol=1e-12, atol=1e-15)
    if method.uses_shots:  # a different key gives a different estimate
        assert np.any(eager[0] != eager[1])


@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("method", METHODS, ids=IDS)
def test_download_costs_and_vmap(getkey, method, complex_):
    y1, support, theta_bar = _problem(getkey())
    if complex_:
        y1 = y1.astype(jnp.complex128) * jnp.exp(1j * jnp.arange(S, dtype=jnp.complex128))
        theta_bar = theta_bar.astype(jnp.complex128)

    def f(k, n):
        return qj.readout.download(k, y1, n, support=support, theta_bar=theta_bar, method=method)

    keys, shots = jax.random.split(getkey(), 2), jnp.array([500, 5000])
    batch = jax.jit(jax.vmap(f))(keys, shots)
    for i in range(2):
        one = f(keys[i], int(shots[i]))
        np.testing.assert_allclose(batch.theta_hat[i], one.theta_hat, rtol=1e-12, atol=1e-15)
    rounds = {qj.readout.Exact: 0, qj.readout.Sampled: 2, qj.readout.GaussianSurrogate: 2}[
        type(method)
    ]
    rounds += int(complex_ and rounds > 0)
    assert one.rounds == rounds and one.norm_runs == 0
    np.testing.assert_array_equal(batch.samples, rounds * shots)
    np.testing.assert_array_equal(batch.window_runs, rounds * shots)


def test_exact_readout_is_the_vector_itself(getkey):
    y1, support, theta_bar = _problem(getkey())
    psi = _state(getkey(), complex_=True)
    # tomography: psi itself, shots neither used nor checked
    for shots in (1000, 0, -3, float("inf")):
        np.testing.assert_array_equal(
            qj.readout.tomography(getkey(), psi, shots, method=qj.readout.Exact()), psi
        )

    key = getkey()

    @jax.jit
    def down(y, n):
        return qj.readout.download(
            key, y, n, support=support, theta_bar=theta_bar, method=qj.readout.Exact()
        )

    for shots in (10, 0, jnp.inf):
        r = down(y1, shots)
        np.testing.assert_array_equal(r.u_hat, y1)  # bit for bit, no rounding of y / |y| * |y|
        assert float(r.samples) == 0 and float(r.window_runs) == 0 and r.rounds == 0
        assert float(r.error) == 0 and float(r.state_error) == 0 and float(r.shots) == np.inf
    eager = qj.readout.download(
        getkey(), y1, 0, support=support, theta_bar=theta_bar, method="exact"
    )
    np.testing.assert_array_equal(eager.u_hat, y1)
    np.testing.assert_array_equal(eager.theta_hat[support], theta_bar[support] + y1)
    ys = jax.random.normal(getkey(), (4, S))
    np.testing.assert_array_equal(jax.vmap(down, in_axes=(0, None))(ys, 10).u_hat, ys)
    # grad of sum(w * theta_hat) with respect to y1 is w on the support
    w = jax.random.normal(getkey(), (N_FULL,))
    g = jax.grad(lambda y: jnp.sum(w * down(y, 10).theta_hat))(y1)
    np.testing.assert_allclose(g, w[support], rtol=1e-12)
    # an estimated norm rescales the exact direction
    ae = qj.readout.AmplitudeEstimation(num_queries=64)
    kw = dict(support=support, theta_bar=theta_bar, norm=ae, norm_scale=3.0)
    r = qj.readout.download(getkey(), y1, 1, method=qj.readout.Exact(), **kw)
    np.testing.assert_allclose(r.u_hat, y1 * (r.norm_hat / jnp.linalg.norm(y1)), rtol=1e-12)
    assert float(r.window_runs) == 2 * 63 + 1 and float(r.samples) == 0


@pytest.mark.parametrize(
    ("shorthand", "value"),
    [
        ("exact", qj.readout.Exact()),
        ("sample", qj.readout.Sampled()),
        ("gaussian", qj.readout.GaussianSurrogate()),
    ],
)
def test_string_shorthand_equals_value(getkey, shorthand, value):
    key, psi = getkey(), _state(getkey())
    np.testing.assert_array_equal(
        qj.readout.tomography(key, psi, 300, method=shorthand),
        qj.readout.tomography(key, psi, 300, method=value),
    )
    y1, support, theta_bar = _problem(getkey())
    a, b = (
        qj.readout.download(key, y1, 300, support=support, theta_bar=theta_bar, method=m)
        for m in (shorthand, value)
    )
    np.testing.assert_array_equal(a.theta_hat, b.theta_hat)
    assert float(a.window_runs) == float(b.window_runs)
    for norm in ("known", "amplitude_estimation"):
        m = qj.readout.AmplitudeEstimation() if norm != "known" else qj.readout.KnownNorm()
        assert float(qj.readout.estimate_norm(key, 0.5, method=norm, scale=1.0)) == float(
            qj.readout.estimate_norm(key, 0.5, method=m, scale=1.0)
        )


def test_bad_method_values_raise_type_errors_naming_the_argument(getkey):
    key, psi = getkey(), _state(getkey())
    y1, support, theta_bar = _problem(getkey())
    for bad in ("noise", "Sampled"):
        with pytest.raises(TypeError, match="`method` must be a read-out method"):
            qj.readout.tomography(key, psi, 10, method=bad)
        with pytest.raises(TypeError, match="`method` must be a read-out method"):
            qj.readout.download(key, y1, 10, support=support, theta_bar=theta_bar, method=bad)
    for bad in (
        3,
        qj.readout.KnownNorm(),
    ):  # not a string: the tests' beartype sees it first, or ours
        with pytest.raises(TypeError, match="method"):
            qj.readout.tomography(key, psi, 10, method=bad)
    with pytest.raises(TypeError, match="`norm` must be a norm estimator"):
        qj.readout.download(key, y1, 10, support=support, theta_bar=theta_bar, norm="exact")
    with pytest.raises(TypeError, match="`method` must be a norm estimator"):
        qj.readout.estimate_norm(key, 0.5, method="exact")
    with pytest.raises(ValueError, match="num_queries"):
        qj.readout.AmplitudeEstimation(num_queries=0)
    # Exact skips the shots checks; the samplers keep theirs
    with pytest.raises(TypeError, match="shots"):
        qj.readout.tomography(key, psi, 2.5, method=qj.readout.Sampled())
    assert np.all(np.isfinite(np.asarray(qj.readout.tomography(key, psi, 2.5, method="gaussian"))))


def test_norm_estimators_cost(getkey):
    assert qj.readout.KnownNorm().runs == 0
    assert qj.readout.AmplitudeEstimation(num_queries=256).runs == 2 * 255 + 1
    assert qj.readout.AmplitudeEstimation().num_queries == 1024
    assert float(qj.readout.estimate_norm(getkey(), 0.7, method=qj.readout.KnownNorm())) == 0.7
