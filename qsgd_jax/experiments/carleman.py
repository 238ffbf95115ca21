"""Experiment 1, Carleman error: vs step and order N on a dissipative toy loss ("discrete" and
"euler" forms against exact GD), and the PNAS viscous Burgers benchmark (Liu et al. 2021, Fig. 1)
against a tight-tolerance ODE solution.

The Burgers part at `cpu` and `paper` is the article's setup exactly: 16 nodes including the
boundaries, Re0 = 20, U0 = 1/sqrt(15), t in [0, 3] with 4000 time points, forward-Euler Carleman
for N = 1..4, absolute l2 error maximised over t; the report sets R and the four maximum errors
beside the article's. At `ci` the same problem runs on the shorter span t in [0, 0.2] (268 points,
the same time step), so its errors are smaller than the figure's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._burgers import METHODS, PNAS_R, VARIANTS, burgers_errors, burgers_problem
from .._carleman import carleman
from .._dissipation import dissipation
from .._evolution import Discrete, Euler
from .._evolve import carleman_error
from .._polynomial import gd_map
from .._toy import random_cubic_loss
from ._framework import (
    COUNT,
    NONNEGATIVE_INT,
    POSITIVE,
    Experiment,
    Output,
    Range,
    markdown_table,
    register,
)

# Time-maximum absolute l2 errors for N = 1..4 read off the article's Fig. 1 (the error-convergence
# panel, log axis: reading accuracy a few per cent). Its caption gives R = 43.59 (`PNAS_R`).
PNAS_FIG1_MAX_ERROR = {1: 0.123, 2: 0.0591, 3: 0.0294, 4: 0.0156}
PNAS_SETUP = {
    "burgers_variant": "pnas",
    "burgers_points": 16,
    "burgers_reynolds": 20.0,
    "burgers_t_final": 3.0,
    "burgers_times": 4000,
    "burgers_method": "euler",
}


def _is_pnas_setup(config: dict) -> bool:
    return all(config[k] == v for k, v in PNAS_SETUP.items())


def run(config: dict, progress) -> Output:
    """Run the experiment (see the module docstring).

    **Arguments:**

    - `config`: the resolved configuration (`resolve_config`).
    - `progress`: a callback for progress lines.

    **Returns:** the experiment's `Output`.
    """
    import matplotlib.pyplot as plt

    orders = tuple(range(1, config["max_order"] + 1))
    with jax.enable_x64(True):
        loss = random_cubic_loss(config["seed"])
        poly = gd_map(loss, jnp.zeros(loss.n), None, eta=config["eta"])
        diss = dissipation(poly, loss.u0)
        toy = {
            "n": loss.n,
            "eta": config["eta"],
            "steps": config["steps"],
            "spectral_radius_F1": float(diss.spectral_radius),
            "pnas_R": float(diss.r_number),
            "summary": diss.summary(),
            "forms": {},
        }
        for form, method in (("discrete", Discrete()), ("euler", Euler())):
            toy["forms"][form] = {}
            for n_ord in orders:
                op = carleman(poly, jnp.asarray(n_ord), max_order=max(orders))
                err = carleman_error(op, loss.u0, config["steps"], method=method, throw=False)
                rel = np.asarray(err.relative)
                toy["forms"][form][str(n_ord)] = {
                    "max_relative_error": float(np.nanmax(rel)),
                    "relative_error": rel.tolist(),
                }
            progress(f"toy loss, form {form}: orders {orders} done")
        burg = None
        if config["burgers"]:
            prob = burgers_problem(
                config["burgers_points"],
                config["burgers_reynolds"],
                variant=config["burgers_variant"],
            )
            burg = burgers_errors(
                prob,
                tuple(range(1, config["burgers_max_order"] + 1)),
                t_final=config["burgers_t_final"],
                num_times=config["burgers_times"],
                method=config["burgers_method"],
                rtol=config["burgers_rtol"],
                progress=progress,
            )

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, n_ord in enumerate(orders):
        for form, style in (("discrete", "-"), ("euler", "--")):
            rel = np.asarray(toy["forms"][form][str(n_ord)]["relative_error"])
            ax.semilogy(np.maximum(rel, 1e-16), style, color=f"C{i}", label=f"N = {n_ord} ({form})")
    ax.set(
        xlabel="GD step t",
        ylabel=r"$\|y_1(t) - u_t\| / \|u_t\|$",
        title=f"Toy cubic loss (n = {loss.n}, eta = {config['eta']}): discrete vs euler",
    )
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    figures = {"toy_error": fig}

    rows = [
        [
            n_ord,
            toy["forms"]["discrete"][str(n_ord)]["max_relative_error"],
            toy["forms"]["euler"][str(n_ord)]["max_relative_error"],
        ]
        for n_ord in orders
    ]
    table = "Toy loss, max relative error over the window:\n\n" + markdown_table(
        ["N", "discrete", "euler"], rows
    )
    report = (
        f"Toy cubic loss: {diss.summary()}\n\n"
        "The discrete form is the exact lift of the GD map, so its error is the Carleman "
        "truncation alone and falls geometrically in N; the euler form (PNAS) adds the "
        "O(eta) per-step difference between gradient flow and GD, which floors its error."
    )
    if burg is not None:
        figures["burgers_error"], btable, breport = _burgers_outputs(burg, config)
        table += "\n\n" + btable
        report += "\n\n" + breport
    return Output({"toy": toy, "burgers": burg}, figures, report, table)


def _burgers_outputs(burg: dict, config: dict):
    """The Burgers figure, table and report paragraph; beside the article's numbers when the
    configuration is its setup."""
    import matplotlib.pyplot as plt

    ts = np.asarray(burg["times"])
    bord = list(burg["orders"])
    errs = [burg["orders"][k]["max_error"] for k in bord]
    burg["monotone_decrease"] = bool(all(a > b for a, b in zip(errs, errs[1:], strict=False)))
    pnas = _is_pnas_setup(config)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for k in bord:
        a1.semilogy(ts, np.maximum(burg["orders"][k]["error"], 1e-16), label=f"N = {k}")
    if "euler" in burg:
        a1.semilogy(
            ts, np.maximum(burg["euler"]["error"], 1e-16), "k:", label="forward Euler (no Carleman)"
        )
    a1.set(
        xlabel="time t",
        ylabel=r"absolute error $\|y_1(t) - u(t)\|_2$",
        title=f"Burgers, Re0 = {config['burgers_reynolds']:g}, R = {burg['R']:.2f}",
    )
    floor = min(errs + ([burg["euler"]["max_error"]] if "euler" in burg else []))
    a1.set_ylim(bottom=max(1e-3 * floor, 1e-16))  # t = 0 is exact; do not let it set the scale
    a1.legend(fontsize=8)
    a1.grid(alpha=0.3)
    a2.semilogy([int(k) for k in bord], errs, "o-", label="this library")
    if pnas:
        a2.semilogy(
            list(PNAS_FIG1_MAX_ERROR),
            list(PNAS_FIG1_MAX_ERROR.values()),
            "kx",
            markersize=9,
            label="PNAS Fig. 1",
        )
    a2.set(
        xlabel="Carleman order N",
        ylabel="max over t of the absolute error",
        title="error convergence vs the ODE reference",
    )
    a2.set_xticks([int(k) for k in bord])
    a2.legend(fontsize=8)
    a2.grid(alpha=0.3)
    fig.tight_layout()

    s = burg["setup"]
    header = ["N", "max absolute error"]
    rows = [[int(k), e] for k, e in zip(bord, errs, strict=True)]
    if pnas:
        header += ["PNAS Fig. 1", "ratio"]
        for row in rows:
            pub = PNAS_FIG1_MAX_ERROR.get(row[0])
            row += [pub, row[1] / pub] if pub else ["", ""]
        burg["published"] = {
            "R": PNAS_R,
            "R_ratio": burg["R"] / PNAS_R,
            "max_error": {str(k): v for k, v in PNAS_FIG1_MAX_ERROR.items()},
            "max_error_ratio": {
                k: burg["orders"][k]["max_error"] / PNAS_FIG1_MAX_ERROR[int(k)]
                for k in bord
                if int(k) in PNAS_FIG1_MAX_ERROR
            },
        }
    span = f"t in [0, {s['t_final']:g}] with {s['num_times']} time points (dt = {s['dt']:.4g})"
    table = (
        f"Burgers ({s['variant']} grid, n_x = {s['num_points']}, R = {burg['R']:.4g}"
        + (f"; PNAS caption {PNAS_R}" if pnas else "")
        + f"), {span}, {s['method']} Carleman, time-maximum absolute l2 error vs the ODE "
        "reference:\n\n" + markdown_table(header, rows)
    )
    grid = (
        f"{s['num_points']} nodes including both boundary nodes (dx = {s['dx']:.4g}), rows of f1 "
        "and f2 at the boundary nodes zeroed"
        if s["variant"] == "pnas"
        else f"{s['num_points']} interior points (dx = {s['dx']:.4g})"
    )
    stepping = (
        "forward Euler on the time grid (step k uses the forcing at t_k), as the article's "
        "reference script does, so the error contains the Euler time error too: plain forward "
        f"Euler of the nonlinear ODE is off by {burg['euler']['max_error']:.3g} at most, the "
        "floor under the Carleman errors"
        if s["method"] == "euler"
        else f"diffrax to rtol {s['rtol']:g}, so the error is the Carleman truncation alone"
    )
    report = (
        f"Burgers (PNAS, Liu et al. 2021): forced viscous Burgers on [-1/2, 1/2], {grid}, "
        f"Re0 = {s['reynolds']:g}, U0 = {s['velocity']:.4g}, nu = {s['nu']:.4g}, {span}. "
        f"The Carleman system dY/dt = A(t) Y is stepped by {stepping}. The reference is the "
        f"nonlinear ODE by diffrax (Tsit5, rtol {s['rtol']:g}). Errors are absolute spatial l2 "
        f"norms, maximised over t. R = {burg['R']:.4g} (lambda1 = {burg['lambda1']:.4g}, the "
        "largest non-zero eigenvalue of f1) is far above 1, yet the error falls by a factor of "
        "about 2 per order, not at the R^N rate of the dissipative bound."
    )
    if pnas:
        ratios = burg["published"]["max_error_ratio"]
        report += (
            f" Against the article: R = {burg['R']:.4g} vs {PNAS_R} in the caption "
            f"(ratio {burg['R'] / PNAS_R:.4f}); the maximum errors are "
            + ", ".join(
                f"{burg['orders'][k]['max_error']:.4g} vs {PNAS_FIG1_MAX_ERROR[int(k)]}"
                for k in ratios
            )
            + " (values read off its Fig. 1, a few per cent reading accuracy), ratios "
            + ", ".join(f"{r:.3f}" for r in ratios.values())
            + "."
        )
    else:
        report += (
            " This configuration is not the article's setup (that is the `cpu` and `paper` "
            "presets: t in [0, 3], 4000 points), so it is not compared with Fig. 1."
        )
    return fig, table, report


# The ci preset; the cpu and paper presets change some of its values.
_CI = dict(
    seed=2,
    eta=0.1,
    steps=30,
    max_order=4,
    burgers=True,
    burgers_variant="pnas",
    burgers_points=16,
    burgers_reynolds=20.0,
    burgers_max_order=4,
    burgers_t_final=0.2,
    burgers_times=268,
    burgers_method="euler",
    burgers_rtol=1e-10,
)

register(
    Experiment(
        name="carleman",
        summary="Carleman truncation error vs step and order N (toy loss, Burgers)",
        shows="error vs step and N, discrete vs euler forms; PNAS Burgers error vs N with R",
        presets={
            "ci": _CI,
            "cpu": dict(_CI, steps=60, burgers_t_final=3.0, burgers_times=4000),
            "paper": dict(_CI, steps=200, burgers_t_final=3.0, burgers_times=4000),
        },
        run=run,
        choices={"burgers_variant": VARIANTS, "burgers_method": METHODS},
        ranges=dict(
            seed=NONNEGATIVE_INT,
            eta=POSITIVE,
            steps=COUNT,
            max_order=Range(1, 8, integer=True, what="the largest Carleman order"),
            burgers_points=Range(3, integer=True, what="grid points"),
            burgers_reynolds=POSITIVE,
            burgers_max_order=Range(1, 8, integer=True, what="the largest Carleman order"),
            burgers_t_final=POSITIVE,
            burgers_times=Range(2, integer=True),
            burgers_rtol=Range(0, 1, low_open=True, high_open=True, what="a tolerance"),
        ),
    )
)
