"""The paper's pipeline end to end, against optax SGD on the identical mask, batches and keys.

dense pre-training (optax SGD, momentum / weight decay) → global magnitude pruning → repeated
{quantum window of $T_q$ steps → download → re-upload}, optionally with classical SGD steps in
between → classical continuation. The baseline runs plain SGD with the window's learning rate
$\\eta$ on the same mask and the same mini-batch of every step $t$ after pruning. Windows are of
fixed length or adaptive: at the window start the error-propagation curve
$E(t) = \\int\\rho(\\lambda)|1-\\eta\\lambda|^t d\\lambda$ is estimated from the SLQ spectrum of the
active-set Hessian and the window ends before it crosses back above 1 at $t^*$ (DESIGN §2).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, PRNGKeyArray, PyTree

from ._data import Batch, batch_at
from ._errors import check_finite_tree, check_int_range, check_positive
from ._progress import progress as progress_bar, progress_counter, progress_default
from ._propagation import propagation_from_spectrum
from ._prune import apply_mask, count_active, keep_pruned_zero, prune_mask
from ._spectrum import hessian_spectrum
from ._window import WindowConfig, quantum_window


class HybridConfig(eqx.Module):
    """Settings of `hybrid_run` (all static Python values; the window's are in `window`).

    **Fields:** `window` (a `WindowConfig`: $\\eta$, $T_q$, method, read-out, ...; with adaptive
    windows $T_q$ is the longest window); `pretrain_steps`, `pretrain_lr`, `momentum`,
    `weight_decay` (dense pre-training); `sparsity` (global magnitude pruning); `batch_size`;
    `sparse_steps` (steps after pruning, both runs); `num_windows` (quantum windows at most,
    then classical continuation); `classical_between` (SGD steps after each window);
    `adaptive`, `min_window`, `spectrum_steps` (adaptive windows: shortest window, SLQ depth).
    """

    window: WindowConfig
    pretrain_steps: int = eqx.field(static=True, default=200)
    pretrain_lr: float = eqx.field(static=True, default=0.1)
    momentum: float = eqx.field(static=True, default=0.9)
    weight_decay: float = eqx.field(static=True, default=0.0)
    sparsity: float = eqx.field(static=True, default=0.9)
    batch_size: int = eqx.field(static=True, default=64)
    sparse_steps: int = eqx.field(static=True, default=40)
    num_windows: int = eqx.field(static=True, default=4)
    classical_between: int = eqx.field(static=True, default=0)
    adaptive: bool = eqx.field(static=True, default=False)
    min_window: int = eqx.field(static=True, default=2)
    spectrum_steps: int = eqx.field(static=True, default=32)

    def __check_init__(self):
        for name in ("pretrain_steps", "sparse_steps", "num_windows", "classical_between"):
            check_int_range(name, getattr(self, name), 0)
        check_int_range("batch_size", self.batch_size, 1)
        check_int_range("min_window", self.min_window, 1)
        check_positive("pretrain_lr", self.pretrain_lr)
        if not 0 <= self.sparsity < 1:
            raise ValueError(f"`sparsity` must lie in [0, 1), got {self.sparsity!r}.")
        if self.window.batching != "sgd":
            raise ValueError("`window.batching` must be 'sgd': every step has its own batch.")


class HybridResult(eqx.Module):
    """Both runs, step by step after pruning ($t = 0..$ `sparse_steps`).

    **Fields:** `sgd`, `hybrid` (dicts of metric arrays from `evaluate`, e.g. loss, accuracy);
    `distance` ($\\lVert\\theta^{\\mathrm{hyb}}_t - \\theta^{\\mathrm{SGD}}_t\\rVert_2$);
    `sgd_time`, `hybrid_time` (cumulative wall seconds, spread evenly over each jitted chunk);
    `in_window` (step $t$ lies inside a quantum window; the hybrid iterate there is the exact
    Carleman $y_1(t)$, observable only after read-out at the window's end); `windows` (one
    JSON-able dict per window: start, length, why, error figures); `params_sgd`,
    `params_hybrid` (final parameters); `mask`; `fallbacks` (the windows that were flagged
    as diverging and replaced by classical SGD steps: one dict each, with the start, the
    length and the window's error message; also warned about when they happen).
    """

    sgd: dict[str, Array]
    hybrid: dict[str, Array]
    distance: Array
    sgd_time: Array
    hybrid_time: Array
    in_window: Array
    params_sgd: PyTree
    params_hybrid: PyTree
    mask: PyTree
    windows: tuple = eqx.field(static=True)
    pretrain_seconds: float = eqx.field(static=True)
    fallbacks: tuple = eqx.field(static=True, default=())

    def summary(self) -> dict[str, Any]:
        """JSON-able summary: final metrics of both runs, distance, times, windows."""
        out: dict[str, Any] = {
            "final_sgd": {k: float(v[-1]) for k, v in self.sgd.items()},
            "final_hybrid": {k: float(v[-1]) for k, v in self.hybrid.items()},
            "final_distance": float(self.distance[-1]),
            "sgd_seconds": float(self.sgd_time[-1]),
            "hybrid_seconds": float(self.hybrid_time[-1]),
            "pretrain_seconds": self.pretrain_seconds,
            "windows": list(self.windows),
            "fallbacks": list(self.fallbacks),
        }
        json.dumps(out)  # keep it JSON-able
        return out


def model_evaluate(model, data) -> Callable[[PyTree], dict[str, Array]]:
    """`evaluate(params)` for a `Model` and `Dataset`: train loss and test accuracy.

    **Arguments:**

    - `model`: a `Model`.
    - `data`: a `Dataset`.

    **Returns:** `evaluate(params) -> {"loss": ..., "accuracy": ...}`.
    """
    train, test = data.train_batch(), data.test_batch()
    return lambda p: {"loss": model.loss_fn(p, train), "accuracy": model.accuracy(p, test)}


def _sgd_chunk(loss_fn, opt, x, y, key, batch_size, *, keep: bool = True):
    """Jitted `n` steps of `opt` from global step `start`: final state, flat iterates (`keep`;
    otherwise `None`, so long runs do not hold n_steps x n_params)."""

    @eqx.filter_jit
    def run(params, state, start, n):
        def body(c, t):
            p, s = c
            g = jax.grad(loss_fn)(p, batch_at(x, y, key, start + t, batch_size))
            u, s = opt.update(g, s, p)
            p = optax.apply_updates(p, u)
            return (p, s), (ravel_pytree(p)[0] if keep else None)

        (p, s), flats = jax.lax.scan(body, (params, state), jnp.arange(n))
        return p, s, flats

    return lambda p, s, start, n: run(p, s, jnp.asarray(start), n)


def _pretrain(loss_fn, params, x, y, config: HybridConfig, key, progress: bool | None = False):
    """Dense pre-training; with a progress bar it runs in up to 20 jitted chunks (same steps,
    same batches: the batch of step t depends on t only)."""
    opt = optax.chain(
        optax.add_decayed_weights(config.weight_decay),
        optax.sgd(config.pretrain_lr, momentum=config.momentum or None),
    )
    n = config.pretrain_steps
    if n == 0:
        return params
    step = _sgd_chunk(loss_fn, opt, x, y, key, config.batch_size, keep=False)
    on = progress_default() if progress is None else bool(progress)
    size = math.ceil(n / 20) if on else n
    state = opt.init(params)
    for start in progress_bar(range(0, n, size), enabled=progress, desc="pre-training"):
        params, state, _ = step(params, state, start, min(size, n - start))
    return params


def _window_length(loss_fn, params, mask, batches, config: HybridConfig, key):
    """Fixed $T_q$, or the adaptive choice $\\min(T_q, t^* - 1)$ with the reason."""
    cfg = config.window
    if not config.adaptive:
        return cfg.num_steps, f"fixed T_q = {cfg.num_steps}"
    s = int(count_active(mask))
    dens = hessian_spectrum(
        loss_fn, params, batches, key, mask, view="active", num_steps=min(config.spectrum_steps, s)
    )
    curve = propagation_from_spectrum(dens, cfg.eta, num_steps=cfg.num_steps + 1)
    t_star = float(curve.t_star)
    if not np.isfinite(t_star):
        return cfg.num_steps, f"E(t) < 1 up to t = {cfg.num_steps + 1}: longest window"
    length = int(t_star) - 1
    why = f"E(t) crosses 1 at t* = {t_star:.0f} (lambda_min = {float(dens.lambda_min):.3g})"
    return length, why + (
        ": window ends at t* - 1"
        if length >= config.min_window
        else ": too short, classical steps instead"
    )


def hybrid_run(
    loss_fn: Callable[[PyTree, Any], Array],
    params: PyTree,
    x: Array,
    y: Array,
    config: HybridConfig,
    key: PRNGKeyArray,
    *,
    evaluate: Callable[[PyTree], dict[str, Array]] | None = None,
    progress: bool | None = False,
) -> HybridResult:
    """Pre-train, prune, then train by quantum windows and by optax SGD; record both.

    **Arguments:**

    - `loss_fn`: pure `loss_fn(params, Batch) -> scalar` (e.g. `model.loss_fn`).
    - `params`: initial dense parameters.
    - `x`, `y`: training inputs and targets (mini-batches via `batch_at`).
    - `config`: a `HybridConfig`.
    - `key`: PRNG key; pre-training batches, sparse-phase batches (shared by both runs) and
      each window's read-out get their own sub-keys, so same key, same result.
    - `evaluate`: `evaluate(params) -> dict` of scalar metrics recorded every step (default:
      the mean loss on the whole training set; see `model_evaluate`).
    - `progress`: a bar on stderr over the steps after pruning (`None`: follow
      `$QSGD_JAX_PROGRESS`); off by default, on in the experiments.

    **Returns:** a `HybridResult`.
    """
    check_finite_tree("params", params)
    check_finite_tree("x", x)
    check_finite_tree("y", y)
    if evaluate is None:
        full = Batch(x, y)
        evaluate = lambda p: {"loss": loss_fn(p, full)}  # noqa: E731
    k_pre, k_sparse, k_win = jax.random.split(key, 3)
    t0 = time.perf_counter()
    params = _pretrain(loss_fn, params, x, y, config, k_pre, progress)
    mask = prune_mask(params, config.sparsity)
    params = apply_mask(params, mask)
    pre_s = time.perf_counter() - t0
    cfg, bs = config.window, config.batch_size
    opt = optax.chain(optax.sgd(cfg.eta), keep_pruned_zero(mask))
    chunk = _sgd_chunk(loss_fn, opt, x, y, k_sparse, bs)
    flat0, unravel = ravel_pytree(params)
    ev = jax.jit(jax.vmap(lambda f: evaluate(unravel(f))))
    p_sgd, s_sgd, p_hyb, s_hyb = params, opt.init(params), params, opt.init(params)
    traj_sgd, traj_hyb, t_sgd, t_hyb, inwin = [flat0[None]], [flat0[None]], [0.0], [0.0], [False]
    windows, fallbacks, step, done, bar_at = [], [], 0, 0, 0

    def classical(n, tag=""):
        nonlocal p_hyb, s_hyb
        t = time.perf_counter()
        p_hyb, s_hyb, f = jax.block_until_ready(chunk(p_hyb, s_hyb, step, n))
        traj_hyb.append(f)
        t_hyb.extend(t_hyb[-1] + (time.perf_counter() - t) * np.arange(1, n + 1) / n)
        inwin.extend([False] * n)

    bar = progress_counter(total=config.sparse_steps, enabled=progress, desc="hybrid steps")
    while step < config.sparse_steps:
        bar.update(step - bar_at)
        bar_at = step
        left = config.sparse_steps - step
        if done < config.num_windows:
            starts = step + jnp.arange(cfg.num_steps)
            batches = jax.vmap(lambda s: batch_at(x, y, k_sparse, s, bs))(starts)
            k_len, k_read = jax.random.split(jax.random.fold_in(k_win, done))
            length, why = _window_length(loss_fn, p_hyb, mask, batches, config, k_len)
            length = min(length, left)
            if length >= config.min_window:
                # A padded history system (idle > 0) is padded to each window's own length.
                wcfg = dataclasses.replace(
                    cfg, num_steps=length, idle=length if cfg.idle else 0, keep_trajectory=True
                )
                t = time.perf_counter()
                try:
                    p_new, rep = quantum_window(loss_fn, p_hyb, mask, batches, wcfg, k_read)
                    jax.block_until_ready(p_new)
                except RuntimeError as e:  # diverged: reported, classical steps instead
                    note = {
                        "start": step,
                        "length": length,
                        "error": str(e),
                        "instead": f"{length} classical SGD steps",
                    }
                    windows.append(
                        {
                            "start": step,
                            "length": 0,
                            "why": why,
                            "error": str(e),
                            "fallback": note["instead"],
                        }
                    )
                    fallbacks.append(note)
                    warnings.warn(
                        f"hybrid_run: the quantum window at step {step} was flagged and "
                        f"replaced by {length} classical SGD steps. {e}",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    classical(length)
                    step, done = step + length, done + 1
                    continue
                dt = time.perf_counter() - t
                base = ravel_pytree(apply_mask(p_hyb, mask))[0]
                idx = jnp.flatnonzero(ravel_pytree(mask)[0])
                inner = jnp.tile(base, (length, 1)).at[:, idx].add(rep.y1[1:])
                traj_hyb.append(inner.at[-1].set(ravel_pytree(p_new)[0]))
                t_hyb.extend(t_hyb[-1] + dt * np.arange(1, length + 1) / length)
                inwin.extend([True] * length)
                p_hyb = p_new
                summ = rep.summary()
                windows.append({"start": step, "length": length, "why": why, **summ})
                step, done = step + length, done + 1
                n = min(config.classical_between, config.sparse_steps - step)
                if n:
                    classical(n)
                    step += n
                continue
            windows.append({"start": step, "length": 0, "why": why})
            n = min(max(config.classical_between, 1), left)
            done += 1
        else:
            n = left
        classical(n)
        step += n
    bar.update(step - bar_at)
    bar.close()
    # The baseline, in one chunk (same batches: global steps 0..sparse_steps-1).
    t = time.perf_counter()
    p_sgd, s_sgd, f = jax.block_until_ready(chunk(p_sgd, s_sgd, 0, config.sparse_steps))
    dt = time.perf_counter() - t
    traj_sgd.append(f)
    n = config.sparse_steps
    t_sgd.extend(dt * np.arange(1, n + 1) / max(n, 1))
    A, B = jnp.concatenate(traj_sgd), jnp.concatenate(traj_hyb)
    return HybridResult(
        sgd=ev(A),
        hybrid=ev(B),
        distance=jnp.linalg.norm(A - B, axis=1),
        sgd_time=jnp.asarray(t_sgd),
        hybrid_time=jnp.asarray(t_hyb),
        in_window=jnp.asarray(inwin),
        params_sgd=p_sgd,
        params_hybrid=p_hyb,
        mask=mask,
        windows=tuple(windows),
        pretrain_seconds=pre_s,
        fallbacks=tuple(fallbacks),
    )


def plot_hybrid(result: HybridResult, path=None, *, metric: str = "loss", ax=None):
    """Both runs' `metric` curves against the step, with the quantum windows shaded.

    A `matplotlib.figure.Figure` is built directly (no pyplot), so a notebook's or a script's
    backend is left as it is.

    **Arguments:**

    - `result`: a `HybridResult`.
    - `path`: where to save a PNG (optional).
    - `metric`: a key of the recorded metrics (`result.sgd`), e.g. `"loss"`.
    - `ax`: a matplotlib Axes to draw on (default: a new figure).

    **Returns:** the matplotlib `Figure`.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4)) if ax is None else ax.figure
    ax = fig.add_subplot() if ax is None else ax
    steps = np.arange(len(result.distance))
    ax.plot(steps, np.asarray(result.sgd[metric]), label="optax SGD")
    ax.plot(steps, np.asarray(result.hybrid[metric]), "--", label="hybrid (quantum windows)")
    for i, w in enumerate(result.windows):
        if w["length"]:
            ax.axvspan(
                w["start"],
                w["start"] + w["length"],
                color="C2",
                alpha=0.15,
                label="quantum window" if i == 0 else None,
            )
    ax.set_xlabel("step after pruning")
    ax.set_ylabel(metric)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


__all__ = [
    "HybridConfig",
    "HybridResult",
    "hybrid_run",
    "model_evaluate",
    "plot_hybrid",
]
