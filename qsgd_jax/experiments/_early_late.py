"""Early vs late windows: the window error and dissipation against the window's start step
after pruning, a study built on `quantum_window`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, PRNGKeyArray, PyTree

from .._data import batch_at
from .._errors import check_finite_tree
from .._hybrid import _sgd_chunk
from .._propagation import error_propagation
from .._prune import apply_mask, keep_pruned_zero
from .._window import WindowConfig, quantum_window


def early_late(
    loss_fn: Callable[[PyTree, Any], Array],
    params: PyTree,
    mask: PyTree,
    x: Array,
    y: Array,
    config: WindowConfig,
    starts,
    key: PRNGKeyArray,
    *,
    batch_size: int = 64,
) -> dict[str, np.ndarray]:
    """Window error and dissipation vs the window's start step after pruning (early vs late).

    SGD (learning rate $\\eta$, mask kept) runs from the pruned `params`; at each step in
    `starts` a window of `config` starts from the SGD iterate on the next $T_q$ batches.

    **Arguments:**

    - `loss_fn`: pure `loss_fn(params, Batch) -> scalar`.
    - `params`: the parameters at pruning (the mask is applied first).
    - `mask`: bool pytree, `True` = active.
    - `x`, `y`: the training data (mini-batches via `batch_at`).
    - `config`: the window's `WindowConfig` (its history system is not built).
    - `starts`: the start steps (non-negative).
    - `key`: PRNG key of the batches and of each window's read-out.
    - `batch_size`: mini-batch size.

    **Returns:** numpy arrays over `starts`: `start`, `total_error` / `carleman_error` /
    `model_error` (relative, at $T_q$), `spectral_radius` ($\\rho(F_1)$), `positive_fraction`
    (share of Hessian eigenvalues $> 0$ on the active set, exact), `t_star` of $E(t)$.
    """
    for name, tree in (("params", params), ("x", x), ("y", y)):
        check_finite_tree(name, tree)
    starts = sorted(int(s) for s in starts)
    if not starts or starts[0] < 0:
        raise ValueError(f"`starts` must be non-negative steps, got {starts!r}.")
    params = apply_mask(params, mask)
    opt = optax.chain(optax.sgd(config.eta), keep_pruned_zero(mask))
    chunk = _sgd_chunk(loss_fn, opt, x, y, key, batch_size)
    cfg = dataclasses.replace(config, history=False)
    state, at, rows = opt.init(params), 0, []
    for s in starts:
        if s > at:
            params, state, _ = chunk(params, state, at, s - at)
            at = s
        batches = jax.vmap(lambda t: batch_at(x, y, key, t, batch_size))(
            s + jnp.arange(cfg.num_steps)
        )
        try:
            _, rep = quantum_window(loss_fn, params, mask, batches, cfg, jax.random.fold_in(key, s))
        except RuntimeError:
            rows.append([s] + [np.inf] * 3 + [np.nan] * 3)
            continue
        rel = rep.relative()
        lam = -np.real(np.asarray(rep.dissipation.eigenvalues))  # eigenvalues of H
        curve = error_propagation(
            jnp.asarray(lam), jnp.ones_like(jnp.asarray(lam)), cfg.eta, num_steps=200
        )
        rows.append(
            [
                s,
                float(rel["total_error"][-1]),
                float(rel["carleman_error"][-1]),
                float(rel["model_error"][-1]),
                float(rep.dissipation.spectral_radius),
                float(np.mean(lam > 0)),
                float(curve.t_star),
            ]
        )
    cols = (
        "start",
        "total_error",
        "carleman_error",
        "model_error",
        "spectral_radius",
        "positive_fraction",
        "t_star",
    )
    arr = np.asarray(rows, dtype=float)
    return {c: arr[:, i] for i, c in enumerate(cols)}
