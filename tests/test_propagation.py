"""Error-propagation curve E(t), t* and t_c against exact spectra; the spectrum plots."""

import chex
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq

import qsgd_jax as qj
from qsgd_jax.plot import plot_error_propagation, plot_spectral_densities
from qsgd_jax.spectrum import error_propagation, propagation_from_spectrum, slq_spectrum

ETA = 0.1


def _spectrum(n=300, seed=0):
    """Mostly dissipative (0 < eta*lam < 0.15) with 6 negative modes near -1: E dips, then grows."""
    rng = np.random.default_rng(seed)
    return np.concatenate([-1.0 + rng.uniform(-0.2, 0.2, 6), rng.uniform(0.02, 1.5, n - 6)])


def _exact(ev, eta, t):
    """Dissipative and divergent parts of E(t), straight from the eigenvalues."""
    a = np.abs(1 - eta * ev)
    return np.sum(np.where(a < 1, a**t, 0)) / a.size, np.sum(np.where(a > 1, a**t, 0)) / a.size


def test_exact_spectrum_dip_and_crossings():
    ev = _spectrum()
    c = error_propagation(jnp.asarray(ev), jnp.full(ev.shape, 1.0 / ev.size), ETA, num_steps=80)
    t = np.arange(81)
    d = np.array([_exact(ev, ETA, k)[0] for k in t])
    g = np.array([_exact(ev, ETA, k)[1] for k in t])
    np.testing.assert_allclose(c.dissipative, d, rtol=1e-12)
    np.testing.assert_allclose(c.divergent, g, rtol=1e-12)
    np.testing.assert_allclose(c.total, d + g, rtol=1e-12)
    e = d + g
    assert e[0] == 1.0 and e.min() < 0.5  # dips below 1 ...
    t_star = int(np.argmax((e >= 1) & (t >= 1)))
    assert 1 < t_star < 80 and e[t_star - 1] < 1  # ... and crosses it again
    assert float(c.t_star) == t_star
    root = brentq(lambda s: np.mean(np.abs(1 - ETA * ev) ** s) - 1, 1.0, 80.0)
    assert float(c.t_star_continuous) == pytest.approx(root, abs=1e-9)
    t_c = int(np.argmax(g > d))
    assert 0 < t_c < t_star and float(c.t_c) == t_c
    a = np.abs(1 - ETA * ev)
    root_c = brentq(lambda s: np.sum(a[a > 1] ** s) - np.sum(a[a < 1] ** s), 0.0, 80.0)
    assert float(c.t_c_continuous) == pytest.approx(root_c, abs=1e-9)


def test_slq_full_depth_on_diagonal_is_exact(getkey):
    # Rademacher probes on a diagonal matrix with distinct eigenvalues and full Lanczos depth:
    # the quadrature is the exact uniform spectrum, so E, t*, t_c are exact.
    ev = _spectrum(n=60, seed=2)
    d = jnp.asarray(ev)
    sd = slq_spectrum(
        lambda v: d * v, 60, getkey(), num_steps=60, num_probes=1, reortho="full", dtype=jnp.float64
    )
    c = propagation_from_spectrum(sd, ETA, num_steps=200)
    ref = error_propagation(d, jnp.ones(60, jnp.float64), ETA, num_steps=200)
    np.testing.assert_allclose(c.total, ref.total, rtol=1e-7)
    assert float(c.t_star) == float(ref.t_star) and float(c.t_c) == float(ref.t_c)
    assert float(c.t_star_continuous) == pytest.approx(float(ref.t_star_continuous), abs=1e-5)


