"""The truncated Taylor series $y \\mapsto T_K(hA)\\,y$ of a linear generator $A$: its scalars,
bounds and one application (the evolution method built on it, `TruncatedTaylor`, and
`taylor_evolve` with its LCU report live in `qsgd_jax._evolution.taylor`).

$T_K(z) = \\sum_{k=0}^{K} z^k/k!$ approximates $e^{z}$ (`docs/math/evolution.md`).
A quantum computer applies $T_K(hA)$ as a linear combination of unitaries: with a block
encoding of $A$ of normalization $\\alpha \\ge \\|A\\|$,
$T_K(hA) = s_K \\sum_k \\tfrac{(h\\alpha)^k/k!}{s_K} (A/\\alpha)^k$ with coefficient sum
$s_K = \\sum_{k=0}^{K} (h\\alpha)^k/k!$, and one application to a state $y$ succeeds with
probability $\\|T_K(hA)y\\|^2 / (s_K^2 \\|y\\|^2)$. The truncation error obeys the a-priori
bound $\\|T_K(hA) - e^{hA}\\| \\le (h\\|A\\|)^{K+1}/(K+1)!\\; e^{h\\|A\\|}$. A GD step of length
$\\tau$ is split into $r$ segments of length $h = \\tau/r$.

The generator is any linear operator on flat vectors: a `lineax.AbstractLinearOperator`, a dense
square matrix, or a callable `matvec: (d,) -> (d,)`. The order $K$ is traced: the series is
always summed to a static `max_terms` and terms with $k > K$ are masked, so sweeping $K$ does
not recompile.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Inexact

from ._errors import (
    InvalidArgumentError,
    check_finite,
    check_int_range,
    check_number,
    check_positive,
    error_if_invalid,
    in_interval,
    is_concrete,
)

Operator = Any  # lx.AbstractLinearOperator | dense (d, d) array | Callable[[Array], Array]


# ---------------------------------------------------------------------------------------------
# Operators on flat vectors


def as_operator(op: Operator, name: str = "generator") -> lx.AbstractLinearOperator | Callable:
    """Normalize a generator: a dense square array becomes a `lineax.MatrixLinearOperator`.

    lineax operators and callables pass through unchanged. Raises for non-square or non-2-D
    arrays and for non-finite concrete entries.

    **Arguments:** `op` (the generator), `name` (its name in error messages).

    **Returns:** a lineax operator or the callable.
    """
    if isinstance(op, lx.AbstractLinearOperator):
        check_finite(name, op)
        return op
    if callable(op):
        return op
    arr = jnp.asarray(op)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise InvalidArgumentError(
            f"`{name}` must be a square matrix, a lineax operator or a callable matvec; "
            f"got an array of shape {arr.shape}."
        )
    check_finite(name, arr)
    return lx.MatrixLinearOperator(arr)


def apply(op, v: Inexact[Array, "d ..."]) -> Inexact[Array, "d ..."]:
    """$A v$ for a normalized operator (see `as_operator`).

    **Arguments:** `op` (lineax operator or callable), `v` (the vector; a callable may also
    take a matrix, applied column by column, as the dense LCU report does).

    **Returns:** $A v$.
    """
    return op.mv(v) if isinstance(op, lx.AbstractLinearOperator) else op(v)


def dense_matrix(op: Operator, dim: int, dtype=None) -> Inexact[Array, "d d"]:
    """Materialize an operator as a dense matrix (columns $A e_i$); small sizes only.

    **Arguments:** `op` (the generator), `dim` ($d$), `dtype` (of the basis vectors).

    **Returns:** the `(d, d)` matrix.
    """
    op = as_operator(op)
    if isinstance(op, lx.AbstractLinearOperator):
        return op.as_matrix()
    eye = jnp.eye(dim, dtype=dtype)
    return jax.vmap(op, in_axes=1, out_axes=1)(eye)


def operator_norm_estimate(
    op: Operator, dim: int, dtype=None, *, num_iters: int = 50, seed: int = 0
) -> float:
    """A lower estimate of $\\|A\\|_2$ by power iteration on $A^\\top A$ (concrete operators).

    Power iteration never overshoots, so `alpha < estimate` proves $\\alpha < \\|A\\|$.

    **Arguments:** `op` (the generator), `dim` ($d$), `dtype`, `num_iters` (iterations),
    `seed` (of the start vector).

    **Returns:** the estimate as a Python float.
    """
    op = as_operator(op)
    dtype = jnp.result_type(float) if dtype is None else dtype
    v = jax.random.normal(jax.random.key(seed), (dim,), dtype)
    return float(_power_iteration(op, v, num_iters))


@eqx.filter_jit
def _power_iteration(op, v, num_iters: int):
    mv = lambda x: apply(op, x)  # noqa: E731
    rmv = jax.linear_transpose(mv, v)

    def body(_, x):
        w = rmv(mv(x))[0]
        return w / jnp.linalg.norm(w)

    v = jax.lax.fori_loop(0, num_iters, body, v / jnp.linalg.norm(v))
    return jnp.linalg.norm(mv(v))


def block_encoding_normalization(
    A: Operator, method: Literal["norm", "sparsity"] = "norm", *, dim: int | None = None
) -> Float[Array, ""]:
    """Block-encoding normalization $\\alpha \\ge \\|A\\|$ of a generator.

    **Arguments:**

    - `A`: dense matrix or lineax operator (callables need `dim`; they are densified, so
      small sizes only).
    - `method`: `"norm"`: the spectral norm $\\|A\\|_2$ (the tightest valid $\\alpha$);
      `"sparsity"`: $s \\cdot \\max_{ij}|A_{ij}|$ with $s = \\max(s_{row}, s_{col})$ the largest
      number of non-zeros in a row or column — the normalization of the standard sparse-access
      block encoding (Gilyén, Su, Low, Wiebe 2019, Lemma 48), a valid bound since
      $\\|A\\|_2 \\le \\sqrt{\\|A\\|_1\\|A\\|_\\infty} \\le s \\max|A_{ij}|$.

    **Returns:** $\\alpha$ as a 0-d array of the operator's dtype.
    """
    op = as_operator(A, "A")
    if isinstance(op, lx.AbstractLinearOperator):
        M = op.as_matrix()
    else:
        if dim is None:
            raise InvalidArgumentError("`dim` is required when `A` is a callable matvec.")
        M = dense_matrix(op, dim)
    if method == "norm":
        return jnp.linalg.norm(M, ord=2)
    if method == "sparsity":
        nz = M != 0
        s = jnp.maximum(jnp.max(jnp.sum(nz, axis=0)), jnp.max(jnp.sum(nz, axis=1)))
        return s.astype(jnp.abs(M).dtype) * jnp.max(jnp.abs(M))
    raise InvalidArgumentError(f"`method` must be 'norm' or 'sparsity', got {method!r}.")


# ---------------------------------------------------------------------------------------------
# Scalars of the series


def taylor_coefficients(
    x: Float[ArrayLike, ""], order: ArrayLike, max_terms: int
) -> Float[Array, " terms"]:
    """$c_k = x^k/k!$ for $k = 0..$`max_terms`, zero for $k > K$ (`order`, may be traced).

    **Arguments:** `x`, `order` ($K$, an integer in [0, `max_terms`]), `max_terms` (static).

    **Returns:** the `max_terms + 1` coefficients; NaN if a traced $K$ lies outside
    [0, `max_terms`] (a concrete one is refused), never a series cut silently at `max_terms`.
    """
    _check_order(order, max_terms)
    x = jnp.asarray(x)
    k = jnp.arange(max_terms + 1)
    logs = jnp.cumsum(jnp.concatenate([jnp.zeros(1, x.dtype), jnp.log(k[1:].astype(x.dtype))]))
    powers = x ** k.astype(x.dtype)
    c = jnp.where(
        k <= jnp.asarray(order).astype(k.dtype), powers / jnp.exp(logs), jnp.zeros((), x.dtype)
    )
    if is_concrete(order):
        return c
    ok = in_interval(jnp.asarray(order), 0, max_terms, integer=True)
    return jnp.where(ok, c, jnp.full_like(c, jnp.nan))


def _check_order(order, max_terms: int | None) -> None:
    """The door checks of $K$ and `max_terms`: integer scalars, $0 \\le K \\le$ `max_terms`."""
    if max_terms is not None:
        check_int_range("max_terms", max_terms, 0)
    check_int_range("order", order, 0, max_terms)


def lcu_coefficient_sum(
    h: Float[ArrayLike, ""], alpha: Float[ArrayLike, ""], order: ArrayLike, max_terms: int
) -> Float[Array, ""]:
    """$s_K = \\sum_{k=0}^{K} (h\\alpha)^k/k!$, the LCU coefficient sum of $T_K(hA)$.

    **Arguments:** `h`, `alpha`, `order` ($K$), `max_terms` (static).

    **Returns:** $s_K$ (NaN for a traced $K$ outside [0, `max_terms`], as
    `taylor_coefficients`).
    """
    return jnp.sum(taylor_coefficients(jnp.asarray(h) * jnp.asarray(alpha), order, max_terms))


def taylor_error_bound(h_norm: Float[ArrayLike, ""], order: ArrayLike) -> Float[Array, ""]:
    """A-priori bound $(h\\|A\\|)^{K+1}/(K+1)!\\, e^{h\\|A\\|}$ on $\\|T_K(hA) - e^{hA}\\|$.

    **Arguments:** `h_norm` ($h\\|A\\|$), `order` ($K \\ge 0$, an integer).

    **Returns:** the bound (NaN for a traced $K < 0$).
    """
    _check_order(order, None)
    x = jnp.asarray(h_norm)
    kp1 = jnp.asarray(order).astype(x.dtype) + jnp.ones((), x.dtype)
    bound = jnp.exp(kp1 * jnp.log(x) - jax.scipy.special.gammaln(kp1 + 1) + x)
    if is_concrete(order):
        return bound
    ok = in_interval(jnp.asarray(order), 0, integer=True)
    return jnp.where(ok, bound, jnp.full_like(bound, jnp.nan))


def required_order(h_norm: float, tol: float, max_terms: int) -> int:
    """Smallest $K \\le$ `max_terms` whose a-priori bound is $\\le$ `tol`.

    Raises `ValueError` when no such $K$ exists, or when rounding alone (relative error about
    $\\epsilon_{mach}\\, e^{2h\\|A\\|}$ from cancellation) would exceed `tol`.

    **Arguments:** `h_norm` ($h\\|A\\|$), `tol`, `max_terms`.

    **Returns:** $K$.
    """
    check_positive("h_norm", h_norm, strict=False)
    check_positive("tol", tol)
    check_int_range("max_terms", max_terms, 0)
    for K in range(max_terms + 1):
        if float(taylor_error_bound(np.float64(h_norm), K)) <= tol:
            return K
    raise InvalidArgumentError(
        f"h‖A‖ = {h_norm:.4g} is too large: the truncated Taylor series needs more than "
        f"max_terms = {max_terms} terms to reach tol = {tol:.3g} (the a-priori bound at K = "
        f"{max_terms} is {float(taylor_error_bound(np.float64(h_norm), max_terms)):.3g}). "
        "Use more segments r (smaller h) or a larger `max_terms`."
    )


def _check_series(h_norm: float, order, max_terms: int, tol: float | None, dtype) -> None:
    if not np.isfinite(h_norm):
        raise InvalidArgumentError(f"h‖A‖ must be finite, got {h_norm}.")
    if tol is not None:
        K = required_order(h_norm, tol, max_terms)
        if is_concrete(order) and int(order) < K:
            bound = float(taylor_error_bound(np.float64(h_norm), int(order)))
            raise InvalidArgumentError(
                f"`order` K = {int(order)} cannot reach tol = {tol:.3g} at h‖A‖ = {h_norm:.4g} "
                f"(a-priori bound {bound:.3g}); K >= {K} is needed."
            )
        eps = float(jnp.finfo(dtype).eps)
        if eps * math.exp(min(2 * h_norm, 700.0)) > tol:
            raise InvalidArgumentError(
                f"h‖A‖ = {h_norm:.4g} is too large for tol = {tol:.3g} in {jnp.dtype(dtype).name}:"
                f" cancellation in the series loses about eps·e^(2h‖A‖) = "
                f"{eps * math.exp(min(2 * h_norm, 700.0)):.3g}. Use more segments r."
            )


# ---------------------------------------------------------------------------------------------
# Applying T_K(hA)


def taylor_apply(
    A: Operator,
    y: Inexact[Array, " d"],
    h: ArrayLike,
    order: ArrayLike,
    *,
    max_terms: int | None = None,
) -> Inexact[Array, " d"]:
    """$T_K(hA)\\,y = \\sum_{k=0}^{K} (hA)^k y / k!$ by the recursion $t_k = (h/k) A t_{k-1}$.

    **Arguments:**

    - `A`: the generator (lineax operator, dense matrix or callable matvec on `(d,)`).
    - `y`: the vector; its dtype is kept.
    - `h`: the segment length, a real scalar (traced).
    - `order`: $K$, an integer scalar in [0, `max_terms`] (traced); terms beyond it are
      masked. A traced $K$ outside that range raises when the program runs, naming it.
    - `max_terms`: static number of terms evaluated (defaults to `order`, which must then be a
      concrete int).

    **Returns:** $T_K(hA)y$, same shape and dtype as `y`.
    """
    op = as_operator(A)
    y = jnp.asarray(y)
    if y.ndim != 1 or not jnp.issubdtype(y.dtype, jnp.inexact):
        raise InvalidArgumentError(
            f"`y` must be a 1-D float or complex vector, got shape {y.shape} and dtype {y.dtype}."
        )
    check_number("h", h)
    if max_terms is None:
        if not is_concrete(order):
            raise InvalidArgumentError(
                "`max_terms` is required when `order` is traced: it fixes the number of terms "
                "evaluated (a static loop length)."
            )
        check_int_range("order", order, 0)
        max_terms = int(order)
    _check_order(order, max_terms)
    out = _taylor_apply_jit(op, y, jnp.asarray(h).astype(y.dtype), jnp.asarray(order), max_terms)
    if is_concrete(order):
        return out
    ok = in_interval(jnp.asarray(order), 0, max_terms, integer=True)
    return error_if_invalid(
        out, ok, "order", f"must be an integer in [0, max_terms = {max_terms}]", order
    )


def _taylor_apply(op, y, h, order, max_terms: int):
    def body(carry, k):
        term, acc = carry
        term = apply(op, term) * (h / k.astype(y.dtype))
        acc = acc + jnp.where(k <= order.astype(k.dtype), term, jnp.zeros_like(term))
        return (term, acc), None

    if max_terms == 0:
        return y
    (_, acc), _ = jax.lax.scan(body, (y, y), jnp.arange(1, max_terms + 1))
    return acc


_taylor_apply_jit = eqx.filter_jit(_taylor_apply)


@functools.partial(jax.jit, static_argnums=2)
def taylor_matrix(
    A: Inexact[Array, "d d"], h: Float[ArrayLike, ""], order: int
) -> Inexact[Array, "d d"]:
    """Dense $T_K(hA)$ (Horner: $I + hA(I + \\tfrac{hA}{2}(I + \\dots))$); small sizes only.

    **Arguments:** `A` (dense), `h`, `order` ($K$, static).

    **Returns:** the matrix.
    """
    check_int_range("order", order, 0)
    A = jnp.asarray(A)
    hA = jnp.asarray(h).astype(A.dtype) * A
    eye = jnp.eye(A.shape[0], dtype=A.dtype)
    out = eye
    for k in range(order, 0, -1):
        out = eye + (hA @ out) / jnp.asarray(k, A.dtype)
    return out


@functools.partial(jax.jit, static_argnums=2)
def taylor_truncation_error(
    A: Inexact[Array, "d d"], h: Float[ArrayLike, ""], order: int
) -> Float[Array, ""]:
    """$\\|T_K(hA) - e^{hA}\\|_2$ against `jax.scipy.linalg.expm` (dense, small sizes).

    **Arguments:** `A` (dense), `h`, `order` ($K$, static).

    **Returns:** the spectral norm of the difference.
    """
    A = jnp.asarray(A)
    hA = jnp.asarray(h).astype(A.dtype) * A
    return jnp.linalg.norm(taylor_matrix(A, h, order) - jax.scipy.linalg.expm(hA), ord=2)
