"""Experiment `carleman_scale`: the linearization error of order-1 and order-2 quantum windows on a
whole pruned network, against exact SGD, versus the window's start after pruning and its length.

The paper's claim is that early after pruning the GD dynamics are dissipative, so a Carleman
window is accurate there. This tests it on the linearization error itself: after dense
pre-training and 90 % magnitude pruning, masked SGD runs on; at each start step a window with the
degree-2 Taylor model of every step's batch evolves the factored order-2 Carleman state
(`FactoredState`, $y_2 = AB^\\top$ of rank $\\le 2T_q$) at orders $N = 1$ (linearized GD) and
$N = 2$ (one compiled program, traced $N$), and is compared with exact SGD on the same batches.
A window of $T_q$ steps is the prefix of a longer one on the same batches, so one window of the
longest length gives the error at every $T_q$. The dissipation metrics at each start are those
of the window's report ($\\rho(F_1)$, the extreme Hessian eigenvalues, the positive share).
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from .._data import load_cifar, load_digits
from .._evolution import FactoredState
from .._hybrid import HybridConfig, hybrid_run
from .._models import RESNET_CONFIGS, make_cnn, named_resnet
from .._status import RESULTS
from .._window import WindowConfig, quantum_window
from ._framework import (
    COUNT,
    FRACTION,
    NONNEGATIVE_INT,
    POSITIVE,
    Experiment,
    Output,
    Range,
    markdown_table,
    register,
)


def _setup(config: dict):
    if config["model"] == "cnn":
        data = load_digits()
        model = make_cnn(data.input_shape, 10, channels=config["channels"])
    else:
        data = load_cifar(config["cifar_path"], num_classes=100)
        model = named_resnet(config["model"])
    return data, model


def run(config: dict, progress) -> Output:
    """Run the experiment (see the module docstring).

    **Arguments:**

    - `config`: the resolved configuration (`resolve_config`).
    - `progress`: a callback for progress lines.

    **Returns:** the experiment's `Output`.
    """
    import matplotlib.pyplot as plt

    data, model = _setup(config)
    key = jax.random.key(config["seed"])
    k_init, k_run, k_win = jax.random.split(key, 3)
    T = max(config["window_steps"])
    window = WindowConfig(
        config["eta"], T, degree=2, order=1, max_order=2, state=FactoredState(), history=False
    )
    pipeline = HybridConfig(
        window=window,
        pretrain_steps=config["pretrain_steps"],
        pretrain_lr=config["pretrain_lr"],
        sparsity=config["sparsity"],
        batch_size=config["batch_size"],
        sparse_steps=max(config["starts"]),
        num_windows=0,
        baseline=False,
    )
    progress(
        f"dense pre-training: {model.num_params():,} parameters, {config['pretrain_steps']} "
        "steps, then masked SGD with a probe window at every start"
    )
    rows, curves = [], {}

    def probe(at):
        """Order-1 and order-2 windows from the SGD iterate at a start on its next batches."""
        start, params, mask, batches = at.step, at.params, at.mask, at.batches
        per_order, diss, rep = {}, None, None
        for order in (1, 2):
            cfg = dataclasses.replace(window, order=jnp.asarray(order, jnp.int32))
            t0 = time.perf_counter()
            _, rep = quantum_window(
                model.loss_fn,
                params,
                mask,
                batches(T),
                cfg,
                jax.random.fold_in(k_win, start),
                throw=False,
            )
            if not rep.succeeded:
                progress(f"start {start}, N = {order}: window flagged ({RESULTS[rep.status]})")
                per_order[order] = None
                continue
            scale = np.where(np.asarray(rep.gd_norm) == 0, 1.0, np.asarray(rep.gd_norm))
            per_order[order] = {
                "total": (np.asarray(rep.total_error) / scale).tolist(),
                "carleman": (np.asarray(rep.carleman_error) / scale).tolist(),
                "model": (np.asarray(rep.model_error) / scale).tolist(),
                "seconds": time.perf_counter() - t0,
                "state_bytes": rep.state_bytes,
                "dense_state_bytes": rep.dense_state_bytes,
            }
            diss = rep.dissipation
        lam = -np.real(np.asarray(diss.eigenvalues))  # Hessian eigenvalues (or Ritz values)
        metrics = {
            "spectral_radius": float(diss.spectral_radius),
            "lambda_min": float(lam.min()),
            "lambda_max": float(lam.max()),
            "positive_fraction": float(np.mean(lam > 0)),
            "method": diss.method,
            "active": rep.active_size,
        }
        curves[start] = {"orders": per_order, "dissipation": metrics}
        for Tq in config["window_steps"]:
            e = [per_order[o]["carleman"][Tq] if per_order[o] else np.inf for o in (1, 2)]
            tot = [per_order[o]["total"][Tq] if per_order[o] else np.inf for o in (1, 2)]
            rows.append(
                [
                    start,
                    Tq,
                    e[0],
                    e[1],
                    tot[0],
                    tot[1],
                    metrics["spectral_radius"],
                    metrics["positive_fraction"],
                ]
            )
        progress(
            f"start {start}: rho(F1) = {metrics['spectral_radius']:.4f}, Carleman error "
            f"at T_q = {T}: N=1 {rows[-1][2]:.3g}, N=2 {rows[-1][3]:.3g}"
        )

    hybrid_run(
        model.loss_fn,
        model.init(k_init),
        data.x_train,
        data.y_train,
        pipeline,
        k_run,
        observe=probe,
        observe_steps=config["starts"],
    )
    starts = sorted(curves)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for order, marker in ((1, "o-"), (2, "s--")):
        y = [
            curves[s]["orders"][order]["carleman"][T] if curves[s]["orders"][order] else np.nan
            for s in starts
        ]
        axes[0].semilogy(starts, y, marker, label=f"N = {order}")
    axes[0].set(
        xlabel="window start (steps after pruning)",
        ylabel=f"relative linearization error at T_q = {T}",
        title="early vs late windows",
    )
    axes[0].legend()
    for s, color in ((starts[0], "C0"), (starts[-1], "C3")):
        for order, style in ((1, "-"), (2, "--")):
            c = curves[s]["orders"][order]
            if c:
                # From T_q = 2: the first step is exact at every order (error ~ 0).
                axes[1].semilogy(
                    range(2, T + 1),
                    c["carleman"][2:],
                    style,
                    color=color,
                    label=f"start {s}, N = {order}",
                )
    axes[1].set(
        xlabel="T_q (window length)",
        ylabel="relative linearization error",
        title="error vs window length",
    )
    axes[1].legend(fontsize=8)
    fig.tight_layout()

    header = [
        "start",
        "T_q",
        "Carleman err N=1",
        "Carleman err N=2",
        "total err N=1",
        "total err N=2",
        "rho(F1)",
        "positive fraction",
    ]
    table = markdown_table(header, rows)
    s0 = curves[starts[0]]
    o2 = s0["orders"][2] or {}
    report = (
        f"Model `{config['model']}` ({model.num_params():,} parameters) pre-trained for "
        f"{config['pretrain_steps']} steps and pruned to {config['sparsity']:.0%} sparsity "
        f"({s0['dissipation']['active']:,} active weights); masked SGD at eta = {config['eta']} "
        f"with batch {config['batch_size']}. Each window uses the degree-2 Taylor model of "
        "every step's batch and the factored order-2 Carleman state "
        f"(stored: {o2.get('state_bytes', 0):,} bytes; a dense y2 would need "
        f"{o2.get('dense_state_bytes', 0):,}). Errors are relative to the exact SGD displacement "
        "||u_GD(T_q)||: 'Carleman' is the linearization error alone (against GD on the same "
        "Taylor models), 'total' also holds the Taylor model's own error. Dissipation metrics "
        f"from the window report ({s0['dissipation']['method']} eigenvalues of the active-set "
        "Hessian at the window start).\n\n" + table
    )
    results = {
        "num_params": model.num_params(),
        "config": dict(config),
        "windows": {str(s): c for s, c in curves.items()},
    }
    return Output(results, {"carleman_scale": fig}, report, table)


# The ci preset; the cpu and paper presets change some of its values.
_CI = dict(
    seed=0,
    model="cnn",
    channels=(4, 8),
    cifar_path="",
    eta=0.1,
    pretrain_steps=30,
    pretrain_lr=0.1,
    sparsity=0.9,
    batch_size=64,
    window_steps=(1, 3),
    starts=(0, 6),
)

register(
    Experiment(
        name="carleman_scale",
        summary="order-1 vs order-2 window linearization error on a whole pruned network",
        shows="error vs the window's start after pruning and vs T_q, with dissipation at each "
        "start",
        presets={
            "ci": _CI,
            "cpu": dict(
                _CI,
                channels=(16, 32),
                pretrain_steps=400,
                window_steps=(2, 4, 6, 8),
                starts=(0, 20, 60, 150),
            ),
            "paper": dict(
                _CI,
                model="resnet32-4-c100",
                channels=(16, 32),
                cifar_path="cifar-100-python.tar.gz",
                pretrain_steps=20000,
                batch_size=128,
                window_steps=(2, 5, 10),
                starts=(0, 100, 500, 1000),
            ),
        },
        run=run,
        choices={"model": ("cnn", *RESNET_CONFIGS)},
        ranges=dict(
            seed=NONNEGATIVE_INT,
            channels=COUNT,
            eta=POSITIVE,
            pretrain_steps=NONNEGATIVE_INT,
            pretrain_lr=POSITIVE,
            sparsity=FRACTION,
            batch_size=Range(1, integer=True, what="the mini-batch size"),
            window_steps=Range(1, 64, integer=True, what="window lengths T_q"),
            starts=Range(0, integer=True, what="start steps after pruning"),
        ),
    )
)