def test_slq_on_rotated_spectrum_within_quadrature_accuracy(getkey):
    ev = _spectrum()
    rng = np.random.default_rng(5)
    q, _ = np.linalg.qr(rng.normal(size=(ev.size, ev.size)))
    a = jnp.asarray((q * ev) @ q.T)
    sd = slq_spectrum(
        lambda v: a @ v, ev.size, getkey(), num_steps=40, num_probes=30, dtype=jnp.float64
    )
    c = propagation_from_spectrum(sd, ETA, num_steps=80)
    ref = error_propagation(jnp.asarray(ev), jnp.ones(ev.size), ETA, num_steps=80)
    # Tolerance: the Hutchinson error of 30 probes on the 2 % weight of the growing modes
    # (about 15 % relative), i.e. about 2 steps of their growth factor 1.1.
    ts = int(ref.t_star)
    np.testing.assert_allclose(c.total[:ts], ref.total[:ts], rtol=0.2)
    assert abs(float(c.t_star) - ts) <= 3
    assert abs(float(c.t_c) - float(ref.t_c)) <= 2


def test_vmap_over_eta_compiles_once():
    ev = jnp.asarray(_spectrum())
    w = jnp.ones(ev.shape)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def sweep(etas):
        return jax.vmap(lambda e: error_propagation(ev, w, e, num_steps=100))(etas)

    out = sweep(jnp.array([0.05, 0.1, 0.2]))
    sweep(jnp.array([0.07, 0.15, 0.3]))
    for i, eta in enumerate([0.05, 0.1, 0.2]):
        single = error_propagation(ev, w, eta, num_steps=100)
        assert float(out.t_star[i]) == float(single.t_star)
        np.testing.assert_allclose(out.total[i], single.total, rtol=1e-12)
    # Larger steps amplify the negative modes faster: the window shrinks.
    assert float(out.t_star[0]) > float(out.t_star[1]) > float(out.t_star[2])


def test_dissipative_and_immediately_divergent_cases():
    pos = jnp.linspace(0.1, 1.0, 20)
    c = error_propagation(pos, jnp.ones(20), ETA, num_steps=50)
    assert np.isinf(float(c.t_star)) and np.isinf(float(c.t_c))
    assert float(c.total[-1]) < 1.0 and float(jnp.max(c.divergent)) == 0.0
    neg = jnp.array([-3.0, -2.0, 0.5])
    c = error_propagation(neg, jnp.ones(3), ETA, num_steps=10)
    assert float(c.t_star) == 1.0 and float(c.t_c) == 0.0
    # lambda = 0 and eta*lambda = 2 are marginal modes.
    c = error_propagation(jnp.array([0.0, 20.0, 1.0]), jnp.ones(3), ETA, num_steps=5)
    np.testing.assert_allclose(c.marginal, 2.0 / 3.0)


def test_bad_input():
    ev, w = jnp.ones(4), jnp.ones(4)
    with pytest.raises(ValueError, match="`eta` must be finite and > 0"):
        error_propagation(ev, w, 0.0)
    with pytest.raises(ValueError, match="same shape"):
        error_propagation(ev, jnp.ones(3), 0.1)
    with pytest.raises(ValueError, match="`weights`"):
        error_propagation(ev, jnp.array([1.0, -1.0, 1.0, 1.0]), 0.1)
    with pytest.raises(ValueError, match="`num_steps`"):
        error_propagation(ev, w, 0.1, num_steps=0)


def test_plots(getkey, tmp_path):
    ev = _spectrum(n=80)
    d = jnp.asarray(ev)
    sd = slq_spectrum(lambda v: d * v, 80, getkey(), num_steps=30, dtype=jnp.float64)
    # A second "checkpoint": the same spectrum stretched by 1.5.
    sd2 = eqx.tree_at(
        lambda x: (x.nodes, x.grid, x.density),
        sd,
        (1.5 * sd.nodes, 1.5 * sd.grid, sd.density / 1.5),
    )
    dens = {"epoch 0": sd, "epoch 2": sd2}
    curves = {k: propagation_from_spectrum(v, ETA, num_steps=60) for k, v in dens.items()}
    fig = plot_spectral_densities(dens)
    assert len(fig.axes[0].lines) == 3  # two densities and the zero line
    fig.savefig(tmp_path / "density.png")
    fig = plot_error_propagation(curves, scale=80.0)
    fig.savefig(tmp_path / "propagation.png")
    labels = [ln.get_label() for ln in fig.axes[0].lines]
    assert any("t* =" in lb for lb in labels) and any("t_c =" in lb for lb in labels)
    assert (tmp_path / "density.png").stat().st_size > 1000
    assert (tmp_path / "propagation.png").stat().st_size > 1000


