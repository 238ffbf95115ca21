"""Matplotlib figures of Hessian spectra and error-propagation curves (Agg-safe, no display)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ._propagation import PropagationCurve
from ._spectrum import SpectralDensity


def _figure(ax, figsize):
    # A bare `Figure` (no pyplot) needs no GUI backend and is not tracked globally.
    from matplotlib.figure import Figure

    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def plot_spectral_densities(
    densities: Mapping[str, SpectralDensity], *, ax=None, floor: float = 1e-12
):
    """Log-density vs eigenvalue for several checkpoints overlaid ("Hessian over training").

    **Arguments:**
    - `densities`: label (e.g. "step 0", "epoch 2") → `SpectralDensity`.
    - `ax`: a matplotlib Axes to draw on (default: a new figure).
    - `floor`: densities are clipped below at this value before taking the log.

    **Returns:** the matplotlib `Figure`.
    """
    fig, ax = _figure(ax, (6, 4))
    for label, d in densities.items():
        ax.semilogy(np.asarray(d.grid), np.maximum(np.asarray(d.density), floor), label=label)
    ax.axvline(0.0, color="k", lw=0.5)
    ax.set_xlabel(r"eigenvalue $\lambda$")
    ax.set_ylabel(r"density $\rho_\sigma(\lambda)$")
    ax.set_title("Hessian spectral density (SLQ)")
    ax.legend()
    return fig


def plot_error_propagation(
    curves: Mapping[str, PropagationCurve], *, scale: float = 1.0, parts: bool = True, ax=None
):
    """$E(t)$ (solid) and its dissipative (dashed) / divergent (dotted) parts vs step $t$.

    Marks $t^*$ (E back to 1) with a circle and $t_c$ (divergent overtakes dissipative) with a
    cross, per checkpoint.

    **Arguments:**
    - `curves`: label → `PropagationCurve`.
    - `scale`: multiply the curves (e.g. by the active dimension $s$ for the un-normalized mode
      sum $\\sum_\\nu |1-\\eta\\lambda_\\nu|^t$); the line $E = 1$ is scaled too.
    - `parts`: draw the two parts as well.
    - `ax`: a matplotlib Axes (default: a new figure).

    **Returns:** the matplotlib `Figure`.
    """
    fig, ax = _figure(ax, (6, 4))
    for i, (label, c) in enumerate(curves.items()):
        color = f"C{i}"
        t = np.asarray(c.t)
        ax.plot(t, scale * np.asarray(c.total), color=color, label=f"{label}: E(t)")
        if parts:
            ax.plot(t, scale * np.asarray(c.dissipative), "--", color=color, lw=1)
            ax.plot(t, scale * np.asarray(c.divergent), ":", color=color, lw=1)
        ts, tc = float(c.t_star_continuous), float(c.t_c_continuous)
        if np.isfinite(ts):
            ax.plot([ts], [scale], "o", color=color, label=f"{label}: t* = {ts:.1f}")
        if np.isfinite(tc) and parts:
            idx = min(int(round(tc)), len(t) - 1)
            ax.plot([tc], [scale * float(c.divergent[idx])], "x", color=color,
                    label=f"{label}: t_c = {tc:.1f}")  # fmt: skip
    ax.axhline(scale, color="k", lw=0.5)
    ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel("E(t)" + (" (dashed: dissipative, dotted: divergent)" if parts else ""))
    ax.set_title("Error propagation of a linearized GD window")
    ax.legend(fontsize="small")
    return fig
