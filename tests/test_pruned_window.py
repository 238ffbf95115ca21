"""The whole-model pruned window sweep target against the quantum window with a concrete mask."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsgd_jax as qj


@pytest.fixture(scope="module")
def setup():
    data = qj.ml.load_digits(dtype=jnp.float64)
    model = qj.ml.make_mlp(data.input_shape, 10, hidden=(6,), dtype=jnp.float64)
    params = model.init(jax.random.key(0))
    batches = qj.ml.make_batches(data.x_train, data.y_train, jax.random.key(1), 32, 4)
    return model, params, batches


def test_equals_quantum_window_on_the_same_pruned_model(setup):
    model, params, batches = setup
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    sparsity, eta = 0.8, 0.3
    keep = np.asarray(qj.ml.magnitude_keep(flat, sparsity))
    mask = unravel(jnp.asarray(keep, flat.dtype))
    mask = jax.tree_util.tree_map(lambda m: m > 0, mask)
    for N in (1, 2):
        got = qj.targets.pruned_window_error(
            {"eta": eta, "sparsity": sparsity, "order": N},
            loss_fn=model.loss_fn,
            params=params,
            batches=batches,
            steps=4,
        )
        cfg = qj.WindowConfig(
            eta, 4, degree=2, order=N, max_order=2, state="factored", history=False
        )
        _, rep = qj.quantum_window(
            model.loss_fn, qj.ml.apply_mask(params, mask), mask, batches, cfg, jax.random.key(0)
        )
        rel = np.asarray(rep.total_error[1:]) / np.asarray(rep.gd_norm[1:])
        assert float(got["final_error"]) == pytest.approx(rel[-1], rel=1e-8)
        assert float(got["max_error"]) == pytest.approx(rel.max(), rel=1e-8)
        carl = float(rep.carleman_error[-1] / rep.gd_norm[-1])
        assert float(got["carleman_error"]) == pytest.approx(carl, rel=1e-8)
        assert int(got["active"]) == keep.sum() == rep.active_size


def test_sweep_over_eta_sparsity_order(setup):
    model, params, batches = setup
    target = functools.partial(
        qj.targets.pruned_window_error,
        loss_fn=model.loss_fn,
        params=params,
        batches=batches,
        steps=3,
    )
    g = qj.grid(eta=[0.1, 0.3], sparsity=[0.5, 0.9], order=[1, 2])
    res = qj.sweep(target, g)
    err = np.asarray(res.values["final_error"]).reshape(2, 2, 2)
    assert np.all(np.isfinite(err))
    carl = np.asarray(res.values["carleman_error"]).reshape(2, 2, 2)
    # Order 2 removes most of the linearization error everywhere; the total error also holds
    # the degree-2 Taylor model's own error (ReLU kinks), which no order removes.
    assert np.all(carl[..., 1] < 0.1 * carl[..., 0])
    assert np.all(err[..., 1] <= err[..., 0] + carl[..., 0])
    one = target({"eta": 0.3, "sparsity": 0.9, "order": 2})
    assert float(err[1, 1, 1]) == pytest.approx(float(one["final_error"]), rel=1e-9)
    with pytest.raises(ValueError, match="`order` must be 1 or 2"):
        qj.sweep(target, qj.grid(eta=[0.1], sparsity=[0.5], order=[3]))
    with pytest.raises(ValueError, match="`sparsity` must be in"):
        qj.sweep(target, qj.grid(eta=[0.1], sparsity=[1.5], order=[1]))


def test_eager_call_checks_its_configuration(setup):
    model, params, batches = setup
    kw = dict(loss_fn=model.loss_fn, params=params, batches=batches, steps=2)
    with pytest.raises(ValueError, match="`eta` must be finite and > 0"):
        qj.targets.pruned_window_error({"eta": -0.1, "sparsity": 0.5, "order": 1}, **kw)
    with pytest.raises(ValueError, match="needs a field `order`"):
        qj.targets.pruned_window_error({"eta": 0.1, "sparsity": 0.5}, **kw)
    with pytest.raises(ValueError, match="steps"):
        qj.targets.pruned_window_error(
            {"eta": 0.1, "sparsity": 0.5, "order": 1}, **{**kw, "steps": 0}
        )