# --- The paper's error proxy E_paper(t) (docs/math/propagation.md) -----------------------


def _proxy_oracle(ev, w, eta, a_c, num_steps):
    """E_paper(t), N_c and the crossing steps straight from the eigenvalues (numpy)."""
    w = np.asarray(w, float) / np.sum(w)
    a = -eta * np.asarray(ev, float)
    keep = np.abs(a) >= a_c
    n_c = np.sum(w[keep])
    t = np.arange(num_steps + 1)
    val = np.array([np.sum(w[keep] * np.abs(1 + a[keep]) ** k) for k in t]) / n_c
    below = np.flatnonzero((val < 1) & (t >= 1))
    first = float(t[below[0]]) if below.size else np.inf
    back = np.flatnonzero((val >= 1) & (t > first))
    return val, n_c, first, float(t[back[0]]) if back.size else np.inf


def _paper_like(seed=0):
    """Near-zero bulk (dropped by a_c), dissipative modes with eta*lam in [0.4, 0.8], a few
    negative modes with growth 1.41-1.45: E_paper dips below 1, then crosses back."""
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.uniform(-1.0, 1.0, 700), rng.uniform(4.0, 8.0, 290), rng.uniform(-4.5, -4.1, 10)]
    )


def test_paper_proxy_on_exact_spectrum():
    ev = _paper_like()
    p = qj.spectrum.paper_error_proxy(
        jnp.asarray(ev), jnp.full(ev.shape, 1.0 / ev.size), ETA, num_steps=40
    )
    val, n_c, first, back = _proxy_oracle(ev, np.ones(ev.size), ETA, 0.4, 40)
    np.testing.assert_allclose(p.value, val, rtol=1e-12)
    assert float(p.kept_mass) == pytest.approx(n_c, rel=1e-12) and n_c == pytest.approx(0.3)
    assert float(p.value[0]) == 1.0
    assert float(p.first_below) == first == 1.0
    assert 3 < back < 40 and float(p.crosses_back) == back
    assert float(p.minimum) == pytest.approx(val.min(), rel=1e-12)
    assert float(p.argmin) == float(np.argmin(val)) and float(p.minimum) < 0.5
    np.testing.assert_array_equal(p.t, np.arange(41.0))
    assert float(p.eta) == pytest.approx(ETA) and float(p.a_c) == pytest.approx(0.4)


def test_paper_proxy_on_diagonal_matrices():
    # A diagonal matrix: its eigenvalues are its diagonal; unnormalized weights (1 each) and a
    # cut-off between distinct modes. Two growing modes 0.7 and 1.2 against two shrinking.
    d = np.array([0.5, -3.0, 5.0, 9.0, -2.0, 12.0, 0.1])  # eta * d: 0.05 ... 1.2
    p = qj.spectrum.paper_error_proxy(jnp.asarray(d), jnp.ones(d.size), ETA, a_c=0.25, num_steps=30)
    # Hand computation: kept |eta d| >= 0.25 -> {-3, 5, 9, 12}, growth |1 - 0.1 d|.
    g = np.abs(1 - ETA * np.array([-3.0, 5.0, 9.0, 12.0]))  # 1.3, 0.5, 0.1, 0.2
    want = np.array([np.mean(g**k) for k in range(31)])
    np.testing.assert_allclose(p.value, want, rtol=1e-12)
    assert float(p.kept_mass) == pytest.approx(4 / 7)
    val, _, first, back = _proxy_oracle(d, np.ones(d.size), ETA, 0.25, 30)
    assert float(p.first_below) == first and float(p.crosses_back) == back
    # a_c = 0 keeps every mode: the proxy is E(t) itself.
    full = qj.spectrum.paper_error_proxy(
        jnp.asarray(d), jnp.ones(d.size), ETA, a_c=0.0, num_steps=30
    )
    ref = qj.spectrum.error_propagation(jnp.asarray(d), jnp.ones(d.size), ETA, num_steps=30)
    np.testing.assert_allclose(full.value, ref.total, rtol=1e-12)
    assert float(full.kept_mass) == pytest.approx(1.0, rel=1e-12)


