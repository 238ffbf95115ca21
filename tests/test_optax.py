"""The optax-facing quantum window: loss at update time, learning rate as an optax hyperparameter.

Oracle: `quantum_window` called directly on the same batches (exact read-out), window by window,
with the learning rate the schedule gives at each window's first step.
"""

import pathlib
import runpy

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import qsgd_jax as qj

T_Q = 3
EXAMPLE = pathlib.Path(__file__).parent.parent / "docs" / "examples" / "optax_window.py"


@pytest.fixture(scope="module")
def problem():
    data = qj.ml.teacher_student(jax.random.key(0), num_samples=256, dim=6, hidden=8, num_classes=3)
    model = qj.ml.make_mlp((6,), 3, hidden=(8,))
    params = model.init(jax.random.key(1))
    mask = qj.ml.prune_mask(params, 0.5)
    params = qj.ml.apply_mask(params, mask)
    batches = qj.ml.make_batches(data.x_train, data.y_train, jax.random.key(2), 16, 2 * T_Q)
    return model, params, mask, batches


def batch(batches, t):
    return qj.ml.Batch(batches.x[t], batches.y[t])


def train(opt, model, params, batches, steps):
    state = opt.init(params)

    @jax.jit
    def step(p, s, b):
        g = jax.grad(model.loss_fn)(p, b)  # what an optax loop passes; the window ignores it
        u, s = opt.update(g, s, p, value_fn=model.loss_fn, batch=b)
        return optax.apply_updates(p, u), s

    trace = [params]
    for t in range(steps):
        params, state = step(params, state, batch(batches, t))
        trace.append(params)
    return trace, state


def assert_trees_close(a, b, **kw):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(u, v, **kw)


def test_constant_learning_rate_matches_window(problem):
    model, params, mask, batches = problem
    cfg = qj.WindowConfig(1.0, T_Q, diagnostics=False)  # eta here is replaced by learning_rate
    opt = qj.quantum_window_optimizer(0.2, cfg, mask, batch(batches, 0), jax.random.key(7))
    trace, state = train(opt, model, params, batches, T_Q)
    for p in trace[1:T_Q]:  # the parameters sit in the quantum computer until the window ends
        assert_trees_close(p, params, rtol=0, atol=0)
    ref_cfg = qj.WindowConfig(0.2, T_Q, diagnostics=False)
    ref, _ = qj.quantum_window(model.loss_fn, params, mask, batches, ref_cfg, jax.random.key(0))
    assert_trees_close(trace[T_Q], ref, rtol=1e-5, atol=1e-6)
    assert int(state.windows) == 1 and int(state.diverged_step) == -1


def test_schedule_gives_each_window_the_rate_of_its_first_step(problem):
    model, params, mask, batches = problem

    def schedule(count):  # any `step -> value` function is an optax schedule
        return jnp.where(count < T_Q, 0.3, 0.15)

    cfg = qj.WindowConfig(1.0, T_Q, diagnostics=False)
    opt = qj.quantum_window_optimizer(schedule, cfg, mask, batch(batches, 0), jax.random.key(7))
    trace, state = train(opt, model, params, batches, 2 * T_Q)
    ref = params
    for k, eta in enumerate((0.3, 0.15)):
        window = jax.tree_util.tree_map(lambda x, k=k: x[k * T_Q : (k + 1) * T_Q], batches)
        ref_cfg = qj.WindowConfig(eta, T_Q, diagnostics=False)
        ref, _ = qj.quantum_window(model.loss_fn, ref, mask, window, ref_cfg, jax.random.key(0))
        assert_trees_close(trace[(k + 1) * T_Q], ref, rtol=1e-5, atol=1e-6)
    # inject_hyperparams exposes the current value: schedule(2 T_q - 1), the last step's.
    np.testing.assert_allclose(state.hyperparams["learning_rate"], 0.15, rtol=1e-6)
    assert int(state.inner_state.windows) == 2


def test_doc_example_runs_and_learns():
    out = runpy.run_path(str(EXAMPLE), run_name="__main__")
    losses, state, schedule = out["losses"], out["state"], out["schedule"]
    assert len(losses) == 5 and all(np.isfinite(losses))
    assert losses[-1] < 0.9 * losses[0]
    np.testing.assert_allclose(
        state.hyperparams["learning_rate"], schedule(out["num_steps"] - 1), rtol=1e-6
    )
    assert int(state.inner_state.windows) == 4 and int(state.inner_state.diverged_step) == -1


def test_bad_input(problem):
    model, params, mask, batches = problem
    cfg = qj.WindowConfig(0.1, T_Q, diagnostics=False)
    first = batch(batches, 0)
    with pytest.raises(ValueError, match="`learning_rate` must be finite and > 0"):
        qj.quantum_window_optimizer(-0.1, cfg, mask, first, jax.random.key(0))
    full = qj.WindowConfig(0.1, T_Q, batching="full", diagnostics=False)
    with pytest.raises(ValueError, match="`config.batching` must be 'sgd', got 'full'"):
        qj.quantum_window_optimizer(0.1, full, mask, first, jax.random.key(0))
    with pytest.raises(TypeError, match="`config` must be a `WindowConfig`"):
        qj.quantum_window_optimizer(0.1, {"eta": 0.1}, mask, first, jax.random.key(0))
    opt = qj.quantum_window_optimizer(0.1, cfg, mask, first, jax.random.key(0))
    state = opt.init(params)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    with pytest.raises(ValueError, match="`value_fn=`"):
        opt.update(zeros, state, params, batch=first)
