"""Experiment 3, hybrid training: the paper's pipeline (pre-train, prune, quantum windows with
tomography read-out, re-upload) vs optax SGD on the bundled digits data; fixed vs adaptive
(t*-based) windows; window error vs the window's start after pruning (early vs late)."""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from .._data import Batch, load_digits
from .._hybrid import HybridConfig, hybrid_run, model_evaluate, pretrain
from .._models import make_mlp
from .._prune import apply_mask, prune_mask
from .._resources import estimate, step_costs
from .._window import WindowConfig
from ._early_late import early_late
from ._framework import (
    COUNT,
    FRACTION,
    NONNEGATIVE_INT,
    POSITIVE,
    Experiment,
    Output,
    Range,
    hybrid_warnings,
    markdown_table,
    register,
)


def _fallbacks(summ: dict) -> str:
    """Report every window that was flagged and replaced by classical SGD steps."""
    lines = [
        f"- {m}: window at step {f['start']} replaced by {f['instead']}: {f['error']}"
        for m, s in summ.items()
        for f in s["fallbacks"]
    ]
    if not lines:
        return "No window was flagged as diverging.\n\n"
    return "Flagged windows (replaced by classical SGD steps):\n\n" + "\n".join(lines) + "\n\n"


def run(config: dict, progress) -> Output:
    """Run the experiment (see the module docstring).

    **Arguments:**

    - `config`: the resolved configuration (`resolve_config`).
    - `progress`: a callback for progress lines.

    **Returns:** the experiment's `Output`.
    """
    import matplotlib.pyplot as plt

    data = load_digits()
    model = make_mlp(data.input_shape, 10, hidden=config["hidden"])
    orders = tuple(config["orders"])

    def window(order):  # traced order: every order shares one compiled window
        return WindowConfig(
            config["eta"],
            config["window_steps"],
            degree=config["degree"],
            order=order,
            max_order=max(orders),
            state=config["state"],
            readout=config["readout"],
            shots=config["shots"],
            history=config["history"],
        )

    key, run_key = jax.random.key(config["seed"]), jax.random.key(config["seed"] + 1)
    ev = model_evaluate(model, data)
    # Pre-train once, as hybrid_run would (the first of its three sub-keys); every pipeline
    # below starts from these dense weights with pretrain_steps=0.
    base_cfg = HybridConfig(
        window=window(orders[0]),
        pretrain_steps=config["pretrain_steps"],
        pretrain_lr=config["pretrain_lr"],
        sparsity=config["sparsity"],
        batch_size=config["batch_size"],
    )
    progress(f"dense pre-training: {model.num_params()} params, {config['pretrain_steps']} steps")
    t0 = time.perf_counter()
    k_pre = jax.random.split(run_key, 3)[0]
    dense = pretrain(model.loss_fn, model.init(key), data.x_train, data.y_train, base_cfg, k_pre)
    pretrain_seconds = time.perf_counter() - t0
    runs, times = {}, {}
    # One SGD step's and one HVP's FLOPs (XLA cost analysis, compiled once): the classical side
    # and the per-query cost model of every window's end-to-end cost estimate.
    first = Batch(data.x_train[: config["batch_size"]], data.y_train[: config["batch_size"]])
    step = step_costs(model.loss_fn, dense, first)

    def cost_of(event) -> dict:
        """The window's one-line end-to-end cost (queries x rounds x samples, Toffolis,
        physical qubits, seconds); "n/a" where the report lacks kappa (history off)."""
        if not event.succeeded:
            return {}
        return {"cost": estimate(event.report, step=step).summary()}

    # The first order's fixed windows are "fixed"; the others are named by their order.
    modes = [("fixed" if i == 0 else f"fixed, order {n}", n, False) for i, n in enumerate(orders)]
    if config["adaptive"]:
        modes.append(("adaptive", orders[-1], True))
    labels = {
        m: (f"order {n}, " if len(orders) > 1 else "") + ("adaptive" if a else "fixed")
        for m, n, a in modes
    }
    for mode, order, adaptive in modes:
        cfg = HybridConfig(
            window=window(order),
            pretrain_steps=0,
            sparsity=config["sparsity"],
            batch_size=config["batch_size"],
            sparse_steps=config["sparse_steps"],
            num_windows=config["num_windows"],
            classical_between=config["classical_between"],
            adaptive=adaptive,
        )
        progress(
            f"pipeline with {mode} windows: {model.num_params()} params, "
            f"{config['sparse_steps']} steps after pruning"
        )
        t0 = time.perf_counter()
        runs[mode] = hybrid_run(
            model.loss_fn,
            dense,
            data.x_train,
            data.y_train,
            cfg,
            run_key,
            evaluate=ev,
            progress=None,
            on_window=cost_of,
        )
        times[mode] = time.perf_counter() - t0
        s = runs[mode].summary()
        progress(
            f"{mode}: accuracy hybrid {s['final_hybrid']['accuracy']:.3f}, "
            f"SGD {s['final_sgd']['accuracy']:.3f} ({times[mode]:.1f} s)"
        )

    progress(f"window error vs start step {config['early_late_starts']}")
    mask = prune_mask(dense, config["sparsity"])
    el_window = dataclasses.replace(window(orders[-1]), history=False, readout="exact")
    el = early_late(
        model.loss_fn,
        apply_mask(dense, mask),
        mask,
        data.x_train,
        data.y_train,
        el_window,
        config["early_late_starts"],
        jax.random.key(config["seed"] + 2),
        batch_size=config["batch_size"],
    )

    fixed = runs["fixed"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    steps = np.asarray(fixed.steps)
    for ax, metric in zip(axes[:2], ("loss", "accuracy"), strict=True):
        ax.plot(steps, np.asarray(fixed.sgd[metric]), label="optax SGD")
        for mode, r in runs.items():
            ax.plot(
                steps, np.asarray(r.hybrid[metric]), "--", label=f"hybrid ({labels[mode]} windows)"
            )
        for i, w in enumerate(fixed.windows):
            if w["length"]:
                ax.axvspan(
                    w["start"],
                    w["start"] + w["length"],
                    color="C2",
                    alpha=0.12,
                    label="quantum window (fixed)" if i == 0 else None,
                )
        ax.set(
            xlabel="step after pruning",
            ylabel="train loss" if metric == "loss" else "test accuracy",
        )
        ax.legend(fontsize=7)
    axes[2].semilogy(el["start"], el["total_error"], "o-", label="total (at T_q)")
    axes[2].semilogy(el["start"], el["carleman_error"], "s--", label="Carleman")
    axes[2].set(
        xlabel="window start (steps after pruning)",
        ylabel="relative window error",
        title="early vs late windows",
    )
    axes[2].legend(fontsize=7)
    fig.tight_layout()

    summ = {m: r.summary() for m, r in runs.items()}
    warned = {m: hybrid_warnings(r, labels[m]) for m, r in runs.items()}
    sgd_diverged = any(d["run"] == "sgd" for d in runs["fixed"].divergences)
    rows = [
        [
            "optax SGD" + (" (DIVERGED)" if sgd_diverged else ""),
            summ["fixed"]["final_sgd"]["loss"],
            summ["fixed"]["final_sgd"]["accuracy"],
            "-",
            "-",
            "-",
            summ["fixed"]["sgd_seconds"],
        ]
    ]
    for m, s in summ.items():
        wins = [w for w in s["windows"] if w["length"]]
        err = [
            float(np.mean([w[k] for w in wins])) if wins else float("nan")
            for k in ("total_error", "carleman_error")
        ]
        flags = len(s["fallbacks"]) + sum(d["run"] == "hybrid" for d in s["divergences"])
        rows.append(
            [
                f"hybrid, {labels[m]} windows" + (f" ({flags} DIVERGED)" if flags else ""),
                s["final_hybrid"]["loss"],
                s["final_hybrid"]["accuracy"],
                len(wins),
                *err,
                s["hybrid_seconds"],
            ]
        )
    table = markdown_table(
        [
            "run",
            "final train loss",
            "test accuracy",
            "quantum windows",
            "window error vs SGD",
            "Carleman part",
            "sparse-phase seconds",
        ],
        rows,
    )
    costs = [
        f"- {labels[m]}, window at step {w['start']}: {w['cost']}"
        for m, s in summ.items()
        for w in s["windows"]
        if "cost" in w
    ]
    if costs:
        table += (
            "\n\nEnd-to-end cost per window (qsgd_jax.resources.estimate; labels and sources "
            "in results.json):\n" + "\n".join(costs)
        )
    el_rows = [
        [int(s), float(t), float(c), float(r), float(p), float(ts)]
        for s, t, c, r, p, ts in zip(
            el["start"],
            el["total_error"],
            el["carleman_error"],
            el["spectral_radius"],
            el["positive_fraction"],
            el["t_star"],
            strict=True,
        )
    ]
    report = (
        f"Digits MLP (hidden {config['hidden']}, {model.num_params()} parameters), dense "
        f"pre-training for {config['pretrain_steps']} steps, {config['sparsity']:.0%} global "
        f"magnitude pruning, then {config['sparse_steps']} steps: quantum windows of "
        f"T_q = {config['window_steps']} steps (degree-{config['degree']} Taylor model, "
        f"Carleman orders {orders} with the {config['state']} state, read-out "
        f"'{config['readout']}' with {config['shots']:g} shots) vs optax SGD with the same "
        "mask, batches and learning rate. 'window error vs SGD' is the mean over windows of "
        "||y1(T_q) - u_SGD(T_q)|| / ||u_SGD(T_q)|| before read-out; 'Carleman part' is its "
        "linearization share (against GD on the same Taylor models): order 1 is linearized GD, "
        "order 2 the nonlinear window. Adaptive windows end before the error-propagation "
        "curve E(t) of the SLQ Hessian spectrum crosses 1 (t*).\n\n"
        + table
        + "\n\n"
        + _fallbacks(summ)
        + "Window error vs the window's start (early vs late after pruning):\n\n"
        + markdown_table(
            ["start", "total error", "Carleman error", "rho(F1)", "positive fraction", "t*"],
            el_rows,
        )
    )
    results = {
        "num_params": model.num_params(),
        "runs": summ,
        "curves": {
            m: {
                "sgd": {k: np.asarray(v).tolist() for k, v in r.sgd.items()},
                "hybrid": {k: np.asarray(v).tolist() for k, v in r.hybrid.items()},
                "distance": np.asarray(r.distance).tolist(),
            }
            for m, r in runs.items()
        },
        "wall_seconds": times,
        "pretrain_seconds": pretrain_seconds,
        "early_late": {k: np.asarray(v).tolist() for k, v in el.items()},
    }
    lines = tuple(dict.fromkeys(line for m in warned for line in warned[m]))
    return Output(results, {"hybrid": fig}, report, table, lines)


# The ci preset; the cpu and paper presets change some of its values.
_CI = dict(
    seed=0,
    hidden=(16,),
    eta=0.1,
    window_steps=3,
    orders=(1,),
    degree=1,
    state="dense",
    readout="exact",
    shots=100000.0,
    history=False,
    pretrain_steps=60,
    pretrain_lr=0.1,
    sparsity=0.9,
    batch_size=64,
    sparse_steps=8,
    num_windows=2,
    classical_between=1,
    adaptive=False,
    early_late_starts=(0, 4),
)

register(
    Experiment(
        name="hybrid",
        summary="the paper's pipeline (quantum windows) vs optax SGD on digits",
        shows="loss/accuracy curves with windows marked; fixed vs adaptive windows; early vs late",
        presets={
            "ci": _CI,
            "cpu": dict(
                _CI,
                hidden=(32,),
                window_steps=5,
                orders=(1, 2),
                degree=2,
                state="factored",
                readout="sample",
                history=True,
                pretrain_steps=400,
                sparse_steps=60,
                num_windows=6,
                classical_between=2,
                adaptive=True,
                early_late_starts=(0, 10, 20, 40),
            ),
            "paper": dict(
                _CI,
                hidden=(256, 256),
                window_steps=10,
                orders=(1, 2),
                degree=2,
                state="factored",
                readout="sample",
                shots=1000000.0,
                history=True,
                pretrain_steps=3000,
                batch_size=128,
                sparse_steps=300,
                num_windows=20,
                classical_between=5,
                adaptive=True,
                early_late_starts=(0, 20, 50, 100, 200),
            ),
        },
        run=run,
        choices={
            "readout": ("exact", "sample", "gaussian"),
            "state": ("dense", "factored", "auto"),
        },
        ranges=dict(
            seed=NONNEGATIVE_INT,
            hidden=COUNT,
            eta=POSITIVE,
            window_steps=COUNT,
            orders=Range(
                1, 8, integer=True, what="Carleman orders N (2 at most with the factored state)"
            ),
            degree=Range(1, 2, integer=True, what="the Taylor model's degree"),
            shots=Range(1, 1e15, integer=True, what="shots per read-out round"),
            pretrain_steps=NONNEGATIVE_INT,
            pretrain_lr=POSITIVE,
            sparsity=FRACTION,
            batch_size=Range(1, 1437, integer=True, what="at most the 1437 training digits"),
            sparse_steps=NONNEGATIVE_INT,
            num_windows=NONNEGATIVE_INT,
            classical_between=NONNEGATIVE_INT,
            early_late_starts=Range(0, integer=True, what="start steps after pruning"),
        ),
    )
)
