"""Truncated Taylor / LCU: $Y \\leftarrow T_K(hA)^r Y$, $h = \\eta / r$ (`docs/math/evolution.md`).

$T_K(z) = \\sum_{k=0}^{K} z^k/k!$ approximates the Carleman flow $e^{\\eta A}$ over one GD step;
a quantum computer applies it as a linear combination of unitaries (see `qsgd_jax._taylor` for
the series' scalars and bounds). `TruncatedTaylor` is the method value; `taylor_evolve` runs it
on any flat generator and reports the LCU figures (`LCUReport`) of every segment. The order
$K$ may be traced: the series is summed to a static `max_terms` and the terms above $K$ are
masked, so sweeping $K$ does not recompile.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Inexact, Int

from .._errors import check_finite, check_int_range, check_positive, in_interval, is_concrete
from .._taylor import (
    Operator,
    _check_series,
    _taylor_apply,
    apply,
    as_operator,
    block_encoding_normalization,
    lcu_coefficient_sum,
    operator_norm_estimate,
    taylor_error_bound,
)
from .base import AbstractEvolution, Blocks
from .driver import drive, with_initial

_REF_EXTRA = 8  # extra series terms of the reference a window's Taylor term is measured against


class TruncatedTaylor(AbstractEvolution):
    """$Y(t+1) = T_K(hA)^r\\,Y(t)$ with $h = \\eta/r$: the truncated-Taylor (LCU) evolution of
    the Carleman flow (Berry, Childs, Ostrander, Wang 2017).

    **Arguments:**

    - `K`: Taylor order $K \\ge 0$ (may be traced when `max_terms` is given).
    - `segments`: segments $r \\ge 1$ per GD step (static).
    - `max_terms`: static number of series terms evaluated (default `K`, then concrete).
    - `alpha`: block-encoding normalization $\\alpha \\ge \\lVert A\\rVert$ of the LCU report
      (default: from `alpha_method` on a dense generator).
    - `alpha_method`: `"norm"` or `"sparsity"` (see `block_encoding_normalization`).
    """

    K: Int[Array, ""]
    segments: int = eqx.field(static=True)
    max_terms: int = eqx.field(static=True)
    alpha: Float[Array, ""] | None
    alpha_method: str = eqx.field(static=True)
    name: ClassVar[str] = "taylor"
    flow: ClassVar[bool] = True

    def __init__(
        self,
        K=4,
        segments: int = 1,
        *,
        max_terms: int | None = None,
        alpha=None,
        alpha_method: Literal["norm", "sparsity"] = "norm",
    ):
        if max_terms is None:
            if not is_concrete(K):
                raise ValueError("`max_terms` is required when the Taylor order `K` is traced.")
            check_int_range("K", K, 0)
            max_terms = int(K)
        check_int_range("max_terms", max_terms, 0)
        check_int_range("K", K, 0, max_terms)
        check_int_range("segments", segments, 1)
        self.K = jnp.asarray(K, jnp.int32)
        self.segments, self.max_terms = int(segments), int(max_terms)
        self.alpha = None if alpha is None else jnp.asarray(alpha)
        self.alpha_method = alpha_method

    def step(self, op, blocks: Blocks | Inexact[Array, " d"], state):
        """$Y \\mapsto T_K(hA)^r Y$ (matrix-free: $K$ generator applications per segment).

        **Arguments:** `op` (the `CarlemanOperator`), `blocks` (the state), `state` (unused).

        **Returns:** `(blocks, None, stats)` with `stats["norm_ratio"]` the ratios
        $\\lVert T_K(hA) y\\rVert^2 / \\lVert y\\rVert^2$ of the $r$ segments (the LCU success
        probability times $s_K^2$), shape `(segments,)`.
        """
        v = op.flatten(op.truncate(blocks))
        h = op.eta / self.segments
        ratios = []
        for _ in range(self.segments):
            z = _taylor_apply(op.flat_generator, v, h, self.K, self.max_terms)
            ratios.append(jnp.sum(jnp.abs(z) ** 2) / jnp.sum(jnp.abs(v) ** 2))
            v = z
        return op.unflatten(v), state, {"norm_ratio": jnp.stack(ratios)}

    def arguments_ok(self):
        """$K$ an integer in $[0,$ `max_terms`$]$ (a traced $K$ is only known at run time).

        **Returns:** a traceable bool.
        """
        return in_interval(self.K, 0, self.max_terms, integer=True)

    def reference(self) -> TruncatedTaylor:
        """The same series with 8 more terms, the matrix-free stand-in for $e^{\\eta A}$.

        **Returns:** a `TruncatedTaylor`.
        """
        extra = self.max_terms + _REF_EXTRA
        return TruncatedTaylor(extra, self.segments, max_terms=extra)


class LCUReport(eqx.Module):
    """Per-segment LCU figures of a truncated-Taylor evolution.

    **Fields:**

    - `alpha`: block-encoding normalization $\\alpha$.
    - `h`: segment length $h = \\tau / r$.
    - `order`: Taylor order $K$.
    - `coefficient_sum`: $s_K = \\sum_{k\\le K}(h\\alpha)^k/k!$.
    - `success_probability`: $\\|T_K(hA)y\\|^2/(s_K^2\\|y\\|^2)$ per step and segment, shape
      `(num_steps, segments)`.
    - `error_bound`: a-priori bound $(h\\|A\\|)^{K+1}/(K+1)!\\,e^{h\\|A\\|}$ per segment, with
      $\\|A\\|$ bounded by $\\alpha$.
    - `truncation_error`: $\\|T_K(hA) - e^{hA}\\|_2$ per segment from `expm` (NaN when the
      generator was not dense or `exact_error=False`).
    """

    alpha: Float[Array, ""]
    h: Float[Array, ""]
    order: Int[Array, ""]
    coefficient_sum: Float[Array, ""]
    success_probability: Float[Array, "steps segments"]
    error_bound: Float[Array, ""]
    truncation_error: Float[Array, ""]

    @property
    def total_success_probability(self) -> Float[Array, ""]:
        """Probability that every segment succeeds without amplification (their product)."""
        return jnp.prod(self.success_probability)


class TaylorEvolution(eqx.Module):
    """Result of `taylor_evolve`: the trajectory and the LCU report.

    **Fields:**

    - `ys`: states after each GD step, shape `(num_steps + 1, d)` (row 0 is $y(0)$).
    - `report`: the `LCUReport`.
    """

    ys: Inexact[Array, "steps1 d"]
    report: LCUReport


def taylor_evolve(
    A: Operator,
    y0: Inexact[Array, " d"],
    *,
    tau: Float[ArrayLike, ""],
    num_steps: int,
    order: Int[ArrayLike, ""],
    segments: int = 1,
    max_terms: int | None = None,
    alpha: Float[ArrayLike, ""] | None = None,
    alpha_method: Literal["norm", "sparsity"] = "norm",
    tol: float | None = None,
    exact_error: bool = True,
) -> TaylorEvolution:
    """Evolve $y(0)$ by $y \\mapsto T_K(hA)^r y$ per GD step ("flow" form, truncated Taylor).

    **Arguments:**

    - `A`: generator on flat vectors (dense matrix, lineax operator, or callable matvec).
    - `y0`: initial state $Y(0)$, shape `(d,)`; its dtype is kept.
    - `tau`: time per GD step (the learning rate $\\eta$ for gradient flow), traced.
    - `num_steps`: number of GD steps $T$ (static).
    - `order`: Taylor order $K \\ge 0$ (traced; masked against `max_terms`).
    - `segments`: segments $r$ per step, $h = \\tau/r$ (static).
    - `max_terms`: static number of series terms evaluated (default: `order`, which must then be
      concrete). Sweeps over $K$ with one `max_terms` compile once.
    - `alpha`: block-encoding normalization; default from `alpha_method` (needs a dense or
      lineax generator). Must be $\\ge \\|A\\|$; a concrete `alpha` is checked against a power-
      iteration lower estimate of $\\|A\\|$.
    - `alpha_method`: `"norm"` or `"sparsity"`, see `block_encoding_normalization`.
    - `tol`: optional requested per-segment accuracy; if given (and values are concrete), the
      call refuses when $K \\le$ `max_terms` cannot reach it by the a-priori bound.
    - `exact_error`: compute $\\|T_K(hA) - e^{hA}\\|_2$ with `expm` (dense generators only).

    **Returns:** a `TaylorEvolution`.
    """
    op = as_operator(A)
    y0 = jnp.asarray(y0)
    if y0.ndim != 1:
        raise ValueError(f"`y0` must be a flat vector of shape (d,), got shape {y0.shape}.")
    check_finite("y0", y0)
    check_int_range("num_steps", num_steps, 0)
    check_int_range("segments", segments, 1)
    if is_concrete(order) and np.asarray(order) < 0:
        raise ValueError(f"`order` K must be >= 0, got {order!r}.")
    if max_terms is None:
        if not is_concrete(order):
            raise ValueError("`max_terms` is required when `order` is traced.")
        max_terms = int(order)
    check_int_range("max_terms", max_terms, 0)
    check_int_range("order", order, 0, max_terms)
    check_positive("tau", tau, strict=False)
    d = y0.shape[0]
    dense = isinstance(op, lx.MatrixLinearOperator)
    if alpha is None:
        if isinstance(op, lx.AbstractLinearOperator):
            alpha = block_encoding_normalization(op, alpha_method)
        else:
            raise ValueError(
                "`alpha` is required for a callable generator (a norm bound, or "
                "`block_encoding_normalization(A, dim=...)`)."
            )
    alpha = jnp.asarray(alpha).astype(y0.dtype)
    if is_concrete((alpha, op, tau)):
        check_positive("alpha", alpha, strict=False)
        norm_lo = operator_norm_estimate(op, d, y0.dtype) if d > 0 else 0.0
        if float(alpha) < norm_lo * (1 - 1e-6):
            raise ValueError(
                f"`alpha` = {float(alpha):.6g} is below ‖A‖ >= {norm_lo:.6g}: a block encoding "
                "needs alpha >= ‖A‖. Use block_encoding_normalization(A) or a valid norm bound."
            )
        _check_series(float(tau) / segments * float(alpha), order, max_terms, tol, y0.dtype)
    return _evolve(
        op,
        y0,
        jnp.asarray(tau).astype(y0.dtype),
        jnp.asarray(order),
        alpha,
        num_steps=num_steps,
        segments=segments,
        max_terms=max_terms,
        exact_error=exact_error and dense,
    )


class _FlatGenerator(eqx.Module):
    """A generator on flat vectors, seen by the driver as a Carleman operator."""

    op: lx.AbstractLinearOperator | Operator
    eta: Float[Array, ""]

    def flat_generator(self, v):
        return apply(self.op, v)

    def truncate(self, v):
        return v

    flatten = unflatten = truncate


@eqx.filter_jit
def _evolve(op, y0, tau, order, alpha, *, num_steps, segments, max_terms, exact_error):
    dt = y0.dtype
    method = TruncatedTaylor(order, segments, max_terms=max_terms)
    run = drive(
        method,
        _FlatGenerator(op, tau),
        y0,
        jnp.arange(num_steps),
        observe=lambda x, op, y, stats, c: (c, y),
    )
    ys = with_initial(y0, run.out)
    report = lcu_report(
        method, op, tau, alpha, run.stats["norm_ratio"], exact_error=exact_error, dtype=dt
    )
    return TaylorEvolution(ys=ys, report=report)


def lcu_report(
    method: TruncatedTaylor,
    op: Operator,
    tau,
    alpha,
    norm_ratio: Float[Array, "steps segments"],
    *,
    exact_error: bool,
    dtype,
) -> LCUReport:
    """The LCU figures of a `TruncatedTaylor` run from its per-step `norm_ratio` statistics.

    **Arguments:** `method` ($K$, $r$, `max_terms`), `op` (the generator; dense when
    `exact_error`), `tau` (time per GD step), `alpha` (block-encoding normalization),
    `norm_ratio` (the driver's stacked `stats["norm_ratio"]`), `exact_error` (compare
    $T_K(hA)$ with `expm`), `dtype`.

    **Returns:** an `LCUReport`.
    """
    order, max_terms = method.K, method.max_terms
    h = tau / jnp.asarray(method.segments, dtype)
    s_K = lcu_coefficient_sum(h, alpha, order, max_terms)
    if exact_error:
        hA = h * op.as_matrix()
        eye = jnp.eye(hA.shape[0], dtype=dtype)
        series = _taylor_apply(lambda m: hA @ m, eye, jnp.ones((), dtype), order, max_terms)
        err = jnp.linalg.norm(series - jax.scipy.linalg.expm(hA), ord=2)
    else:
        err = jnp.asarray(jnp.nan, dtype)
    return LCUReport(
        alpha=alpha,
        h=h,
        order=order,
        coefficient_sum=s_K,
        success_probability=norm_ratio.reshape(-1, method.segments) / s_K**2,
        error_bound=taylor_error_bound(h * alpha, order),
        truncation_error=err,
    )
