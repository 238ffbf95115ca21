"""The Carleman demo: truncation error of orders N = 1..4 against exact GD on a toy loss."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .._carleman import carleman
from .._dissipation import dissipation
from .._evolve import carleman_error
from .._polynomial import gd_map
from .._resources import markdown_table
from .._toy import random_cubic_loss


def carleman_demo(
    *, orders=(1, 2, 3, 4), steps: int = 60, eta: float = 0.1, seed: int = 2, verbose=True
) -> dict:
    """Carleman-truncation error of each order on the dissipative cubic toy loss (float64).

    The loss is `random_cubic_loss(seed)` ($n = 4$, Hessian eigenvalues in [0.55, 3.3]); its
    degree-2 GD map is exact, so the only error is the Carleman truncation.

    **Arguments:**

    - `orders`: the Carleman orders $N$.
    - `steps`: GD steps of the window.
    - `eta`: the learning rate.
    - `seed`: seed of the toy loss.
    - `verbose`: print each order's maximum error.

    **Returns:** a JSON-able dict with the dissipation report, the relative error curves
    $\\lVert y_1(t) - u_t\\rVert / \\lVert u_t\\rVert$ per order and their maxima.
    """
    with jax.enable_x64(True):
        loss = random_cubic_loss(seed)
        poly = gd_map(loss, jnp.zeros(loss.n), None, eta=eta)
        diss = dissipation(poly, loss.u0)
        out = {
            "problem": {"n": loss.n, "eta": eta, "steps": steps, "seed": seed},
            "dissipation": {
                "spectral_radius_F1": float(diss.spectral_radius),
                "re_lambda1_f1": float(diss.re_lambda1),
                "pnas_R": float(diss.r_number),
                "summary": diss.summary(),
            },
            "orders": {},
        }
        for order in orders:
            # traced order with a static max_order: one compiled program for every order
            op = carleman(poly, jnp.asarray(order), max_order=max(orders))
            err = carleman_error(op, loss.u0, steps).raise_if_failed()
            rel = np.asarray(err.relative)
            out["orders"][str(order)] = {
                "max_relative_error": float(rel.max()),
                "relative_error": rel.tolist(),
            }
            if verbose:
                print(f"  order N = {order}: max relative error {rel.max():.3e}", flush=True)
    return out


def format_table(result: dict) -> str:
    """A Markdown table of the maximum relative error per order.

    **Arguments:**

    - `result`: the output of `carleman_demo`.

    **Returns:** the table as a string.
    """
    rows, prev = [], None
    for order, rec in result["orders"].items():
        err = rec["max_relative_error"]
        rows.append([order, f"{err:.3e}", "" if prev is None else f"{prev / err:.1f}x"])
        prev = err
    return markdown_table(["order N", "max relative error", "ratio to N-1"], rows)


def plot_errors(result: dict, path: Path | None = None, *, ax=None):
    """Semilog plot of the relative error against the GD step, one line per order.

    A `matplotlib.figure.Figure` is built directly (no pyplot), so no backend is switched.

    **Arguments:**

    - `result`: the output of `carleman_demo`.
    - `path`: where to save a PNG (optional).
    - `ax`: a matplotlib Axes to draw on (default: a new figure).

    **Returns:** the matplotlib `Figure`.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4)) if ax is None else ax.figure
    ax = fig.add_subplot() if ax is None else ax
    for order, rec in result["orders"].items():
        rel = np.maximum(np.asarray(rec["relative_error"]), 1e-16)  # exact steps sit at 0
        ax.semilogy(rel, label=f"N = {order}")
    p = result["problem"]
    ax.set(
        xlabel="GD step t",
        ylabel=r"$\|y_1(t) - u_t\| / \|u_t\|$",
        title=f"Carleman truncation error (n = {p['n']}, eta = {p['eta']}, "
        f"R = {result['dissipation']['pnas_R']:.2f})",
    )
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def write_demo(result: dict, out: Path) -> dict[str, Path]:
    """Write `results.json`, `carleman_error.png` and `report.md` into `out`.

    **Arguments:**

    - `result`: the output of `carleman_demo`.
    - `out`: the results folder (created if missing).

    **Returns:** the written paths by kind (`json`, `plot`, `report`).
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "results.json",
        "plot": out / "carleman_error.png",
        "report": out / "report.md",
    }
    paths["json"].write_text(json.dumps(result, indent=1))
    plot_errors(result, paths["plot"])
    paths["report"].write_text(
        "# Carleman demo\n\n"
        f"{result['dissipation']['summary']}\n\n{format_table(result)}\n\n"
        "![error](carleman_error.png)\n"
    )
    return paths
