"""Measured error propagation (G_true, G_lin, finite perturbations) against independent oracles:
`jax.jacfwd` of hand-written SGD steps, numpy products of dense batch Hessians, exact spectra."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qsgd_jax import MemoryLimitError, NonFiniteError
from qsgd_jax._status import RESULTS
from qsgd_jax.ml import Batch, make_mlp, prune_mask
from qsgd_jax.spectrum import (
    finite_perturbation_growth,
    perturbation_growth,
    spectral_growth,
)

ETA = 0.2
T = 6


def _quadratic(seed=0, n=9):
    """L(θ) = ½ θᵀAθ − bᵀθ with a known spectrum on a 6-entry active set (one negative mode)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = q @ np.diag(np.linspace(-0.4, 3.0, n)) @ q.T
    a_mat, b = jnp.asarray(a), jnp.asarray(rng.standard_normal(n))

    def loss(p, batch):
        w = p["w"]
        return 0.5 * w @ a_mat @ w - b @ w + 0.0 * jnp.sum(batch)

    keep = np.array([1, 0, 1, 1, 0, 1, 1, 0, 1], bool)
    params = {"w": jnp.asarray(rng.standard_normal(n))}
    return loss, params, {"w": jnp.asarray(keep)}, a[np.ix_(keep, keep)], np.flatnonzero(keep)


def _oracle_jacobians(loss, params, idx, batch_at, eta, steps):
    """J_t of t hand-written masked SGD steps on the active coordinates, by jax.jacfwd."""
    theta = jnp.zeros_like(params["w"]).at[idx].set(params["w"][idx])

    def run(u):
        us = [u]
        for t in range(steps):
            full = theta.at[idx].add(u)
            u = u - eta * jax.grad(loss)({"w": full}, batch_at(t))["w"][idx]
            us.append(u)
        return jnp.stack(us)

    return np.asarray(jax.jit(jax.jacfwd(run))(jnp.zeros(idx.size)))


def test_quadratic_full_batch_true_lin_and_rms_moment_agree():
    loss, params, mask, h_active, idx = _quadratic()
    batch = jnp.zeros(2)
    s = idx.size
    jac = _oracle_jacobians(loss, params, idx, lambda t: batch, ETA, T)
    oracle = np.linalg.norm(jac, axis=(1, 2)) / np.sqrt(s)
    ev = np.linalg.eigvalsh(h_active)
    e2 = np.sqrt(np.mean(np.abs(1 - ETA * ev)[None] ** (2 * np.arange(T + 1)[:, None]), axis=1))
    np.testing.assert_allclose(oracle, e2, rtol=1e-12)
    kw = dict(num_steps=T, batching="full")
    key = jax.random.key(0)
    g_true = perturbation_growth(loss, params, mask, batch, ETA, key, probes="exact", **kw)
    g_lin = perturbation_growth(
        loss, params, mask, batch, ETA, key, probes="exact", linearized=True, **kw
    )
    model = spectral_growth(jnp.asarray(ev), jnp.ones(s), ETA, num_steps=T)
    for g in (g_true.value, g_lin.value, model.rms.total):
        np.testing.assert_allclose(g, oracle, rtol=1e-10, atol=1e-12)
    assert g_true.status == RESULTS.successful and int(g_true.nonfinite_step) == -1
    np.testing.assert_array_equal(g_true.spread, 0.0)
    for kind in ("rademacher", "gaussian"):
        k = 64
        est = perturbation_growth(
            loss, params, mask, batch, ETA, key, num_probes=k, probes=kind, **kw
        )
        assert est.per_probe.shape == (T + 1, k)
        assert np.all(np.abs(est.value / oracle - 1) < 4 / np.sqrt(k)), kind
        # Rademacher probes all have norm 1 at t = 0; afterwards they scatter.
        assert np.all(est.spread[1:] > 0) and np.all(np.isfinite(est.standard_error))


def _tanh_problem(key, steps=T, dtype=jnp.float64):
    k1, k2, k3 = jax.random.split(key, 3)
    model = make_mlp((3,), 2, (4,), activation="tanh", dtype=dtype)
    params = model.init(k1)
    mask = prune_mask(params, 0.3)
    x = jax.random.normal(k2, (steps, 6, 3), dtype)
    y = jax.random.randint(k3, (steps, 6), 0, 2).astype(jnp.int32)
    idx = np.flatnonzero(np.concatenate([np.ravel(m) for m in jax.tree_util.tree_leaves(mask)]))
    return model, params, mask, Batch(x, y), idx


def _flat_loss(model, params, idx):
    """The loss as a function of the flat active coordinates (an independent embedding)."""
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    base = jnp.zeros_like(flat).at[idx].set(flat[idx])
    return lambda u, batch: model.loss_fn(unravel(base.at[idx].add(u)), batch)


