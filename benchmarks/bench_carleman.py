"""Benchmark: matrix-free Carleman matvec vs a scipy.sparse Kronecker-assembled matrix.

Baselines measured in the same process: the assembled sparse Carleman matrix (the usual research
code approach: `scipy.sparse.kron` of the blocks), the machine's dense matmul FLOP rate, and a
Python loop of jitted steps.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from _harness import block, peak_rss_mib, table, timeit

import qsgd_jax as qj

CMD = "python benchmarks/run_all.py"
_MM = jax.jit(lambda x: x @ x)


def _problem(n: int, dtype=np.float32):
    rng = np.random.default_rng(0)
    F0 = 0.01 * rng.standard_normal(n)
    F1 = np.eye(n) - 0.1 * np.diag(rng.uniform(0.5, 3.0, n)) + 0.01 * rng.standard_normal((n, n))
    F2 = 0.01 * rng.standard_normal((n, n, n))
    return [jnp.asarray(a, dtype) for a in (F0, F1, F2)]


def _scipy_generator(f0, f1, f2, order):
    """The PNAS matrix A assembled from Kronecker products of sparse blocks."""
    n = f0.shape[0]
    fs = {-1: sp.csr_matrix(f0.reshape(n, 1)), 0: sp.csr_matrix(f1), 1: sp.csr_matrix(f2)}
    rows = []
    for j in range(order + 1):
        row = [None] * (order + 1)
        if j == 0:
            row[0] = sp.csr_matrix((1, 1), dtype=f1.dtype)
        for m in (-1, 0, 1):
            k = j + m
            if j == 0 or k > order:
                continue
            blk = None
            for i in range(j):
                term = sp.identity(n**i, format="csr", dtype=f1.dtype)
                term = sp.kron(term, fs[m], format="csr")
                term = sp.kron(term, sp.identity(n ** (j - 1 - i), dtype=f1.dtype), format="csr")
                blk = term if blk is None else blk + term
            row[k] = blk
        rows.append(row)
    return sp.bmat(rows, format="csr")


def _interleaved(fns: dict, repeat: int) -> dict:
    """Median wall time of each function, calls interleaved (A, B, C, A, B, C, ...).

    On a shared machine the load drifts; interleaving exposes every contender to the same
    drift, so their ratios are meaningful even when absolute times are not.
    """
    for fn in fns.values():
        block(fn())
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            block(fn())
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(t)) for k, t in times.items()}


def _matvec_rows(quick: bool):
    sizes = [(16, 3), (24, 3)] if quick else [(48, 3), (16, 4)]
    rows, flops_rows = [], []
    mm = 1024 if quick else 2048
    a = jnp.ones((mm, mm), jnp.float32)
    for n, order in sizes:
        F0, F1, F2 = _problem(n)
        poly = qj.polynomial_map(F0, F1, F2, eta=0.1)
        op = qj.carleman(poly, order)
        v = jax.random.normal(jax.random.key(0), (op.dim,), jnp.float32)
        mv = jax.jit(qj.CarlemanOperator.flat_generator)  # the operator is a pytree argument
        t0 = time.perf_counter()
        mv(op, v).block_until_ready()
        t_compile = time.perf_counter() - t0
        flops = mv.lower(op, v).compile().cost_analysis()
        flops = float((flops[0] if isinstance(flops, list) else flops).get("flops", np.nan))
        f = poly.field
        t0 = time.perf_counter()
        A = _scipy_generator(
            *(np.asarray(x) for x in (f.f0(), f.f1, f.f2.reshape(n, n * n))), order
        )
        t_build = time.perf_counter() - t0
        sparse_mib = (A.data.nbytes + A.indices.nbytes + A.indptr.nbytes) / 2**20
        vn = np.asarray(v)
        # the matmul is timed in the same rounds, so the FLOP-rate fraction sees the same load
        med = _interleaved(
            {
                "free": lambda mv=mv, op=op, v=v: mv(op, v),
                "sparse": lambda A=A, vn=vn: A @ vn,
                "mm": lambda: _MM(a),
            },
            repeat=9 if quick else 21,
        )
        t_free, t_sparse = med["free"], med["sparse"]
        mm_rate = 2 * mm**3 / med["mm"]
        err = float(np.max(np.abs(A @ vn - np.asarray(mv(op, v)))) / np.max(np.abs(A @ vn)))
        state_mib = op.dim * 4 / 2**20
        rows.append(
            [
                f"n={n}, N={order}",
                f"{op.dim:,}",
                f"{A.nnz:,}",
                f"{t_build:.2f} s",
                f"{sparse_mib:.0f} MiB",
                f"{t_sparse * 1e3:.2f} ms",
                f"{t_free * 1e3:.3f} ms",
                f"{t_compile:.2f} s",
                f"{state_mib:.2f} MiB",
                f"{t_sparse / t_free:.1f}x",
                f"{err:.1e}",
            ]
        )
        flops_rows.append(
            [
                f"n={n}, N={order}",
                f"{flops:.3g}",
                f"{flops / t_free / 1e9:.2f}",
                f"{mm_rate / 1e9:.1f}",
                f"{flops / t_free / mm_rate:.1%}",
            ]
        )
        del A
    return rows, flops_rows, mm


def _discrete_infeasible(n, order):
    """nnz of the assembled discrete-form matrix: every B_{j,k} block is dense in general."""
    nnz = 0
    for j in range(1, order + 1):
        for k in range(0, min(2 * j, order) + 1):
            nnz += n**j * n**k
    return nnz


def _scan_rows(quick: bool):
    n, order = 16, 4
    steps = 100 if quick else 1000
    F0, F1, F2 = _problem(n)
    op = qj.carleman(qj.polynomial_map(F0, F1, F2, eta=0.1), order)
    Y0 = op.lift(jnp.full((n,), 0.1, jnp.float32))
    t_scan = timeit(lambda: qj.evolve(op, Y0, steps).y1, repeat=2)
    step = jax.jit(qj.CarlemanOperator.step)

    def loop():
        Y = Y0
        for _ in range(steps):
            Y = step(op, Y)
        return Y

    t_loop = timeit(loop, repeat=2)
    return [
        [
            f"n={n}, N={order} discrete",
            f"{op.dim:,}",
            steps,
            f"{t_scan:.3f} s",
            f"{t_loop:.3f} s",
            f"{t_loop / t_scan:.2f}x",
        ]
    ]


def run(quick: bool = False) -> str:
    rows, flops_rows, mm = _matvec_rows(quick)
    scan = _scan_rows(quick)
    infeasible = [
        [
            f"n={n}, N={N}",
            f"{_discrete_infeasible(n, N):.3g}",
            f"{_discrete_infeasible(n, N) * 12 / 2**30:.0f} GiB",
        ]
        for n, N in ((48, 3), (16, 4))
    ]
    return "\n\n".join(
        [
            "## Carleman matvec: matrix-free vs assembled scipy.sparse",
            f'Command: `{CMD}`{" --quick" if quick else ""}. float32, form "euler" (the PNAS '
            "matrix A: the sparse Kronecker-sum structure a research code would assemble). "
            "`speed-up` = scipy.sparse CSR matvec time / jitted matrix-free matvec time (medians "
            "of 21 rounds, the two calls and the matmul baseline interleaved in each round); "
            "`err` = max relative difference of the two results.",
            table(
                [
                    "size",
                    "dim",
                    "nnz (scipy)",
                    "scipy build",
                    "scipy memory",
                    "scipy matvec",
                    "matrix-free matvec",
                    "jit compile",
                    "matrix-free state",
                    "speed-up",
                    "err",
                ],
                rows,
            ),
            'The "discrete" form (exact lift of the GD map) cannot be assembled at these sizes '
            "at all: its blocks $B_{j,k}$ contain $F_1^{\\otimes j}$, dense for a dense Hessian. "
            "Estimated nnz and CSR memory (12 bytes per entry):",
            table(["size", "nnz", "CSR memory"], infeasible),
            "### Throughput as a fraction of the dense matmul rate",
            f"FLOPs from XLA's cost analysis of the jitted matvec; baseline a {mm}x{mm} float32 "
            "matmul on the same machine, timed in the same interleaved rounds (per size).",
            table(["size", "FLOPs / matvec", "GFLOP/s", "matmul GFLOP/s", "fraction"], flops_rows),
            "### Evolution: one jitted `lax.scan` vs a Python loop of jitted steps",
            table(["problem", "dim", "steps", "scan", "Python loop", "loop / scan"], scan),
            f"Peak RSS of the benchmark process: {peak_rss_mib():.0f} MiB.",
        ]
    )
