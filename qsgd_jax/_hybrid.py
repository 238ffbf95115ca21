"""The paper's pipeline end to end, against optax SGD on the identical mask, batches and keys.

dense pre-training (optax SGD, momentum / weight decay) → global magnitude pruning → repeated
{quantum window of $T_q$ steps → download → re-upload}, optionally with classical SGD steps in
between → classical continuation. The baseline runs plain SGD with the window's learning rate
$\\eta$ on the same mask and the same mini-batch of every step $t$ after pruning. Windows are of
fixed length or adaptive: at the window start the error-propagation curve
$E(t) = \\int\\rho(\\lambda)|1-\\eta\\lambda|^t d\\lambda$ is estimated from the SLQ spectrum of the
active-set Hessian and the window ends before it crosses back above 1 at $t^*$
(`docs/math/propagation.md`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, PRNGKeyArray, PyTree

from ._data import Batch, _batch_at, check_data
from ._errors import check_finite_tree, check_int_range, check_number, check_positive
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
    `adaptive`, `min_window`, `spectrum_steps` (adaptive windows: shortest window, SLQ depth);
    `pretrain_batch_size` (default `batch_size`); `eval_every` (metrics, distance and times
    are recorded every this many steps and at the end); `baseline` (also run optax SGD);
    `divergence_factor` (a run whose loss grows above this times its value at pruning, or
    whose parameters become non-finite, is reported as diverged); `period` (download and
    re-upload at every multiple of `period` steps: a window ends at the next multiple, so with
    `classical_between` steps after each download the later windows are that much shorter; the
    article's protocol; default `None`, every window is $T_q$ long).
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
    pretrain_batch_size: int | None = eqx.field(static=True, default=None)
    eval_every: int = eqx.field(static=True, default=1)
    baseline: bool = eqx.field(static=True, default=True)
    divergence_factor: float = eqx.field(static=True, default=1e3)
    period: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        for name in ("pretrain_steps", "sparse_steps", "num_windows", "classical_between"):
            check_int_range(name, getattr(self, name), 0)
        check_int_range("batch_size", self.batch_size, 1)
        if self.pretrain_batch_size is not None:
            check_int_range("pretrain_batch_size", self.pretrain_batch_size, 1)
        check_int_range("eval_every", self.eval_every, 1)
        if self.period is not None:
            check_int_range("period", self.period, 1)
        check_positive("divergence_factor", self.divergence_factor)
        check_int_range("min_window", self.min_window, 1)
        check_positive("pretrain_lr", self.pretrain_lr)
        check_number("sparsity", self.sparsity, low=0, high=1, high_open=True)
        if self.window.full_batch:
            raise ValueError("`window.batching` must be 'sgd': every step has its own batch.")


class HybridResult(eqx.Module):
    """Both runs after pruning, at the recorded steps `steps` ($t = 0..$ `sparse_steps`, every
    `eval_every`).

    **Fields:** `sgd`, `hybrid` (dicts of metric arrays from `evaluate`, e.g. loss, accuracy;
    `sgd` is empty without a baseline);
    `distance` ($\\lVert\\theta^{\\mathrm{hyb}}_t - \\theta^{\\mathrm{SGD}}_t\\rVert_2$);
    `sgd_time`, `hybrid_time` (cumulative wall seconds, spread evenly over each jitted chunk);
    `in_window` (step $t$ lies inside a quantum window; the hybrid iterate there is the exact
    Carleman $y_1(t)$, observable only after read-out at the window's end); `windows` (one
    JSON-able dict per window: start, length, why, error figures); `params_sgd`,
    `params_hybrid` (final parameters); `mask`; `fallbacks` (the windows that were flagged
    as diverging and replaced by classical SGD steps: one dict each, with the start, the
    length and the window's error message; also warned about when they happen); `steps` (the
    recorded steps); `divergences` (one dict per run that diverged: `run` "sgd" or "hybrid",
    `step`, `why`; also warned about).
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
    steps: Array
    windows: tuple = eqx.field(static=True)
    pretrain_seconds: float = eqx.field(static=True)
    fallbacks: tuple = eqx.field(static=True, default=())
    divergences: tuple = eqx.field(static=True, default=())

    def summary(self) -> dict[str, Any]:
        """JSON-able summary: final metrics of both runs, distance, times, windows."""
        out: dict[str, Any] = {
            "final_sgd": {k: float(v[-1]) for k, v in self.sgd.items()},
            "final_hybrid": {k: float(v[-1]) for k, v in self.hybrid.items()},
            "final_distance": float(self.distance[-1]),
            "steps": [int(t) for t in self.steps],
            "sgd_seconds": float(self.sgd_time[-1]),
            "hybrid_seconds": float(self.hybrid_time[-1]),
            "pretrain_seconds": self.pretrain_seconds,
            "windows": list(self.windows),
            "fallbacks": list(self.fallbacks),
            "divergences": list(self.divergences),
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
            g = jax.grad(loss_fn)(p, _batch_at(x, y, key, start + t, batch_size))
            u, s = opt.update(g, s, p)
            p = optax.apply_updates(p, u)
            return (p, s), (ravel_pytree(p)[0] if keep else None)

        (p, s), flats = jax.lax.scan(body, (params, state), jnp.arange(n))
        return p, s, flats

    return lambda p, s, start, n: run(p, s, jnp.asarray(start), n)


def pretrain(
    loss_fn: Callable[[PyTree, Any], Array],
    params: PyTree,
    x: Array,
    y: Array,
    config: HybridConfig,
    key: PRNGKeyArray,
    progress: bool | None = False,
) -> PyTree:
    """Dense pre-training, the first stage of `hybrid_run`: optax SGD with momentum and weight
    decay (`config.pretrain_lr`, `momentum`, `weight_decay`, `pretrain_batch_size`) for
    `config.pretrain_steps` steps.

    With a progress bar it runs in up to 20 jitted chunks (same steps, same batches: the batch
    of step $t$ depends on $t$ only). `hybrid_run` pre-trains with the first of
    `jax.random.split(key, 3)`; a study that pre-trains once and runs several pipelines passes
    that key here and `pretrain_steps=0` to `hybrid_run`.

    **Arguments:** `loss_fn`, `params`, `x`, `y` (as `hybrid_run`), `config` (a
    `HybridConfig`), `key` (the batches' PRNG key), `progress` (a bar on stderr).

    **Returns:** the pre-trained dense parameters.
    """
    opt = optax.chain(
        optax.add_decayed_weights(config.weight_decay),
        optax.sgd(config.pretrain_lr, momentum=config.momentum or None),
    )
    n = config.pretrain_steps
    if n == 0:
        return params
    bs = config.pretrain_batch_size or config.batch_size
    step = _sgd_chunk(loss_fn, opt, x, y, key, bs, keep=False)
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


@dataclasses.dataclass(frozen=True)
class WindowEvent:
    """What `hybrid_run` hands its `on_window` hook after each quantum window.

    **Fields:** `index` (the window's number), `start` (its first step after pruning),
    `length` ($T_q$), `why` (how the length was chosen), `params` (the upload point
    $\\bar\\theta$), `mask` (the sparse mask), `batches` (the window's batches), `report`
    (its `WindowReport`), `succeeded` (its status is successful), `params_exact`
    ($\\bar\\theta + y_1(T_q)$, the state before read-out; `None` when it failed),
    `params_hat` (after read-out and re-upload; `None` when it failed, its steps then ran as
    classical SGD).
    """

    index: int
    start: int
    length: int
    why: str
    params: PyTree
    mask: PyTree
    batches: PyTree
    report: Any
    succeeded: bool
    params_exact: PyTree | None
    params_hat: PyTree | None


@dataclasses.dataclass(frozen=True)
class Observation:
    """What `hybrid_run` hands its `observe` hook at a step of the hybrid trajectory.

    **Fields:** `step` (after pruning), `params` (the iterate; inside a quantum window the exact
    Carleman iterate $\\bar\\theta + y_1(t)$), `mask` (the sparse mask), `in_window` (whether
    the step lies inside a window), `batches` (`batches(n)`: the $n$ mini-batches the run uses
    from this step on, leading axis $n$, e.g. for a probe window here).
    """

    step: int
    params: PyTree
    mask: PyTree
    in_window: bool
    batches: Callable[[int], PyTree]


class _Run:
    """One trajectory after pruning: classical chunks, records at the chosen steps, hooks."""

    def __init__(self, chunk, params, state, unravel, record: set, observe, batches, done, mask):
        self.chunk, self.params, self.state, self.unravel = chunk, params, state, unravel
        self.record, self.observe, self.batches, self.mask = record, observe, batches, mask
        self.step, self.seconds = 0, 0.0
        self.flats, self.times, self.in_window = {}, {}, {}
        self.done = done
        self.visit(0, ravel_pytree(params)[0], False)

    def visit(self, t: int, flat, in_window: bool):
        if t in self.record:
            self.flats[t], self.times[t], self.in_window[t] = flat, self.seconds, in_window
        if self.observe is not None and t in self.done:
            batches = functools.partial(self.batches, t)
            self.observe(Observation(t, self.unravel(flat), self.mask, in_window, batches))

    def classical(self, n: int, cuts: set):
        """`n` SGD steps, in jitted chunks that end at the steps where something is needed."""
        end = self.step + n
        while self.step < end:
            stop = min([c for c in cuts if self.step < c < end] + [end])
            t0, m = time.perf_counter(), stop - self.step
            self.params, self.state, flats = jax.block_until_ready(
                self.chunk(self.params, self.state, self.step, m)
            )
            dt = time.perf_counter() - t0
            for j in range(1, m + 1):
                self.seconds += dt / m
                self.visit(self.step + j, flats[j - 1], False)
            self.step = stop

    def series(self):
        steps = sorted(self.flats)
        return (
            jnp.stack([self.flats[t] for t in steps]),
            np.asarray([self.times[t] for t in steps]),
            np.asarray([self.in_window[t] for t in steps]),
        )


def _divergence(name: str, metrics: dict, flats, steps, factor: float) -> list[dict]:
    """Where a run's parameters or loss became non-finite, or its loss grew `factor` times."""
    bad_params = ~np.all(np.isfinite(np.asarray(flats)), axis=1)
    loss = np.asarray(metrics["loss"]) if "loss" in metrics else None
    notes = []
    if bad_params.any():
        t = int(steps[np.argmax(bad_params)])
        notes.append({"run": name, "step": t, "why": "non-finite parameters"})
    elif loss is not None:
        start = max(abs(float(loss[0])), np.finfo(float).tiny)
        bad = ~np.isfinite(loss) | (np.abs(loss) > factor * start)
        if bad.any():
            t = int(steps[np.argmax(bad)])
            why = (
                "non-finite loss"
                if not np.isfinite(loss[np.argmax(bad)])
                else f"the loss grew above {factor:g} x its value at pruning ({start:.4g})"
            )
            notes.append({"run": name, "step": t, "why": why})
    return notes


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
    mask: PyTree | None = None,
    after_pruning: Callable[[PyTree, PyTree], PyTree] | None = None,
    observe: Callable[[Observation], None] | None = None,
    observe_steps: Iterable[int] | None = None,
    on_window: Callable[[WindowEvent], dict | None] | None = None,
) -> HybridResult:
    """Pre-train, prune, then train by quantum windows and by optax SGD; record both.

    **Arguments:**

    - `loss_fn`: pure `loss_fn(params, Batch) -> scalar` (e.g. `model.loss_fn`).
    - `params`: initial dense parameters (already pre-trained when `pretrain_steps=0`).
    - `x`, `y`: training inputs and targets (mini-batches via `batch_at`).
    - `config`: a `HybridConfig`.
    - `key`: PRNG key; pre-training batches, sparse-phase batches (shared by both runs) and
      each window's read-out get their own sub-keys, so same key, same result.
    - `evaluate`: `evaluate(params) -> dict` of scalar metrics recorded every `eval_every`
      steps (default: the mean loss on the whole training set; see `model_evaluate`).
    - `progress`: a bar on stderr over the steps after pruning (`None`: follow
      `$QSGD_JAX_PROGRESS`); off by default, on in the experiments.
    - `mask`: the sparse mask (bool pytree like `params`, `True` = active; default: global
      magnitude pruning of the pre-trained parameters at `config.sparsity`).
    - `after_pruning`: `after_pruning(params, mask) -> params`, applied to the masked
      parameters at pruning (e.g. re-initialize the kept weights: "sparse scratch").
    - `observe`: `observe(observation)` called with an `Observation` (step, params, mask,
      the batches from there on) on the hybrid trajectory at every step of `observe_steps`
      (default every step); studies that watch training (spectra, probe windows) use it.
    - `observe_steps`: the steps after pruning at which `observe` is called.
    - `on_window`: `on_window(event) -> dict | None` called after each quantum window with a
      `WindowEvent`; a returned dict is merged into that window's record in `windows`.

    **Returns:** a `HybridResult`. A window whose report is not successful (its `status`) is
    recorded, warned about and replaced by classical SGD steps; any error raised while running
    it (out of memory, a failing callback) propagates.
    """
    check_finite_tree("params", params)
    check_finite_tree("x", x)
    check_finite_tree("y", y)
    check_data(x, y, config.batch_size)
    if config.pretrain_batch_size is not None:
        check_data(x, y, config.pretrain_batch_size)
    if evaluate is None:
        full = Batch(x, y)
        evaluate = lambda p: {"loss": loss_fn(p, full)}  # noqa: E731
    k_pre, k_sparse, k_win = jax.random.split(key, 3)
    t0 = time.perf_counter()
    params = pretrain(loss_fn, params, x, y, config, k_pre, progress)
    mask = prune_mask(params, config.sparsity) if mask is None else mask
    params = apply_mask(params, mask)
    if after_pruning is not None:
        params = apply_mask(after_pruning(params, mask), mask)
    pre_s = time.perf_counter() - t0
    cfg, bs, total = config.window, config.batch_size, config.sparse_steps
    opt = optax.chain(optax.sgd(cfg.eta), keep_pruned_zero(mask))
    chunk = _sgd_chunk(loss_fn, opt, x, y, k_sparse, bs)
    unravel = ravel_pytree(params)[1]
    record = set(range(0, total + 1, config.eval_every)) | {total}
    if observe is None:
        looks = set()
    else:
        looks = set(range(total + 1)) if observe_steps is None else {int(t) for t in observe_steps}

    def batches(start, n):
        return jax.vmap(lambda t: _batch_at(x, y, k_sparse, t, bs))(start + jnp.arange(n))

    hyb = _Run(chunk, params, opt.init(params), unravel, record, observe, batches, looks, mask)
    cuts = looks | (record if config.eval_every > 1 else set())
    windows, fallbacks, done = [], [], 0
    bar = progress_counter(total=total, enabled=progress, desc="hybrid steps")
    while hyb.step < total:
        at, left = hyb.step, total - hyb.step
        if done >= config.num_windows:
            hyb.classical(left, cuts)
            continue
        batch = batches(at, cfg.num_steps)
        k_len, k_read = jax.random.split(jax.random.fold_in(k_win, done))
        length, why = _window_length(loss_fn, hyb.params, mask, batch, config, k_len)
        length = min(length, left)
        if config.period is not None:
            length = min(length, config.period * (at // config.period + 1) - at)
        done += 1
        if length < config.min_window:
            windows.append({"start": at, "length": 0, "why": why})
            hyb.classical(min(max(config.classical_between, 1), left), cuts)
            continue
        # A padded history system (idle > 0) is padded to each window's own length.
        inner = on_window is not None or any(at < t < at + length for t in record | looks)
        wcfg = dataclasses.replace(
            cfg, num_steps=length, idle=length if cfg.idle else 0, keep_trajectory=inner
        )
        t1 = time.perf_counter()
        upload = hyb.params
        p_new, rep = quantum_window(loss_fn, upload, mask, batch, wcfg, k_read, throw=False)
        jax.block_until_ready(p_new)
        ok = rep.succeeded
        event = WindowEvent(done - 1, at, length, why, upload, mask, batch, rep, ok, None, None)
        if not ok:  # reported by its status: classical steps instead
            message = rep.failure_message()
            note = {
                "start": at,
                "length": length,
                "error": message,
                "instead": f"{length} classical SGD steps",
            }
            windows.append(
                {
                    "start": at,
                    "length": 0,
                    "why": why,
                    "error": message,
                    "fallback": note["instead"],
                }
            )
            fallbacks.append(note)
            warnings.warn(
                f"hybrid_run: the quantum window at step {at} was flagged and replaced by "
                f"{length} classical SGD steps. {message}",
                RuntimeWarning,
                stacklevel=2,
            )
            hyb.classical(length, cuts)
        else:
            dt = time.perf_counter() - t1
            base = ravel_pytree(upload)[0]
            idx = jnp.flatnonzero(ravel_pytree(mask)[0])
            for j in range(1, length):
                hyb.seconds += dt / length
                if inner:
                    hyb.visit(at + j, base.at[idx].add(rep.y1[j]), True)
            hyb.seconds += dt / length
            hyb.params, hyb.step = p_new, at + length
            hyb.visit(hyb.step, ravel_pytree(p_new)[0], True)
            exact = unravel(base.at[idx].add(rep.y1[-1])) if inner else None
            event = dataclasses.replace(event, params_exact=exact, params_hat=p_new)
            windows.append({"start": at, "length": length, "why": why, **rep.summary()})
            hyb.classical(min(config.classical_between, total - hyb.step), cuts)
        if on_window is not None:
            windows[-1].update(on_window(event) or {})
        bar.update(hyb.step - at)
    bar.close()
    # The baseline: the same SGD steps (global steps 0..sparse_steps-1, same batches).
    flat_h, time_h, in_window = hyb.series()
    steps = np.asarray(sorted(record))
    # One step at a time (lax.map, not vmap): memory stays that of one evaluation at any scale.
    ev = jax.jit(lambda fs: jax.lax.map(lambda f: evaluate(unravel(f)), fs))
    hybrid_metrics = ev(flat_h)
    notes = _divergence("hybrid", hybrid_metrics, flat_h, steps, config.divergence_factor)
    if config.baseline:
        sgd = _Run(chunk, params, opt.init(params), unravel, record, None, batches, set(), mask)
        sgd.classical(total, record if config.eval_every > 1 else set())
        flat_s, time_s, _ = sgd.series()
        sgd_metrics = ev(flat_s)
        distance = jnp.linalg.norm(flat_s - flat_h, axis=1)
        notes = _divergence("sgd", sgd_metrics, flat_s, steps, config.divergence_factor) + notes
        p_sgd = sgd.params
    else:
        sgd_metrics, time_s, p_sgd = {}, np.zeros_like(time_h), None
        distance = jnp.full((len(steps),), jnp.nan)
    for n in notes:
        warnings.warn(
            f"hybrid_run: the {'baseline SGD' if n['run'] == 'sgd' else 'hybrid'} run diverged "
            f"at step {n['step']}: {n['why']}.",
            RuntimeWarning,
            stacklevel=2,
        )
    return HybridResult(
        sgd=sgd_metrics,
        hybrid=hybrid_metrics,
        distance=distance,
        sgd_time=jnp.asarray(time_s),
        hybrid_time=jnp.asarray(time_h),
        in_window=jnp.asarray(in_window),
        params_sgd=p_sgd,
        params_hybrid=hyb.params,
        mask=mask,
        steps=jnp.asarray(steps),
        windows=tuple(windows),
        pretrain_seconds=pre_s,
        fallbacks=tuple(fallbacks),
        divergences=tuple(notes),
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
    steps = np.asarray(result.steps)
    if metric in result.sgd:
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
    "Observation",
    "WindowEvent",
    "hybrid_run",
    "model_evaluate",
    "pretrain",
    "plot_hybrid",
]
