"""Sweep target: the order-$N$ window error of a whole pruned model at traced $(\\eta, s, N)$.

A sweep varies the sparsity, so the active set cannot be a shape: here every parameter is a
coordinate and a traced keep-mask $k$ (magnitude pruning at the traced sparsity) restricts the
field, $f_0 = -k \\odot g$, $f_1 v = -k \\odot H (k \\odot v)$,
$f_2[a b^\\top] = -\\tfrac12 k \\odot \\mathcal{T}(k \\odot a, k \\odot b, \\cdot)$. Pruned
coordinates start at 0 and have zero rows, so they stay exactly 0, and the active block is the
active-set field of the Taylor model. The Carleman state is the factored one (`FactoredState`), so
$N = 2$ runs on the whole model; the reference is exact SGD on the same pruned model and
batches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PyTree

from ._carleman import CarlemanOperator
from ._errors import check_int_range, is_concrete
from ._evolution import Discrete, FactoredState, drive
from ._field import AbstractField
from ._loss_model import ActiveSet, LossField
from ._polynomial import PolynomialMap
from ._prune import _magnitude_keep
from ._sweep import sweep_target


def _check(values: dict, **_) -> None:
    for name, ok, allowed in (
        ("eta", lambda v: np.isfinite(v) & (v > 0), "finite and > 0"),
        ("sparsity", lambda v: (v >= 0) & (v < 1), "in [0, 1)"),
        ("order", lambda v: (v == 1) | (v == 2), "1 or 2 (the factored state's orders)"),
    ):
        if name not in values:
            raise ValueError(f"the sweep configuration needs a field `{name}` ({allowed}).")
        v = np.asarray(values[name], dtype=float)
        if not np.all(ok(v)):
            bad = v[~ok(v)]
            raise ValueError(f"`{name}` must be {allowed}, got {bad.tolist()} in the grid.")


class _KeptField(AbstractField):
    """A field restricted to the coordinates `keep` (a traced 0/1 vector), shapes fixed."""

    inner: AbstractField
    keep: Float[Array, " n"]

    @property
    def n(self) -> int:
        return self.inner.n

    @property
    def degree(self) -> int:
        return self.inner.degree

    @property
    def symmetric(self) -> bool:
        return self.inner.symmetric

    def f0(self):
        return self.keep * self.inner.f0()

    def linear(self, v):
        return self.keep * self.inner.linear(self.keep * v)

    def quadratic(self, x):
        return self.keep * self.inner.quadratic(self.keep[:, None] * x * self.keep[None, :])

    def quadratic_uu(self, u):
        return self.keep * self.inner.quadratic_uu(self.keep * u)

    def quadratic_pairs(self, a, b):
        k = self.keep[:, None]
        return self.keep * self.inner.quadratic_pairs(k * a, k * b)


@sweep_target(_check)
def pruned_window_error(
    config: dict[str, Any],
    *,
    loss_fn: Callable[[PyTree, Any], Array],
    params: PyTree,
    batches: PyTree,
    steps: int,
    state: FactoredState | None = None,
) -> dict[str, Float[Array, ""]]:
    """Window error of a whole model pruned at a traced sparsity, at traced $\\eta$ and $N$.

    **Arguments:**

    - `config`: dict with traced scalars `eta` ($\\eta > 0$), `sparsity` (in $[0, 1)$: the
      fraction of weights pruned by global magnitude) and `order` ($N \\in \\{1, 2\\}$).
    - `loss_fn`: `loss_fn(params, batch) -> scalar`.
    - `params`: the dense parameters; pruning at `config["sparsity"]` gives the upload point.
    - `batches`: one batch per step (leading axis $\\ge$ `steps`).
    - `steps`: window length $T_q$ (static).
    - `state`: the factored state (default exact, rank $2T_q$; pass `FactoredState(max_rank=
      ...)` to compress).

    **Returns:** `max_error` (maximum over $t$ of $\\lVert y_1(t) - u^{\\mathrm{GD}}_t\\rVert /
    \\lVert u^{\\mathrm{GD}}_t\\rVert$), `final_error` (the same at $T_q$), `absolute` (its
    numerator at $T_q$), `carleman_error` (the linearization part alone at $T_q$:
    $\\lVert y_1 - u^{\\mathrm{poly}}\\rVert / \\lVert u^{\\mathrm{GD}}\\rVert$, with
    $u^{\\mathrm{poly}}$ GD on the degree-2 Taylor models), `active` (number of kept weights)
    and `compression` (dropped norm).
    All traced: use with `qsgd_jax.sweep` over a grid of `eta`, `sparsity`, `order`.
    """
    state = FactoredState() if state is None else state
    if is_concrete(config):  # an eager call gets the sweep's range checks too
        _check({k: config[k] for k in ("eta", "sparsity", "order") if k in config})
    check_int_range("steps", steps, 1)
    flat, unravel = ravel_pytree(params)
    dtype = flat.dtype
    keep = _magnitude_keep(flat, config["sparsity"]).astype(dtype)
    eta = jnp.asarray(config["eta"], dtype)
    order = jnp.asarray(config["order"], jnp.int32)
    active = ActiveSet(flat * keep, jnp.arange(flat.shape[0], dtype=jnp.int32), unravel)

    def operator(t):
        batch = jax.tree_util.tree_map(lambda x: x[t], batches)
        field = _KeptField(LossField(loss_fn, active, batch, 2), keep)
        return CarlemanOperator(PolynomialMap(field, eta), order, 2)

    def observe(t, op, y, stats, carry):
        u_gd, u_poly = carry
        batch = jax.tree_util.tree_map(lambda x: x[t], batches)
        grad = jax.grad(lambda u: loss_fn(active.embed(u), batch))(u_gd)
        u_gd = u_gd - eta * keep * grad
        u_poly = u_poly + eta * op.poly.field(u_poly)
        norms = (jnp.linalg.norm(y.y1 - u_gd), jnp.linalg.norm(y.y1 - u_poly))
        return (u_gd, u_poly), norms + (jnp.linalg.norm(u_gd),)

    y0 = state.zero(flat.shape[0], 2, steps, dtype)
    zero = jnp.zeros_like(flat)
    run = drive(
        Discrete(),
        operator,
        y0,
        jnp.arange(steps),
        state=state,
        observe=observe,
        carry=(zero, zero),
    )
    y, (err, carl, scale) = run.final, run.out
    scale = jnp.where(scale == 0, 1.0, scale)
    rel = err / scale
    return {
        "max_error": jnp.max(rel),
        "final_error": rel[-1],
        "carleman_error": carl[-1] / scale[-1],
        "absolute": err[-1],
        "active": jnp.sum(keep),
        "compression": y.dropped,
    }
