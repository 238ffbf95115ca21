"""Diverging windows are reported as such, with their step, and never returned as results."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsgd_jax as qj


@pytest.fixture(scope="module")
def pruned_mlp():
    data = qj.ml.load_digits()
    model = qj.ml.make_mlp(data.input_shape, 10, hidden=(8,))
    params = model.init(jax.random.key(0))
    mask = qj.ml.prune_mask(params, 0.9)
    params = qj.ml.apply_mask(params, mask)
    batches = qj.ml.make_batches(data.x_train, data.y_train, jax.random.key(1), 64, 3)
    return data, model, params, mask, batches


def test_huge_learning_rate_is_flagged_with_its_step(pruned_mlp):
    _, model, params, mask, batches = pruned_mlp
    cfg = qj.WindowConfig(50.0, 3, history=False)
    with pytest.raises(RuntimeError, match=r"diverged at step [123] of 3"):
        qj.quantum_window(model.loss_fn, params, mask, batches, cfg, jax.random.key(0))
    # Under jit the same window is reported, not raised, and its output is NaN.
    run = jax.jit(
        lambda e: qj.quantum_window(
            model.loss_fn,
            params,
            mask,
            batches,
            qj.WindowConfig(e, 3, history=False),
            jax.random.key(0),
            throw=False,
        )
    )
    p_hat, rep = run(50.0)
    assert int(rep.diverged_step) >= 1
    assert float(rep.dissipation.spectral_radius) > 1
    flat = np.asarray(jax.flatten_util.ravel_pytree(p_hat)[0])
    active = np.asarray(jax.flatten_util.ravel_pytree(mask)[0]).astype(bool)
    assert np.all(np.isnan(flat[active])) and np.all(flat[~active] == 0)  # pruned stay 0
    # Its error relative to exact GD at the flagged step exceeds max_relative_error = 1.
    t = int(rep.diverged_step)
    assert float(rep.total_error[t]) > float(rep.gd_norm[t])
    # A small learning rate is not flagged.
    _, ok = run(0.05)
    assert int(ok.diverged_step) == -1 and qj.RESULTS[ok.status].startswith("The window")


def test_error_growth_threshold_is_an_argument(pruned_mlp):
    _, model, params, mask, batches = pruned_mlp
    loose = qj.WindowConfig(0.5, 3, history=False, max_relative_error=1e6)
    _, rep = qj.quantum_window(model.loss_fn, params, mask, batches, loose, jax.random.key(0))
    rel = np.asarray(rep.total_error[1:]) / np.asarray(rep.gd_norm[1:])
    tight = qj.WindowConfig(0.5, 3, history=False, max_relative_error=0.5 * float(rel.max()))
    with pytest.raises(RuntimeError, match="diverged from exact GD"):
        qj.quantum_window(model.loss_fn, params, mask, batches, tight, jax.random.key(0))
    with pytest.raises(ValueError, match="max_relative_error"):
        qj.WindowConfig(0.5, 3, max_relative_error=0.0)


def test_hybrid_fallback_is_warned_and_recorded(pruned_mlp):
    data, model, params, _, _ = pruned_mlp
    cfg = qj.HybridConfig(
        window=qj.WindowConfig(50.0, 3, history=False),
        pretrain_steps=2,
        sparse_steps=4,
        num_windows=1,
        batch_size=32,
    )
    with pytest.warns(RuntimeWarning, match="replaced by 3 classical SGD steps"):
        res = qj.hybrid_run(
            model.loss_fn, params, data.x_train, data.y_train, cfg, jax.random.key(0)
        )
    assert len(res.fallbacks) == 1 and res.fallbacks[0]["start"] == 0
    assert "diverged at step" in res.fallbacks[0]["error"]
    assert res.summary()["fallbacks"][0]["instead"] == "3 classical SGD steps"
    assert not bool(jnp.any(res.in_window))


@pytest.mark.parametrize("readout", ["sample", "gaussian"])
def test_diverged_window_with_sampled_readout_is_reported_under_jit(pruned_mlp, readout):
    _, model, params, mask, batches = pruned_mlp
    cfg = qj.WindowConfig(50.0, 3, history=False, readout=readout, shots=1000)
    run = jax.jit(
        lambda: qj.quantum_window(
            model.loss_fn, params, mask, batches, cfg, jax.random.key(0), throw=False
        )
    )
    p_hat, rep = run()
    assert int(rep.diverged_step) >= 1
    assert np.all(
        np.isnan(
            np.asarray(jax.flatten_util.ravel_pytree(p_hat)[0])[
                np.asarray(jax.flatten_util.ravel_pytree(mask)[0]).astype(bool)
            ]
        )
    )
