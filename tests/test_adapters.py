"""NNX and equinox modules as `(loss_fn, params)`, checked against the linen `make_mlp` path.

Each test builds the same two-layer ReLU network three ways — linen (`qj.ml.make_mlp`), flax NNX
and equinox — with the weights of the linen one copied in, and compares losses, Hessian-vector
products (oracle: `jax.hessian` of the linen loss) and what the library's entry points compute.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree

import qsgd_jax as qj

D_IN, HIDDEN, CLASSES, B = 4, 5, 3, 12
F64 = jnp.float64


class NNXMLP(nnx.Module):
    """The linen `MLP` of `make_mlp` written in NNX (same attribute names as its param keys)."""

    def __init__(self, rngs):
        self.Dense_0 = nnx.Linear(D_IN, HIDDEN, param_dtype=F64, rngs=rngs)
        self.head = nnx.Linear(HIDDEN, CLASSES, param_dtype=F64, rngs=rngs)

    def __call__(self, x):
        return self.head(jax.nn.relu(self.Dense_0(x.reshape(x.shape[0], -1))))


class EqxMLP(eqx.Module):
    """The same network in equinox (one example per call; `weight` is the transposed kernel)."""

    layers: tuple
    act: object = eqx.field(static=True)

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.layers = (
            eqx.nn.Linear(D_IN, HIDDEN, key=k1, dtype=F64),
            eqx.nn.Linear(HIDDEN, CLASSES, key=k2, dtype=F64),
        )
        self.act = jax.nn.relu

    def __call__(self, x):
        return self.layers[1](self.act(self.layers[0](x)))


@pytest.fixture(scope="module")
def linen():
    model = qj.ml.make_mlp((D_IN,), CLASSES, hidden=(HIDDEN,), dtype=F64)
    params = model.init(jax.random.key(1))
    rng = np.random.default_rng(2)
    batch = qj.ml.Batch(
        jnp.asarray(rng.standard_normal((B, D_IN))), jnp.asarray(rng.integers(0, CLASSES, B))
    )
    return model, params, batch


def nnx_copy(params):
    m = NNXMLP(nnx.Rngs(0))
    for name in ("Dense_0", "head"):
        layer = getattr(m, name)
        layer.kernel.set_value(params[name]["kernel"])
        layer.bias.set_value(params[name]["bias"])
    return m


def eqx_copy(params):
    m = EqxMLP(jax.random.key(0))
    for i, name in enumerate(("Dense_0", "head")):
        m = eqx.tree_at(lambda t, i=i: t.layers[i].weight, m, params[name]["kernel"].T)
        m = eqx.tree_at(lambda t, i=i: t.layers[i].bias, m, params[name]["bias"])
    return m


def eqx_to_linen(p):
    """Equinox parameter pytree -> the linen dict (kernels transposed back)."""
    return {
        name: {"kernel": p.layers[i].weight.T, "bias": p.layers[i].bias}
        for i, name in enumerate(("Dense_0", "head"))
    }


def linen_to_eqx(p, like):
    return jax.tree_util.tree_map(
        lambda a, b: b, like, eqx.filter(eqx_copy(p), eqx.is_inexact_array)
    )


def dense_hessian(model, params, batch):
    flat, unravel = ravel_pytree(params)
    return jax.jit(jax.hessian(lambda f: model.loss_fn(unravel(f), batch)))(flat), unravel


def test_nnx_loss_and_hvp_match_linen(linen):
    model, params, batch = linen
    loss_fn, p = qj.ml.from_nnx(nnx_copy(params))
    assert jax.tree_util.tree_structure(p) == jax.tree_util.tree_structure(params)
    np.testing.assert_allclose(loss_fn(p, batch), model.loss_fn(params, batch), rtol=1e-13)
    H, _ = dense_hessian(model, params, batch)
    hvp, dim = qj.spectrum.hessian_operator(loss_fn, p, [batch], view="dense")
    assert dim == H.shape[0]
    v = jnp.asarray(np.random.default_rng(3).standard_normal(dim))
    np.testing.assert_allclose(hvp(v), H @ v, rtol=1e-10, atol=1e-12)


def test_equinox_loss_and_hvp_match_linen(linen):
    model, params, batch = linen
    loss_fn, p = qj.ml.from_equinox(eqx_copy(params))
    np.testing.assert_allclose(loss_fn(p, batch), model.loss_fn(params, batch), rtol=1e-13)
    H, unravel_linen = dense_hessian(model, params, batch)
    hvp, dim = qj.spectrum.hessian_operator(loss_fn, p, [batch], view="dense")
    assert dim == H.shape[0]
    _, unravel_eqx = ravel_pytree(p)
    v_linen = jnp.asarray(np.random.default_rng(4).standard_normal(dim))
    v_eqx = ravel_pytree(linen_to_eqx(unravel_linen(v_linen), p))[0]
    got = ravel_pytree(eqx_to_linen(unravel_eqx(hvp(v_eqx))))[0]
    np.testing.assert_allclose(got, H @ v_linen, rtol=1e-10, atol=1e-12)


def test_custom_loss_and_mse(linen):
    _, params, batch = linen
    m = eqx_copy(params)
    target = qj.ml.Batch(
        batch.x, jnp.asarray(np.random.default_rng(5).standard_normal((B, CLASSES)))
    )
    loss_fn, p = qj.ml.from_equinox(m, "mse")
    out = np.asarray(jax.vmap(m)(batch.x))
    np.testing.assert_allclose(
        loss_fn(p, target), 0.5 * np.mean((out - np.asarray(target.y)) ** 2), rtol=1e-13
    )
    # A callable loss gets the rebuilt module: here the mean of the first logit.
    loss_fn, p = qj.ml.from_nnx(nnx_copy(params), lambda mod, b: jnp.mean(mod(b.x)[:, 0]))
    w = {k: {n: np.asarray(a) for n, a in v.items()} for k, v in params.items()}
    hidden = np.maximum(np.asarray(batch.x) @ w["Dense_0"]["kernel"] + w["Dense_0"]["bias"], 0)
    logits = hidden @ w["head"]["kernel"] + w["head"]["bias"]
    np.testing.assert_allclose(loss_fn(p, batch), np.mean(logits[:, 0]), rtol=1e-13)


def test_nnx_batchnorm_state_is_held_and_not_mutated():
    class BN(nnx.Module):
        def __init__(self, rngs):
            # float32: flax's batch statistics promote to float32, which strict promotion
            # forbids for float64 inputs.
            self.lin = nnx.Linear(D_IN, CLASSES, rngs=rngs)
            self.bn = nnx.BatchNorm(CLASSES, rngs=rngs)

        def __call__(self, x):
            return self.bn(self.lin(x))

    module = BN(nnx.Rngs(0))
    mean_before = np.asarray(module.bn.mean.get_value())
    loss_fn, p = qj.ml.from_nnx(module, "mse")
    assert sorted(p) == ["bn", "lin"] and sorted(p["bn"]) == ["bias", "scale"]  # no BatchStat
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((B, D_IN)), rng.standard_normal((B, CLASSES))
    batch = qj.ml.Batch(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
    # Oracle: batch-statistics normalization in numpy.
    x = np.asarray(batch.x, np.float64)
    z = x @ np.asarray(p["lin"]["kernel"], np.float64) + np.asarray(p["lin"]["bias"], np.float64)
    zn = (z - z.mean(0)) / np.sqrt(z.var(0) + module.bn.epsilon)
    want = 0.5 * np.mean((zn - np.asarray(batch.y)) ** 2)
    np.testing.assert_allclose(eqx.filter_jit(loss_fn)(p, batch), want, rtol=1e-5)
    g = eqx.filter_jit(lambda q, b: jax.grad(loss_fn)(q, b))(p, batch)
    assert np.all(np.isfinite(ravel_pytree(g)[0]))
    np.testing.assert_array_equal(module.bn.mean.get_value(), mean_before)


def test_gd_map_and_quantum_window_accept_adapters(linen):
    model, params, batch = linen
    eta = 0.2
    ref = qj.gd_map(model.loss_fn, params, batch, eta=eta, degree=1)
    loss_fn, p = qj.ml.from_nnx(nnx_copy(params))
    got = qj.gd_map(loss_fn, p, batch, eta=eta, degree=1)
    np.testing.assert_allclose(got.F0, ref.F0, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got.F1, ref.F1, rtol=1e-12, atol=1e-14)

    # Oracle of a window of T_q = 2 full-batch steps at order 1 of the degree-1 model (exact for
    # an affine map): u <- u - eta (g + H u) from u = 0, with g and H of the linen loss.
    H, unravel = dense_hessian(model, params, batch)
    flat = ravel_pytree(params)[0]
    g = np.asarray(jax.jit(jax.grad(lambda f: model.loss_fn(unravel(f), batch)))(flat))
    u = np.zeros_like(g)
    for _ in range(2):
        u = u - eta * (g + np.asarray(H) @ u)
    want = unravel(flat + jnp.asarray(u))
    cfg = qj.WindowConfig(eta, 2, degree=1, batching="full", diagnostics=False)
    loss_fn, p = qj.ml.from_equinox(eqx_copy(params))
    eqx_mask = jax.tree_util.tree_map(lambda x: jnp.ones(x.shape, bool), p)
    p_hat, report = qj.quantum_window(loss_fn, p, eqx_mask, batch, cfg, jax.random.key(0))
    assert int(report.diverged_step) < 0
    got_leaves = jax.tree_util.tree_leaves(eqx_to_linen(p_hat))
    for a, b in zip(got_leaves, jax.tree_util.tree_leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # The window moved the parameters (so the comparison above is not of two copies of p).
    assert not np.allclose(ravel_pytree(p_hat)[0], ravel_pytree(p)[0])


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="`module` must be a flax `nnx.Module`"):
        qj.ml.from_nnx(EqxMLP(jax.random.key(0)))
    with pytest.raises(TypeError, match="`module` must be an `eqx.Module`"):
        qj.ml.from_equinox(object())
    with pytest.raises(ValueError, match="`loss` must be one of"):
        qj.ml.from_equinox(EqxMLP(jax.random.key(0)), "hinge")
