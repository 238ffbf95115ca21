"""Benchmark: kappa estimation (matrix-free vs dense SVD) and Taylor vs expm stepping."""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg as sl
from _harness import machine, peak_rss_mib, table, timeit

from qsgd_jax._condition import affine_gd_map, condition_number
from qsgd_jax._history import history_system
from qsgd_jax.circuit import required_order, taylor_evolve

GIB24 = 24 * 2**30


def _kappa_rows(quick: bool):
    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(0)
    n, eta = 6, 0.1
    H = np.diag(np.linspace(0.5, 3.0, n))
    M = affine_gd_map(jnp.asarray(rng.normal(size=n)), jnp.asarray(H), eta)
    sizes = (25, 50) if quick else (25, 50, 100, 200, 400)
    rows = []
    for T in sizes:
        L = history_system(M, T, T)
        t0 = time.perf_counter()
        k_mf = float(condition_number(L, num_iters=64).kappa)
        t_mf_first = time.perf_counter() - t0
        t_mf = timeit(lambda L=L: condition_number(L, num_iters=64).sigma_max, repeat=2)
        D = np.asarray(L.to_dense())
        t0 = time.perf_counter()
        s = np.linalg.svd(D, compute_uv=False)
        t_svd = time.perf_counter() - t0
        k_svd = s[0] / s[-1]
        rows.append(
            [T, L.size, k_svd, k_mf, abs(k_mf / k_svd - 1), t_svd, t_mf, t_mf_first, t_svd / t_mf]
        )
    # memory model: dense SVD ~ 2 D^2 doubles (matrix + work); Lanczos ~ (m + 8) D doubles
    d_dense = int(math.sqrt(GIB24 / (2 * 8)))
    d_mf = int(GIB24 / ((64 + 8) * 8))
    return rows, d_dense, d_mf


def _taylor_row(d: int, rng, tau: float = 0.1, steps: int = 200, tol: float = 1e-10):
    A = rng.normal(size=(d, d)) / math.sqrt(d) - 1.0 * np.eye(d)
    y = rng.normal(size=d)
    norm = float(np.linalg.norm(A, 2))
    K = required_order(tau * norm, tol, 40)
    Aj, yj = jnp.asarray(A), jnp.asarray(y)
    alpha = jnp.asarray(norm)

    @jax.jit
    def taylor(A_, y_):
        return taylor_evolve(
            A_, y_, tau=tau, num_steps=steps, order=K, alpha=alpha, exact_error=False
        ).ys[-1]

    @jax.jit
    def expm_once(A_, y_):  # expm once, then matvecs (time-independent A)
        E = jax.scipy.linalg.expm(tau * A_)
        return jax.lax.fori_loop(0, steps, lambda _, v: E @ v, y_)

    @jax.jit
    def expm_per_step(A_, y_):  # expm every step (what t-dependent SGD maps need)
        return jax.lax.fori_loop(0, steps, lambda _, v: jax.scipy.linalg.expm(tau * A_) @ v, y_)

    ref = np.linalg.matrix_power(sl.expm(tau * A), steps) @ y
    err = float(np.linalg.norm(np.asarray(taylor(Aj, yj)) - ref) / np.linalg.norm(ref))
    t_t = timeit(lambda: taylor(Aj, yj), repeat=3)
    t_e = timeit(lambda: expm_once(Aj, yj), repeat=3)
    t_p = timeit(lambda: expm_per_step(Aj, yj), repeat=2)
    return [d, K, err, steps / t_t, steps / t_e, steps / t_p, t_e / t_t, t_p / t_t]


def _taylor_rows(quick: bool):
    rng = np.random.default_rng(1)
    return [_taylor_row(d, rng) for d in ((16, 64) if quick else (16, 64, 256))]


def run(quick: bool) -> str:
    krows, d_dense, d_mf = _kappa_rows(quick)
    trows = _taylor_rows(quick)
    out = [
        "## Quantum evolution: κ estimation and truncated-Taylor stepping",
        "",
        "Command: `python benchmarks/run_all.py` (this section: `bench_quantum.run`). " + machine(),
        "",
        "κ(L) of the history-state system (6-parameter affine GD map, η = 0.1, p = T idle "
        "steps, float64): matrix-free (Lanczos on LᵀL and on L⁻¹L⁻ᵀ via exact substitutions, "
        "64 iterations) vs dense numpy SVD (baseline).",
        "",
        table(
            [
                "T",
                "size",
                "κ (SVD)",
                "κ (matrix-free)",
                "rel. diff",
                "SVD s",
                "matrix-free s",
                "matrix-free s (1st call, compile)",
                "speed-up",
            ],
            krows,
        ),
        "",
        f"Largest size in 24 GiB (estimated from memory: dense SVD ≈ 2·D² doubles, "
        f"matrix-free ≈ (64 + 8)·D doubles): dense ≈ {d_dense:,} rows; matrix-free ≈ "
        f"{d_mf:,} rows.",
        "",
        "Truncated Taylor T_K(τA) (K from the a-priori bound for 1e-10 per step, one segment) "
        "vs expm-based stepping (baseline), 200 steps, A = random/√d − I, float64; throughput "
        "in steps/s.",
        "",
        table(
            [
                "d",
                "K",
                "rel. error vs scipy expm",
                "Taylor steps/s",
                "expm-once steps/s",
                "expm-per-step steps/s",
                "Taylor / expm-once",
                "Taylor / expm-per-step",
            ],
            trows,
        ),
        "",
        f"Peak RSS of the process: {peak_rss_mib():.0f} MiB.",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    print(run(quick=True))
