"""Sweeps: one compile for the whole grid, equal to a Python loop, sharding and chunking."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsgd_jax as qj


def _target():
    loss = qj.problems.random_cubic_loss(seed=2, n=6, eigs=np.linspace(0.55, 3.3, 6))
    theta_bar = jnp.asarray(np.random.default_rng(0).standard_normal(6))
    return functools.partial(qj.targets.toy_window_error, loss=loss, theta_bar=theta_bar, steps=8)


def test_grid_compiles_once_and_equals_python_loop():
    fn = _target()
    pts = qj.grid(eta=[0.05, 0.2], sparsity=[0.0, 0.5], order=[1, 2, 3])
    counted = chex.assert_max_traces(lambda c: fn(c), n=1)
    res = qj.sweep(counted, pts)
    assert res.values["max_error"].shape == (2, 2, 3)
    one = jax.jit(fn)  # the reference: point by point, one compiled call each
    rows = [one({k: jnp.asarray(v[i]) for k, v in pts.columns.items()}) for i in range(pts.size)]
    for k in ("max_error", "rho", "active"):
        ref = np.stack([np.asarray(r[k]) for r in rows]).reshape(pts.shape)
        np.testing.assert_allclose(res.values[k], ref, rtol=1e-10, atol=1e-14)
    # higher order, smaller error; sparsity 0.5 keeps 3 of 6 coordinates
    errs = res.sel(eta=0.05, sparsity=0.0).values["max_error"]
    assert errs[0] > errs[1] > errs[2]
    np.testing.assert_array_equal(res.sel(order=1).values["active"], [[6, 3], [6, 3]])


def test_sharded_and_chunked_equal_plain():
    assert len(jax.devices()) == 4
    fn = _target()
    pts = qj.targets.points(
        eta=np.linspace(0.05, 0.3, 7), sparsity=[0.0] * 7, order=[1, 2, 3, 1, 2, 3, 2]
    )
    one = qj.sweep(fn, pts, devices=jax.devices()[:1])
    four = qj.sweep(fn, pts)
    chunked = qj.sweep(fn, pts, chunk_size=1, progress=True)
    for other in (four, chunked):
        # Sharding changes XLA's reduction order: equal to float64 rounding, not bitwise.
        np.testing.assert_allclose(other.values["max_error"], one.values["max_error"], rtol=1e-10)
    assert one.values["max_error"].shape == (7,)


def test_labels_json_and_heatmap(tmp_path):
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = qj.sweep(lambda c: {"s": c["a"] * c["b"]}, qj.grid(a=[1.0, 2.0], b=[3.0, 4.0, 5.0]))
    np.testing.assert_allclose(res.values["s"], [[3, 4, 5], [6, 8, 10]])
    np.testing.assert_allclose(res.sel(b=4.0).values["s"], [4, 8])
    data = json.loads(res.to_json())
    assert data["axes"] == {"a": [1.0, 2.0], "b": [3.0, 4.0, 5.0]}
    ax = res.heatmap("s")
    plt.savefig(tmp_path / "h.png")
    assert ax.get_xlabel() == "b"


def test_base_config_module_and_bad_input():
    import equinox as eqx

    class Cfg(eqx.Module):
        eta: jax.Array
        scale: float

    res = qj.sweep(lambda c: c.eta * c.scale, qj.grid(eta=[1.0, 2.0]), base=Cfg(jnp.zeros(()), 3.0))
    np.testing.assert_allclose(res.values, [3.0, 6.0])
    with pytest.raises(ValueError, match="not fields of the configuration"):
        qj.sweep(lambda c: c.eta, qj.grid(lr=[1.0]), base=Cfg(jnp.zeros(()), 3.0))
    with pytest.raises(ValueError, match="empty"):
        qj.grid(eta=[])
    with pytest.raises(ValueError):
        qj.grid()
    with pytest.raises(ValueError, match="non-finite"):
        qj.grid(eta=[0.1, np.nan])
    with pytest.raises(ValueError, match="1-D"):
        qj.grid(eta=[[0.1, 0.2]])
    with pytest.raises(ValueError, match="same length"):
        qj.targets.points(a=[1, 2], b=[1])
    with pytest.raises(ValueError, match="chunk_size"):
        qj.sweep(lambda c: c["a"], qj.grid(a=[1.0]), chunk_size=0)
    with pytest.raises(qj.MemoryLimitError, match="chunk"):
        qj.sweep(lambda c: jnp.ones((1000,)) * c["a"], qj.grid(a=[1.0, 2.0]), memory_limit=10)


def test_history_kappa_target_equals_direct_system():
    rng = np.random.default_rng(0)
    g = jnp.asarray(rng.standard_normal(3))
    H = jnp.asarray(np.diag([0.5, 1.0, 2.0]))
    fn = functools.partial(qj.targets.history_kappa, g=g, H=H, max_steps=12, idle=2, num_iters=40)
    res = qj.sweep(fn, qj.grid(T=[4, 8, 12], eta=[0.1, 0.2]))
    for i, T in enumerate((4, 8, 12)):
        for j, eta in enumerate((0.1, 0.2)):
            m = qj.linsys.affine_gd_map(g, H, eta)
            system = qj.linsys.history_system(m, T, 12 - T + 2)
            exact = qj.linsys.condition_number(system, method="dense").kappa
            np.testing.assert_allclose(res.values["kappa"][i, j], exact, rtol=1e-6)


def test_digits_mlp_window_target_compiles_once_and_error_falls_with_order():
    data = qj.ml.load_digits(dtype=jnp.float64)
    model = qj.ml.make_mlp(data.x_train.shape[1:], data.num_classes, hidden=(8,), dtype=jnp.float64)
    params = model.init(jax.random.key(0))
    batch = qj.ml.Batch(data.x_train[:128], data.y_train[:128])
    index = qj.targets.top_magnitude_index(params, 12)
    fn = functools.partial(
        qj.targets.model_window_error,
        loss_fn=model.loss_fn,
        params=params,
        batch=batch,
        index=index,
        steps=10,
    )
    counted = chex.assert_max_traces(lambda c: fn(c), n=1)
    res = qj.sweep(counted, qj.grid(eta=[0.5, 2.0], sparsity=[0.0, 0.5], order=[1, 2, 3]))
    errs = res.values["max_error"]
    assert np.all(np.isfinite(errs))
    # the model is not quadratic: order 1 has a truncation error that higher orders reduce
    assert np.all(errs[..., 0] > errs[..., 1]) and np.all(errs[..., 1] > errs[..., 2])
    np.testing.assert_array_equal(res.values["active"][:, :, 0], [[12, 6], [12, 6]])
    # one point against the Python loop
    ref = fn({"eta": jnp.asarray(2.0), "sparsity": jnp.asarray(0.5), "order": jnp.asarray(2)})
    np.testing.assert_allclose(errs[1, 1, 1], ref["max_error"], rtol=1e-9)


def test_readout_error_target_over_shots_and_seeds():
    psi = jnp.asarray(np.random.default_rng(0).standard_normal(32))
    psi = psi / jnp.linalg.norm(psi)
    shots = [100, 1_000, 10_000, 100_000]
    res = qj.sweep(
        functools.partial(qj.targets.readout_error, psi=psi),
        qj.grid(shots=shots, seed=np.arange(16)),
    )
    mean_l2 = res.values["l2"].mean(axis=1)
    slope = np.polyfit(np.log(shots), np.log(mean_l2), 1)[0]
    assert abs(slope + 0.5) < 0.1, slope
    assert len(np.unique(res.values["l2"][0])) == 16  # different seeds, different samples


def _shaped_outputs(c):
    a, b = c["a"], c["b"]
    return {
        "scalar": a * b,
        "vector": jnp.stack([a, 2 * a, 3 * b]),
        "matrix": jnp.outer(jnp.stack([a, b]), jnp.stack([1.0, a, a * b])),
    }


def _python_loop(points_):
    """The reference: evaluate the same formulas in numpy, one point at a time."""
    rows = []
    for i in range(points_.size):
        a, b = (float(points_.columns[k][i]) for k in ("a", "b"))
        rows.append(
            {
                "scalar": a * b,
                "vector": np.array([a, 2 * a, 3 * b]),
                "matrix": np.outer([a, b], [1.0, a, a * b]),
            }
        )
    return {
        k: np.stack([r[k] for r in rows]).reshape(*points_.shape, *np.shape(rows[0][k]))
        for k in rows[0]
    }


@pytest.mark.parametrize("chunk_size", [None, 1, 2])
@pytest.mark.parametrize("num_devices", [1, 4])
@pytest.mark.parametrize(
    "points_",
    [
        qj.grid(a=[1.0, 2.0, 3.0], b=[0.5, -1.0]),
        qj.targets.points(a=np.arange(1.0, 8.0), b=-np.arange(7.0)),
    ],
    ids=["grid_3x2", "points_7"],
)
def test_vector_and_matrix_outputs_equal_a_python_loop(points_, num_devices, chunk_size):
    res = qj.sweep(
        _shaped_outputs,
        points_,
        devices=jax.devices()[:num_devices],
        chunk_size=chunk_size,
        progress=chunk_size == 1,
    )
    ref = _python_loop(points_)
    assert res.values["vector"].shape == (*points_.shape, 3)
    assert res.values["matrix"].shape == (*points_.shape, 2, 3)
    for k in ref:
        np.testing.assert_allclose(res.values[k], ref[k], rtol=1e-14, err_msg=k)


def test_issue_example_vector_output_per_point():
    res = qj.sweep(lambda c: jnp.stack([c["a"], 2 * c["a"], 3 * c["a"]]), qj.grid(a=[1.0, 2.0]))
    np.testing.assert_allclose(res.values, [[1, 2, 3], [2, 4, 6]])
