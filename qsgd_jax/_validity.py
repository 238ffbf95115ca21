"""Window validity: how long a quantum window stays within a tolerance of exact GD.

A window of $T$ steps from the upload point $\\bar\\theta$ ends with the error
$\\hat u_T - u^{\\mathrm{GD}}_T$, split (DESIGN §2, the window's error budget) into the read-out
$\\hat u - y_1$, the Carleman truncation $y_1 - u^{\\mathrm{poly}}$ and the Taylor model
$u^{\\mathrm{poly}} - u^{\\mathrm{GD}}$. Windows on the same batches are prefixes of one another,
so one window of $T_{\\max}$ steps gives the error of every shorter one. Its *usable length* at a
tolerance $\\varepsilon \\in (0, 1)$ is

$$T^*(\\varepsilon) = \\min\\{T \\ge 1 : e(T) > \\varepsilon\\},\\qquad
e(T) = \\lVert y_1(T) - u^{\\mathrm{GD}}_T\\rVert / \\lVert u^{\\mathrm{GD}}_T\\rVert$$

(or one chosen term instead of the total), $\\infty$ when the error stays within
$\\varepsilon$ for the whole window; a non-finite error (a diverged window) counts as exceeding
(`usable_length`). `window_validity` runs the order-1 and order-2 windows from one start (the
degree-2 Taylor model of every step's batch, the factored order-2 state: exact while its rank
$2t$ is within the cap, compressed beyond with the dropped norm reported) and returns the
per-step parts and the Carleman rate $e_{N=2}/e_{N=1}$.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree, Scalar

from ._errors import InvalidArgumentError, check_int_range, check_number, is_concrete
from ._evolution import FactoredState
from ._readout import AbstractReadout, as_readout, download
from ._status import RESULTS, AbstractResult
from ._window import quantum_window
from ._window_config import WindowConfig, window_index
from ._window_report import WindowReport

TERMS = ("total", "carleman", "model", "readout")
"""The error terms a usable length can be taken of: the window's total error
$y_1 - u^{\\mathrm{GD}}$, its Carleman and Taylor-model parts, and the read-out part."""

_REPORT_TERMS = {"total": "total_error", "carleman": "carleman_error", "model": "model_error"}
_EPS_RULE = "must lie in (0, 1) (a tolerance on the relative window error)"


def _check_eps(eps) -> Float[np.ndarray, " m"]:
    """Door check of the tolerances: a real scalar or 1-D list, every entry in (0, 1)."""
    arr = np.asarray(eps) if is_concrete(eps) else None
    if arr is None:
        raise InvalidArgumentError(
            "`eps` must be concrete (it sets the shape of the result); close over it rather "
            "than passing it traced."
        )
    if arr.ndim > 1 or arr.size == 0:
        raise InvalidArgumentError(
            f"`eps` must be a number or a non-empty 1-D list of numbers, got shape {arr.shape}."
        )
    check_number(
        "eps", arr, low=0, high=1, low_open=True, high_open=True, scalar=False, rule=_EPS_RULE
    )
    return np.atleast_1d(arr)


def _relative_series(errors, term: str) -> Float[Array, "... T1"]:
    """The relative error series of a report's `term`, or `errors` itself (checked)."""
    if isinstance(errors, WindowReport | WindowValidity):
        if term not in TERMS:
            raise InvalidArgumentError(f"`term` must be one of {TERMS}, got {term!r}.")
        if isinstance(errors, WindowValidity):
            return errors.series(term, order=errors.order)
        if term == "readout":
            raise InvalidArgumentError(
                "A `WindowReport` holds the read-out error at its last step only; use "
                "`window_validity` for the read-out part at every T, or `term` in "
                f"{tuple(_REPORT_TERMS)}."
            )
        return errors.relative()[_REPORT_TERMS[term]]
    rel = jnp.asarray(errors)
    if not jnp.issubdtype(rel.dtype, jnp.floating):
        raise InvalidArgumentError(
            f"`errors` must be a real float array of relative errors, got dtype {rel.dtype}."
        )
    if rel.ndim < 1 or rel.shape[-1] < 2:
        raise InvalidArgumentError(
            "`errors` must hold the error at steps t = 0..T with T >= 1 on its last axis (at "
            f"least 2 entries), got shape {rel.shape}."
        )
    if is_concrete(rel) and np.any(np.asarray(rel) < 0):
        raise InvalidArgumentError(
            "`errors` holds negative entries; pass error norms (relative errors >= 0; NaN or "
            "inf mark a diverged step)."
        )
    return rel


