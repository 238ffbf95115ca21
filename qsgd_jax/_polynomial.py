"""The GD update as a polynomial map $u \\mapsto F_0 + F_1 u + F_2 (u \\otimes u)$.

One GD step with learning rate $\\eta$ on the Taylor model is one forward-Euler step of the
gradient-flow field $f$ (`docs/math/taylor.md`):

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
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Inexact, PyTree

from ._errors import (
    InvalidArgumentError,
    check_finite,
    check_memory,
    check_number,
    check_real_float,
    describe_nonfinite,
    error_if_invalid,
    in_interval,
    is_concrete,
)
from ._field import AbstractField, DenseField
from ._loss_model import taylor_field


class PolynomialMap(eqx.Module):
    """The GD map $F(u) = u + \\eta f(u) = F_0 + F_1 u + F_2 (u \\otimes u)$ on $\\mathbb{R}^n$.

    Degree 1 or 2, as its field. Build it with `gd_map` (from a loss), `polynomial_map` (from
    explicit $F_0, F_1, F_2$) or `field_map` (from a field).

    **Arguments:**

    - `field`: the gradient-flow field $f$ (dense or matrix-free), dimension $n$.
    - `eta`: the learning rate / step size $\\eta$, a scalar array (traced: a new $\\eta$ does not
      recompile).

    Dense $F_0, F_1, F_2$ are available as properties (materializing $F_1, F_2$ for matrix-free
    fields, so small $n$ only).
    """

    field: AbstractField
    eta: Float[Array, ""]

    @property
    def n(self) -> int:
        """The dimension $n$ of the map (the active-set size $s$ of a loss)."""
        return self.field.n

    @property
    def degree(self) -> int:
        """1 (affine, $F_2 = 0$) or 2."""
        return self.field.degree

    @property
    def dtype(self):
        """The floating dtype of the map's arrays."""
        return self.field.f0().dtype

    @property
    def F0(self) -> Inexact[Array, " n"]:
        """$F_0 = \\eta f_0$, shape `(n,)`."""
        return self.eta * self.field.f0()

    @property
    def F1(self) -> Inexact[Array, "n n"]:
        """$F_1 = I + \\eta f_1$, shape `(n, n)`, materialized.

        A matrix-free field costs $n$ matrix-vector products, after a memory check.
        """
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
        """$F_2 = \\eta f_2$, shape `(n, n, n)`, materialized (`None` at degree 1).

        Built by `field.to_dense()`, after its memory check.
        """
        if self.degree == 1:
            return None
        return self.eta * self.field.to_dense().f2

    def __call__(self, u: Inexact[Array, " n"]) -> Inexact[Array, " n"]:
        """One GD step of the Taylor model: $F(u) = u + \\eta f(u)$.

        **Arguments:**

        - `u`: the displacement from the upload point, shape `(n,)`.

        **Returns:** $F(u)$, shape `(n,)`.
        """
        return u + self.eta * self.field(u)

    # Mode-wise actions used by the Carleman engine.
    def f0_vec(self) -> Inexact[Array, " n"]:
        """$F_0$ (the constant term as the Carleman engine reads it), shape `(n,)`."""
        return self.F0

    def linear_axis(self, z: Inexact[Array, "..."], axis: int) -> Inexact[Array, "..."]:
        """Apply $F_1$ along one mode of a tensor: $z + \\eta f_1 z$ on mode `axis`.

        **Arguments:**

        - `z`: a tensor of shape `(n,) * k`.
        - `axis`: the mode $F_1$ acts on.

        **Returns:** a tensor of shape `(n,) * k`.
        """
        return z + self.eta * self.field.linear_axis(z, axis)

    def quadratic_axes(self, z: Inexact[Array, "..."], axis: int) -> Inexact[Array, "..."]:
        """Contract modes `axis, axis + 1` of a tensor with $F_2 = \\eta f_2$.

        **Arguments:**

        - `z`: a tensor of shape `(n,) * k`, $k \\ge 2$.
        - `axis`: the first of the two contracted modes.

        **Returns:** a tensor of shape `(n,) * (k - 1)`, the new mode at `axis`.
        """
        return self.eta * self.field.quadratic_axes(z, axis)


