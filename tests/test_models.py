"""Models: parameter counts without running, pure losses, BatchNorm in train mode, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qsgd_jax._data import Batch
from qsgd_jax._models import RESNET_CONFIGS, make_cnn, make_mlp, make_resnet, named_resnet


def _resnet_count(depth, w, classes):
    """Hand count: bias-free convs, 2 params per BatchNorm channel, 1x1 conv shortcuts."""
    k = (depth - 2) // 6
    widths = [16 * w, 32 * w, 64 * w]
    total = 9 * 3 * widths[0] + 2 * widths[0]
    c_in = widths[0]
    for c in widths:
        for _ in range(k):
            total += 9 * c_in * c + 2 * c + 9 * c * c + 2 * c
            if c_in != c:
                total += c_in * c + 2 * c
            c_in = c
    return total + widths[-1] * classes + classes


def test_named_resnet_param_counts():
    counts = {name: named_resnet(name).num_params() for name in RESNET_CONFIGS}
    assert counts["resnet32-4-c100"] == 7_451_044  # the paper's "7.45M" model
    for name, (d, w, c) in RESNET_CONFIGS.items():
        assert counts[name] == _resnet_count(d, w, c), name
    assert 1.0e8 < counts["resnet32-15-c100"] < 1.06e8  # the "~103M" member of the family


def test_resnet_shapes_and_pure_batchnorm_loss(getkey):
    model = make_resnet(8, 1, 10, input_shape=(8, 8, 3))
    params = model.init(getkey())
    x = jax.random.normal(getkey(), (2, 8, 8, 3), jnp.float32)
    batch = Batch(x, jnp.array([1, 7], jnp.int32))
    loss = jax.jit(model.loss_fn)
    l1, l2 = loss(params, batch), loss(params, batch)
    assert l1.dtype == jnp.float32 and np.isfinite(float(l1)) and float(l1) == float(l2)
    apply = jax.jit(model.apply)
    out = apply(params, x)
    assert out.shape == (2, 10)
    # Train-mode BatchNorm: an example's output depends on the other examples of the batch.
    x2 = x.at[1].multiply(3.0)
    assert not np.allclose(apply(params, x2)[0], out[0])
    assert "head" in params and params["stem"]["kernel"].shape == (3, 3, 3, 16)
    grads = jax.jit(jax.grad(model.loss_fn))(params, batch)
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(params)


def test_groupnorm_and_norm_free_are_per_example(getkey):
    x = jax.random.normal(getkey(), (2, 8, 8, 3), jnp.float32)
    for norm in ("group", "none"):
        model = make_resnet(8, 1, 10, norm=norm, input_shape=(8, 8, 3))
        params = model.init(getkey())
        apply = jax.jit(model.apply)
        out = apply(params, x)
        np.testing.assert_allclose(apply(params, x.at[1].multiply(3.0))[0], out[0],
                                   rtol=1e-5, atol=1e-6)  # fmt: skip


def test_mlp_cnn_losses_accuracy_and_dtype(getkey):
    x = jax.random.normal(getkey(), (6, 40), jnp.float64)
    y = jnp.arange(6, dtype=jnp.int32) % 3
    for model in (make_mlp((40,), 3, (8,), dtype=jnp.float64),
                  make_cnn((40,), 3, (4, 8), norm="batch", dtype=jnp.float64)):  # fmt: skip
        params = model.init(getkey())
        assert all(p.dtype == jnp.float64 for p in jax.tree_util.tree_leaves(params))
        batch = Batch(x, y)
        logits = np.asarray(jax.jit(model.apply)(params, x))
        want = -np.mean(logits[np.arange(6), y] - np.log(np.exp(logits).sum(-1)))
        np.testing.assert_allclose(jax.jit(model.loss_fn)(params, batch), want, rtol=1e-12)
        acc = float(jax.jit(model.accuracy)(params, batch))
        assert acc == pytest.approx(np.mean(np.argmax(np.asarray(logits), -1) == np.asarray(y)))
    reg = make_mlp((3,), 0, (4,), dtype=jnp.float64)
    p = reg.init(getkey())
    xb = jnp.ones((2, 3), jnp.float64)
    yb = jnp.zeros((2, 1), jnp.float64)
    pred = reg.apply(p, xb)
    np.testing.assert_allclose(reg.loss_fn(p, Batch(xb, yb)), 0.5 * jnp.mean(pred**2))
    img = make_cnn((8, 8, 1), 10)
    assert img.apply(img.init(getkey()), jnp.zeros((2, 8, 8, 1), jnp.float32)).shape == (2, 10)


def test_bad_input_is_named(getkey):
    model = make_mlp((4,), 3, (5,))
    params = model.init(getkey())
    good_x = jnp.zeros((2, 4), jnp.float32)
    with pytest.raises(ValueError, match=r"batch\.x.*shape"):
        model.loss_fn(params, Batch(jnp.zeros((2, 5), jnp.float32), jnp.zeros(2, jnp.int32)))
    with pytest.raises(ValueError, match=r"batch\.x.*dtype float64"):
        model.loss_fn(params, Batch(jnp.zeros((2, 4), jnp.float64), jnp.zeros(2, jnp.int32)))
    with pytest.raises(ValueError, match=r"batch\.y.*integer"):
        model.loss_fn(params, Batch(good_x, jnp.zeros(2, jnp.float32)))
    bad = jax.tree_util.tree_map(lambda p: p, params)
    bad["head"]["kernel"] = jnp.zeros((6, 3), jnp.float32)
    with pytest.raises(ValueError, match=r"head.*kernel.*\(5, 3\)"):
        model.check_params(bad)
    model.check_params(params)
    with pytest.raises(ValueError, match="depth"):
        make_resnet(10, 1, 10)
    with pytest.raises(ValueError, match="norm"):
        make_resnet(8, 1, 10, norm="layer")
    with pytest.raises(ValueError, match="name"):
        named_resnet("resnet50")
