"""Flax (linen) models with a pure loss: MLP, small CNN and the CIFAR ResNet-(6k+2) family.

Every model is wrapped in a `Model`, whose `loss_fn(params, batch)` and `accuracy(params,
batch)` are pure functions of the parameter pytree and a `Batch` — what the rest of the library
differentiates. BatchNorm runs in train mode with the statistics of the batch inside the loss and
keeps no running averages, so the loss has no hidden state (the paper's Hessians use BatchNorm in
train mode too).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray, PyTree, Scalar

from ._data import Batch, check_labels

# Plain normals of variance gain / fan (`"normal"` is untruncated; the values equal the former
# hand-written initializers bit for bit): Kaiming (fan-out, PyTorch's `kaiming_normal_`) for
# convolutions, LeCun (fan-in) for dense layers. Untruncated normals also compile much faster
# on CPU than JAX's truncated ones.
_kaiming = jax.nn.initializers.variance_scaling(2.0, "fan_out", "normal")
_lecun = jax.nn.initializers.variance_scaling(1.0, "fan_in", "normal")
NORMS = ("batch", "group", "none")
ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": nn.relu,
    "gelu": functools.partial(jax.nn.gelu, approximate=False),
    "softplus": jax.nn.softplus,
    "tanh": jnp.tanh,
}
"""The hidden-layer nonlinearities of every model family, by name (`activation=`): ReLU (the
default; its kinks make the Taylor model of the loss exact only piecewise), and the smooth
GELU (the exact, erf form), softplus and tanh, whose Taylor models have no kink errors."""


class BatchNormTrain(nn.Module):
    """BatchNorm in train mode with batch statistics only and no running averages.

    $y = \\gamma (x - \\mu_B)/\\sqrt{\\sigma_B^2+\\epsilon} + \\beta$. The mean and
    variance are those of the current batch over every axis but the last; there is no running
    average, so the layer is a pure function of its parameters and input.

    **Fields:** `epsilon` ($\\epsilon$), `param_dtype` (of $\\gamma$, $\\beta$).
    """

    epsilon: float = 1e-5
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,), self.param_dtype)
        bias = self.param("bias", nn.initializers.zeros, (c,), self.param_dtype)
        axes = tuple(range(x.ndim - 1))
        mean = jnp.mean(x, axis=axes, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
        shape = (1,) * (x.ndim - 1) + (c,)
        inv = jax.lax.rsqrt(var + self.epsilon) * scale.reshape(shape)
        return (x - mean) * inv + bias.reshape(shape)


def _norm(kind: str, dtype, name: str | None = None):
    if kind == "batch":
        return BatchNormTrain(param_dtype=dtype, name=name)
    if kind == "group":
        return lambda x: nn.GroupNorm(
            num_groups=math.gcd(x.shape[-1], 8), param_dtype=dtype, name=name
        )(x)
    return lambda x: x


class MLP(nn.Module):
    """Fully connected network on flattened inputs; output layer named `head`.

    **Fields:** `hidden` (widths of the hidden layers), `num_outputs`, `param_dtype`,
    `activation` (a key of `ACTIVATIONS`).
    """

    hidden: Sequence[int]
    num_outputs: int
    param_dtype: jnp.dtype = jnp.float32
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        x = x.reshape(x.shape[0], -1)
        for h in self.hidden:
            x = act(nn.Dense(h, kernel_init=_lecun, param_dtype=self.param_dtype)(x))
        return nn.Dense(
            self.num_outputs, kernel_init=_lecun, param_dtype=self.param_dtype, name="head"
        )(x)


class CNN(nn.Module):
    """Small ConvNet: 3-wide conv + norm + activation blocks (stride 2 after the first), global
    average pool, linear `head`. Works on images `(h, w, c)` and on 1-D signals `(l,)` or
    `(l, c)`.

    **Fields:** `channels` (of each block), `num_outputs`, `norm` (one of `NORMS`),
    `param_dtype`, `activation` (a key of `ACTIVATIONS`).
    """

    channels: Sequence[int]
    num_outputs: int
    norm: str = "none"
    param_dtype: jnp.dtype = jnp.float32
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        if x.ndim == 2:
            x = x[..., None]
        k = (3,) * (x.ndim - 2)
        for i, c in enumerate(self.channels):
            s = (1 if i == 0 else 2,) * len(k)
            conv = nn.Conv(
                c,
                k,
                s,
                use_bias=self.norm == "none",
                kernel_init=_kaiming,
                param_dtype=self.param_dtype,
            )
            x = ACTIVATIONS[self.activation](_norm(self.norm, self.param_dtype)(conv(x)))
        x = jnp.mean(x, axis=tuple(range(1, x.ndim - 1)))
        return nn.Dense(
            self.num_outputs, kernel_init=_lecun, param_dtype=self.param_dtype, name="head"
        )(x)


class BasicBlock(nn.Module):
    """ResNet BasicBlock: two 3×3 convs with norm, identity or 1×1-conv+norm shortcut.

    With `norm="none"` the residual branch is scaled by a learnable scalar initialized to 0
    (SkipInit), which keeps a norm-free deep ResNet trainable.

    **Fields:** `features`, `stride`, `norm`, `param_dtype`, `activation` (a key of
    `ACTIVATIONS`).
    """

    features: int
    stride: int
    norm: str
    param_dtype: jnp.dtype
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        def conv(f, k, s, name):
            pad = 1 if k == 3 else 0
            dt = self.param_dtype
            return nn.Conv(
                f,
                (k, k),
                (s, s),
                padding=pad,
                use_bias=False,
                kernel_init=_kaiming,
                param_dtype=dt,
                name=name,
            )

        act = ACTIVATIONS[self.activation]
        y = conv(self.features, 3, self.stride, "conv1")(x)
        y = act(_norm(self.norm, self.param_dtype, "norm1")(y))
        y = conv(self.features, 3, 1, "conv2")(y)
        y = _norm(self.norm, self.param_dtype, "norm2")(y)
        if self.norm == "none":
            y = y * self.param("skip_gain", nn.initializers.zeros, (), self.param_dtype)
        if self.stride != 1 or x.shape[-1] != self.features:
            x = conv(self.features, 1, self.stride, "shortcut")(x)
            x = _norm(self.norm, self.param_dtype, "shortcut_norm")(x)
        return act(x + y)


class CifarResNet(nn.Module):
    """CIFAR ResNet of depth $6k+2$ with widen factor $w$ (He et al. 2016, Zagoruyko 2016).

    3×3 stem with $16w$ channels, three stages of $k$ BasicBlocks of widths $16w, 32w, 64w$
    (stride 2 at the start of stages 2 and 3, 1×1-conv shortcuts there), global average pool,
    linear `head`. Kaiming (fan-out) initialization of the convolutions.

    **Fields:** `depth` ($6k+2$), `width` ($w$), `num_outputs`, `norm`, `param_dtype`,
    `activation` (a key of `ACTIVATIONS`).
    """

    depth: int
    width: int
    num_outputs: int
    norm: str = "batch"
    param_dtype: jnp.dtype = jnp.float32
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        k = (self.depth - 2) // 6
        x = nn.Conv(
            16 * self.width,
            (3, 3),
            padding=1,
            use_bias=False,
            kernel_init=_kaiming,
            param_dtype=self.param_dtype,
            name="stem",
        )(x)
        x = ACTIVATIONS[self.activation](_norm(self.norm, self.param_dtype, "stem_norm")(x))
        for stage, mult in enumerate((16, 32, 64)):
            for b in range(k):
                stride = 2 if stage > 0 and b == 0 else 1
                x = BasicBlock(
                    mult * self.width,
                    stride,
                    self.norm,
                    self.param_dtype,
                    self.activation,
                    name=f"stage{stage + 1}_block{b + 1}",
                )(x)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(
            self.num_outputs, kernel_init=_lecun, param_dtype=self.param_dtype, name="head"
        )(x)


class Model(eqx.Module):
    """A flax network with its input shape and task, exposing pure `loss_fn` and `accuracy`.

    **Fields:** (all static)
    - `net`: the flax `nn.Module`.
    - `input_shape`: shape of one example (no batch axis).
    - `num_classes`: classes for the mean cross-entropy loss; 0 means regression with loss
      $\\tfrac12$ mean squared error on `y` of shape `(b, num_outputs)`.
    - `dtype`: float dtype of the parameters and the inputs.
    """

    net: nn.Module = eqx.field(static=True)
    input_shape: tuple[int, ...] = eqx.field(static=True)
    num_classes: int = eqx.field(static=True)
    dtype: np.dtype = eqx.field(static=True, default=np.dtype("float32"))

    def init(self, key: PRNGKeyArray) -> PyTree[Float[Array, "..."]]:
        """Initial parameters (the flax `params` collection, a nested dict)."""
        x = jnp.zeros((2, *self.input_shape), self.dtype)
        # Jitted: flax's eager, op-by-op initialization is ~10x slower on CPU.
        return jax.jit(self.net.init)(key, x)["params"]

    def param_shapes(self) -> PyTree[jax.ShapeDtypeStruct]:
        """Parameter shapes and dtypes via `jax.eval_shape` (nothing is computed)."""
        return jax.eval_shape(self.init, jax.random.key(0))

    def num_params(self) -> int:
        """Number of scalar parameters, from `param_shapes` (the model is never run)."""
        return int(sum(math.prod(s.shape) for s in jax.tree_util.tree_leaves(self.param_shapes())))

    def check_params(self, params) -> None:
        """Raise `ValueError` if `params` does not have this model's tree structure and shapes."""
        want = self.param_shapes()
        got_def, want_def = jax.tree_util.tree_structure(params), jax.tree_util.tree_structure(want)
        if got_def != want_def:
            raise ValueError(
                f"`params` do not match the model {type(self.net).__name__}: tree structure "
                f"{got_def} differs from the expected {want_def}."
            )
        for (path, g), w in zip(
            jax.tree_util.tree_leaves_with_path(params),
            jax.tree_util.tree_leaves(want),
            strict=True,
        ):
            if tuple(jnp.shape(g)) != w.shape:
                raise ValueError(
                    f"`params` leaf {jax.tree_util.keystr(path)} has shape {tuple(jnp.shape(g))}, "
                    f"but the model expects {w.shape}."
                )

    def check_batch(self, batch: Batch) -> None:
        """Raise `ValueError` if a batch's shapes or dtypes do not fit the model."""
        x, y = batch.x, batch.y
        if x.ndim != len(self.input_shape) + 1 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"`batch.x` has shape {x.shape}; the model expects (batch, *{self.input_shape})."
            )
        if x.dtype != self.dtype:
            raise ValueError(
                f"`batch.x` has dtype {x.dtype}; the model's dtype is {self.dtype} (cast the data "
                "or build the model with `dtype=`)."
            )
        if self.num_classes:
            if y.shape != (x.shape[0],) or not jnp.issubdtype(y.dtype, jnp.integer):
                raise ValueError(
                    f"`batch.y` must be integer class labels of shape ({x.shape[0]},), got "
                    f"shape {y.shape} and dtype {y.dtype}."
                )
            check_labels("batch.y", y, self.num_classes)  # concrete labels only: cheap
        elif y.shape[0] != x.shape[0] or y.dtype != self.dtype:
            raise ValueError(
                f"`batch.y` must be regression targets with {x.shape[0]} rows and dtype "
                f"{self.dtype}, got shape {y.shape} and dtype {y.dtype}."
            )

    def apply(self, params, x: Float[Array, "b ..."]) -> Float[Array, "b o"]:
        """Network outputs (logits, or regression predictions) for inputs `x`."""
        return self.net.apply({"params": params}, x)

    def loss_fn(self, params, batch: Batch) -> Scalar:
        """Pure loss $L(\\theta; \\text{batch})$: mean cross-entropy (or ½ mean squared error)."""
        self.check_batch(batch)
        out = self.apply(params, batch.x)
        if self.num_classes:
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, batch.y))
        return 0.5 * jnp.mean(jnp.square(out - batch.y.reshape(out.shape)))

    def accuracy(self, params, batch: Batch) -> Scalar:
        """Fraction of examples whose arg-max logit is the label (classification only)."""
        self.check_batch(batch)
        if not self.num_classes:
            raise ValueError("`accuracy` needs a classification model (num_classes > 0).")
        pred = jnp.argmax(self.apply(params, batch.x), axis=-1).astype(batch.y.dtype)
        return jnp.mean((pred == batch.y).astype(self.dtype))