def polynomial_map(
    F0: ArrayLike,
    F1: ArrayLike,
    F2: ArrayLike | None = None,
    *,
    eta: ArrayLike = 1.0,
    symmetric: bool | None = None,
) -> PolynomialMap:
    """Build a GD map $u \\mapsto F_0 + F_1 u + F_2 (u \\otimes u)$ from explicit arrays.

    The field is recovered as $f_0 = F_0/\\eta$, $f_1 = (F_1 - I)/\\eta$, $f_2 = F_2/\\eta$; pass
    the $\\eta$ the map was built with if the "euler" form or the continuous field will be used
    (for the "discrete" form any $\\eta > 0$ gives the same map).

    **Arguments:**

    - `F0`: shape `(n,)`.
    - `F1`: shape `(n, n)`.
    - `F2`: shape `(n, n, n)` or its mode-1 unfolding `(n, n*n)`; `None` for degree 1.
    - `eta`: step size $\\eta > 0$, a real scalar (may be traced).
    - `symmetric`: tag $F_1$ as symmetric (default: checked on concrete input).

    Real float32/float64 arrays (integers become the default float); all entries finite.
    Concrete values are checked at once; traced ones (under `jit`/`vmap`/`grad`) when the
    program runs (a NaN in $F_1$ or $\\eta \\le 0$ raises, naming the argument).

    **Returns:** a `PolynomialMap` of dimension $n$, in the arrays' common dtype.
    """
    for name, x in (("F0", F0), ("F1", F1), ("F2", F2)):
        if x is not None:
            check_real_float(name, jnp.result_type(x))
    F0, F1 = _as_float(F0), _as_float(F1)
    if F0.ndim != 1:
        raise InvalidArgumentError(f"`F0` must have shape (n,), got {F0.shape}.")
    n = F0.shape[0]
    if F1.shape != (n, n):
        raise InvalidArgumentError(
            f"`F1` must have shape (n, n) = {(n, n)} to match `F0`, got {F1.shape}."
        )
    if F2 is not None:
        F2 = _as_float(F2)
        if F2.shape == (n, n * n):
            F2 = F2.reshape(n, n, n)
        if F2.shape != (n, n, n):
            raise InvalidArgumentError(
                f"`F2` must have shape (n, n, n) = {(n, n, n)} or (n, n*n) = {(n, n * n)} to "
                f"match `F0`, got {F2.shape}."
            )
    F0, F1, F2 = (_checked_finite(k, x) for k, x in (("F0", F0), ("F1", F1), ("F2", F2)))
    _check_eta(eta)
    dtype = jnp.result_type(F0, F1, *(() if F2 is None else (F2,)))
    eta = _checked_eta(jnp.asarray(eta, dtype=dtype), eta)
    F0, F1 = F0.astype(dtype), F1.astype(dtype)
    if symmetric is None:  # NumPy: jnp would stage the test inside a trace, even on constants
        symmetric = is_concrete(F1) and bool(np.allclose(np.asarray(F1), np.asarray(F1).T))
    f2 = None if F2 is None else F2.astype(dtype) / eta
    field = DenseField(F0 / eta, (F1 - jnp.eye(n, dtype=dtype)) / eta, f2, symmetric=symmetric)
    return PolynomialMap(field, eta)


def gd_map(
    loss_fn: Callable[[PyTree, Any], Array],
    params: PyTree,
    batch: Any,
    *,
    eta: ArrayLike,
    mask: PyTree | None = None,
    degree: int = 2,
    matrix_free: bool = False,
    memory_limit: int | None = None,
) -> PolynomialMap:
    """The GD map of the Taylor model of a loss around the upload point, on a mask's active set.

    $u \\mapsto u - \\eta\\,(g + H u + \\tfrac12 \\mathcal{T}(u, u, \\cdot))$ with $u = \\theta -
    \\bar\\theta$ on the $s$ active coordinates (`docs/math/taylor.md`): `field_map` of
    `taylor_field`.

    **Arguments:**

    - `loss_fn`: `loss_fn(params, batch) -> scalar`, a pure JAX function.
    - `params`: the upload point $\\bar\\theta$ (any pytree of float arrays).
    - `batch`: the data the loss is evaluated on.
    - `eta`: the learning rate $\\eta > 0$, a real scalar (may be traced: a traced
      $\\eta \\le 0$ raises when the program runs).
    - `mask`: boolean pytree like `params`; `None` means every coordinate is active.
    - `degree`: 1 (the linearized model) or 2.
    - `matrix_free`: keep $H$ and $\\mathcal{T}$ implicit (`LossField`) instead of materializing
      them.
    - `memory_limit`: bytes allowed for the dense arrays (default: `default_memory_limit()`).

    **Returns:** a `PolynomialMap` of dimension $s$.
    """
    _check_eta(eta)
    field = taylor_field(
        loss_fn,
        params,
        batch,
        mask=mask,
        degree=degree,
        matrix_free=matrix_free,
        memory_limit=memory_limit,
    )
    return field_map(field, eta)


def field_map(field: AbstractField, eta: ArrayLike) -> PolynomialMap:
    """The forward-Euler map $u \\mapsto u + \\eta f(u)$ of a vector field.

    **Arguments:**

    - `field`: any `AbstractField` $f$ (e.g. a `DenseField`), dimension $n$.
    - `eta`: the step size $\\eta > 0$, a real scalar (may be traced: a traced
      $\\eta \\le 0$ raises when the program runs).

    **Returns:** a `PolynomialMap` of dimension $n$, $\\eta$ cast to the field's dtype.
    """
    _check_eta(eta)
    return PolynomialMap(field, _checked_eta(jnp.asarray(eta, dtype=field.f0().dtype), eta))


def _check_eta(eta) -> None:
    """The door check of a learning rate: a real scalar (a complex or vector `eta` would be
    cast or broadcast silently), finite and > 0 when concrete."""
    check_number("eta", eta, low=0, low_open=True, rule="must be finite and > 0")


def _checked_eta(cast: Float[Array, ""], eta) -> Float[Array, ""]:
    """`cast`, with the run-time check of a traced `eta` (> 0, finite) threaded on it."""
    if is_concrete(eta):
        return cast
    ok = in_interval(cast, 0, low_open=True)
    return error_if_invalid(cast, ok, "eta", "must be finite and > 0", cast)


def _checked_finite(name: str, x: Array | None) -> Array | None:
    """`x` after its finiteness check: now if concrete, when the program runs if traced."""
    if x is None:
        return None
    check_finite(name, x)
    if is_concrete(x):
        return x
    ok = jnp.all(jnp.isfinite(x))
    return error_if_invalid(x, ok, name, "must be finite", x, describe=describe_nonfinite)


def _as_float(x) -> Float[Array, "..."]:
    """`x` as a JAX array with a floating dtype (integers become the default float)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return x
