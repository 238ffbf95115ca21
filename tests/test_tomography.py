"""Vector-state tomography: exact multinomial statistics, consistency, sample complexity,
signs, keys and transformations, the Gaussian surrogate, bad input (eager and traced).

Oracles: scipy's multinomial pmf, analytic moments (N p, N p(1-p)), the delta-method error
E||e||^2 = sum_i (1 - p_i)/(4N) (+ phase term for complex states), Monte-Carlo moments of the
exact sampler (itself checked against scipy), finite differences. Statistical tolerances are
stated at each assert; all keys are seeded.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import qsgd_jax as qj

interference_rounds = qj.readout.interference_rounds
multinomial_counts = qj.readout.multinomial_counts
shots_for_error = qj.readout.shots_for_error
tomography = qj.readout.tomography
tomography_error_bound = qj.readout.tomography_error_bound
tomography_mean = qj.readout.tomography_mean
tomography_std = qj.readout.tomography_std


def _spread_state(key, s, complex_=False, dtype=jnp.float64):
    """A state with every |psi_i|^2 within a factor ~4 of 1/s (so N p_i >> 1 is easy)."""
    k1, k2, k3 = jax.random.split(key, 3)
    mag = jax.random.uniform(k1, (s,), dtype, 0.5, 1.0)
    sign = jnp.where(jax.random.bernoulli(k2, 0.5, (s,)), 1.0, -1.0).astype(dtype)
    psi = mag * sign
    if complex_:
        cdt = jnp.complex128 if dtype == jnp.float64 else jnp.complex64
        phase = jax.random.uniform(k3, (s,), dtype, -jnp.pi, jnp.pi)
        psi = mag.astype(cdt) * jnp.exp(1j * phase.astype(cdt))
        return psi / jnp.linalg.norm(psi).astype(cdt)
    return psi / jnp.linalg.norm(psi)


def _trials(fn, key, n):
    return jax.jit(jax.vmap(fn))(jax.random.split(key, n))


@jax.jit
def _batch(keys, psi, shots):
    """Shared compiled sampler: tomography for each key (shots traced: no recompiles)."""
    return jax.vmap(lambda k: tomography(k, psi, shots))(keys)


@jax.jit
def _batch_gauss(keys, psi, shots):
    return jax.vmap(lambda k: tomography(k, psi, shots, method=qj.readout.GaussianSurrogate()))(
        keys
    )


def _run(key, psi, shots, n=200, gauss=False):
    return np.asarray((_batch_gauss if gauss else _batch)(jax.random.split(key, n), psi, shots))


# --- multinomial sampler -------------------------------------------------------------------

_P = jnp.array([0.2, 0.45, 0.0, 0.1, 0.25])  # odd length (padding path), one zero


@jax.jit
def _counts(keys, shots):
    return jax.vmap(lambda k: multinomial_counts(k, _P, shots))(keys)


def test_multinomial_counts_exact_pmf_and_moments(getkey):
    pn = np.asarray(_P)
    n_shots, trials = 3, 20000
    counts = np.asarray(_counts(jax.random.split(getkey(), trials), n_shots))
    assert np.all(counts.sum(1) == n_shots) and np.all(counts[:, 2] == 0)
    outcomes = np.array(
        [c for c in np.ndindex(*(n_shots + 1,) * 5) if sum(c) == n_shots and c[2] == 0]
    )
    freq = np.array([np.sum(np.all(counts == o, axis=1)) for o in outcomes])
    assert freq.sum() == trials  # nothing outside the support of the law
    expected = scipy.stats.multinomial.pmf(outcomes, n_shots, pn) * trials  # all >= 20
    chi2 = np.sum((freq - expected) ** 2 / expected)  # goodness of fit at the 0.1 % level
    assert scipy.stats.chi2.sf(chi2, len(outcomes) - 1) > 1e-3
    # large N (same compiled function: shots are traced)
    n_shots, trials = 1e6, 4000
    counts = np.asarray(_counts(jax.random.split(getkey(), trials), n_shots))
    assert np.all(counts.sum(1) == n_shots)
    se = np.sqrt(n_shots * pn * (1 - pn) / trials)
    np.testing.assert_array_less(np.abs(counts.mean(0) - n_shots * pn), 5 * se + 1e-9)
    ref = n_shots * (np.diag(pn) - np.outer(pn, pn))
    # sample covariance: relative standard error ~ sqrt(2 / trials) = 2.2 %
    np.testing.assert_allclose(np.cov(counts.T), ref, rtol=0.12, atol=0.12 * np.abs(ref).max())


# --- consistency and sample complexity ------------------------------------------------------

S = 64


def test_error_decreases_like_inverse_sqrt_shots(getkey):
    psi = _spread_state(getkey(), S)
    shots = [1e2, 1e3, 1e4, 1e5, 1e6]
    rms = [
        np.sqrt(np.mean(np.sum((_run(getkey(), psi, n) - np.asarray(psi)) ** 2, axis=1)))
        for n in shots
    ]
    slope = np.polyfit(np.log(shots), np.log(rms), 1)[0]
    assert abs(slope + 0.5) <= 0.1, slope


@pytest.mark.parametrize("complex_", [False, True])
def test_l2_error_meets_eps_with_stated_shots(getkey, complex_):
    eps, delta = 0.1, 0.05
    psi = _spread_state(getkey(), S, complex_)
    n_ok = shots_for_error(eps, delta, S, "l2", complex_amplitudes=complex_)
    errs = np.linalg.norm(_run(getkey(), psi, n_ok) - np.asarray(psi), axis=1)
    assert np.mean(errs <= eps) >= 0.95
    # Teeth: with shots for a typical error of 1.5 eps the criterion fails almost always.
    factor = 5.0 if complex_ else 1.0
    n_bad = math.ceil(factor * (S - 1) / (4 * (1.5 * eps) ** 2))
    errs = np.linalg.norm(_run(getkey(), psi, n_bad) - np.asarray(psi), axis=1)
    assert np.mean(errs <= eps) < 0.05


def test_linf_error_meets_eps_with_stated_shots(getkey):
    eps, delta = 0.02, 0.05
    psi = _spread_state(getkey(), S)
    n_ok = shots_for_error(eps, delta, S, "linf")
    errs = np.max(np.abs(_run(getkey(), psi, n_ok) - np.asarray(psi)), axis=1)
    assert np.mean(errs <= eps) >= 0.95


@pytest.mark.parametrize("complex_", [False, True])
def test_mean_square_error_matches_delta_method(getkey, complex_):
    n_shots = 1e5
    psi = _spread_state(getkey(), S, complex_)
    sq = np.sum(np.abs(_run(getkey(), psi, n_shots) - np.asarray(psi)) ** 2, axis=1)
    p = np.abs(np.asarray(psi)) ** 2
    predicted = np.sum(1 - p) / (4 * n_shots)
    if complex_:
        phi = np.angle(np.asarray(psi))
        predicted += np.sum(1 - 0.5 * p * np.sin(2 * phi) ** 2) / n_shots
    # mean of ~chi^2 with >= 63 dof over 200 trials: relative SE ~ 1.3 %; delta-method bias
    # O(1/(N p_min)) ~ 0.2 %.
    np.testing.assert_allclose(np.mean(sq), predicted, rtol=0.06)


def test_error_bound_is_inverse_of_shots_for_error():
    for norm in ("l2", "linf"):
        n = shots_for_error(0.05, 0.01, 1000, norm)
        assert float(tomography_error_bound(n, 0.01, 1000, norm)) <= 0.05
        assert float(tomography_error_bound(n - 10, 0.01, 1000, norm)) > 0.05
    assert shots_for_error(0.1, 0.05, 100, "l2") > shots_for_error(0.1, 0.05, 100, "linf")
    assert shots_for_error(0.1, 0.05, 100, complex_amplitudes=True) > shots_for_error(
        0.1, 0.05, 100
    )
    assert interference_rounds(False) == 2 and interference_rounds(True) == 3


# --- signs, support, keys, transformations --------------------------------------------------


def test_signs_exact_above_noise_and_zeros_stay_zero(getkey):
    psi = _spread_state(getkey(), S).at[::7].set(0.0)
    psi = psi / jnp.linalg.norm(psi)
    est = _run(getkey(), psi, 1e5)
    # noise ~ 1/(2 sqrt(N)) = 0.0016; smallest non-zero |psi_i| > 0.06 (> 35 sigma)
    nz = np.asarray(psi) != 0
    assert np.all(np.sign(est[:, nz]) == np.sign(np.asarray(psi)[nz]))
    assert np.all(est[:, ~nz] == 0)


def test_support_restriction_keys_and_vmap_over_shots(getkey):
    psi_s = _spread_state(getkey(), S)
    support = jnp.asarray(np.random.default_rng(0).permutation(100)[:S])
    full = jnp.zeros(100).at[support].set(psi_s)
    k1, k2 = getkey(), getkey()
    traces = []

    @jax.jit
    def f(k, n):
        traces.append(1)
        return tomography(k, full, n, support=support)

    a = f(k1, jnp.asarray(1000))
    outside = np.setdiff1d(np.arange(100), np.asarray(support))
    assert np.all(np.asarray(a)[outside] == 0)
    # same key, same estimate as the restricted problem; different key, different samples
    np.testing.assert_allclose(a[support], _batch(k1[None], psi_s, 1000)[0], rtol=1e-12)
    np.testing.assert_array_equal(a, f(k1, jnp.asarray(1000)))
    assert np.any(np.asarray(a) != np.asarray(f(k2, jnp.asarray(1000))))
    f(k1, jnp.asarray(123456))
    assert len(traces) == 1  # shots are traced: no recompilation
    shots = jnp.array([10, 1000, 123456])
    batched = jax.jit(jax.vmap(lambda n: tomography(k1, full, n, support=support)))(shots)
    np.testing.assert_allclose(batched[1], a, rtol=1e-12)


def test_float32_kept(getkey):
    psi = _spread_state(getkey(), 8, dtype=jnp.float32)
    assert (
        tomography(getkey(), psi, 100, method=qj.readout.GaussianSurrogate()).dtype == jnp.float32
    )
    psic = _spread_state(getkey(), 8, complex_=True, dtype=jnp.float32)
    assert (
        tomography(getkey(), psic, 100, method=qj.readout.GaussianSurrogate()).dtype
        == jnp.complex64
    )


# --- Gaussian surrogate ---------------------------------------------------------------------


@pytest.mark.parametrize("complex_", [False, True])
def test_surrogate_moments_match_sampler(getkey, complex_):
    # N p_i >= 800: the sampler's second-order biases (~ 1/sqrt(N p_i) in units of sigma)
    # stay below 0.04 sigma
    n_shots, trials = 200_000, 1000
    psi = _spread_state(getkey(), S, complex_)
    samp = _run(getkey(), psi, n_shots, trials)
    gaus = _run(getkey(), psi, n_shots, trials, gauss=True)
    unit = np.asarray(psi) / np.abs(np.asarray(psi))
    std_r, std_t = (np.asarray(x) for x in tomography_std(psi, n_shots))
    p = np.abs(np.asarray(psi)) ** 2
    small = p < np.median(p)

    def standardized(x):
        e = (x - np.asarray(psi)) / unit  # radial = real part, tangential = imaginary part
        out = [e.real / std_r]
        if complex_:
            out.append(e.imag / std_t)
        return out

    for zs, zg in zip(standardized(samp), standardized(gaus), strict=True):
        for group in (small, ~small):  # entries with small and with large |psi_i|
            a, b = zs[:, group].ravel(), zg[:, group].ravel()
            # 32 000 pooled values each: SE of a mean 0.006, of a variance ~0.8 %
            assert abs(a.mean() - b.mean()) < 0.05
            np.testing.assert_allclose(a.var(), b.var(), rtol=0.06)
            np.testing.assert_allclose(b.var(), 1.0, rtol=0.03)


@pytest.mark.parametrize("complex_", [False, True])
def test_grad_through_surrogate_matches_finite_differences(getkey, complex_):
    psi = _spread_state(getkey(), 5, complex_)
    key, w = getkey(), jax.random.normal(getkey(), (5,))

    @jax.jit
    def loss(x, n):
        # normalized inside: the perturbed points stay valid states
        est = tomography(
            key, x / jnp.linalg.norm(x).astype(x.dtype), n, method=qj.readout.GaussianSurrogate()
        )
        return jnp.sum(w * jnp.abs(est) ** 2) + jnp.sum(w * jnp.real(est))

    n_shots = jnp.asarray(50.0)
    g = jax.grad(loss)(psi, n_shots)
    h = 1e-6
    for i in range(5):
        e = jnp.zeros(5, psi.dtype).at[i].set(1)
        fd = (loss(psi + h * e, n_shots) - loss(psi - h * e, n_shots)) / (2 * h)
        np.testing.assert_allclose(np.real(g[i]), fd, rtol=1e-5, atol=1e-8)
    g_n = jax.grad(loss, argnums=1)(psi, n_shots)
    fd_n = (loss(psi, n_shots + 1e-4) - loss(psi, n_shots - 1e-4)) / 2e-4
    np.testing.assert_allclose(g_n, fd_n, rtol=1e-5, atol=1e-10)


# --- bad input ------------------------------------------------------------------------------


def test_bad_input(getkey):
    key = getkey()
    psi = _spread_state(getkey(), 4)
    with pytest.raises(ValueError, match="normalized"):
        tomography(key, 2 * psi, 100)
    with pytest.raises(ValueError, match="non-finite"):
        tomography(key, psi.at[0].set(jnp.nan), 100)
    with pytest.raises(ValueError, match="shots"):
        tomography(key, psi, 0)
    with pytest.raises(ValueError, match="shots"):
        tomography(key, psi, -5)
    with pytest.raises(TypeError, match="shots"):
        tomography(key, psi, 2.5)
    with pytest.raises(ValueError, match="support"):
        tomography(key, psi, 10, support=jnp.arange(5))
    with pytest.raises(ValueError, match="support"):
        tomography(key, psi, 10, support=jnp.array([0, 4]))
    with pytest.raises(ValueError, match="repeated"):
        tomography(key, psi, 10, support=jnp.array([0, 0]))
    with pytest.raises((ValueError, TypeError), match="method"):  # beartype sees it first
        tomography(key, psi, 10, method="noise")
    with pytest.raises(ValueError, match="eps"):
        shots_for_error(0.0, 0.05, 10)
    with pytest.raises(ValueError, match="eps"):
        shots_for_error(-0.1, 0.05, 10)
    with pytest.raises(ValueError, match="delta"):
        shots_for_error(0.1, 1.5, 10)
    with pytest.raises(ValueError, match="`s`"):
        shots_for_error(0.1, 0.05, 0)
    with pytest.raises((ValueError, TypeError), match="norm"):
        shots_for_error(0.1, 0.05, 10, "l1")


# --- surrogate moments where entries are unresolved (sign errors) ----------------------------


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_surrogate_mean_and_variance_match_sampler_at_small_amplitudes(getkey, sign):
    # psi = [sqrt(1 - p), +-sqrt(p)], N = 1e4: N p from 0.1 (almost always read as 0) through
    # 1.3 (the sign is often wrong) to 50 (resolved). Oracle: the exact sampler over many keys.
    n_shots, trials = 1e4, 40_000
    for p in (1e-5, 1.3e-4, 5e-4, 2e-3, 5e-3):
        psi = jnp.array([np.sqrt(1 - p), sign * np.sqrt(p)])
        x = _run(getkey(), psi, n_shots, trials)[:, 1]
        mean, var = x.mean(), x.var()
        se_mean = np.sqrt(var / trials)
        se_var = np.sqrt(np.mean((x - mean) ** 4) - var**2) / np.sqrt(trials)
        m_pred = float(tomography_mean(psi, n_shots)[1])
        v_pred = float(tomography_std(psi, n_shots)[0][1]) ** 2
        # 4.5 standard errors (both moments, 10 cases: a false alarm < 1e-4), plus the
        # documented model error (Poisson interference counts, O(p) relative)
        assert abs(m_pred - mean) < 4.5 * se_mean + 1e-3 * np.sqrt(p), (p, m_pred, mean)
        assert abs(v_pred - var) < 4.5 * se_var + 3e-3 * p, (p, v_pred, var)
        # the Gaussian surrogate draws with these moments
        g = _run(getkey(), psi, n_shots, trials, gauss=True)[:, 1]
        assert abs(g.mean() - m_pred) < 4.5 * np.sqrt(v_pred / trials)
        np.testing.assert_allclose(g.var(), v_pred, rtol=4.5 * np.sqrt(2 / trials))
    # the case reported: p = 1.3e-4, a negative entry, variance 0.80 p (the delta method's
    # (1 - p) / (4 N) = 0.19 p ignores the sign errors)
    p = 1.3e-4
    psi = jnp.array([np.sqrt(1 - p), -np.sqrt(p)])
    np.testing.assert_allclose(float(tomography_std(psi, 1e4)[0][1]) ** 2 / p, 0.80, atol=0.01)


def test_surrogate_moments_tend_to_delta_method_when_resolved():
    p = jnp.array([0.5, 0.3, 0.15, 0.05])
    psi = jnp.sqrt(p) * jnp.array([1.0, -1.0, 1.0, -1.0])
    for n_shots in (1e4, 1e6, 1e8):
        var = np.asarray(tomography_std(psi, n_shots)[0]) ** 2
        delta = (1 - np.asarray(p)) / (4 * n_shots)
        np.testing.assert_allclose(var, delta, rtol=2e-3)
        bias = np.asarray(tomography_mean(psi, n_shots) - psi)
        np.testing.assert_allclose(bias, -np.asarray(psi) * delta / (2 * np.asarray(p)), rtol=0.05)


# --- bad input under jit / vmap: checked at run time ---------------------------------------


@jax.jit
def _traced(key, psi, shots):
    return tomography(key, psi, shots)


@jax.jit
def _traced_quiet(key, psi, shots):
    return tomography(key, psi, shots, throw=False)


def test_traced_bad_input_raises_or_is_nan(getkey):
    key = getkey()
    psi = _spread_state(getkey(), 4)
    assert np.all(np.isfinite(np.asarray(_traced(key, psi, 100.0))))
    # inf shots used to hang (endless binomial rejection loop); 0 shots gave NaN
    for shots in (0.0, -3.0, 2.5, np.inf, np.nan):
        with pytest.raises(Exception, match="`shots` must be a finite integer"):
            jax.block_until_ready(_traced(key, psi, shots))
        assert np.all(np.isnan(np.asarray(_traced_quiet(key, psi, shots))))
    # unnormalized and NaN states used to give finite numbers
    for bad in (2 * psi, psi.at[1].set(jnp.nan), jnp.zeros(4)):
        with pytest.raises(Exception, match="`psi` must be a finite, normalized state"):
            jax.block_until_ready(_traced(key, bad, 100.0))
        assert np.all(np.isnan(np.asarray(_traced_quiet(key, bad, 100.0))))
    # vmap over shots: one bad entry is reported
    shots = jnp.array([10.0, 0.0, 1000.0])
    with pytest.raises(Exception, match="`shots` must be a finite integer"):
        jax.block_until_ready(jax.jit(jax.vmap(lambda n: tomography(key, psi, n)))(shots))
    quiet = jax.jit(jax.vmap(lambda n: tomography(key, psi, n, throw=False)))(shots)
    assert np.all(np.isnan(np.asarray(quiet[1]))) and np.all(np.isfinite(np.asarray(quiet[0])))
    # the Gaussian surrogate has the same checks
    with pytest.raises(Exception, match="`psi` must be a finite, normalized state"):
        jax.block_until_ready(
            jax.jit(lambda x: tomography(key, x, 100, method=qj.readout.GaussianSurrogate()))(
                2 * psi
            )
        )


def test_bad_shots_eager_and_multinomial_counts(getkey):
    key = getkey()
    psi = _spread_state(getkey(), 4)
    for bad in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(ValueError, match="`shots` must be a finite integer"):
            tomography(key, psi, bad)
        with pytest.raises(ValueError, match="`shots` must be a finite integer"):
            multinomial_counts(key, _P, bad)
    with pytest.raises(TypeError, match="shots"):
        tomography(key, psi, True)
    with pytest.raises(ValueError, match="scalar"):
        tomography(key, psi, jnp.array([10, 20]))
    with pytest.raises(ValueError, match="shots"):
        multinomial_counts(key, _P, 0)
    with pytest.raises(ValueError, match="probs"):
        multinomial_counts(key, jnp.array([0.5, -0.1]), 10)
    with pytest.raises(ValueError, match="probs"):
        multinomial_counts(key, jnp.zeros(3), 10)
    with pytest.raises(ValueError, match="non-finite"):
        multinomial_counts(key, jnp.array([0.5, jnp.nan]), 10)
    with pytest.raises(Exception, match="`shots` must be a finite integer"):
        jax.block_until_ready(jax.jit(lambda n: multinomial_counts(key, _P, n))(jnp.inf))