def usable_length(
    errors: WindowReport | WindowValidity | ArrayLike,
    eps: ArrayLike,
    *,
    term: str = "total",
) -> Float[Array, "... m"]:
    """The usable window length $T^*(\\varepsilon)$ for several tolerances at once.

    $T^*(\\varepsilon)$ is the first $T \\ge 1$ with $e(T) > \\varepsilon$ (module docstring),
    `inf` when $e(T) \\le \\varepsilon$ for every $T$ of the series: the window is valid for
    its whole length. A NaN or inf error counts as exceeding the tolerance. The step $t = 0$
    (no step taken, $u = 0$) is never counted.

    **Arguments:**

    - `errors`: a `WindowReport` (its errors divided by $\\lVert u^{\\mathrm{GD}}_t\\rVert$, as
      `WindowReport.relative`), a `WindowValidity` (the order in its `order` field: pass
      `v.at_order(n)` for another), or an array of relative errors at $t = 0, \\dots, T$ on the
      last axis, shape `(..., T + 1)` (leading axes: batched windows).
    - `eps`: a tolerance $\\varepsilon \\in (0, 1)$ or a 1-D list of them (concrete).
    - `term`: which error of a report: `"total"` (default), `"carleman"`, `"model"` or, for a
      `WindowValidity`, `"readout"`. Ignored for an array.

    **Returns:** $T^*$ as floats of shape `(..., m)` for $m$ tolerances (`inf`: never
    exceeded within the window).
    """
    eps = _check_eps(eps)
    rel = _relative_series(errors, term)
    return _first_exceed(rel, jnp.asarray(eps, rel.dtype))


@jax.jit
def _first_exceed(rel, eps):
    after = rel[..., 1:, None]  # (..., T, m)
    exceed = ~(after <= eps.reshape((1,) * (after.ndim - 1) + eps.shape))  # NaN, inf exceed
    t = jnp.arange(1, rel.shape[-1], dtype=rel.dtype)
    first = t[jnp.argmax(exceed, axis=-2)]
    return jnp.where(jnp.any(exceed, axis=-2), first, jnp.inf)


class WindowValidity(AbstractResult):
    """The errors of the order-1 and order-2 windows from one start, per step.

    Returned by `window_validity`. Every series is relative to $\\lVert u^{\\mathrm{GD}}_t
    \\rVert$ (the exact GD displacement on the same batches), at $t = 0, \\dots, T$ (0 at
    $t = 0$); row 0 is order $N = 1$, row 1 order $N = 2$.

    **Fields:**

    - `t`: the steps $0..T$ (float).
    - `gd_norm`: $\\lVert u^{\\mathrm{GD}}_t\\rVert$.
    - `total`, `carleman`, `model`: the window's total error $y_1 - u^{\\mathrm{GD}}$, its
      Carleman part $y_1 - u^{\\mathrm{poly}}$ and its Taylor-model part
      $u^{\\mathrm{poly}} - u^{\\mathrm{GD}}$ (the same for both orders), shape `(2, T + 1)`.
    - `readout`: $\\lVert\\hat u(t) - y_1(t)\\rVert$ of a window ending at $t$ (tomography of
      $y_1(t)$ at the given shots), shape `(2, T + 1)`.
    - `carleman_rate`: $e_{N=2}(t)/e_{N=1}(t)$ of the Carleman parts (NaN where $e_{N=1} = 0$,
      e.g. $t \\le 1$, where both orders are exact).
    - `compression`: the order-2 state's cumulative dropped Frobenius norm (absolute; 0 while
      the rank $2t$ is within the cap).
    - `check_gap`: with `check_steps` $= T_c > 0$, $\\lVert y_1^{\\mathrm{cap}}(t) -
      y_1^{\\mathrm{exact}}(t)\\rVert$ against the uncompressed order-2 run (absolute),
      shape `(T_c + 1,)`; `None` otherwise. Compare it with `compression`.
    - `diverged_step`: the first flagged step of each order's window (-1: none), shape `(2,)`.
    - `status`: the order-1 window's status if it failed, else the order-2 window's.
    - `order`: the order (1 or 2) `usable_length` reads (static); `max_rank`: the rank cap
      (`None`: exact); `exact_steps`: the steps up to which order 2 is exact ($T$ without a
      cap, else `max_rank // 2`).
    """

    t: Float[Array, " T1"]
    gd_norm: Float[Array, " T1"]
    total: Float[Array, "2 T1"]
    carleman: Float[Array, "2 T1"]
    model: Float[Array, "2 T1"]
    readout: Float[Array, "2 T1"]
    carleman_rate: Float[Array, " T1"]
    compression: Float[Array, " T1"]
    check_gap: Float[Array, " Tc1"] | None
    diverged_step: Int[Array, " 2"]
    status: RESULTS
    order: int = eqx.field(static=True, default=2)
    max_rank: int | None = eqx.field(static=True, default=None)
    exact_steps: int = eqx.field(static=True, default=0)
    what = "The window-validity measurement"

    def failed_step(self) -> Int[Array, "..."]:
        """The first flagged step of the failing window (-1 where both succeeded)."""
        first = self.diverged_step[..., 0]
        return jnp.where(first >= 0, first, self.diverged_step[..., 1])

    @property
    def succeeded(self) -> bool:
        """Whether both (concrete) windows' statuses are `RESULTS.successful`."""
        return bool(np.all(np.asarray(self.status._value) == RESULTS.successful._value))

    def series(self, term: str, *, order: int = 2) -> Float[Array, "... T1"]:
        """One relative error series: `term` in `TERMS` at Carleman `order` 1 or 2."""
        if term not in TERMS:
            raise InvalidArgumentError(f"`term` must be one of {TERMS}, got {term!r}.")
        if order not in (1, 2):
            raise InvalidArgumentError(f"`order` must be 1 or 2, got {order!r}.")
        return getattr(self, term)[..., order - 1, :]

    def at_order(self, order: int) -> WindowValidity:
        """The same result, read by `usable_length` at `order` (1 or 2)."""
        if order not in (1, 2):
            raise InvalidArgumentError(f"`order` must be 1 or 2, got {order!r}.")
        return dataclasses.replace(self, order=order)


