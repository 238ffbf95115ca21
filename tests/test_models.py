"""Models: parameter counts without running, pure losses, BatchNorm in train mode, bad input."""

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qsgd_jax._models import ACTIVATIONS
from qsgd_jax.ml import RESNET_CONFIGS, Batch, make_cnn, make_mlp, make_resnet, named_resnet

JAX_NN = {
    "relu": jax.nn.relu,
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "softplus": jax.nn.softplus,
    "tanh": jax.nn.tanh,
}


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
    x = jax.random.normal(getkey(), (2, 8, 8, 3), jnp.float32)
    batch = Batch(x, jnp.array([1, 7], jnp.int32))
    x2 = x.at[1].multiply(3.0)

    @jax.jit
    def run(key, batch):  # init, loss, gradient and outputs in one compilation
        params = model.net.init(key, batch.x)["params"]
        loss, grads = jax.value_and_grad(model.loss_fn)(params, batch)
        return loss, grads, model.apply(params, batch.x), model.apply(params, x2), params

    key = getkey()
    l1, grads, out, out2, params = run(key, batch)
    l2 = run(key, batch)[0]
    assert l1.dtype == jnp.float32 and np.isfinite(float(l1)) and float(l1) == float(l2)
    assert out.shape == (2, 10)
    # Train-mode BatchNorm: an example's output depends on the other examples of the batch.
    assert not np.allclose(out2[0], out[0])
    assert "head" in params and params["stem"]["kernel"].shape == (3, 3, 3, 16)
    # Kaiming (fan-out) normal: std sqrt(2 / (3 * 3 * 16)) for a 3x3 conv with 16 outputs.
    k = np.asarray(params["stage1_block1"]["conv1"]["kernel"])
    assert k.shape == (3, 3, 16, 16) and np.std(k) == pytest.approx(np.sqrt(2 / 144), rel=0.1)
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(params)


def test_groupnorm_is_per_example_and_norm_free_has_skip_gains(getkey):
    x = jax.random.normal(getkey(), (2, 8, 8, 3), jnp.float32)
    model = make_resnet(8, 1, 10, norm="group", input_shape=(8, 8, 3))

    @jax.jit
    def run(key, xs):  # init and apply in one compilation
        params = model.net.init(key, xs[0])["params"]
        return jax.vmap(model.apply, (None, 0))(params, xs)

    out, out2 = run(getkey(), jnp.stack([x, x.at[1].multiply(3.0)]))
    np.testing.assert_allclose(out2[0], out[0], rtol=1e-5, atol=1e-6)
    free = make_resnet(8, 1, 10, norm="none").param_shapes()
    assert free["stage1_block1"]["skip_gain"].shape == ()
    assert "norm1" not in free["stage1_block1"]


def test_mlp_cnn_losses_accuracy_and_dtype(getkey):
    x = jax.random.normal(getkey(), (6, 40), jnp.float64)
    y = jnp.arange(6, dtype=jnp.int32) % 3
    for model in (
        make_mlp((40,), 3, (8,), dtype=jnp.float64),
        make_cnn((40,), 3, (4, 8), norm="batch", dtype=jnp.float64),
    ):
        params = model.init(getkey())
        assert all(p.dtype == jnp.float64 for p in jax.tree_util.tree_leaves(params))
        batch = Batch(x, y)
        run = jax.jit(lambda p, b, m=model: (m.apply(p, b.x), m.loss_fn(p, b), m.accuracy(p, b)))
        logits, loss, acc = run(params, batch)
        logits = np.asarray(logits)
        want = -np.mean(logits[np.arange(6), y] - np.log(np.exp(logits).sum(-1)))
        np.testing.assert_allclose(loss, want, rtol=1e-12)
        acc = float(acc)
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
    for make in (
        lambda: make_mlp((4,), 3, activation="swish"),
        lambda: make_cnn((8, 8, 1), 3, activation="ReLU"),
        lambda: make_resnet(8, 1, 10, activation="elu"),
        lambda: named_resnet("resnet32-4-c10", activation="Tanh"),
    ):
        with pytest.raises(ValueError, match=r"`activation` must be one of \('relu', 'gelu'"):
            make()


@pytest.mark.parametrize("name", sorted(JAX_NN))
def test_each_activation_is_the_jax_nn_function_in_a_forward_pass(getkey, name):
    """MLP and CNN forward passes written out with the jax.nn function, in float64."""
    x = jax.random.normal(getkey(), (3, 5), jnp.float64)
    act = JAX_NN[name]
    np.testing.assert_array_equal(ACTIVATIONS[name](x), act(x))
    mlp = make_mlp((5,), 2, (4, 3), activation=name, dtype=jnp.float64)
    p = mlp.init(getkey())
    h = act(x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"][None])
    h = act(h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"][None])
    want = h @ p["head"]["kernel"] + p["head"]["bias"][None]
    np.testing.assert_allclose(mlp.apply(p, x), want, rtol=1e-13, atol=1e-14)
    cnn = make_cnn((5,), 2, (3,), activation=name, dtype=jnp.float64)  # 1-D signal, one block
    p = cnn.init(getkey())
    k, b = p["Conv_0"]["kernel"], p["Conv_0"]["bias"]  # (3, 1, 3): SAME padding, stride 1
    xp = jnp.pad(x, ((0, 0), (1, 1)))
    conv = sum(xp[:, i : i + 5, None] * k[i, 0][None, None] for i in range(3)) + b[None, None]
    want = jnp.mean(act(conv), axis=1) @ p["head"]["kernel"] + p["head"]["bias"][None]
    np.testing.assert_allclose(cnn.apply(p, x), want, rtol=1e-12, atol=1e-13)


def test_resnet_routes_every_nonlinearity_through_the_activation(getkey, monkeypatch):
    """With 'relu' mapped to GELU, the default ResNet equals the GELU one bit for bit: every
    nonlinearity (stem, blocks, residual sums) uses the chosen function."""
    x = jax.random.normal(getkey(), (2, 4, 4, 3), jnp.float32)

    def forward(activation):
        model = make_resnet(8, 1, 4, activation=activation, input_shape=(4, 4, 3))
        return jax.jit(model.apply)(params, x)

    params = make_resnet(8, 1, 4, input_shape=(4, 4, 3)).init(getkey())
    relu_out, gelu_out = forward("relu"), forward("gelu")
    assert not np.allclose(relu_out, gelu_out)
    monkeypatch.setitem(ACTIVATIONS, "relu", ACTIVATIONS["gelu"])
    np.testing.assert_array_equal(forward("relu"), gelu_out)


def test_default_activation_is_the_former_relu():
    """The default is the very function every model used before `activation=` existed."""
    assert ACTIVATIONS["relu"] is flax.linen.relu
    for model in (make_mlp((5,), 2), make_cnn((8, 8, 1), 2), make_resnet(8, 1, 4)):
        assert model.net.activation == "relu"
