"""Bring your own model: flax NNX and equinox modules as `(loss_fn, params)`.

Everything in this library differentiates a pure `loss_fn(params, batch) -> scalar` of a
parameter pytree of float arrays (`taylor_field`, `gd_map`, `quantum_window`, `hybrid_run`, the
spectra). The flax linen models of `make_mlp` & co. provide one through `Model.loss_fn`; the
adapters here provide the same for a module written with flax NNX (`nnx.split`) or equinox
(`eqx.partition`):

```python
loss_fn, params = qj.ml.from_nnx(my_nnx_module)            # mean cross-entropy on batch.x, batch.y
loss_fn, params = qj.ml.from_equinox(my_eqx_module, loss="mse")
field = qj.taylor_field(loss_fn, params, batch, degree=1, matrix_free=True)
```

The trainable parameters are the float arrays of the module (NNX: its `nnx.Param` variables,
as a nested dict of arrays; equinox: its inexact arrays, as a module pytree with `None`
elsewhere). Everything else — NNX batch statistics and other variables, equinox integer arrays,
activation functions, shapes — is held by `loss_fn` and is never differentiated. The returned
`loss_fn` is an `eqx.Module`: its arrays are traced (not baked into compiled programs as
constants) and its Python parts are static, so passing the same `loss_fn` again reuses the
compiled window. Like any `eqx.Module` holding arrays it is not hashable, so jit a function of
it with `eqx.filter_jit` (as the library does), not `jax.jit(loss_fn)`.

The loss is a function of the rebuilt model and the batch: `loss(model, batch) -> scalar`, or one
of the names `"cross_entropy"` (mean softmax cross-entropy with integer labels `batch.y`, as the
linen `Model.loss_fn` of a classifier) and `"mse"` ($\\tfrac12$ mean squared error, as its
regression loss).

NNX modules that update state in their forward pass (BatchNorm in training mode) do so on a
copy inside the loss: the loss stays pure and the module's running averages are not updated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jaxtyping import Array, PyTree, Scalar

LOSSES = ("cross_entropy", "mse")


def _named_loss(name: str, outputs: Array, batch: Any) -> Scalar:
    """The linen `Model.loss_fn` conventions, on the outputs of any module."""
    y = batch.y
    if name == "cross_entropy":
        if outputs.ndim != 2 or not jnp.issubdtype(y.dtype, jnp.integer):
            raise ValueError(
                '`loss="cross_entropy"` needs logits of shape (batch, classes) and integer '
                f"labels `batch.y`; got outputs {outputs.shape} and labels {y.shape} {y.dtype}."
            )
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(outputs, y))
    if outputs.size != y.size:
        raise ValueError(
            f'`loss="mse"` needs targets with as many entries as the outputs; got outputs '
            f"{outputs.shape} and targets {y.shape}."
        )
    return 0.5 * jnp.mean(jnp.square(outputs - y.reshape(outputs.shape).astype(outputs.dtype)))


def _check_loss(loss) -> None:
    if callable(loss):
        return
    if loss not in LOSSES:
        raise ValueError(
            f"`loss` must be one of {LOSSES} or a callable `loss(model, batch) -> scalar`, "
            f"got {loss!r}."
        )


def _check_float_params(params: PyTree, kind: str) -> None:
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ValueError(f"The {kind} module has no float parameters to train.")
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        if not jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.floating):
            raise ValueError(
                f"Parameter {jax.tree_util.keystr(path)} has dtype {jnp.asarray(leaf).dtype}; "
                "only real float parameters can be trained (complex parameters are not "
                "supported by the Taylor models)."
            )


class NNXLoss(eqx.Module):
    """The pure `loss_fn(params, batch) -> scalar` of a flax NNX module (made by `from_nnx`).

    **Fields:**

    - `graphdef`: the static structure of the module.
    - `param_def`: the static tree structure of its `nnx.Param` state.
    - `rest`: its other state (batch statistics, RNG counters): traced, never differentiated.
    - `loss`: static, a name of `LOSSES` or `loss(model, batch) -> scalar`.
    """

    graphdef: Any = eqx.field(static=True)
    param_def: Any = eqx.field(static=True)
    rest: PyTree
    loss: Any = eqx.field(static=True)

    def model(self, params: PyTree[Array]) -> Any:
        """The NNX module with the given parameters (a fresh copy; the original is untouched).

        **Arguments:**

        - `params`: a nested dict of arrays like the one `from_nnx` returns.

        **Returns:** an `nnx.Module`.
        """
        state = jax.tree_util.tree_unflatten(self.param_def, jax.tree_util.tree_leaves(params))
        # Copies of the other variables, created at the current trace level: a forward pass that
        # writes to them (BatchNorm statistics) then writes to the copy, not to closed-over
        # variables of an outer trace (which flax refuses).
        rest = jax.tree_util.tree_map(lambda a: a, self.rest)
        return nnx.merge(self.graphdef, state, rest)

    def __call__(self, params: PyTree[Array], batch: Any) -> Scalar:
        """The loss of the module with parameters `params` on `batch`.

        **Arguments:**

        - `params`: a nested dict of arrays like the one `from_nnx` returns.
        - `batch`: the data (with fields `x`, `y` for a named loss).

        **Returns:** the scalar loss.
        """
        model = self.model(params)
        if callable(self.loss):
            return self.loss(model, batch)
        return _named_loss(self.loss, model(batch.x), batch)


class EquinoxLoss(eqx.Module):
    """The pure `loss_fn(params, batch) -> scalar` of an equinox module (made by `from_equinox`).

    **Fields:**

    - `static`: the non-parameter part of `eqx.partition` (its arrays are traced, its Python
      objects static).
    - `loss`: static, a name of `LOSSES` or `loss(model, batch) -> scalar`.
    - `batched`: static; with a named loss, whether the module takes a whole batch (by default
      it is mapped over the examples with `jax.vmap`, the equinox convention).
    """

    static: PyTree
    loss: Any = eqx.field(static=True)
    batched: bool = eqx.field(static=True)

    def model(self, params: PyTree[Array]) -> eqx.Module:
        """The equinox module with the given parameters (`eqx.combine`).

        **Arguments:**

        - `params`: a pytree like the one `from_equinox` returns.

        **Returns:** an `eqx.Module`.
        """
        return eqx.combine(params, self.static)

    def __call__(self, params: PyTree[Array], batch: Any) -> Scalar:
        """The loss of the module with parameters `params` on `batch`.

        **Arguments:**

        - `params`: a pytree like the one `from_equinox` returns.
        - `batch`: the data (with fields `x`, `y` for a named loss).

        **Returns:** the scalar loss.
        """
        model = self.model(params)
        if callable(self.loss):
            return self.loss(model, batch)
        out = model(batch.x) if self.batched else jax.vmap(model)(batch.x)
        return _named_loss(self.loss, out, batch)


def from_nnx(
    module: Any, loss: str | Callable[[Any, Any], Scalar] = "cross_entropy"
) -> tuple[NNXLoss, dict]:
    """Adapt a flax NNX module to the library: `(loss_fn, params)` (`nnx.split`).

    **Arguments:**

    - `module`: an `nnx.Module` (called on a whole batch, `module(batch.x)`, with a named loss).
    - `loss`: `"cross_entropy"`, `"mse"` (see `LOSSES`) or `loss(model, batch) -> scalar` of the
      rebuilt module.

    **Returns:** `(loss_fn, params)`: a pure `loss_fn(params, batch) -> scalar` (an `NNXLoss`) and
    the module's `nnx.Param` values as a nested dict of arrays (the same key paths as the module's
    attributes, e.g. `params["linear"]["kernel"]`, so `prune_mask`'s default selection of
    `kernel` leaves applies).
    """
    if not isinstance(module, nnx.Module):
        raise TypeError(f"`module` must be a flax `nnx.Module`, got {type(module).__name__}.")
    _check_loss(loss)
    graphdef, state, rest = nnx.split(module, nnx.Param, ...)
    params = nnx.to_pure_dict(state)
    # The pure dict flattens in the order of the state (both sort keys); check it, since the
    # loss rebuilds the state from the leaves of `params` in that order.
    state_paths = [
        tuple(str(getattr(k, "key", k)) for k in p if not isinstance(k, jax.tree_util.GetAttrKey))
        for p, _ in jax.tree_util.tree_leaves_with_path(state)
    ]
    dict_paths = [
        tuple(str(getattr(k, "key", k)) for k in p)
        for p, _ in jax.tree_util.tree_leaves_with_path(params)
    ]
    if state_paths != dict_paths:  # pragma: no cover - guards a change in flax's layout
        raise RuntimeError(
            f"NNX state leaves {state_paths} do not flatten like its pure dict {dict_paths}."
        )
    _check_float_params(params, "NNX")
    param_def = jax.tree_util.tree_structure(state)
    return NNXLoss(graphdef, param_def, rest, loss), params


def from_equinox(
    module: Any,
    loss: str | Callable[[Any, Any], Scalar] = "cross_entropy",
    *,
    filter_spec: Any = eqx.is_inexact_array,
    batched: bool = False,
) -> tuple[EquinoxLoss, PyTree]:
    """Adapt an equinox module to the library: `(loss_fn, params)` (`eqx.partition`).

    **Arguments:**

    - `module`: an `eqx.Module`.
    - `loss`: `"cross_entropy"`, `"mse"` (see `LOSSES`) or `loss(model, batch) -> scalar` of the
      rebuilt module.
    - `filter_spec`: what is trained, as for `eqx.partition` (default: every inexact array; pass
      a bool pytree or another filter to freeze some arrays, which `loss_fn` then holds).
    - `batched`: with a named loss, call `module(batch.x)` on the whole batch instead of
      `jax.vmap(module)(batch.x)` (the equinox convention of one example per call).

    **Returns:** `(loss_fn, params)`: a pure `loss_fn(params, batch) -> scalar` (an
    `EquinoxLoss`) and the trained arrays as a pytree shaped like `module` (`None` at the other
    leaves). Masks for `quantum_window` are pytrees of the same structure; equinox layers name
    their matrices `weight`, so pass `include=` to `prune_mask` (its default selects `kernel`).
    """
    if not isinstance(module, eqx.Module):
        raise TypeError(f"`module` must be an `eqx.Module`, got {type(module).__name__}.")
    _check_loss(loss)
    params, static = eqx.partition(module, filter_spec)
    _check_float_params(params, "equinox")
    return EquinoxLoss(static, loss, bool(batched)), params


__all__ = ["LOSSES", "EquinoxLoss", "NNXLoss", "from_equinox", "from_nnx"]