def _check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"`norm` must be one of {NORMS}, got {norm!r}.")


def _check_activation(activation: str) -> None:
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {tuple(ACTIVATIONS)}, got {activation!r}.")


def make_mlp(
    input_shape,
    num_classes: int,
    hidden=(64, 64),
    *,
    activation: str = "relu",
    dtype=jnp.float32,
) -> Model:
    """An MLP `Model` (`num_classes = 0`: scalar regression).

    **Arguments:**

    - `input_shape`: the shape of one example.
    - `num_classes`: the number of classes (0: regression).
    - `hidden`: the hidden widths.
    - `activation`: the nonlinearity, a key of `ACTIVATIONS`.
    - `dtype`: the float dtype.

    **Returns:** a `Model`.
    """
    _check_activation(activation)
    net = MLP(tuple(hidden), max(num_classes, 1), jnp.dtype(dtype), activation)
    return Model(net, tuple(input_shape), num_classes, np.dtype(dtype))


def make_cnn(
    input_shape,
    num_classes: int,
    channels=(16, 32),
    *,
    norm: str = "none",
    activation: str = "relu",
    dtype=jnp.float32,
) -> Model:
    """A small CNN `Model` on images `(h, w, c)` or 1-D signals `(l,)`.

    **Arguments:**

    - `input_shape`: the shape of one example.
    - `num_classes`: the number of classes (0: regression).
    - `channels`: the channels of each conv block.
    - `norm`: one of `NORMS`.
    - `activation`: the nonlinearity, a key of `ACTIVATIONS`.
    - `dtype`: the float dtype.

    **Returns:** a `Model`.
    """
    _check_norm(norm)
    _check_activation(activation)
    net = CNN(tuple(channels), max(num_classes, 1), norm, jnp.dtype(dtype), activation)
    return Model(net, tuple(input_shape), num_classes, np.dtype(dtype))


