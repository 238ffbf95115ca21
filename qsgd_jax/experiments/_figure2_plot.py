"""The figure of the `figure2` experiment: the three panels of the article's Fig. 2."""

from __future__ import annotations

import numpy as np


def figure2_plot(config, spectra, proxies, windows, accuracy, baseline):
    """Three panels like the article's Fig. 2: (a) log-densities over steps, (b) E_paper with
    the bands below 1 shaded, (c) accuracy with the downloads / re-uploads marked.

    **Arguments:**

    - `config`: the run's configuration.
    - `spectra`: step → the spectrum record of that step (`nodes`, `weights`, ...).
    - `proxies`: one record per window (E_paper and E(t) along it).
    - `windows`: one record per window (start, length, download, ...).
    - `accuracy`, `baseline`: step → `{"train": ..., "test": ...}` of the windowed run and of
      sparse SGD without windows.

    **Returns:** the matplotlib `Figure`.
    """
    import matplotlib.pyplot as plt

    eta, a_c, steps = config["eta"], config["a_c"], config["steps"]
    fig, axes = plt.subplots(
        3, 1, figsize=(8.5, 11), sharex=True, gridspec_kw={"height_ratios": [1.3, 1, 1]}
    )
    ax = axes[0]
    keys = sorted(spectra)
    lo = min(spectra[k]["grid"][0] for k in keys)
    hi = max(spectra[k]["grid"][-1] for k in keys)
    lam = np.linspace(lo, hi, 400)
    floor = 1e-5
    logd = np.stack(
        [
            np.log10(
                np.maximum(
                    np.interp(lam, spectra[k]["grid"], spectra[k]["density"], left=0.0, right=0.0),
                    floor,
                )
            )
            for k in keys
        ],
        axis=1,
    )
    xs = np.asarray(keys, float)
    half = np.diff(xs).min() / 2 if len(xs) > 1 else 0.5
    mesh = ax.pcolormesh(xs, lam, logd, shading="nearest", cmap="magma", vmin=np.log10(floor))
    fig.colorbar(mesh, ax=ax, pad=0.01, label="log10 spectral density")
    cut = a_c / eta
    for i, c in enumerate(c for c in (cut, -cut) if lo <= c <= hi):
        ax.axhline(
            c, color="c", ls="--", lw=0.8, label=f"|eta lambda| = a_c = {a_c:g}" if i == 0 else None
        )
    outside = [f"{c:+.3g}" for c in (cut, -cut) if not lo <= c <= hi]
    if outside:
        ax.text(
            0.01,
            0.02,
            f"cut-off |eta lambda| = a_c at lambda = {', '.join(outside)}: outside the spectrum",
            transform=ax.transAxes,
            fontsize=8,
            color="c",
        )
    ax.set(
        ylabel="Hessian eigenvalue lambda (active set)",
        title=f"(a) SLQ spectra every {config['spectrum_every']} steps",
    )
    if len(outside) < 2:
        ax.legend(loc="upper right", fontsize=8)

    ax = axes[1]
    for i, p in enumerate(proxies):
        t, v = np.asarray(p["t"]), np.asarray(p["value"], float)
        ax.plot(t, v, color="C0", label="E_paper (|eta lambda| >= a_c)" if i == 0 else None)
        ax.plot(
            t,
            np.asarray(p["e_total"]),
            color="C7",
            lw=0.8,
            ls=":",
            label="E(t), all modes" if i == 0 else None,
        )
        below = np.isfinite(v) & (v < 1) & (np.arange(v.size) >= 1)  # as `first_below`
        for j in np.flatnonzero(below):
            ax.axvspan(
                t[j] - 0.5,
                t[j] + 0.5,
                color="C2",
                alpha=0.25,
                lw=0,
                label="possible quantum speedup"
                if i == 0 and j == np.flatnonzero(below)[0]
                else None,
            )
    ax.axhline(1.0, color="k", lw=0.6)
    if all(p["kept_mass"] == 0 for p in proxies):
        ax.text(
            0.5,
            0.5,
            f"E_paper undefined: no spectral mass with |eta lambda| >= {a_c:g}",
            transform=ax.transAxes,
            ha="center",
            fontsize=9,
        )
    vals = np.concatenate([np.asarray(p["value"], float) for p in proxies])
    vals = vals[np.isfinite(vals)]
    if vals.size:
        top = min(float(np.max(vals)), 3.0)
        ax.set_ylim(min(float(np.min(vals)), 0.95) - 0.02, max(top, 1.05) + 0.02)
    ax.set(
        ylabel="error proxy",
        title=f"(b) E_paper along each window (eta = {eta:g}, "
        f"a_c = {a_c:g}), from the spectrum at its upload",
    )
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[2]
    st = sorted(accuracy)
    ax.plot(st, [accuracy[k]["train"] for k in st], "o-", ms=3, label="train (quantum windows)")
    ax.plot(st, [accuracy[k]["test"] for k in st], "s-", ms=3, label="test (quantum windows)")
    if baseline:
        bst = sorted(baseline)
        ax.plot(
            bst,
            [baseline[k]["train"] for k in bst],
            "--",
            color="C7",
            label="train, sparse SGD (no windows)",
        )
    first_div = next((i for i, w in enumerate(windows) if w["diverged"]), None)
    for i, w in enumerate(windows):
        ax.axvline(
            w["download"],
            color="C3",
            lw=0.6,
            ls=":",
            label="download / re-upload" if i == 0 else None,
        )
        if not w["diverged"]:
            ax.plot(
                [w["download"]] * 2,
                [w["accuracy_before_readout"]["train"], w["accuracy_after_readout"]["train"]],
                "v-",
                color="C3",
                ms=4,
                label="read-out dip (train)" if i == 0 else None,
            )
        if w["diverged"]:
            ax.axvspan(
                w["upload"],
                w["download"],
                color="C7",
                alpha=0.2,
                label="window diverged: classical SGD steps" if i == first_div else None,
            )
        if w["classical_steps_before"]:
            ax.axvspan(
                w["start"],
                w["upload"],
                color="C1",
                alpha=0.15,
                label="classical steps (QRAM)" if i == 1 else None,
            )
    ax.set(
        xlabel="step after pruning",
        ylabel="accuracy",
        ylim=(-0.02, 1.02),
        title="(c) accuracy every {} steps".format(config["eval_every"]),
    )
    ax.set_xlim(-half, steps + half)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