def test_paper_proxy_from_slq_of_a_diagonal_hessian(getkey):
    # Quadratic loss 0.5 sum d_i p_i^2: its Hessian is diag(d). Full-depth Lanczos from a
    # Rademacher probe on distinct eigenvalues gives nodes = d and weights = 1/s exactly.
    d = jnp.asarray(_paper_like(seed=3)[::10])  # 100 distinct eigenvalues
    sd = qj.spectrum.hessian_spectrum(
        lambda p, b: 0.5 * jnp.sum(d * p["w"] ** 2),
        {"w": jnp.ones(d.size, jnp.float64)},
        [jnp.zeros(1)],
        getkey(),
        view="dense",
        num_steps=d.size,
        reortho="full",
    )
    p = qj.spectrum.paper_proxy_from_spectrum(sd, ETA, num_steps=40)
    val, n_c, first, back = _proxy_oracle(np.asarray(d), np.ones(d.size), ETA, 0.4, 40)
    np.testing.assert_allclose(p.value, val, rtol=1e-8)
    assert float(p.kept_mass) == pytest.approx(n_c, rel=1e-8)
    assert float(p.first_below) == first and float(p.crosses_back) == back


def test_paper_proxy_without_kept_mass_is_nan():
    ev = jnp.linspace(-1.0, 1.0, 11)  # |eta lam| <= 0.1 < a_c
    p = qj.spectrum.paper_error_proxy(ev, jnp.ones(11), ETA, num_steps=10)
    assert float(p.kept_mass) == 0.0
    assert np.all(np.isnan(np.asarray(p.value))) and np.isnan(float(p.minimum))
    assert np.isinf(float(p.first_below)) and np.isinf(float(p.crosses_back))


def test_paper_proxy_vmap_over_eta_compiles_once():
    ev = jnp.asarray(_paper_like())
    w = jnp.ones(ev.shape)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def sweep(etas):
        return jax.vmap(lambda e: qj.spectrum.paper_error_proxy(ev, w, e, num_steps=40))(etas)

    etas = [0.08, 0.1, 0.12]
    out = sweep(jnp.array(etas))
    sweep(jnp.array([0.09, 0.11, 0.13]))
    for i, eta in enumerate(etas):
        val, n_c, first, back = _proxy_oracle(np.asarray(ev), np.ones(ev.size), eta, 0.4, 40)
        np.testing.assert_allclose(out.value[i], val, rtol=1e-12)
        assert float(out.kept_mass[i]) == pytest.approx(n_c, rel=1e-12)
        assert float(out.crosses_back[i]) == back


