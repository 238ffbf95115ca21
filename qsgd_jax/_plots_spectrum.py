"""Matplotlib figures of Hessian spectra and error-propagation curves (Agg-safe, no display)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ._propagation import PaperProxy, PropagationCurve
from ._spectrum import SpectralDensity


def _figure(ax, figsize):
    # A bare `Figure` (no pyplot) needs no GUI backend and is not tracked globally.
    from matplotlib.figure import Figure

    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def plot_spectral_densities(
    densities: Mapping[str, SpectralDensity],
    *,
    ax=None,
    floor: float = 1e-12,
    decades: float | None = 8.0,
):
    """Log-density vs eigenvalue for several checkpoints overlaid ("Hessian over training").

    **Arguments:**
    - `densities`: label (e.g. "step 0", "epoch 2") → `SpectralDensity`.
    - `ax`: a matplotlib Axes to draw on (default: a new figure).
    - `floor`: densities are clipped below at this value before taking the log.
    - `decades`: the y axis spans this many decades below the highest peak (`None`: down to
      `floor`); the gaps between isolated outlier eigenvalues would otherwise stretch the axis
      down to the floor and hide the bulk's shape.

    **Returns:** the matplotlib `Figure`.
    """
    fig, ax = _figure(ax, (6, 4))
    peak = floor
    for label, d in densities.items():
        rho = np.maximum(np.asarray(d.density), floor)
        peak = max(peak, float(np.max(rho)))
        ax.semilogy(np.asarray(d.grid), rho, label=label)
    if decades is not None:
        ax.set_ylim(bottom=max(floor, peak * 10.0 ** (-decades)), top=peak * 3)
    ax.axvline(0.0, color="k", lw=0.5)
    ax.set_xlabel(r"eigenvalue $\lambda$")
    ax.set_ylabel(r"density $\rho_\sigma(\lambda)$")
    ax.set_title("Hessian spectral density (SLQ)")
    ax.legend()
    return fig


def plot_error_propagation(
    curves: Mapping[str, PropagationCurve],
    *,
    proxies: Mapping[str, PaperProxy] | None = None,
    scale: float = 1.0,
    parts: bool = True,
    shade: bool = True,
    decades: float | None = 6.0,
    ax=None,
):
    """$E(t)$ (solid), its parts, and the paper's proxy $E_\\text{paper}(t)$ (dash-dot) vs step $t$.

    Marks $t^*$ (E back to 1) with a circle and $t_c$ (divergent overtakes dissipative) with a
    cross, per checkpoint. For each proxy, the steps where $E_\\text{paper} < 1$ (the paper's
    "possible quantum speedup" band, from `first_below` to `crosses_back`) are shaded in its
    colour. A proxy whose label is also a curve's label shares that curve's colour.

    **Arguments:**
    - `curves`: label → `PropagationCurve` (may be empty when only proxies are drawn).
    - `proxies`: label → `PaperProxy` (default: none).
    - `scale`: multiply $E(t)$ and its parts (e.g. by the active dimension $s$ for the
      un-normalized mode sum $\\sum_\\nu |1-\\eta\\lambda_\\nu|^t$); the line $E = 1$ is scaled too.
      The proxies are normalized over their kept modes and are never scaled.
    - `parts`: draw the two parts as well.
    - `shade`: shade the bands where a proxy is below 1.
    - `decades`: the y axis reaches this many decades below the line $E = 1$ at most (a
      proxy over strongly dissipative modes alone falls to $10^{-30}$ and would flatten the
      rest); `None`: the data's range.
    - `ax`: a matplotlib Axes (default: a new figure).

    **Returns:** the matplotlib `Figure`.
    """
    proxies = {} if proxies is None else proxies
    if not curves and not proxies:
        raise ValueError("Nothing to plot: pass at least one curve or one proxy.")
    fig, ax = _figure(ax, (6, 4))
    colors = {label: f"C{i}" for i, label in enumerate(dict.fromkeys([*curves, *proxies]))}
    for label, c in curves.items():
        color = colors[label]
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
            ax.plot(
                [tc],
                [scale * float(c.divergent[idx])],
                "x",
                color=color,
                label=f"{label}: t_c = {tc:.1f}",
            )
    for label, p in proxies.items():
        color = colors[label]
        t, v = np.asarray(p.t), np.asarray(p.value)
        kept = float(p.kept_mass)
        if not np.all(np.isfinite(v)):
            # No mode with |eta lambda| >= a_c: the proxy is undefined; say so in the legend.
            ax.plot(
                [],
                [],
                "-.",
                color=color,
                label=f"{label}: E_paper undefined (no mass at |eta lambda| >= {float(p.a_c):g})",
            )
            continue
        ax.plot(
            t,
            v,
            "-.",
            color=color,
            label=f"{label}: E_paper(t), a_c = {float(p.a_c):g}, N_c = {kept:.3g}",
        )
        if shade:
            # The band may end beyond the horizon (crosses_back = inf): shade to the last step.
            ax.fill_between(
                t,
                0,
                1,
                where=v < 1,
                color=color,
                alpha=0.12,
                step="mid",
                transform=ax.get_xaxis_transform(),
                lw=0,
            )
    if curves:
        ax.axhline(scale, color="k", lw=0.5)
    if proxies and (not curves or scale != 1.0):
        ax.axhline(1.0, color="k", lw=0.5, ls="-.")
    ax.set_yscale("log")
    if decades is not None:
        lo, hi = ax.get_ylim()
        floor = min(scale, 1.0) * 10.0 ** (-decades)
        ax.set_ylim(bottom=max(lo, floor), top=hi)
    ax.set_xlabel("step t")
    if proxies:
        ax.set_ylabel("E(t) solid, E_paper(t) dash-dot")
    else:
        ax.set_ylabel("E(t)" + (" (dashed: dissipative, dotted: divergent)" if parts else ""))
    ax.set_title(
        "Error propagation of a linearized GD window"
        + ("\n(shaded: E_paper < 1)" if proxies and shade else "")
    )
    ax.legend(fontsize="small")
    return fig
