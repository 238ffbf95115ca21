"""Taylor model of a loss around the upload point, restricted to a mask's active set.

With $\\theta = \\bar\\theta \\odot m + P u$ ($P$ scatters the $s$ active coordinates into
$\\mathbb{R}^n$; pruned coordinates stay exactly 0) and $\\ell(u) = L(\\bar\\theta \\odot m + P u)$,
the gradient-flow field of the degree-2 Taylor model is (`docs/math/taylor.md`)

$$f_0 = -\\nabla\\ell(0) = -g,\\quad f_1 = -\\nabla^2\\ell(0) = -H,\\quad
f_2 = -\\tfrac12 \\nabla^3\\ell(0)_{(1)} = -\\tfrac12\\mathcal{T}_{(1)}.$$

`LossField` keeps it matrix-free: $H v$ is a jvp of the gradient and
$\\mathcal{T}(a, b, \\cdot)$ a jvp of $H b$ along $a$, so neither $H$ nor $\\mathcal{T}$ is ever
stored. `taylor_field(..., matrix_free=False)` materializes them for small $s$.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, Int, PyTree

from ._errors import (
    InvalidArgumentError,
    check_choice,
    check_finite_tree,
    check_memory,
    check_nonempty,
    check_real_float,
    is_concrete,
)
from ._field import AbstractField, DenseField
from ._prune import check_mask_leaves


class ActiveSet(eqx.Module):
    """The embedding $u \\mapsto \\bar\\theta \\odot m + P u$ of a mask's active coordinates.

    Build it with `active_set`.

    **Arguments:**

    - `base`: flat $\\bar\\theta \\odot m$, shape `(n_params,)` (traced: gradients w.r.t.
      $\\bar\\theta$ flow through it).
    - `index`: flat indices of the $s$ active coordinates, shape `(s,)`.
    - `unravel`: flat vector → parameter pytree.
    """

    base: Float[Array, " p"]
    index: Int[Array, " s"]
    unravel: Callable[[Array], PyTree] = eqx.field(static=True)

    @property
    def size(self) -> int:
        """The number $s$ of active coordinates."""
        return self.index.shape[0]

    def embed(self, u: Float[Array, " s"]) -> PyTree:
        """The parameters at displacement $u$: $\\bar\\theta \\odot m + P u$.

        **Arguments:**

        - `u`: the displacement $u$ of the $s$ active coordinates, shape `(s,)`.

        **Returns:** a parameter pytree shaped like the one the set was built from.
        """
        return self.unravel(self.base.at[self.index].add(u))

    def restrict(self, params: PyTree) -> Float[Array, " s"]:
        """The active coordinates of a parameter pytree: $P^\\top \\mathrm{vec}(\\theta)$.

        **Arguments:**

        - `params`: a pytree with the structure and shapes of the upload point.

        **Returns:** the $s$ active entries, shape `(s,)`.
        """
        flat, _ = ravel_pytree(params)
        return flat[self.index]


def active_set(params: PyTree, mask: PyTree | None = None) -> ActiveSet:
    """The active set of a parameter pytree under a boolean mask.

    The mask must be concrete: it fixes the active-set size $s$, which is a shape. It must
    have the tree structure of `params` (same keys) and each leaf the shape of its parameter;
    `params` must be real float32/float64 (complex and half precision are refused).

    **Arguments:**

    - `params`: the upload point $\\bar\\theta$, a pytree of float arrays with $p$ entries in all.
    - `mask`: a boolean pytree like `params` ($m$, `True` = active); `None`: all active.

    **Returns:** an `ActiveSet` with `base` $= \\bar\\theta \\odot m$ (flat, shape `(p,)`) and the
    $s$ flat indices of the active entries.
    """
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        dtype = jnp.asarray(leaf).dtype
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise InvalidArgumentError(
                f"`params{jax.tree_util.keystr(path)}` must be a floating-point array, got "
                f"dtype {dtype}."
            )
        check_real_float(f"params{jax.tree_util.keystr(path)}", dtype)
    flat, unravel = ravel_pytree(params)
    check_nonempty(
        "params",
        flat.size,
        "entries",
        "The Taylor model needs at least one parameter: pass the model's parameters (a "
        "pytree of non-empty float arrays).",
    )
    if mask is None:
        mflat = np.ones(flat.shape, dtype=bool)
    else:
        if not is_concrete(mask):
            raise InvalidArgumentError(
                "`mask` must be concrete (not traced under jit/vmap): it fixes the number of "
                "active coordinates s, which is an array shape. Build the map outside the "
                "transformation, or vary sparsity through the pruning threshold instead."
            )
        size = sum(int(np.size(m)) for m in jax.tree_util.tree_leaves(mask))
        if size != flat.size:
            raise InvalidArgumentError(
                f"`mask` has {size} entries but `params` has {flat.size}; they must match "
                "(one bool per parameter, with the tree structure and shapes of `params`)."
            )
        check_mask_leaves(params, jax.tree_util.tree_map(np.asarray, mask))
        mflat = np.concatenate(
            [np.ravel(np.asarray(m)) for m in jax.tree_util.tree_leaves(mask)] or [np.zeros(0)]
        ).astype(bool)
    index = np.flatnonzero(mflat)
    if index.size == 0:
        raise InvalidArgumentError(
            "`mask` has no active entries (everything is pruned); nothing to train."
        )
    base = flat * jnp.asarray(mflat, dtype=flat.dtype)
    return ActiveSet(base, jnp.asarray(index, dtype=jnp.int32), unravel)


class LossField(AbstractField):
    """The matrix-free gradient-flow field $(-g, -H, -\\tfrac12\\mathcal{T})$ of a loss.

    $f_1 v = -Hv$ costs one Hessian-vector product (forward-over-reverse), $f_2(u\\otimes u)
    = -\\tfrac12\\mathcal{T}(u,u,\\cdot)$ one more jvp of it; $f_2\\,\\mathrm{vec}(X)$ for a
    general $X$ costs $n$ of those. The gradient $g$ is computed once, at construction. Usually
    built by `taylor_field(..., matrix_free=True)`.

    **Arguments:**

    - `loss_fn`: `loss_fn(params, batch) -> scalar`, a pure JAX function (an `eqx.Module` loss
      is a pytree too: its arrays stay traced).
    - `active`: the `ActiveSet` of the upload point; the field has dimension $s$ = `active.size`.
    - `batch`: the data the loss is evaluated on.
    - `degree`: 1 or 2.
    """

    loss_fn: Callable[[PyTree, Any], Array]
    active: ActiveSet
    batch: PyTree
    g: Float[Array, " s"]
    degree_: int = eqx.field(static=True)

    def __init__(self, loss_fn, active: ActiveSet, batch, degree: int = 2):
        self.loss_fn = loss_fn
        self.active = active
        self.batch = batch
        self.degree_ = degree
        zero = jnp.zeros((active.size,), active.base.dtype)
        self.g = jax.grad(self._ell)(zero)

    def _ell(self, u):
        return self.loss_fn(self.active.embed(u), self.batch)

    def _hvp(self, x, v):
        return jax.jvp(jax.grad(self._ell), (x,), (v,))[1]

    @property
    def n(self) -> int:
        return self.active.size

    @property
    def degree(self) -> int:
        return self.degree_

    @property
    def symmetric(self) -> bool:
        return True

    def f0(self):
        return -self.g

    def linear(self, v):
        return -self._hvp(jnp.zeros_like(v), v)

    def quadratic_uu(self, u):
        zero = jnp.zeros_like(u)
        return -0.5 * jax.jvp(lambda x: self._hvp(x, u), (zero,), (u,))[1]

    def quadratic_pairs(self, a, b):
        # -1/2 sum_i T(a_i, b_i, .): one jvp of an HVP per column pair, batched.
        zero = jnp.zeros((self.n,), a.dtype)

        def pair(x, y):
            return jax.jvp(lambda z: self._hvp(z, y), (zero,), (x,))[1]

        return -0.5 * jnp.sum(jax.vmap(pair, in_axes=1)(a, b), axis=0)

    def to_dense(self, *, memory_limit: int | None = None) -> DenseField:
        """Materialize $(f_0, f_1, f_2)$ slice by slice (`dense_field`), after a memory check.

        **Arguments:**

        - `memory_limit`: bytes allowed for the dense arrays and their working set (default:
          `default_memory_limit()`).

        **Returns:** a `DenseField` of dimension $s$.
        """
        check_memory(
            f"Materializing a matrix-free degree-{self.degree} field with s = {self.n} coordinates",
            dense_taylor_bytes(self.n, self.active.base.shape[0], self.degree, self.g.dtype),
            memory_limit,
        )
        return dense_field(self.loss_fn, self.active, self.batch, self.degree)

    def quadratic(self, x):
        zero = jnp.zeros((self.n,), x.dtype)
        eye = jnp.eye(self.n, dtype=x.dtype)

        def row(e_a, x_a):  # T(e_a, x_a, .)
            return jax.jvp(lambda y: self._hvp(y, x_a), (zero,), (e_a,))[1]

        return -0.5 * jnp.sum(jax.vmap(row)(eye, x), axis=0)


def taylor_field(
    loss_fn: Callable[[PyTree, Any], Array],
    params: PyTree,
    batch: Any,
    *,
    mask: PyTree | None = None,
    degree: int = 2,
    matrix_free: bool = False,
    memory_limit: int | None = None,
) -> AbstractField:
    """The gradient-flow field $(-g, -H, -\\tfrac12\\mathcal{T})$ of a loss's Taylor model.

    Around the upload point `params`, on the active set of `mask` (module docstring).

    **Arguments:**

    - `loss_fn`: `loss_fn(params, batch) -> scalar`, a pure JAX function.
    - `params`: the upload point $\\bar\\theta$ (any pytree of float arrays).
    - `batch`: the data the loss is evaluated on (full batch for GD, a mini-batch for SGD).
    - `mask`: boolean pytree like `params`; `None` means every coordinate is active.
    - `degree`: 1 (drop $\\mathcal{T}$: the linearized model) or 2.
    - `matrix_free`: keep $H$ and $\\mathcal{T}$ implicit (`LossField`); otherwise they are
      materialized (`DenseField`), which needs $O(s^3)$ memory at degree 2.
    - `memory_limit`: bytes allowed for the dense arrays (default: `default_memory_limit()`).

    **Returns:** an `AbstractField` of dimension $s$ (a `LossField` or a `DenseField`).
    """
    check_choice("degree", degree, (1, 2))
    active = active_set(params, mask)
    check_finite_tree("params", params)
    check_finite_tree("batch", batch)
    if matrix_free:
        return LossField(loss_fn, active, batch, degree)
    s = active.size
    check_memory(
        f"A dense degree-{degree} Taylor model with s = {s} active parameters",
        dense_taylor_bytes(s, active.base.shape[0], degree, active.base.dtype),
        memory_limit,
    )
    return dense_field(loss_fn, active, batch, degree)


def dense_taylor_bytes(s: int, num_params: int, degree: int, dtype: Any) -> int:
    """The estimated peak memory of `dense_field`, in bytes.

    Counts $f_1$ ($s^2$ entries), $f_2$ ($s^3$, degree 2) and the working set of one Hessian
    slice, a forward-mode Hessian with $s$ tangents of the `num_params` parameters.

    **Arguments:**

    - `s`: the active-set size.
    - `num_params`: the total number $p$ of parameters.
    - `degree`: 1 or 2.
    - `dtype`: the float dtype of the arrays.

    **Returns:** the estimate in bytes.
    """
    itemsize = jnp.dtype(dtype).itemsize
    out = s**2 + (s**3 if degree == 2 else 0)
    work = 2 * s**2 + 2 * s * num_params
    return int(itemsize * (2 * out + work))


def dense_field(
    loss_fn: Callable[[PyTree, Any], Array], active: ActiveSet, batch: Any, degree: int = 2
) -> DenseField:
    """The gradient-flow field $(-g, -H, -\\tfrac12\\mathcal{T})$ of a loss, materialized.

    $\\mathcal{T}$ is built one slice $\\mathcal{T}(e_a, \\cdot, \\cdot)$ at a time (a jvp of the
    Hessian), so the working memory is one Hessian, not $s$ of them. No memory check: see
    `taylor_field` and `dense_taylor_bytes`.

    **Arguments:**

    - `loss_fn`: `loss_fn(params, batch) -> scalar`, a pure JAX function.
    - `active`: the `ActiveSet` of the upload point.
    - `batch`: the data the loss is evaluated on.
    - `degree`: 1 (no $f_2$) or 2.

    **Returns:** a `DenseField` with $f_0$ `(s,)`, $f_1$ `(s, s)` and $f_2$ `(s, s, s)` (or
    `None`), tagged symmetric.
    """
    lf = LossField(loss_fn, active, batch, degree)
    zero = jnp.zeros((active.size,), active.base.dtype)
    hess_fn = jax.hessian(lf._ell)
    f2 = None
    if degree == 2:
        eye = jnp.eye(active.size, dtype=zero.dtype)
        f2 = -0.5 * jax.lax.map(lambda e: jax.jvp(hess_fn, (zero,), (e,))[1], eye)
    return DenseField(-lf.g, -hess_fn(zero), f2, symmetric=True)
