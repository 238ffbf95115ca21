"""Early vs late windows: the window error and dissipation against the window's start step
after pruning, a study composed of `hybrid_run` (its observe hook) and `quantum_window`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray, PyTree

from .._hybrid import HybridConfig, hybrid_run
from .._propagation import error_propagation
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

    SGD (learning rate $\\eta$, mask kept) runs from the pruned `params` (`hybrid_run` without
    windows); at each step in `starts` a window of `config` starts from the SGD iterate on the
    next $T_q$ batches of that run (its `observe` hook). A window flagged by its status gets
    infinite errors and NaN spectra.

    **Arguments:**

    - `loss_fn`: pure `loss_fn(params, Batch) -> scalar`.
    - `params`: the parameters at pruning (the mask is applied first).
    - `mask`: bool pytree, `True` = active.
    - `x`, `y`: the training data (mini-batches via `batch_at`).
    - `config`: the window's `WindowConfig` (its history system is not built).
    - `starts`: the start steps (non-negative).
    - `key`: PRNG key of the run (its batches) and of each window's read-out.
    - `batch_size`: mini-batch size.

    **Returns:** numpy arrays over `starts`: `start`, `total_error` / `carleman_error` /
    `model_error` (relative, at $T_q$), `spectral_radius` ($\\rho(F_1)$), `positive_fraction`
    (share of Hessian eigenvalues $> 0$ on the active set, exact), `t_star` of $E(t)$.
    """
    starts = sorted(int(s) for s in starts)
    if not starts or starts[0] < 0:
        raise ValueError(f"`starts` must be non-negative steps, got {starts!r}.")
    cfg = dataclasses.replace(config, history=False)
    rows = []

    def probe(at):
        step = at.step
        _, rep = quantum_window(
            loss_fn,
            at.params,
            mask,
            at.batches(cfg.num_steps),
            cfg,
            jax.random.fold_in(key, step),
            throw=False,
        )
        if not rep.succeeded:  # a flagged window: its error is unbounded, its spectrum unknown
            rows.append([step] + [np.inf] * 3 + [np.nan] * 3)
            return
        rel = rep.relative()
        lam = -np.real(np.asarray(rep.dissipation.eigenvalues))  # eigenvalues of H
        curve = error_propagation(
            jnp.asarray(lam), jnp.ones_like(jnp.asarray(lam)), cfg.eta, num_steps=200
        )
        rows.append(
            [
                step,
                float(rel["total_error"][-1]),
                float(rel["carleman_error"][-1]),
                float(rel["model_error"][-1]),
                float(rep.dissipation.spectral_radius),
                float(np.mean(lam > 0)),
                float(curve.t_star),
            ]
        )

    sgd = HybridConfig(
        window=cfg,
        pretrain_steps=0,
        batch_size=batch_size,
        sparse_steps=starts[-1],
        num_windows=0,
        baseline=False,
    )
    hybrid_run(loss_fn, params, x, y, sgd, key, mask=mask, observe=probe, observe_steps=starts)
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