def test_paper_proxy_bad_input():
    ev, w = jnp.ones(4), jnp.ones(4)
    with pytest.raises(ValueError, match="`eta` must be finite and > 0"):
        qj.spectrum.paper_error_proxy(ev, w, -0.1)
    with pytest.raises(ValueError, match="`a_c` must be finite and >= 0"):
        qj.spectrum.paper_error_proxy(ev, w, 0.1, a_c=-0.4)
    with pytest.raises(ValueError, match="`a_c` must be a finite"):
        qj.spectrum.paper_error_proxy(ev, w, 0.1, a_c=float("inf"))
    with pytest.raises(ValueError, match="same shape"):
        qj.spectrum.paper_error_proxy(ev, jnp.ones(3), 0.1)
    with pytest.raises(ValueError, match="`weights`"):
        qj.spectrum.paper_error_proxy(ev, jnp.array([1.0, -1.0, 1.0, 1.0]), 0.1)
    with pytest.raises(ValueError, match="`num_steps`"):
        qj.spectrum.paper_error_proxy(ev, w, 0.1, num_steps=0)
    with pytest.raises(ValueError, match="`nodes`"):
        qj.spectrum.paper_error_proxy(jnp.array([1.0, jnp.nan, 1.0, 1.0]), w, 0.1)


