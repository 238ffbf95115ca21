"""The factored order-2 Carleman state y2 = A B^T against dense oracles, at model scale too."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import dense_discrete, random_map

import qsgd_jax as qj


def _numpy_window(F0, F1, F2, steps):
    """y1(t) of the order-2 discrete Carleman recursion from the lift of u0 = 0 (np.kron)."""
    M = dense_discrete(F0, F1, F2, 2)
    n = F0.shape[0]
    y = np.zeros(M.shape[0])
    y[0] = 1.0
    out = [y[1 : 1 + n].copy()]
    for _ in range(steps):
        y = M @ y
        out.append(y[1 : 1 + n].copy())
    return np.stack(out), y[1 + n :].reshape(n, n)


def _run_state(state, poly, order, steps):
    y = state.zero(poly.n, 2, steps, poly.dtype)
    op = qj.carleman(poly, order, max_order=2)
    step = jax.jit(lambda y: state.step(qj.Discrete(), op, y, None)[0])
    for _ in range(steps):
        y = step(y)
    return y


@pytest.mark.parametrize("order", [1, 2])
def test_factored_step_equals_kronecker_oracle(order):
    n, T = 5, 6
    F0, F1, F2 = random_map(n, 3, scale=0.2)
    poly = qj.polynomial_map(F0, F1, F2)
    y = _run_state(qj.FactoredState(), poly, order, T)
    ref_y1, ref_y2 = _numpy_window(F0, F1, F2 if order == 2 else np.zeros_like(F2), T)
    np.testing.assert_allclose(np.asarray(y.y1), ref_y1[-1], rtol=1e-10, atol=1e-12)
    if order == 2:
        np.testing.assert_allclose(np.asarray(y.y2()), ref_y2, rtol=1e-10, atol=1e-12)
        assert float(y.y2_norm()) == pytest.approx(np.linalg.norm(ref_y2), rel=1e-10)
    else:
        assert float(y.y2_norm()) == 0.0


def test_rank_grows_by_two_per_step_without_compression():
    n, T = 20, 5
    F0, F1, F2 = random_map(n, 4, scale=0.2)
    poly = qj.polynomial_map(F0, F1, F2)
    y = _run_state(qj.FactoredState(), poly, 2, T)
    assert y.a.shape == (n, 2 * T)
    sv = np.linalg.svd(np.asarray(y.y2()), compute_uv=False)
    rank = int(np.sum(sv > 1e-12 * sv[0]))
    # From u0 = 0 the first step's column y1' - F0 = F1 0 + F2[0] vanishes: rank 2T - 1.
    assert rank == 2 * T - 1


def test_compression_dropped_norm_bounds_the_difference():
    n, T = 12, 8
    F0, F1, F2 = random_map(n, 5, scale=0.15)
    F1 = 0.5 * (F1 + F1.T)
    F1 = F1 / (1.05 * np.max(np.abs(np.linalg.eigvalsh(F1))))  # ||F1|| < 1: dissipative
    poly = qj.polynomial_map(F0, F1, F2)
    exact = _run_state(qj.FactoredState(), poly, 2, T)
    for state in (qj.FactoredState(max_rank=4), qj.FactoredState(rtol=1e-2)):
        comp = _run_state(state, poly, 2, T)
        dropped = float(comp.dropped)
        diff_y2 = np.linalg.norm(np.asarray(comp.y2() - exact.y2()))
        diff_y1 = np.linalg.norm(np.asarray(comp.y1 - exact.y1))
        assert dropped > 0
        assert diff_y2 <= dropped and diff_y1 <= dropped
    # A cap at or above the exact rank drops nothing.
    same = _run_state(qj.FactoredState(max_rank=2 * T), poly, 2, T)
    assert float(same.dropped) < 1e-12
    np.testing.assert_allclose(np.asarray(same.y2()), np.asarray(exact.y2()), atol=1e-10)


def test_cubic_loss_window_factored_equals_dense_and_oracle():
    loss = qj.problems.random_cubic_loss(7, n=5)
    theta = jnp.zeros(5)
    mask = jnp.ones(5, bool)
    eta, T = 0.1, 8
    F0 = -eta * np.asarray(loss.g)
    F1 = np.eye(5) - eta * np.asarray(loss.H)
    F2 = -0.5 * eta * np.asarray(loss.T)
    for N in (1, 2):
        ref, _ = _numpy_window(F0, F1, F2 if N == 2 else np.zeros_like(F2), T)
        reps = {}
        for state in ("dense", "factored"):
            cfg = qj.WindowConfig(
                eta,
                T,
                degree=2,
                order=N,
                max_order=2,
                state=state,
                batching="full",
                keep_trajectory=True,
            )
            _, reps[state] = qj.quantum_window(
                loss, theta, mask, jnp.zeros(1), cfg, jax.random.key(0)
            )
            np.testing.assert_allclose(np.asarray(reps[state].y1), ref, rtol=1e-10, atol=1e-13)
        assert reps["factored"].state == "factored" and reps["dense"].state == "dense"
        np.testing.assert_allclose(
            np.asarray(reps["factored"].carleman_error),
            np.asarray(reps["dense"].carleman_error),
            rtol=1e-8,
            atol=1e-14,
        )


@pytest.fixture(scope="module")
def mlp():
    data = qj.ml.load_digits(dtype=jnp.float64)
    model = qj.ml.make_mlp(data.input_shape, 10, hidden=(4,), dtype=jnp.float64)
    params = model.init(jax.random.key(0))
    mask = qj.ml.prune_mask(params, 0.9, include=lambda path, leaf: path[-1] == "kernel")
    params = qj.ml.apply_mask(params, mask)
    batches = qj.ml.make_batches(data.x_train, data.y_train, jax.random.key(1), 32, 5)
    return model, params, mask, batches


def _flat(p):
    return np.asarray(jax.flatten_util.ravel_pytree(p)[0])


def test_mlp_sgd_window_factored_equals_dense(mlp):
    model, params, mask, batches = mlp
    for N in (1, 2):
        outs = {}
        for state in ("dense", "factored"):
            cfg = qj.WindowConfig(
                0.4,
                5,
                degree=2,
                order=N,
                max_order=2,
                state=state,
                keep_trajectory=True,
                history=False,
            )
            outs[state] = qj.quantum_window(
                model.loss_fn, params, mask, batches, cfg, jax.random.key(3)
            )
        np.testing.assert_allclose(
            _flat(outs["factored"][0]), _flat(outs["dense"][0]), rtol=1e-10, atol=1e-12
        )
        np.testing.assert_allclose(
            np.asarray(outs["factored"][1].block_norms),
            np.asarray(outs["dense"][1].block_norms),
            rtol=1e-10,
            atol=1e-13,
        )


def test_factored_window_under_jit_vmap_and_grad(mlp):
    model, params, mask, batches = mlp
    key = jax.random.key(4)

    def run(eta, state):
        cfg = qj.WindowConfig(
            eta,
            4,
            degree=2,
            order=2,
            state=state,
            readout="gaussian",
            shots=10**4,
            diagnostics=False,
        )
        p, _ = qj.quantum_window(model.loss_fn, params, mask, batches, cfg, key)
        return jax.flatten_util.ravel_pytree(p)[0]

    etas = jnp.array([0.2, 0.3])
    dense = jax.vmap(lambda e: run(e, "dense"))(etas)
    fact = jax.jit(jax.vmap(lambda e: run(e, "factored")))(etas)
    np.testing.assert_allclose(np.asarray(fact), np.asarray(dense), rtol=1e-10, atol=1e-12)

    def objective(eta, state):
        return jnp.sum(run(eta, state) ** 2)

    g_fact = jax.grad(objective)(0.3, "factored")
    h = 1e-5
    fd = (objective(0.3 + h, "dense") - objective(0.3 - h, "dense")) / (2 * h)
    assert float(g_fact) == pytest.approx(float(fd), rel=1e-5)  # against the dense state


def test_auto_state_picks_by_memory(mlp):
    model, params, mask, batches = mlp
    cfg = qj.WindowConfig(0.4, 3, degree=2, order=2, state="auto", history=False)
    _, rep = qj.quantum_window(model.loss_fn, params, mask, batches, cfg, jax.random.key(0))
    assert rep.state == "dense"
    s = rep.active_size
    limit = 2 * s**3 * 8  # below the dense Taylor models of 3 steps, above the factors
    cfg = qj.WindowConfig(
        0.4, 3, degree=2, order=2, state="auto", history=False, memory_limit=limit
    )
    _, rep2 = qj.quantum_window(model.loss_fn, params, mask, batches, cfg, jax.random.key(0))
    assert rep2.state == "factored" and rep2.state_bytes < rep2.dense_state_bytes
    np.testing.assert_allclose(
        np.asarray(rep2.total_error), np.asarray(rep.total_error), rtol=1e-9, atol=1e-13
    )


def test_order2_window_at_model_scale():
    """~1e5 parameters at 90 % sparsity: a dense y2 would need ~1e8 entries."""
    data = qj.ml.load_digits()
    model = qj.ml.make_mlp(data.input_shape, 10, hidden=(512, 128))
    params = model.init(jax.random.key(0))
    n = _flat(params).size
    assert 0.9e5 < n < 1.2e5
    mask = qj.ml.prune_mask(params, 0.9)
    params = qj.ml.apply_mask(params, mask)
    batches = qj.ml.make_batches(data.x_train, data.y_train, jax.random.key(1), 64, 6)
    errs = {}
    for N in (1, 2):  # traced order: one compile for both
        cfg = qj.WindowConfig(
            jnp.float32(0.5), 6, degree=2, order=N, max_order=2, state="factored", history=False
        )
        _, rep = qj.quantum_window(model.loss_fn, params, mask, batches, cfg, jax.random.key(2))
        assert rep.active_size**2 > 1e7 and rep.state_bytes < 1e-3 * rep.dense_state_bytes
        errs[N] = np.asarray(rep.carleman_error)
        assert np.all(np.isfinite(errs[N]))
    # Order 2 removes most of the linearization error of order 1.
    assert errs[2][-1] < 0.5 * errs[1][-1]


def test_factored_bad_input():
    with pytest.raises(ValueError, match="orders N <= 2"):
        qj.WindowConfig(0.1, 3, degree=2, order=3, state="factored")
    with pytest.raises(ValueError, match="'discrete' form only"):
        qj.WindowConfig(0.1, 3, degree=2, order=2, method=qj.Euler(), state="factored")
    with pytest.raises(ValueError, match="max_rank"):
        qj.FactoredState(max_rank=0)
    with pytest.raises(ValueError, match="rtol"):
        qj.FactoredState(rtol=-1.0)
    with pytest.raises(ValueError, match="`state` must be"):
        qj.WindowConfig(0.1, 3, state="sparse")
    loss = qj.problems.random_cubic_loss(7, n=5)
    cfg = qj.WindowConfig(
        0.1, 4, degree=2, order=2, state="factored", batching="full", memory_limit=100
    )
    with pytest.raises(qj.MemoryLimitError, match="factored order-2 Carleman state"):
        qj.quantum_window(
            loss, jnp.zeros(5), jnp.ones(5, bool), jnp.zeros(1), cfg, jax.random.key(0)
        )


def test_optax_window_accepts_the_factored_state(mlp):
    model, params, mask, batches = mlp
    T = 3
    cfg = qj.WindowConfig(1.0, T, degree=2, order=2, state="factored", diagnostics=False)
    first = qj.ml.Batch(batches.x[0], batches.y[0])
    opt = qj.quantum_window_optimizer(0.3, cfg, mask, first, jax.random.key(7))
    state = opt.init(params)
    p = params
    for t in range(T):
        b = qj.ml.Batch(batches.x[t], batches.y[t])
        g = jax.grad(model.loss_fn)(p, b)
        u, state = opt.update(g, state, p, value_fn=model.loss_fn, batch=b)
        p = jax.tree_util.tree_map(lambda a, d: a + d, p, u)
    ref_cfg = qj.WindowConfig(0.3, T, degree=2, order=2, state="dense", diagnostics=False)
    ref, _ = qj.quantum_window(model.loss_fn, params, mask, batches, ref_cfg, jax.random.key(0))
    np.testing.assert_allclose(_flat(p), _flat(ref), rtol=1e-9, atol=1e-12)
