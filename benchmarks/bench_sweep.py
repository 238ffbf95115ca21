"""Benchmark: one compiled, vmapped sweep vs loops of jitted runs; device-count scaling."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from _harness import peak_rss_mib, table

import qsgd_jax as qj

CMD = "python benchmarks/run_all.py sweep"


def _setup(quick: bool):
    n = 6
    loss = qj.random_cubic_loss(seed=2, n=n, eigs=np.linspace(0.55, 3.3, n))
    theta_bar = jnp.asarray(np.random.default_rng(0).standard_normal(n), jnp.float32)
    loss = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), loss)
    fn = functools.partial(qj.toy_window_error, loss=loss, theta_bar=theta_bar, steps=30)
    k = 4 if quick else 16  # k * k points: 256 for the full benchmark
    eta, sparsity = np.meshgrid(np.linspace(0.05, 0.5, k), np.linspace(0.0, 0.5, k))
    order = 1 + np.arange(k * k) % 3
    pts = qj.points(eta=eta.ravel(), sparsity=sparsity.ravel(), order=order)
    return fn, pts, loss, theta_bar


def _time(f):
    t0 = time.perf_counter()
    out = f()
    jax.block_until_ready(out)
    return time.perf_counter() - t0, out


def _scaling(quick: bool):
    """Wall time of the same sweep in fresh processes with 1 and 2 forced CPU devices."""
    rows = []
    for count in (1, 2):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={count}")
        code = (
            "import sys, json, time; sys.path.insert(0, 'benchmarks');"
            "import bench_sweep as b, qsgd_jax as qj;"
            f"fn, pts, *_ = b._setup({quick});"
            "t0 = time.perf_counter(); qj.sweep(fn, pts);"
            "t1 = time.perf_counter(); qj.sweep(fn, pts); t2 = time.perf_counter();"
            "print(json.dumps([t1 - t0, t2 - t1]))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        first, second = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append([count, first, second])
    return [[c, f"{a:.2f} s", f"{b:.3f} s", f"{rows[0][2] / b:.2f}x"] for c, a, b in rows]


def run(quick: bool = False) -> str:
    fn, pts, loss, theta_bar = _setup(quick)
    n_pts = pts.size
    t_sweep, res = _time(lambda: qj.sweep(fn, pts).values["max_error"])
    t_sweep2, _ = _time(lambda: qj.sweep(fn, pts).values["max_error"])

    cols = {k: np.asarray(v) for k, v in pts.columns.items()}

    # Naive: jit with the order static (as without max_order masking): one compile per order.
    @functools.partial(jax.jit, static_argnames="order")
    def naive(eta, sparsity, order):
        return qj.toy_window_error(
            {"eta": eta, "sparsity": sparsity, "order": order},
            loss=loss,
            theta_bar=theta_bar,
            steps=30,
            max_order=order,
        )["max_error"]

    def naive_loop():
        return [
            naive(
                jnp.float32(cols["eta"][i]), jnp.float32(cols["sparsity"][i]), int(cols["order"][i])
            )
            for i in range(n_pts)
        ]

    t_naive, naive_out = _time(naive_loop)

    reused = jax.jit(lambda c: fn(c)["max_error"])

    def reused_loop():
        return [reused({k: jnp.asarray(v[i]) for k, v in cols.items()}) for i in range(n_pts)]

    _time(lambda: reused({k: jnp.asarray(v[0]) for k, v in cols.items()}))  # compile once
    t_reused, reused_out = _time(reused_loop)
    diff = max(
        float(np.max(np.abs(np.ravel(res) - np.asarray(naive_out)))),
        float(np.max(np.abs(np.ravel(res) - np.asarray(reused_out)))),
    )
    rows = [
        ["sweep, first call (incl. compile)", f"{t_sweep:.2f} s", "1x", ""],
        ["sweep, repeated (cached program)", f"{t_sweep2:.3f} s", "", "1x"],
        [
            "loop of jitted runs, order static (recompiles per order)",
            f"{t_naive:.2f} s",
            f"{t_naive / t_sweep:.1f}x",
            f"{t_naive / t_sweep2:.0f}x",
        ],
        [
            "loop reusing one compiled function (compile excluded)",
            f"{t_reused:.2f} s",
            f"{t_reused / t_sweep:.2f}x",
            f"{t_reused / t_sweep2:.1f}x",
        ],
    ]
    scaling = _scaling(quick)
    return "\n\n".join(
        [
            "## Sweeps: one compiled program vs loops",
            f"Command: `{CMD}`{' --quick' if quick else ''}. Toy window error "
            f"(`toy_window_error`, n = 6, 30 steps, float32) on a {n_pts}-point grid over "
            "(eta, sparsity, order N <= 3). Ratios are loop time / sweep time: against the first "
            "sweep call (compile included in both) and against a repeated sweep (the compiled "
            f"program is cached). Max difference between methods: {diff:.1e}.",
            table(["method", "wall time", "vs first sweep", "vs repeated sweep"], rows),
            "### Scaling with forced CPU device count (2 physical cores)",
            table(["devices", "first call", "second call", "speed-up (2nd call)"], scaling),
            f"Peak RSS: {peak_rss_mib():.0f} MiB.",
        ]
    )
