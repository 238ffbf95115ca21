"""The pipeline end to end: hybrid quantum-window training vs optax SGD (the optax-facing window
is tested in test_optax.py)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qsgd_jax import HybridConfig, WindowConfig, hybrid_run
from qsgd_jax.experiments import early_late
from qsgd_jax.ml import load_digits, make_mlp, model_evaluate, prune_mask
from qsgd_jax.plot import plot_hybrid


def quadratic_loss(params, batch):
    pred = batch.x @ params["lin"]["kernel"]
    return 0.5 * jnp.mean((pred - batch.y) ** 2)


def test_quadratic_exact_readout_equals_optax_sgd():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(200, 8)))
    y = x @ jnp.asarray(rng.normal(size=(8, 1))) + 0.1 * jnp.asarray(rng.normal(size=(200, 1)))
    params = {"lin": {"kernel": jnp.asarray(rng.normal(size=(8, 1)))}}
    cfg = HybridConfig(
        window=WindowConfig(0.1, 5, diagnostics=False),
        pretrain_steps=10,
        sparsity=0.5,
        batch_size=20,
        sparse_steps=17,
        num_windows=2,
        classical_between=2,
    )
    res = hybrid_run(quadratic_loss, params, x, y, cfg, jax.random.key(0))
    again = hybrid_run(quadratic_loss, params, x, y, cfg, jax.random.key(0))
    np.testing.assert_array_equal(res.distance, again.distance)  # same keys, same results
    np.testing.assert_array_equal(res.hybrid["loss"], again.hybrid["loss"])
    # Degree-1 Taylor model of a quadratic is exact, order 1 is exact, read-out exact.
    np.testing.assert_allclose(np.asarray(res.distance), 0.0, atol=1e-12)
    np.testing.assert_allclose(res.hybrid["loss"], res.sgd["loss"], rtol=1e-12)
    assert [w["length"] for w in res.windows] == [5, 5]
    assert int(jnp.sum(res.in_window)) == 10


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data, make_mlp(data.input_shape, 10, hidden=(16,))


def test_digits_pipeline_accuracy_and_plot(digits, tmp_path):
    data, model = digits
    cfg = HybridConfig(
        window=WindowConfig(0.1, 5, readout="sample", shots=10**5, history=False),
        pretrain_steps=150,
        sparsity=0.9,
        batch_size=64,
        sparse_steps=12,
        num_windows=2,
        classical_between=1,
        adaptive=True,
        spectrum_steps=16,
    )
    params = model.init(jax.random.key(1))
    ev = model_evaluate(model, data)
    a = hybrid_run(
        model.loss_fn, params, data.x_train, data.y_train, cfg, jax.random.key(2), evaluate=ev
    )
    summ = a.summary()
    json.dumps(summ)
    acc_h, acc_s = summ["final_hybrid"]["accuracy"], summ["final_sgd"]["accuracy"]
    print(f"final test accuracy: hybrid {acc_h:.3f}, optax SGD {acc_s:.3f}")
    assert acc_s > 0.6 and abs(acc_h - acc_s) < 0.05
    assert all("E(t)" in w["why"] for w in summ["windows"])  # adaptive: reason recorded
    assert float(a.distance[0]) == 0.0 and float(a.distance[-1]) > 0  # shot noise
    assert a.hybrid["loss"].shape == (13,) and np.all(np.diff(np.asarray(a.sgd_time)) >= 0)
    plot_hybrid(a, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").stat().st_size > 0


def test_early_vs_late(digits):
    data, model = digits
    params = model.init(jax.random.key(3))
    mask = prune_mask(params, 0.9)
    cfg = WindowConfig(0.1, 4, history=False)
    out = early_late(
        model.loss_fn, params, mask, data.x_train, data.y_train, cfg, [0, 6], jax.random.key(4)
    )
    assert list(out["start"]) == [0, 6]
    assert np.all((out["positive_fraction"] >= 0) & (out["positive_fraction"] <= 1))
    assert np.all(np.isfinite(out["total_error"])) and np.all(out["spectral_radius"] > 0)
