"""Experiment 5, sweeps: heatmaps of window error and dissipation over (eta, sparsity, N) in one
compiled, vmapped and device-sharded program; tomography read-out error vs shots."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from .._readout import shots_for_error, tomography
from .._sweep import grid, sweep
from .._sweep_targets import toy_window_error
from .._toy import random_cubic_loss
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


def _readout_errors(s: int, shots: tuple, repeats: int, seed: int) -> dict:
    """Mean l2 tomography error of a random s-dimensional state for each shot count."""
    key = jax.random.key(seed)
    psi = jax.random.normal(key, (s,), jnp.float64)
    psi = psi / jnp.linalg.norm(psi)

    @jax.jit
    def err(k, n):
        return jnp.linalg.norm(tomography(k, psi, n) - psi)

    keys = jax.random.split(jax.random.fold_in(key, 1), repeats)
    batched = jax.jit(jax.vmap(err, in_axes=(0, None)))
    mean = [float(jnp.mean(batched(keys, jnp.asarray(n, jnp.float64)))) for n in shots]
    return {
        "s": s,
        "shots": list(shots),
        "mean_l2_error": mean,
        "typical": [math.sqrt((s - 1) / (4 * n)) for n in shots],
        "bound_shots_for_eps_0.1": shots_for_error(0.1, 0.05, s),
    }


def run(config: dict, progress) -> Output:
    """Run the experiment (see the module docstring).

    **Arguments:**

    - `config`: the resolved configuration (`resolve_config`).
    - `progress`: a callback for progress lines.

    **Returns:** the experiment's `Output`.
    """
    import matplotlib.pyplot as plt

    n = config["n"]
    orders = tuple(range(1, config["max_order"] + 1))
    with jax.enable_x64(True):
        loss = random_cubic_loss(config["seed"], n=n, eigs=np.linspace(0.55, 3.3, n))
        theta_bar = jnp.asarray(np.random.default_rng(config["seed"]).standard_normal(n))
        fn = functools.partial(
            toy_window_error,
            loss=loss,
            theta_bar=theta_bar,
            steps=config["steps"],
            max_order=config["max_order"],
        )
        g = grid(eta=list(config["etas"]), sparsity=list(config["sparsities"]), order=orders)
        progress(
            f"sweep over {g.size} points (eta x sparsity x N) on {len(jax.devices())} "
            "devices, one compiled program"
        )
        res = sweep(fn, g, progress=g.size > 200)
        progress(f"read-out error vs shots {config['shots']}")
        ro = _readout_errors(
            config["readout_dim"], config["shots"], config["readout_repeats"], config["seed"]
        )

    fig, axes = plt.subplots(1, len(orders) + 1, figsize=(4.2 * (len(orders) + 1), 3.6))
    for ax, o in zip(axes, orders, strict=False):
        res.sel(order=o).heatmap("max_error", ax=ax, log=True)
        ax.set_title(f"log10 max window error, N = {o}", fontsize=9)
    res.sel(order=orders[0]).heatmap("rho", ax=axes[-1])
    axes[-1].set_title("rho(F1) on the active set (< 1: dissipative)", fontsize=9)
    fig.tight_layout()
    fig2, ax2 = plt.subplots(figsize=(5.5, 4))
    ax2.loglog(ro["shots"], ro["mean_l2_error"], "o-", label="simulated tomography")
    ax2.loglog(ro["shots"], ro["typical"], "k--", label=r"$\sqrt{(s-1)/(4N)}$")
    ax2.set(
        xlabel="shots N per round",
        ylabel=r"mean $\|\hat\psi - \psi\|_2$",
        title=f"read-out error vs shots (s = {ro['s']})",
    )
    ax2.legend()
    ax2.grid(alpha=0.3)
    fig2.tight_layout()

    err = np.asarray(res.values["max_error"])
    rho = np.asarray(res.values["rho"])
    rows = []
    for k, o in enumerate(orders):
        e = err[..., k]
        diss = rho[..., k] < 1
        rows.append(
            [
                o,
                float(np.median(e[diss])) if diss.any() else float("nan"),
                float(np.median(e[~diss])) if (~diss).any() else float("nan"),
                int(diss.sum()),
                int(e.size),
            ]
        )
    table = markdown_table(
        ["N", "median error (rho < 1)", "median error (rho >= 1)", "dissipative points", "points"],
        rows,
    )
    table += "\n\n" + markdown_table(
        ["shots", "mean l2 read-out error", "sqrt((s-1)/(4N))"],
        [
            [n_, e, t]
            for n_, e, t in zip(ro["shots"], ro["mean_l2_error"], ro["typical"], strict=True)
        ],
    )
    report = (
        f"Toy cubic loss (n = {n}) at a random expansion point, pruned by magnitude at each "
        f"sparsity; window of {config['steps']} GD steps from u = 0 at Carleman order N. The "
        "whole (eta, sparsity, N) grid is one compiled vmapped program (N traced through "
        "max_order), sharded over the devices. Where rho(F1) >= 1 the window is not dissipative "
        "and the error grows. Read-out: vector-state tomography from measurement statistics; "
        f"the worst-case Kerenidis–Prakash-type bound needs {ro['bound_shots_for_eps_0.1']:,} "
        f"shots for l2 error 0.1 w.p. 0.95 at s = {ro['s']}."
    )
    results = {
        "sweep": {
            "axes": {k: v.tolist() for k, v in res.grid.axes.items()},
            "max_error": err.tolist(),
            "rho": rho.tolist(),
            "active": np.asarray(res.values["active"]).tolist(),
        },
        "readout": ro,
    }
    return Output(results, {"heatmaps": fig, "readout_vs_shots": fig2}, report, table)


# The ci preset; the cpu and paper presets change some of its values.
_CI = dict(
    seed=0,
    n=6,
    steps=10,
    max_order=2,
    etas=(0.05, 0.3, 0.6),
    sparsities=(0.0, 0.5),
    shots=(100, 1000, 10000),
    readout_dim=16,
    readout_repeats=16,
)

register(
    Experiment(
        name="sweeps",
        summary="window error and dissipation over (eta, sparsity, N); read-out error vs shots",
        shows="heatmaps over (eta, sparsity, N) from one vmapped program; tomography error vs "
        "shots",
        presets={
            "ci": _CI,
            "cpu": dict(
                _CI,
                n=8,
                steps=40,
                max_order=3,
                etas=(0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.7),
                sparsities=(0.0, 0.25, 0.5, 0.75),
                shots=(100, 300, 1000, 3000, 10000, 30000, 100000),
                readout_dim=64,
                readout_repeats=64,
            ),
            "paper": dict(
                _CI,
                n=12,
                steps=100,
                max_order=4,
                etas=tuple(np.round(np.linspace(0.02, 0.7, 18), 3).tolist()),
                sparsities=(0.0, 0.2, 0.4, 0.6, 0.8),
                shots=(100, 1000, 10000, 100000, 1000000),
                readout_dim=1024,
                readout_repeats=256,
            ),
        },
        run=run,
        ranges=dict(
            seed=NONNEGATIVE_INT,
            n=Range(2, integer=True, what="toy dimension"),
            steps=COUNT,
            max_order=Range(1, 6, integer=True, what="the largest order N"),
            etas=POSITIVE,
            sparsities=FRACTION,
            shots=Range(1, 1e15, integer=True, what="shots per round"),
            readout_dim=Range(2, integer=True, what="state dimension"),
            readout_repeats=COUNT,
        ),
    )
)
