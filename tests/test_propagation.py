"""Error-propagation curve E(t), t* and t_c against exact spectra; the spectrum plots."""

import chex
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq

from qsgd_jax._plots_spectrum import plot_error_propagation, plot_spectral_densities
from qsgd_jax._propagation import error_propagation, propagation_from_spectrum
from qsgd_jax._spectrum import slq_spectrum

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
    sd = slq_spectrum(lambda v: d * v, 60, getkey(), num_steps=60, num_probes=1,
                      reortho="full", dtype=jnp.float64)  # fmt: skip
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
    sd = slq_spectrum(lambda v: a @ v, ev.size, getkey(), num_steps=40, num_probes=30,
                      dtype=jnp.float64)  # fmt: skip
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
    sd2 = eqx.tree_at(lambda x: (x.nodes, x.grid, x.density),
                      sd, (1.5 * sd.nodes, 1.5 * sd.grid, sd.density / 1.5))  # fmt: skip
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