def test_tanh_mlp_sgd_batches_against_jacfwd_and_batch_hessians(getkey):
    model, params, mask, batches, idx = _tanh_problem(getkey())
    s, eta = idx.size, 0.5
    at = lambda t: jax.tree_util.tree_map(lambda x: x[t], batches)  # noqa: E731
    floss = _flat_loss(model, params, idx)

    def run(u):
        us = [u]
        for t in range(T):
            u = u - eta * jax.grad(floss)(u, at(t))
            us.append(u)
        return jnp.stack(us)

    jac = np.asarray(jax.jit(jax.jacfwd(run))(jnp.zeros(s)))
    oracle = np.linalg.norm(jac, axis=(1, 2)) / np.sqrt(s)
    key = getkey()
    exact = perturbation_growth(
        model.loss_fn, params, mask, batches, eta, key, num_steps=T, probes="exact"
    )
    np.testing.assert_allclose(exact.value, oracle, rtol=1e-10)
    k = 32
    est = perturbation_growth(
        model.loss_fn, params, mask, batches, eta, key, num_steps=T, num_probes=k
    )
    assert np.all(np.abs(est.value / oracle - 1) < 4 / np.sqrt(k))


def test_tanh_mlp_linearized_growth_is_the_product_of_batch_hessians(getkey):
    """G_lin against the numpy product of the dense batch Hessians at the upload point."""
    model, params, mask, batches, idx = _tanh_problem(getkey())
    s, eta = idx.size, 0.5
    at = lambda t: jax.tree_util.tree_map(lambda x: x[t], batches)  # noqa: E731
    floss = _flat_loss(model, params, idx)
    prod, lin, hess = np.eye(s), [1.0], jax.jit(jax.hessian(floss))
    for t in range(T):
        h = np.asarray(hess(jnp.zeros(s), at(t)))
        prod = (np.eye(s) - eta * h) @ prod
        lin.append(np.linalg.norm(prod) / np.sqrt(s))
    g_lin = perturbation_growth(
        model.loss_fn, params, mask, batches, eta, getkey(), num_steps=T, probes="exact",
        linearized=True,
    )  # fmt: skip
    np.testing.assert_allclose(g_lin.value, lin, rtol=1e-10)
    assert g_lin.linearized and g_lin.status == RESULTS.successful


def test_probe_chunks_give_the_same_estimate(getkey):
    loss, params, mask, _, _ = _quadratic()
    kw = dict(num_steps=4, num_probes=7, batching="full")
    key, batch = getkey(), jnp.zeros(2)
    whole = perturbation_growth(loss, params, mask, batch, ETA, key, **kw)
    chunked = perturbation_growth(loss, params, mask, batch, ETA, key, probe_batch_size=3, **kw)
    np.testing.assert_allclose(chunked.per_probe, whole.per_probe, rtol=1e-12)


def test_finite_perturbation_tiny_delta_is_linear_response(getkey):
    model, params, mask, batches, idx = _tanh_problem(getkey())
    s, eta = idx.size, 0.5
    delta = jax.random.normal(getkey(), (s,), jnp.float64)
    delta = 1e-6 * delta / jnp.linalg.norm(delta)
    at = lambda t: jax.tree_util.tree_map(lambda x: x[t], batches)  # noqa: E731
    floss = _flat_loss(model, params, idx)

    def run(u):
        for t in range(T):
            u = u - eta * jax.grad(floss)(u, at(t))
        return u

    _, jd = jax.jit(lambda d: jax.jvp(run, (jnp.zeros(s),), (d,)))(delta)
    f = finite_perturbation_growth(model.loss_fn, params, mask, batches, eta, delta, num_steps=T)
    assert f.status == RESULTS.successful
    np.testing.assert_allclose(f.linear[-1], np.linalg.norm(jd) / 1e-6, rtol=1e-10)
    np.testing.assert_allclose(f.finite, f.linear, rtol=1e-5)
    assert f.finite[0] == 1.0 and f.nonlinearity[0] == 0.0
    assert float(f.delta_norm) == pytest.approx(1e-6)
    # The departure from linear response is second order: 100x the perturbation, ~100x the gap.
    big = finite_perturbation_growth(
        model.loss_fn, params, mask, batches, eta, 100 * delta, num_steps=T
    )
    ratio = big.nonlinearity[1:] / f.nonlinearity[1:]
    np.testing.assert_allclose(ratio, 100.0, rtol=0.05)


def test_traced_eta_is_reported_in_the_status_and_raises_with_throw(getkey):
    loss, params, mask, _, _ = _quadratic()
    batch, key = jnp.zeros(2), getkey()

    def status(eta, throw=False):
        g = perturbation_growth(
            loss, params, mask, batch, eta, key, num_steps=3, num_probes=2, batching="full",
            throw=throw,
        )  # fmt: skip
        return g.status._value, g.value

    codes, values = jax.vmap(status)(jnp.array([0.1, -0.1, jnp.nan]))
    inv = RESULTS.invalid_argument._value
    assert codes.tolist() == [RESULTS.successful._value, inv, inv]
    assert np.all(np.isfinite(values[0]))
    with pytest.raises(Exception, match="invalid when the run executed"):
        jax.block_until_ready(jax.jit(lambda e: status(e, throw=True))(-0.1))
    d = jnp.ones(6)
    f = jax.jit(
        lambda e: (
            finite_perturbation_growth(
                loss, params, mask, batch, e, d, num_steps=2, batching="full", throw=False
            ).status._value
        )
    )
    assert int(f(-0.1)) == inv and int(f(0.1)) == RESULTS.successful._value