def test_plot_with_paper_proxy(tmp_path):
    ev = jnp.asarray(_paper_like())
    w = jnp.ones(ev.shape)
    curves = {"step 0": qj.spectrum.error_propagation(ev, w, ETA, num_steps=40)}
    flat = qj.spectrum.paper_error_proxy(jnp.zeros(3), jnp.ones(3), ETA, num_steps=40)
    proxies = {"step 0": qj.spectrum.paper_error_proxy(ev, w, ETA, num_steps=40), "flat": flat}
    fig = qj.plot.plot_error_propagation(curves, proxies=proxies)
    ax = fig.axes[0]
    labels = [ln.get_label() for ln in ax.lines]
    assert any("E_paper(t)" in lb for lb in labels) and any("undefined" in lb for lb in labels)
    assert len(ax.collections) == 1  # one shaded band: the defined proxy's
    fig.savefig(tmp_path / "proxy.png")
    assert (tmp_path / "proxy.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="Nothing to plot"):
        qj.plot.plot_error_propagation({})


def _moment_oracle(ev, eta, a_c, num_steps):
    """E_2(t) and E_paper under reading (ii), straight from the eigenvalues (numpy)."""
    t = np.arange(num_steps + 1)[:, None]
    g = np.abs(1 - eta * np.asarray(ev, float))[None]
    keep = eta * np.abs(np.asarray(ev, float)) >= a_c
    e2 = np.sqrt(np.mean(g ** (2 * t), axis=1))
    paper2 = np.sqrt(np.mean(g[:, keep] ** (2 * t), axis=1))
    return e2, paper2


def test_spectral_growth_moments_readings_and_stability_numbers():
    ev = _paper_like()
    w = jnp.full(ev.shape, 1.0 / ev.size)
    T = 40
    sg = qj.spectrum.spectral_growth(jnp.asarray(ev), w, ETA, num_steps=T)
    e2, paper2 = _moment_oracle(ev, ETA, 0.4, T)
    np.testing.assert_allclose(sg.rms.total, e2, rtol=1e-12)
    np.testing.assert_allclose(sg.paper_rms.value, paper2, rtol=1e-12)
    val, _, first, back = _proxy_oracle(ev, np.ones(ev.size), ETA, 0.4, T)
    np.testing.assert_allclose(sg.paper_mean.value, val, rtol=1e-12)
    assert float(sg.paper_mean.first_below) == first and float(sg.paper_mean.crosses_back) == back
    ref = error_propagation(jnp.asarray(ev), w, ETA, num_steps=T)
    np.testing.assert_allclose(sg.mean.total, ref.total, rtol=1e-12)
    assert sg.mean.moment == 1 and sg.rms.moment == 2 and sg.paper_rms.moment == 2
    # The RMS crossings are those of sum w a^(2t): the real root of E_2 = 1, by brentq.
    a = np.abs(1 - ETA * ev)
    t_star = int(np.argmax((e2 >= 1) & (np.arange(T + 1) >= 1)))
    assert float(sg.rms.t_star) == t_star and e2[t_star - 1] < 1
    root = brentq(lambda x: np.mean(a ** (2 * x)) - 1, 1.0, T)
    assert float(sg.rms.t_star_continuous) == pytest.approx(root, abs=1e-9)
    # E_2 >= E (power means), equality at t = 0.
    assert np.all(np.asarray(sg.rms.total) >= np.asarray(sg.mean.total) - 1e-15)
    assert float(sg.edge_ratio) == pytest.approx(ETA * ev.max() / 2, rel=1e-12)
    assert float(sg.min_mode_drift) == pytest.approx(ETA * abs(ev.min()) * T, rel=1e-12)
    assert float(sg.radius_power) == pytest.approx(a.max() ** T, rel=1e-12)
    assert sg.status == qj.RESULTS.successful and int(sg.nonfinite_step) == -1


def test_spectral_growth_reports_overflow():
    ev = jnp.array([-1e5, 1.0, 2.0])  # |1 - eta lambda|^t overflows float64 near t = 72
    sg = qj.spectrum.spectral_growth(ev, jnp.ones(3), ETA, num_steps=100, throw=False)
    assert sg.status == qj.RESULTS.nonfinite and int(sg.nonfinite_step) > 0
    with pytest.raises(qj.NonFiniteError, match="spectral growth model"):
        qj.spectrum.spectral_growth(ev, jnp.ones(3), ETA, num_steps=100)


def test_traced_eta_out_of_range_is_reported_or_raised():
    ok = jnp.array([1.0, 2.0, 3.0])

    def status(eta):
        return qj.spectrum.spectral_growth(ok, jnp.ones(3), eta, num_steps=5, throw=False).status

    codes = jax.vmap(lambda e: status(e)._value)(jnp.array([0.1, -0.1, jnp.inf]))
    inv = qj.RESULTS.invalid_argument._value
    assert codes.tolist() == [qj.RESULTS.successful._value, inv, inv]
    # The curves have no status: a traced eta out of range raises when the program runs.
    run = jax.jit(lambda e: error_propagation(ok, jnp.ones(3), e, num_steps=5).total)
    np.testing.assert_allclose(run(0.1), error_propagation(ok, jnp.ones(3), 0.1, num_steps=5).total)
    with pytest.raises(Exception, match=r"`eta` must be finite and > 0, got -0\.1"):
        jax.block_until_ready(run(-0.1))
    proxy = jax.jit(lambda e: qj.spectrum.paper_error_proxy(ok, jnp.ones(3), e).value)
    with pytest.raises(Exception, match=r"`eta` must be finite and > 0"):
        jax.block_until_ready(proxy(0.0))


def test_spectral_bad_input_names_the_argument():
    ev, w = jnp.ones(4), jnp.ones(4)
    with pytest.raises(ValueError, match=r"`nodes` is empty: it holds 0 eigenvalues"):
        error_propagation(jnp.zeros(0), jnp.zeros(0), 0.1)
    with pytest.raises(ValueError, match=r"`nodes` is empty"):
        qj.spectrum.spectral_growth(jnp.zeros(0), jnp.zeros(0), 0.1)
    with pytest.raises(ValueError, match=r"`nodes` must be real.*complex128"):
        error_propagation(jnp.ones(4, jnp.complex128), w, 0.1)
    with pytest.raises(ValueError, match=r"`weights` must be real"):
        qj.spectrum.paper_error_proxy(ev, jnp.ones(4, jnp.complex128), 0.1)
    with pytest.raises(ValueError, match=r"`eta`.*complex"):
        error_propagation(ev, w, 0.1 + 0.1j)
    with pytest.raises(ValueError, match=r"`eta` must be a scalar"):
        qj.spectrum.spectral_growth(ev, w, jnp.array([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"`moment` must be 1 .* or 2"):
        error_propagation(ev, w, 0.1, moment=3)
    with pytest.raises(ValueError, match=r"`a_c` must be finite and >= 0"):
        qj.spectrum.spectral_growth(ev, w, 0.1, a_c=-1.0)
