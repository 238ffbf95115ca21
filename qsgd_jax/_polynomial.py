"""The GD update as a polynomial map $u \\mapsto F_0 + F_1 u + F_2 (u \\otimes u)$.

One GD step with learning rate $\\eta$ on the Taylor model is one forward-Euler step of the
gradient-flow field $f$ (DESIGN §2):

$$F_0 = \\eta f_0 = -\\eta g,\\qquad F_1 = I + \\eta f_1 = I - \\eta H,\\qquad
F_2 = \\eta f_2 = -\\tfrac{\\eta}{2}\\mathcal{T}_{(1)}.$$

`PolynomialMap` stores the field and $\\eta$, so $\\eta$ is a traced value (sweeps and `grad`
over the learning rate need no re-derivation) and the same object serves the "discrete" and the
"euler" Carleman forms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Inexact, PyTree

from ._errors import check_finite, check_memory, check_positive, check_real_float, is_concrete
from ._field import AbstractField, DenseField, as_array
from ._loss_model import taylor_field


class PolynomialMap(eqx.Module):
    """The degree-1 or degree-2 GD map $F(u) = u + \\eta f(u)$ on $\\mathbb{R}^n$.

    **Arguments:**

    - `field`: the gradient-flow field $f$ (dense or matrix-free).
    - `eta`: the learning rate / step size $\\eta$ (a traced scalar).

    Dense $F_0, F_1, F_2$ are available as properties (materializing $F_1, F_2$ for matrix-free
    fields, so small $n$ only).
    """

    field: AbstractField
    eta: Float[Array, ""]

    @property
    def n(self) -> int:
        return self.field.n

    @property
    def degree(self) -> int:
        return self.field.degree

    @property
    def dtype(self):
        return self.field.f0().dtype

    @property
    def F0(self) -> Inexact[Array, " n"]:
        return self.eta * self.field.f0()

    @property
    def F1(self) -> Inexact[Array, "n n"]:
        """$I + \\eta f_1$, materialized ($n$ matrix-vector products for a matrix-free field,
        after a memory check)."""
        field = self.field
        if isinstance(field, DenseField):
            f1 = field.f1
        else:
            n, itemsize = self.n, jnp.dtype(self.dtype).itemsize
            check_memory(f"Materializing F1 ({n} x {n})", 3 * n * n * itemsize)
            f1 = jax.vmap(field.linear, in_axes=1, out_axes=1)(jnp.eye(n, dtype=self.dtype))
        return jnp.eye(self.n, dtype=f1.dtype) + self.eta * f1

    @property
    def F2(self) -> Inexact[Array, "n n n"] | None:
        """$\\eta f_2$, materialized (`field.to_dense()`, memory-checked; `None` at degree 1)."""
        if self.degree == 1:
            return None
        return self.eta * self.field.to_dense().f2

    def __call__(self, u: Inexact[Array, " n"]) -> Inexact[Array, " n"]:
        """One GD step of the Taylor model: $u + \\eta f(u)$."""
        return u + self.eta * self.field(u)

    # Mode-wise actions used by the Carleman engine.
    def f0_vec(self) -> Inexact[Array, " n"]:
        return self.F0

    def linear_axis(self, z, axis: int):
        """$F_1$ along mode `axis`: $z + \\eta f_1 z$."""
        return z + self.eta * self.field.linear_axis(z, axis)

    def quadratic_axes(self, z, axis: int):
        """$F_2$ contracting modes `axis, axis+1`."""
        return self.eta * self.field.quadratic_axes(z, axis)


def polynomial_map(
    F0,
    F1,
    F2=None,
    *,
    eta=1.0,
    symmetric: bool | None = None,
) -> PolynomialMap:
    """Build a `PolynomialMap` from explicit arrays $F_0, F_1, F_2$.

    The field is recovered as $f_0 = F_0/\\eta$, $f_1 = (F_1 - I)/\\eta$, $f_2 = F_2/\\eta$; pass
    the $\\eta$ the map was built with if the "euler" form or the continuous field will be used
    (for the "discrete" form any $\\eta > 0$ gives the same map).

    **Arguments:**

    - `F0`: shape `(n,)`.
    - `F1`: shape `(n, n)`.
    - `F2`: shape `(n, n, n)` or its mode-1 unfolding `(n, n*n)`; `None` for degree 1.
    - `eta`: step size $\\eta > 0$.
    - `symmetric`: tag $F_1$ as symmetric (default: checked on concrete input).
    """
    for name, x in (("F0", F0), ("F1", F1), ("F2", F2)):
        if x is not None:
            check_real_float(name, jnp.result_type(x))
    F0, F1 = as_array("F0", F0), as_array("F1", F1)
    if F0.ndim != 1:
        raise ValueError(f"`F0` must have shape (n,), got {F0.shape}.")
    n = F0.shape[0]
    if F1.shape != (n, n):
        raise ValueError(f"`F1` must have shape (n, n) = {(n, n)} to match `F0`, got {F1.shape}.")
    if F2 is not None:
        F2 = as_array("F2", F2)
        if F2.shape == (n, n * n):
            F2 = F2.reshape(n, n, n)
        if F2.shape != (n, n, n):
            raise ValueError(
                f"`F2` must have shape (n, n, n) = {(n, n, n)} or (n, n*n) = {(n, n * n)} to "
                f"match `F0`, got {F2.shape}."
            )
    for name, x in (("F0", F0), ("F1", F1), ("F2", F2)):
        check_finite(name, x)
    _check_eta_dtype(eta)
    check_positive("eta", eta)
    dtype = jnp.result_type(F0, F1, *(() if F2 is None else (F2,)))
    eta = jnp.asarray(eta, dtype=dtype)
    F0, F1 = F0.astype(dtype), F1.astype(dtype)
    if symmetric is None:
        symmetric = is_concrete(F1) and bool(jnp.allclose(F1, F1.T))
    f2 = None if F2 is None else F2.astype(dtype) / eta
    field = DenseField(F0 / eta, (F1 - jnp.eye(n, dtype=dtype)) / eta, f2, symmetric=symmetric)
    return PolynomialMap(field, eta)


def gd_map(
    loss_fn: Callable[[PyTree, Any], Array],
    params: PyTree,
    batch: Any,
    *,
    eta,
    mask: PyTree | None = None,
    degree: int = 2,
    matrix_free: bool = False,
    memory_limit: int | None = None,
) -> PolynomialMap:
    """The GD map of the Taylor model of `loss_fn` around `params`, on a mask's active set.

    $u \\mapsto u - \\eta\\,(g + H u + \\tfrac12 \\mathcal{T}(u, u, \\cdot))$ with $u = \\theta -
    \\bar\\theta$ on the $s$ active coordinates (DESIGN §2). See `taylor_field` for the arguments;
    `eta` is the learning rate (may be traced).
    """
    _check_eta_dtype(eta)
    check_positive("eta", eta)
    field = taylor_field(
        loss_fn,
        params,
        batch,
        mask=mask,
        degree=degree,
        matrix_free=matrix_free,
        memory_limit=memory_limit,
    )
    return PolynomialMap(field, jnp.asarray(eta, dtype=field.f0().dtype))


def _check_eta_dtype(eta) -> None:
    """A learning rate is a real number: a complex `eta` would be cast silently."""
    dtype = jnp.asarray(eta).dtype
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(f"`eta` must be a real number, got {eta!r} of dtype {dtype}.")


def field_map(field: AbstractField, eta) -> PolynomialMap:
    """The forward-Euler map $u \\mapsto u + \\eta f(u)$ of a field (e.g. a `DenseField`)."""
    _check_eta_dtype(eta)
    check_positive("eta", eta)
    return PolynomialMap(field, jnp.asarray(eta, dtype=field.f0().dtype))