def test_divergence_is_a_failed_status(getkey):
    loss, params, mask, _, _ = _quadratic()
    kw = dict(num_steps=600, probes="exact", batching="full")
    g = perturbation_growth(loss, params, mask, jnp.zeros(2), 5.0, getkey(), throw=False, **kw)
    assert g.status == RESULTS.nonfinite and int(g.nonfinite_step) > 0
    with pytest.raises(NonFiniteError, match="perturbation-growth"):
        perturbation_growth(loss, params, mask, jnp.zeros(2), 5.0, getkey(), **kw)


def test_vmap_over_eta_matches_single_calls_and_compiles_once(getkey):
    loss, params, mask, _, _ = _quadratic()
    key, batch = getkey(), jnp.zeros(2)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def sweep(etas):
        return jax.vmap(
            lambda e: (
                perturbation_growth(
                    loss, params, mask, batch, e, key, num_steps=4, num_probes=3, batching="full"
                ).value
            )
        )(etas)

    etas = jnp.array([0.05, 0.1, 0.3])
    out = sweep(etas)
    sweep(etas + 0.01)
    single = perturbation_growth(
        loss, params, mask, batch, 0.1, key, num_steps=4, num_probes=3, batching="full"
    )
    np.testing.assert_allclose(out[1], single.value, rtol=1e-12)


def test_bad_input_is_refused_before_any_work(getkey):
    loss, params, mask, _, _ = _quadratic()
    batch, key = jnp.zeros(2), getkey()

    def growth(eta=ETA, **kw):
        kw = dict(dict(num_steps=3, batching="full"), **kw)
        return perturbation_growth(loss, params, mask, batch, eta, key, **kw)

    def finite(delta, eta=ETA, **kw):
        kw = dict(dict(num_steps=3, batching="full"), **kw)
        return finite_perturbation_growth(loss, params, mask, batch, eta, delta, **kw)

    for eta, match in [
        (0.0, r"`eta` must be finite and > 0, got 0\.0"),
        (-0.1, r"`eta` must be finite and > 0"),
        (float("nan"), r"`eta` must be a finite"),
        (float("inf"), r"`eta` must be a finite"),
        (0.1 + 0.1j, r"`eta`.*complex"),
        (jnp.array([0.1, 0.2]), r"`eta` must be a scalar"),
    ]:
        with pytest.raises(ValueError, match=match):
            growth(eta)
        with pytest.raises(ValueError, match=match):
            finite(jnp.ones(6), eta)
    with pytest.raises(ValueError, match=r"`num_probes` must lie in \[1, inf\], got 0"):
        growth(num_probes=0)
    with pytest.raises(ValueError, match=r"`num_steps` must lie in \[0, inf\], got -1"):
        growth(num_steps=-1)
    with pytest.raises(ValueError, match=r"`probes` must be one of"):
        growth(probes="sobol")
    with pytest.raises(ValueError, match=r"`batching` must be one of"):
        growth(batching="minibatch")
    with pytest.raises(ValueError, match=r"`probe_batch_size`"):
        growth(probe_batch_size=0)
    with pytest.raises(ValueError, match=r"one batch per SGD step.*num_steps = 3, got 2"):
        growth(batching="sgd")  # `batch` read as a stack of 2 batches
    with pytest.raises(ValueError, match=r"`batches` is empty: it holds 0 batches"):
        perturbation_growth(loss, params, mask, jnp.zeros((0, 2)), ETA, key, num_steps=0)
    with pytest.raises(MemoryLimitError, match=r"k = 6 probes of s = 6.*T = 100000"):
        growth(probes="exact", num_steps=100_000, memory_limit=10**6)
    with pytest.raises(ValueError, match=r"`delta` must perturb the s = 6 .*got shape \(9,\)"):
        finite(jnp.ones(9))
    with pytest.raises(ValueError, match=r"`delta` has 1 non-finite"):
        finite(jnp.ones(6).at[2].set(jnp.nan))
    with pytest.raises(ValueError, match=r"`delta` is zero"):
        finite(jnp.zeros(6))
    with pytest.raises(ValueError, match=r"`delta` must be real"):
        finite(jnp.ones(6, jnp.complex128))
    with pytest.raises(ValueError, match=r"`params\['w'\]` has complex dtype"):
        perturbation_growth(
            loss, {"w": jnp.ones(9, jnp.complex128)}, mask, batch, ETA, key, num_steps=1,
            batching="full",
        )  # fmt: skip
