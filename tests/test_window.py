"""Quantum windows on a pruned digits MLP: error budget vs T_q and N, transformations, bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import qsgd_jax as qj
from qsgd_jax import RESULTS, MemoryLimitError, TruncatedTaylor, WindowConfig, quantum_window
from qsgd_jax.ml import apply_mask, load_digits, make_batches, make_mlp, prune_mask


@pytest.fixture(scope="module")
def setup():
    """A 3-hidden-unit MLP on digits, pre-trained, kernels pruned to 90 % (s = 35 weights)."""
    data = load_digits(dtype=jnp.float64)
    model = make_mlp(data.input_shape, 10, hidden=(3,), dtype=jnp.float64)
    params = model.init(jax.random.key(0))
    opt, tb = optax.sgd(0.5), data.train_batch()

    @jax.jit
    def pretrain(p):
        def body(c, _):
            p, s = c
            u, s = opt.update(jax.grad(model.loss_fn)(p, tb), s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(body, (p, opt.init(p)), None, length=300)[0][0]

    params = pretrain(params)
    mask = prune_mask(params, 0.9, include=lambda path, leaf: path[-1] == "kernel")
    params = apply_mask(params, mask)
    batches = make_batches(data.x_train, data.y_train, jax.random.key(1), 64, 12)
    return model, params, mask, batches


def test_error_grows_with_steps_and_shrinks_with_order(setup):
    model, params, mask, batches = setup
    errs = []
    full = jax.tree_util.tree_map(lambda b: b.reshape(-1, *b.shape[2:]), batches)  # full-batch GD
    for N in (1, 2, 3):  # traced order: one compiled window
        cfg = WindowConfig(0.5, 12, degree=2, order=N, max_order=3, history=False, batching="full")
        _, rep = quantum_window(model.loss_fn, params, mask, full, cfg, jax.random.key(2))
        errs.append(np.asarray(rep.carleman_error))
        # The exact GD trajectory is the same for every N; the Taylor model error too.
        assert np.all(np.isfinite(np.asarray(rep.model_error)))
    errs = np.stack(errs)
    # A window of T_q steps is the prefix of a longer one on the same batches; absolute errors
    # (relative ones divide by |u_t|, which is tiny in the first steps).
    # (measured, N = 1/2/3 at t = 12: 1.1e-1, 1.1e-2, 2.0e-3). With SGD batches the error
    # fluctuates step to step, so full-batch GD makes the T_q trend clean.
    assert np.all(errs[:, 2] < errs[:, 4]) and np.all(errs[:, 4] < errs[:, 8])
    assert np.all(errs[:, 8] < errs[:, 12])
    assert errs[0, 12] > 5 * errs[1, 12] and errs[1, 12] > 3 * errs[2, 12] > 0


def test_degree1_exact_carleman_and_report(setup):
    model, params, mask, batches = setup
    cfg = WindowConfig(0.3, 3, method=TruncatedTaylor(3), kappa_iters=16)
    p_hat, rep = quantum_window(model.loss_fn, params, mask, batches, cfg, jax.random.key(0))
    # Degree 1 at order 1: Carleman is exact (up to the RK4 reference flow's own error); the
    # flow form adds Taylor-truncation and time-discretization terms.
    assert float(rep.carleman_error[-1]) < 1e-3 * float(rep.time_discretization[-1])
    assert 0 < float(rep.taylor_truncation[-1]) < float(rep.time_discretization[-1])
    assert float(rep.readout_error) == 0.0  # exact read-out ("infinite shots")
    assert float(rep.kappa) >= 1 and 0 < float(rep.target_probability) <= 1
    cost = rep.resources(qj.resources.Assumptions(eps=1e-2), physical=False)
    assert cost.value("kappa") == pytest.approx(float(rep.kappa))  # this window's, c = 1 only
    assert cost.value("queries HHL (assumption)") > 0
    assert RESULTS[rep.status].startswith("The window stayed bounded")
    assert rep.summary()["status"] == RESULTS[rep.status]


def test_jit_keys_and_vmap_over_learning_rates(setup):
    model, params, mask, batches = setup
    cfg = WindowConfig(0.2, 4, readout="sample", shots=1000, diagnostics=False)

    @jax.jit
    def window(p, cfg, key):
        return quantum_window(model.loss_fn, p, mask, batches, cfg, key)[0]

    a = window(params, cfg, jax.random.key(5))
    b = window(params, cfg, jax.random.key(5))
    c = window(params, cfg, jax.random.key(6))
    la, lb, lc = (jax.tree_util.tree_leaves(t) for t in (a, b, c))
    assert all(np.array_equal(x, y) for x, y in zip(la, lb, strict=True))
    assert any(not np.array_equal(x, y) for x, y in zip(la, lc, strict=True))
    etas = jnp.asarray([0.05, 0.1, 0.2])
    exact = WindowConfig(0.1, 4, diagnostics=False)

    def at(eta):
        cfg_eta = eqx.tree_at(lambda c: c.eta, exact, eta)
        return window(params, cfg_eta, jax.random.key(0))

    vm = jax.vmap(at)(etas)
    for i, eta in enumerate(etas):
        one = at(eta)
        for x, y in zip(jax.tree_util.tree_leaves(vm), jax.tree_util.tree_leaves(one), strict=True):
            np.testing.assert_allclose(x[i], y, rtol=1e-10, atol=1e-12)


def test_grad_through_window_vs_finite_differences(setup):
    model, params, mask, batches = setup
    batch = jax.tree_util.tree_map(lambda x: x[-1], batches)
    cfg = WindowConfig(0.2, 3, readout="gaussian", shots=10**6, diagnostics=False)

    def final_loss(eta, p):
        c = eqx.tree_at(lambda c: c.eta, cfg, eta)
        p_hat, _ = quantum_window(model.loss_fn, p, mask, batches, c, jax.random.key(3))
        return model.loss_fn(p_hat, batch)

    eta = jnp.asarray(0.2)
    g_eta, g_p = jax.jit(jax.grad(final_loss, argnums=(0, 1)))(eta, params)
    f = jax.jit(final_loss)
    h = 1e-6
    fd = (f(eta + h, params) - f(eta - h, params)) / (2 * h)
    np.testing.assert_allclose(g_eta, fd, rtol=1e-5)
    # Direction along the active head weights: the window is smooth there. (Along hidden-layer
    # weights a ReLU unit sitting at its kink makes the trained map itself non-differentiable.)
    v = jax.tree_util.tree_map(lambda m: jnp.zeros(m.shape), mask)
    head = mask["head"]["kernel"]
    v["head"]["kernel"] = jnp.where(head, jax.random.normal(jax.random.key(9), head.shape), 0.0)
    shift = lambda s: jax.tree_util.tree_map(lambda p, d: p + s * d, params, v)  # noqa: E731
    fd_p = (f(eta, shift(h)) - f(eta, shift(-h))) / (2 * h)
    dir_p = sum(
        jnp.vdot(a, b)
        for a, b in zip(jax.tree_util.tree_leaves(g_p), jax.tree_util.tree_leaves(v), strict=True)
    )
    np.testing.assert_allclose(dir_p, fd_p, rtol=1e-5)


def test_bad_input(setup):
    model, params, mask, batches = setup
    cfg = WindowConfig(0.1, 20, diagnostics=False)
    with pytest.raises(ValueError, match="holds 12 batches.*T_q = config.num_steps = 20"):
        quantum_window(model.loss_fn, params, mask, batches, cfg, jax.random.key(0))
    bad = dict(mask)
    bad.pop("head")
    with pytest.raises(ValueError, match="`mask` structure"):
        quantum_window(model.loss_fn, params, bad, batches, WindowConfig(0.1, 2), jax.random.key(0))
    dense = jax.tree_util.tree_map(lambda m: jnp.ones(m.shape, bool), mask)  # s = 235 weights
    big = WindowConfig(0.1, 2, degree=2, order=3, memory_limit=2**26)
    with pytest.raises(MemoryLimitError, match="order N = 3 over the active set s = 235"):
        quantum_window(model.loss_fn, params, dense, batches, big, jax.random.key(0))
    with pytest.raises(ValueError, match="`method` must be an evolution method"):
        WindowConfig(0.1, 2, method="rk4")
    with pytest.raises(ValueError, match="`order` must lie in"):
        WindowConfig(0.1, 2, order=3, max_order=2)


def test_diverging_learning_rate_reported_with_step(setup):
    model, params, mask, batches = setup
    cfg = WindowConfig(60.0, 8, diagnostics=False)
    with pytest.raises(RuntimeError, match=r"diverged at step \d+ of 8.*not dissipative"):
        quantum_window(model.loss_fn, params, mask, batches, cfg, jax.random.key(0))

    @jax.jit
    def window(cfg):
        return quantum_window(
            model.loss_fn, params, mask, batches, cfg, jax.random.key(0), throw=False
        )

    p_hat, rep = window(cfg)
    assert 1 <= int(rep.diverged_step) <= 8
    assert rep.status == RESULTS.non_dissipative
    for x, m in zip(jax.tree_util.tree_leaves(p_hat), jax.tree_util.tree_leaves(mask), strict=True):
        assert np.all(np.isnan(np.asarray(x)[np.asarray(m)]))  # active entries: not numbers
    _, ok = window(WindowConfig(0.1, 8, diagnostics=False))
    assert int(ok.diverged_step) == -1