def _config(eta, num_steps, order, state, readout, shots, batching, max_rel, memory_limit):
    return WindowConfig(
        eta,
        num_steps,
        degree=2,
        order=order,
        max_order=order,
        state=state,
        readout=readout,
        shots=shots,
        batching=batching,
        history=False,
        keep_trajectory=True,
        max_relative_error=max_rel,
        memory_limit=memory_limit,
    )


def window_validity(
    loss_fn: Callable[[PyTree, PyTree], Scalar],
    params: PyTree,
    mask: PyTree,
    batches: PyTree,
    eta: ArrayLike,
    key: PRNGKeyArray,
    *,
    num_steps: int = 100,
    max_rank: int | None = 40,
    check_steps: int = 0,
    readout: AbstractReadout | str = "sample",
    shots: ArrayLike = 10_000,
    batching: str = "sgd",
    max_relative_error: float = 1e6,
    memory_limit: int | None = None,
) -> WindowValidity:
    """The order-1 and order-2 windows of up to `num_steps` steps from one start, per step.

    Both windows use the degree-2 Taylor model of every step's batch at $\\bar\\theta$ (so
    their Taylor-model part is the same and the Carleman parts compare the orders) and the
    factored Carleman state (`FactoredState`): at order 1 with no $y_2$ kept; at order 2 with
    $y_2 = AB^\\top$ capped at rank `max_rank` (exact while $2t \\le$ `max_rank`, i.e. for
    $T \\le$ `max_rank // 2`; compressed beyond, the dropped norm reported). Each window keeps
    $y_1(t)$, from which the read-out part of a window ending at every $t$ is sampled. Windows
    flagged by their status are reported (`status`, `diverged_step`), never raised; their
    series after the flagged step may be non-finite, which `usable_length` counts as exceeding.
    `eta` and `params` may be traced: `jax.vmap` over starts and learning rates compiles once.

    Cost per step: order 1 about 3 Hessian-vector products (HVPs) and one third-order
    directional derivative; order 2 about $2r + 1$ HVPs and $r$ third-order derivatives for the
    stored rank $r$; both also one gradient of the exact GD reference and one step of GD on
    the Taylor model.

    **Arguments:**

    - `loss_fn`: pure `loss_fn(params, batch) -> scalar`.
    - `params`: the upload point (pruned entries are set to 0).
    - `mask`: concrete bool pytree like `params` (`True` = active).
    - `batches`: one batch per step on a leading axis of length $\\ge T$ (`batching="sgd"`)
      or one batch for every step (`"full"`: full-batch GD).
    - `eta`: learning rate $\\eta > 0$ (may be traced).
    - `key`: PRNG key of the read-outs.
    - `num_steps`: the longest window $T \\ge 1$ (static).
    - `max_rank`: the order-2 rank cap ($\\ge 1$), `None` for the exact state of rank $2T$
      (cost and memory grow with $T$).
    - `check_steps`: also run the uncompressed order-2 window for this many steps
      ($0 \\le T_c \\le T$; 0: skip) and report `check_gap`, the difference the cap made.
    - `readout`: the read-out method, `Sampled()` (default, `"sample"`), `Exact()` or
      `GaussianSurrogate()`, or its shorthand.
    - `shots`: tomography shots per measurement round.
    - `batching`: `"sgd"` or `"full"` (above).
    - `max_relative_error`: a window whose total error exceeds this times
      $\\lVert u^{\\mathrm{GD}}_t\\rVert$ is flagged (`WindowConfig`); large by default, so that
      the error is measured over the whole window (non-finite values are always flagged).
    - `memory_limit`: bytes allowed for each window's state (`WindowConfig`); above it a
      `MemoryLimitError` before any work.

    **Returns:** a `WindowValidity` with series of shape `(2, T + 1)` (orders 1, 2).
    """
    check_int_range("num_steps", num_steps, 1)
    if max_rank is not None:
        check_int_range("max_rank", max_rank, 1)
    check_int_range("check_steps", check_steps, 0, num_steps)
    readout = as_readout(readout, "readout")
    T = int(num_steps)
    args = (readout, shots, batching, max_relative_error, memory_limit)
    cfg1 = _config(eta, T, 1, FactoredState(max_rank=1), *args)
    cfg2 = _config(eta, T, 2, FactoredState(max_rank=max_rank), *args)
    k1, k2, k_read = jax.random.split(key, 3)
    # quantum_window validates params, mask, batches, eta and the memory before any work.
    _, rep1 = quantum_window(loss_fn, params, mask, batches, cfg1, k1, throw=False)
    _, rep2 = quantum_window(loss_fn, params, mask, batches, cfg2, k2, throw=False)
    gap = None
    if check_steps > 0:
        cfg_x = _config(eta, int(check_steps), 2, FactoredState(), *args)
        if batching == "sgd":
            batches = jax.tree_util.tree_map(lambda x: x[:check_steps], batches)
        _, rep_x = quantum_window(loss_fn, params, mask, batches, cfg_x, k2, throw=False)
        gap = jnp.linalg.norm(rep2.y1[: check_steps + 1] - rep_x.y1, axis=-1)
    index = window_index(params, mask)
    flat = ravel_pytree(params)[0]
    base = jnp.zeros_like(flat).at[index].set(flat[index])
    read = jnp.stack(
        [
            _readout_series(k, r.y1, shots, readout, index, base)
            for k, r in zip(jax.random.split(k_read), (rep1, rep2), strict=True)
        ]
    )
    exact_steps = T if max_rank is None else min(T, max_rank // 2)
    return _assemble(rep1, rep2, read, gap, max_rank, exact_steps)


def _readout_series(key, y1, shots, readout, index, base) -> Float[Array, " T1"]:
    """$\\lVert\\hat u(t) - y_1(t)\\rVert$ of a read-out of $y_1(t)$ at each $t \\ge 1$ (0 at 0)."""
    keys = jax.random.split(key, y1.shape[0] - 1)

    def one(k, y):
        return download(
            k, y, shots, support=index, theta_bar=base, method=readout, throw=False
        ).error

    err = jax.vmap(one)(keys, y1[1:])
    return jnp.concatenate([jnp.zeros((1,), err.dtype), err])


def _assemble(rep1, rep2, read, gap, max_rank, exact_steps) -> WindowValidity:
    gd = rep2.gd_norm
    scale = jnp.where(gd == 0, jnp.ones_like(gd), gd)
    rel1, rel2 = rep1.relative(), rep2.relative()

    def pair(name):
        return jnp.stack([rel1[name], rel2[name]])

    carleman = pair("carleman_error")
    e1 = carleman[0]
    rate = jnp.where(e1 > 0, carleman[1] / jnp.where(e1 > 0, e1, jnp.ones_like(e1)), jnp.nan)
    status = RESULTS.where(rep1.status == RESULTS.successful, rep2.status, rep1.status)
    return WindowValidity(
        t=jnp.arange(gd.shape[-1], dtype=gd.dtype),
        gd_norm=gd,
        total=pair("total_error"),
        carleman=carleman,
        model=pair("model_error"),
        readout=read / scale[None],
        carleman_rate=rate,
        compression=rep2.compression_error,
        check_gap=gap,
        diverged_step=jnp.stack([rep1.diverged_step, rep2.diverged_step]),
        status=status,
        order=2,
        max_rank=max_rank,
        exact_steps=int(exact_steps),
    )


def validity_summary(
    v: WindowValidity, eps: Sequence[float], *, terms: Sequence[str] = ("total", "carleman")
) -> dict:
    """A JSON-able summary of one (concrete, unbatched) `WindowValidity`: $T^*(\\varepsilon)$
    per order and term (`None` where the window stayed within $\\varepsilon$), the errors at
    the last step and the status.

    **Arguments:**

    - `v`: the result.
    - `eps`: the tolerances.
    - `terms`: the terms of `TERMS` whose usable lengths are listed.

    **Returns:** a dict.
    """
    out: dict = {"status": RESULTS[v.status], "exact_steps": v.exact_steps, "max_rank": v.max_rank}
    for order in (1, 2):
        for term in terms:
            ts = np.asarray(usable_length(v.series(term, order=order), eps))
            out[f"t_star_{term}_N{order}"] = [None if np.isinf(x) else int(x) for x in ts]
            out[f"{term}_N{order}_final"] = float(v.series(term, order=order)[-1])
    return out