def make_resnet(
    depth: int,
    width: int,
    num_classes: int,
    *,
    norm: str = "batch",
    activation: str = "relu",
    input_shape=(32, 32, 3),
    dtype=jnp.float32,
) -> Model:
    """A CIFAR ResNet-`depth` with widen factor `width` (`depth` = 6k+2, e.g. 8, 20, 32, 56).

    **Arguments:**
    - `depth`: 6k+2 with k ≥ 1.
    - `width`: widen factor $w$ ≥ 1 (stage widths 16w, 32w, 64w).
    - `num_classes`: classes of the linear head.
    - `norm`: "batch" (train-mode batch statistics), "group" (GroupNorm) or "none" (SkipInit).
    - `activation`: the nonlinearity, a key of `ACTIVATIONS`.
    - `input_shape`: image shape `(h, w, c)`.
    - `dtype`: parameter and input dtype.

    **Returns:** a `Model`.
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"`depth` must be 6k+2 with k >= 1 (8, 14, 20, 32, ...), got {depth!r}.")
    if width < 1:
        raise ValueError(f"`width` must be an integer >= 1, got {width!r}.")
    _check_norm(norm)
    _check_activation(activation)
    net = CifarResNet(depth, width, num_classes, norm, jnp.dtype(dtype), activation)
    return Model(net, tuple(input_shape), num_classes, np.dtype(dtype))


RESNET_CONFIGS: dict[str, tuple[int, int, int]] = {
    "resnet32-4-c100": (32, 4, 100),
    "resnet32-4-c10": (32, 4, 10),
    "resnet32-8-c100": (32, 8, 100),
    "resnet32-15-c100": (32, 15, 100),
}
"""Named CIFAR ResNet configurations `(depth, width, classes)`, ≈7.45M, 7.43M, 29.7M and ≈104M
parameters; the paper's 7M model is ResNet-32-4 on CIFAR-100, its 103M architecture is not
public and ResNet-32-15 is the nearest member of the family."""


def named_resnet(
    name: str, *, norm: str = "batch", activation: str = "relu", dtype=jnp.float32
) -> Model:
    """One of `RESNET_CONFIGS` by name, e.g. `"resnet32-4-c100"` (≈7.45M parameters).

    **Arguments:**

    - `name`: a key of `RESNET_CONFIGS`.
    - `norm`: one of `NORMS`.
    - `activation`: the nonlinearity, a key of `ACTIVATIONS`.
    - `dtype`: the float dtype.

    **Returns:** a `Model`.
    """
    if name not in RESNET_CONFIGS:
        raise ValueError(f"`name` must be one of {sorted(RESNET_CONFIGS)}, got {name!r}.")
    depth, width, classes = RESNET_CONFIGS[name]
    return make_resnet(depth, width, classes, norm=norm, activation=activation, dtype=dtype)
