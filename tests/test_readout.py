"""Download / re-upload: θ̂ assembly, exact zeros off the support, cost accounting, norm
estimation (amplitude-estimation law against a brute-force phase-estimation simulation),
transformations, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsgd_jax as qj

ae_error_bound = qj.readout.ae_error_bound
amplitude_estimation = qj.readout.amplitude_estimation
amplitude_estimation_probs = qj.readout.amplitude_estimation_probs
estimate_norm = qj.readout.estimate_norm
download = qj.readout.download
upload_cost = qj.readout.upload_cost

N_FULL, S = 40, 12


def _problem(key):
    k1, k2 = jax.random.split(key)
    support = jnp.asarray(np.sort(np.random.default_rng(1).permutation(N_FULL)[:S]))
    y1 = 0.3 * jax.random.normal(k1, (S,))
    theta_bar = jax.random.normal(k2, (N_FULL,))  # non-zero off the support on purpose
    return y1, support, theta_bar


@jax.jit
def _download(key, y1, shots, support, theta_bar):
    return download(key, y1, shots, support=support, theta_bar=theta_bar)


def test_download_assembles_theta_hat(getkey):
    y1, support, theta_bar = _problem(getkey())
    r = _download(getkey(), y1, 10_000, support, theta_bar)
    th, sup = np.asarray(r.theta_hat), np.asarray(support)
    off = np.setdiff1d(np.arange(N_FULL), sup)
    assert np.all(th[off] == 0.0)  # pruned entries exactly zero
    np.testing.assert_allclose(th[sup], np.asarray(theta_bar)[sup] + np.asarray(r.u_hat))
    yn = np.asarray(y1)
    np.testing.assert_allclose(r.norm_hat, np.linalg.norm(yn))  # known norm
    np.testing.assert_allclose(r.error, np.linalg.norm(np.asarray(r.u_hat) - yn))
    np.testing.assert_allclose(r.relative_error, r.error / np.linalg.norm(yn))
    np.testing.assert_allclose(r.error_linf, np.max(np.abs(np.asarray(r.u_hat) - yn)))
    # tomography error ~ sqrt((s - 1) / (4 N)) = 0.017; generous 4x margin
    assert float(r.state_error) < 4 * np.sqrt((S - 1) / (4 * 10_000))
    assert r.rounds == 2 and float(r.samples) == 20_000 and float(r.window_runs) == 20_000
    assert r.upload == upload_cost(S, N_FULL)


def test_keys_vmap_over_keys_and_shots(getkey):
    y1, support, theta_bar = _problem(getkey())
    k1, k2 = getkey(), getkey()
    a = _download(k1, y1, 1000, support, theta_bar)
    np.testing.assert_array_equal(
        a.theta_hat, _download(k1, y1, 1000, support, theta_bar).theta_hat
    )
    assert np.any(a.theta_hat != _download(k2, y1, 1000, support, theta_bar).theta_hat)
    keys = jax.random.split(getkey(), 8)
    shots = jnp.array([100, 1000, 10_000, 100_000, 100, 1000, 10_000, 100_000])
    batch = jax.vmap(_download, in_axes=(0, None, 0, None, None))(
        keys, y1, shots, support, theta_bar
    )
    assert batch.theta_hat.shape == (8, N_FULL)
    np.testing.assert_array_equal(batch.samples, 2 * shots)


def test_complex_download_and_amplitude_estimation_cost(getkey):
    y1, support, theta_bar = _problem(getkey())
    yc = y1.astype(jnp.complex128) * jnp.exp(1j * jnp.arange(S, dtype=jnp.complex128))
    r = download(
        getkey(),
        yc,
        1000,
        support=support,
        theta_bar=theta_bar.astype(jnp.complex128),
        norm=qj.readout.AmplitudeEstimation(num_queries=256),
        norm_scale=3.0,
    )
    assert r.rounds == 3 and r.norm_runs == 2 * 255 + 1
    assert float(r.window_runs) == 3000 + 2 * 255 + 1
    a = (float(jnp.linalg.norm(yc)) / 3.0) ** 2
    # BHMT bound on the probability translates to |c^2 a~ - c^2 a|; with prob >= 8/pi^2
    assert abs(float(r.norm_hat) ** 2 / 9.0 - a) <= 3 * float(ae_error_bound(a, 256))


def test_grad_through_gaussian_download(getkey):
    y1, support, theta_bar = _problem(getkey())
    key, w = getkey(), jax.random.normal(getkey(), (N_FULL,))

    @jax.jit
    def loss(y):
        r = download(
            key, y, 500, support=support, theta_bar=theta_bar, method=qj.readout.GaussianSurrogate()
        )
        return jnp.sum(w * r.theta_hat**2)

    g = jax.grad(loss)(y1)
    for i in range(3):
        e = jnp.zeros(S).at[i].set(1e-6)
        np.testing.assert_allclose(g[i], (loss(y1 + e) - loss(y1 - e)) / 2e-6, rtol=1e-5)


def test_upload_cost_formulas():
    c = upload_cost(1000, 10**6)
    assert (c.sparse_gates, c.sparse_cnots, c.sparse_qubits) == (1000, 20_000, 21)
    assert (c.qram_depth, c.qram_qubits) == (20, 10**6)
    with pytest.raises(ValueError, match="`s`"):
        upload_cost(11, 10)


# --- norm estimation ------------------------------------------------------------------------


def _qpe_brute_force(a, m):
    """Phase estimation on the Grover operator, simulated with explicit 2x2 matrices."""
    psi = np.array([np.sqrt(1 - a), np.sqrt(a)])  # (bad, good)
    reflect_good = np.diag([1.0, -1.0])
    reflect_psi = 2 * np.outer(psi, psi) - np.eye(2)
    q = reflect_psi @ reflect_good
    powers = [psi]
    for _ in range(m - 1):
        powers.append(q @ powers[-1])
    powers = np.array(powers)  # (m, 2): Q^k psi
    k = np.arange(m)
    probs = []
    for y in range(m):
        amp = (np.exp(-2j * np.pi * k * y / m)[:, None] * powers).sum(0) / m
        probs.append(np.sum(np.abs(amp) ** 2))
    return np.array(probs)


@pytest.mark.parametrize("a", [0.0, 0.13, 0.5, 0.91])
def test_amplitude_estimation_law_matches_phase_estimation(a):
    np.testing.assert_allclose(
        amplitude_estimation_probs(a, 32), _qpe_brute_force(a, 32), atol=1e-12
    )


def test_amplitude_estimation_error_scales_like_inverse_m(getkey):
    a, keys = 0.3, jax.random.split(getkey(), 400)
    med = []
    for m in (32, 128, 512, 2048):
        est = jax.vmap(lambda k, m=m: amplitude_estimation(k, a, m))(keys)
        err = np.abs(np.asarray(est) - a)
        assert np.mean(err <= float(ae_error_bound(a, m))) >= 8 / np.pi**2 - 0.05
        med.append(np.median(err) + 1e-300)
    slope = np.polyfit(np.log([32, 128, 512, 2048]), np.log(med), 1)[0]
    assert -1.25 <= slope <= -0.75, slope


def test_norm_estimation_options_and_bad_input(getkey):
    key = getkey()
    assert float(estimate_norm(key, 0.7, method=qj.readout.KnownNorm())) == 0.7
    assert qj.readout.KnownNorm().runs == 0
    with pytest.raises(ValueError, match="scale"):
        estimate_norm(key, 0.7)
    with pytest.raises(ValueError, match="scale"):
        estimate_norm(key, 0.7, scale=0.5)
    with pytest.raises(ValueError, match="num_queries"):
        estimate_norm(key, 0.7, scale=1.0, method=qj.readout.AmplitudeEstimation(num_queries=0))


def test_download_bad_input(getkey):
    y1, support, theta_bar = _problem(getkey())
    key = getkey()
    kw = dict(support=support, theta_bar=theta_bar)
    with pytest.raises(ValueError, match="support"):
        download(key, jnp.ones(N_FULL + 1), 10, support=jnp.arange(N_FULL + 1), theta_bar=theta_bar)
    with pytest.raises(ValueError, match="support"):
        download(key, y1[:-1], 10, **kw)
    with pytest.raises(ValueError, match="repeated"):
        download(key, y1, 10, support=support.at[0].set(support[1]), theta_bar=theta_bar)
    with pytest.raises(ValueError, match="non-finite"):
        download(key, y1.at[0].set(jnp.inf), 10, **kw)
    with pytest.raises(ValueError, match="zero vector"):
        download(key, jnp.zeros(S), 10, **kw)
    with pytest.raises(ValueError, match="shots"):
        download(key, y1, 0, **kw)
    with pytest.raises(TypeError, match="shots"):
        download(key, y1, 3.5, **kw)
    with pytest.raises(ValueError, match="scale"):
        download(key, y1, 10, norm=qj.readout.AmplitudeEstimation(), **kw)


def test_download_traced_bad_input_raises_or_is_nan(getkey):
    y1, support, theta_bar = _problem(getkey())
    key = getkey()
    for y, shots, match in (
        (jnp.zeros(S), 100, "`y1` must be finite and non-zero"),
        (y1.at[0].set(jnp.nan), 100, "`y1` must be finite and non-zero"),
        (y1, 0, "`shots` must be a finite integer"),
        (y1, jnp.inf, "`shots` must be a finite integer"),
    ):
        with pytest.raises(Exception, match=match):
            jax.block_until_ready(_download(key, y, shots, support, theta_bar).theta_hat)
        quiet = jax.jit(
            lambda y, n: download(key, y, n, support=support, theta_bar=theta_bar, throw=False)
        )(y, shots)
        assert np.all(np.isnan(np.asarray(quiet.u_hat)))
    with pytest.raises(ValueError, match="`shots` must be a finite integer"):
        download(key, y1, float("inf"), support=support, theta_bar=theta_bar)
