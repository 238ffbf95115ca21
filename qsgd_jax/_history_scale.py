r"""The scale $c$ of the constant component $y_0 \equiv c$ of a history system: $\kappa_c$, $P_c$.

The Carleman state carries the inhomogeneous terms in $y_0$, set to 1 by convention. Any
$c > 0$ gives the same trajectory $y_{j \ge 1}$ if the per-step map is conjugated by
$D_c = \mathrm{diag}(c, 1, \dots, 1)$ (the entry $y_0$ first, as in every Carleman layout here):

$$M_t^{(c)} = D_c\, M_t\, D_c^{-1}, \qquad Y^{(c)}(0) = D_c\, Y(0),$$

so the columns that read $y_0$ (the drive $-\eta g$) are divided by $c$. The history system
$L_c$ of these maps has the solution $x^{(c)}_t = D_c x_t$; its condition number $\kappa_c$
and target probability

$$P_c = \frac{\sum_{t \ge T} \lVert x_{t,1}\rVert^2}{\sum_t \left(c^2 x_{t,0}^2 +
  \lVert x_{t,\ge 1}\rVert^2\right)}$$

trade against each other: $P_c$ falls like $\lVert u\rVert^2 / ((T + 1) c^2)$ once
$\lVert u\rVert \ll c$, and $\kappa_c$ grows as $c \to 0$ (the drive column grows like $1/c$).
A cost estimate chooses $c$ (DESIGN §2, "End-to-end cost"): `scale_scan` measures
$\kappa_c$, $\sigma_{\max}$, $\sigma_{\min}$, $P_c$ and the sparse-access normalization on a
grid of $c$, and `qsgd_jax.resources.estimate` picks the $c$ that minimizes
queries × amplification rounds.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Inexact, Int, PRNGKeyArray

from ._condition import condition_number, target_probability
from ._errors import InvalidArgumentError, check_int_range, check_number, check_positive
from ._history import history_system
from ._taylor import block_encoding_normalization


class ScaleScan(eqx.Module):
    r"""Figures of the history system $L_c$ at each scale $c$ of $y_0$ (`scale_scan`).

    **Fields** (each of shape `(C,)`, one entry per scale):

    - `scales`: $c$.
    - `kappa`, `sigma_max`, `sigma_min`: $\kappa(L_c) = \sigma_{\max}/\sigma_{\min}$.
    - `target_probability`: $P_c$.
    - `sparse_normalization`: $\alpha_s = s_{\mathrm{row}} \max_{ij}|(L_c)_{ij}|$, the
      normalization of the sparse-access block encoding (NaN where $L_c$ was not assembled:
      `method="lanczos"`).
    - `method`: `"dense"` (exact SVD) or `"lanczos"`.
    """

    scales: Float[Array, " C"]
    kappa: Float[Array, " C"]
    sigma_max: Float[Array, " C"]
    sigma_min: Float[Array, " C"]
    target_probability: Float[Array, " C"]
    sparse_normalization: Float[Array, " C"]
    method: str = eqx.field(static=True)


def scaled_step(step: Callable, scale: Float[ArrayLike, ""]) -> Callable:
    r"""The per-step map at scale $c$: $x \mapsto D_c\, M_t (D_c^{-1} x)$ (module docstring).

    **Arguments:**

    - `step`: `step(t, x) -> M_t x` on flat states whose entry 0 is $y_0$.
    - `scale`: $c > 0$ (may be traced).

    **Returns:** `step_c(t, x)`.
    """

    def step_c(t, x):
        c = jnp.asarray(scale, x.dtype)
        y = step(t, x.at[0].divide(c))
        return y.at[0].multiply(c)

    return step_c


def log_scales(
    center: Float[ArrayLike, ""], decades: float = 2.0, num: int = 9
) -> Float[Array, " C"]:
    r"""A geometric grid of scales $c = c_0 \cdot 10^{k}$, $k$ evenly in $[-D, D]$.

    A natural centre $c_0$ is the size of the trajectory, $\max_t \lVert y_1(t)\rVert$ (a
    window report's `block_norms[:, 1]`): $P_c$ and $\kappa_c$ change regime around it.

    **Arguments:**

    - `center`: $c_0 > 0$ (may be traced).
    - `decades`: $D > 0$.
    - `num`: the number of scales $\ge 1$ (odd numbers contain $c_0$ itself).

    **Returns:** the scales, shape `(num,)`.
    """
    check_positive("decades", decades)
    check_int_range("num", num, 1)
    if not isinstance(center, jax.core.Tracer):
        check_positive("center", center)
    c0 = jnp.asarray(center)
    c0 = c0 if jnp.issubdtype(c0.dtype, jnp.floating) else c0.astype(jnp.result_type(float))
    return c0 * 10.0 ** jnp.linspace(-decades, decades, num, dtype=c0.dtype)


def scale_scan(
    step: Callable,
    num_steps: int,
    dim: int,
    scales: Float[ArrayLike, " C"],
    *,
    idle: int = 0,
    y0: Inexact[ArrayLike, " d"] | None = None,
    target: slice | Int[ArrayLike, " k"] | None = None,
    method: str = "auto",
    num_iters: int = 64,
    dense_max: int = 1500,
    key: PRNGKeyArray | None = None,
    dtype=None,
) -> ScaleScan:
    r"""$\kappa_c$, $P_c$ and the normalizations of the history system at each scale $c$.

    One compiled program for the whole grid: the scales are traced and mapped over
    sequentially (`lax.map`), so a dense scan holds one $L_c$ at a time. Runs under `jit`
    (the window calls it inside its own program).

    **Arguments:**

    - `step`: `step(t, x) -> M_t x` for $t = 1..T$, on flat states of dimension $d$ whose entry
      0 is $y_0$ (the window's Carleman layout).
    - `num_steps`: $T \ge 0$.
    - `dim`: $d$.
    - `scales`: the scales $c > 0$, shape `(C,)` (e.g. `log_scales`).
    - `idle`: $p$ idle copies (default 0, the article's system).
    - `y0`: $Y(0)$ at $c = 1$ (default: $e_0$, the lift of $u_0 = 0$).
    - `target`: the entries of block 1 in the flat state (default: all of it), as
      `target_probability`; a window's is `slice(1, 1 + s)`.
    - `method`: `"dense"` (SVD, and $\alpha_s$), `"lanczos"`, or `"auto"` (dense up to
      `dense_max` rows).
    - `num_iters`: Lanczos iterations (capped at the size).
    - `key`: PRNG key of Lanczos' start vector (the same at every scale).
    - `dtype`: float dtype of the probes (default: that of `y0`, else the default float).

    **Returns:** a `ScaleScan`.
    """
    check_int_range("num_steps", num_steps, 0)
    check_int_range("dim", dim, 1)
    check_int_range("idle", idle, 0)
    if method not in ("dense", "lanczos", "auto"):
        raise InvalidArgumentError(
            f"`method` must be 'dense', 'lanczos' or 'auto', got {method!r}."
        )
    scales = jnp.asarray(scales)
    if scales.ndim != 1 or scales.shape[0] == 0:
        raise InvalidArgumentError(
            f"`scales` must be a non-empty vector of scales c > 0, got shape {scales.shape}."
        )
    if not isinstance(scales, jax.core.Tracer):
        check_number("scales", scales, low=0, low_open=True, scalar=False)
    if y0 is None:
        dtype = jnp.result_type(float) if dtype is None else dtype
        y0 = jnp.zeros((dim,), dtype).at[0].set(1)
    else:
        y0 = jnp.asarray(y0)
        dtype = y0.dtype if dtype is None else dtype
    size = (num_steps + idle + 1) * dim
    if method == "auto":
        method = "dense" if size <= dense_max else "lanczos"
    m = min(int(num_iters), size)
    key = jax.random.key(0) if key is None else key

    def one(c):
        L = history_system(scaled_step(step, c), num_steps, idle, kind="function", dim=dim)
        est = condition_number(L, method=method, num_iters=m, dtype=dtype, key=key)
        P = target_probability(L, L.solve(L.rhs(y0.at[0].multiply(c.astype(y0.dtype)))), target)
        if method == "dense":
            alpha = block_encoding_normalization(L.to_dense(dtype), "sparsity")
        else:
            alpha = jnp.full((), jnp.nan, est.sigma_max.dtype)
        return est.sigma_max, est.sigma_min, P.astype(est.sigma_max.dtype), alpha

    smax, smin, P, alpha = jax.lax.map(one, scales.astype(dtype))
    return ScaleScan(
        scales=scales,
        kappa=smax / smin,
        sigma_max=smax,
        sigma_min=smin,
        target_probability=P,
        sparse_normalization=alpha.astype(smax.dtype),
        method=method,
    )
