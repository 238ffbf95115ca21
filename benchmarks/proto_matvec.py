"""Prototype: faster kernels for the euler-form Carleman matvec $A Y$ (docs/math/carleman.md).

Standalone: it reimplements the generator action for a dense field ($f_0$ `(n,)`, $f_1$
`(n, n)`, $f_2$ `(n, n, n)`) in several layouts and compares them with the package's
`CarlemanOperator.flat_generator` ("current") and with the scipy.sparse CSR matrix of
`bench_carleman`, all in one process, in rounds whose order is shuffled (ratios; the machine is
shared). Every variant is checked against "current" on a random, non-symmetric state.

$(A Y)_j = \\sum_{i<j} f_1 \\times_i y_j + \\sum_{i<j} f_0 \\text{ inserted at } i \\text{ of }
y_{j-1} + \\sum_{i<j} f_2 \\times_{i,i+1} y_{j+1}$, each term masked by the truncation order.

Commands (from the repository root):

- `python benchmarks/proto_matvec.py [--quick] [--cpu] [--loop K] [--rounds R] [--only a,b]`:
  the variant table; `--cpu` reports process CPU time (what a loaded machine distorts least;
  run it with `XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"`
  so the matmul baseline is one core too), `--loop K` times K chained matvecs in one program.
- `python benchmarks/proto_matvec.py --patched [--cpu]`: the package's own kernels (euler and
  discrete forms) as they are vs with the proposed `_along` and the sliced-once blocks.

Findings on a 2-core machine at load 5 to 9: the best variants (`best_never`, `batched_ob`:
first and last modes as plain GEMMs, middle modes as batched matmuls, blocks sliced once) are
1.0x to 1.3x "current" in CPU time; the rolled-frame and K-concatenated variants, which turn
the Kronecker sums into fewer, larger GEMMs, lose (XLA:CPU's transposes and concatenations
cost more than the GEMMs gain). Applied to the package (`--patched`) the proposal is within
noise (0.95x to 1.10x). The ceiling is XLA:CPU's GEMM on these shapes: chained in one program
(warm caches), `(48, 48) @ (48, 2304)` runs at 55 to 65 % of the 2048x2048 matmul rate and the
long-contraction `(48, 2304) @ (2304, 48)` of the f2 terms at 25 to 40 %, so even without any
other pass the n = 48 matvec would stay near 45 % of the matmul rate.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_carleman import _problem, _scipy_generator  # noqa: E402

import qsgd_jax as qj  # noqa: E402

_HI = jax.lax.Precision.DEFAULT


def _blocks(v, n, big_n):
    out, start = [], 0
    for j in range(big_n + 1):
        out.append(v[start : start + n**j])
        start += n**j
    return out


def _roll(y, n, j, i):
    """Flat `y` with j modes, rolled so that mode i comes first: view (n**i, n**(j-i)).T."""
    if i == 0 or i == j:
        return y.reshape(-1)
    return y.reshape(n**i, n ** (j - i)).T.reshape(-1)


def _unroll(z, n, j, i):
    """Inverse of `_roll` for a j-mode tensor rolled by i (mode i first)."""
    if i == 0 or i == j:
        return z.reshape(-1)
    return z.reshape(n ** (j - i), n**i).T.reshape(-1)


# ---- variant: the package's per-term kernel, reimplemented (natural layout) -------------------
def natural(f0, f1, f2, keep, v, *, n, big_n):
    """One GEMM per term on a 3-D view (before, contracted, after), as `_field._along`."""
    y = _blocks(v, n, big_n)
    f2m = f2.reshape(n, n * n)

    def along(mat, z, j, i, modes):
        before = n**i
        z3 = z.reshape(before, n**modes, -1)
        if before == 1:
            return (mat @ z3[0]).reshape(-1)
        if z3.shape[2] == 1:
            return (z3[:, :, 0] @ mat.T).reshape(-1)
        out = jax.lax.dot_general(z3, mat, (((1,), (1,)), ((), ())), precision=_HI)
        return jnp.swapaxes(out, 1, 2).reshape(-1)

    out = [jnp.zeros((1,), v.dtype)]
    for j in range(1, big_n + 1):
        acc = 0
        for i in range(j):
            acc = acc + along(f1, y[j], j, i, 1)
            ins = jnp.expand_dims(y[j - 1].reshape((n,) * (j - 1)), i)
            shape = [1] * j
            shape[i] = n
            acc = acc + (ins * f0.reshape(shape)).reshape(-1)
            if j < big_n:
                t = along(f2m, y[j + 1], j, i, 2)
                acc = acc + jnp.where(keep[j + 1], t, 0)
        out.append(jnp.where(keep[j], acc, 0))
    return jnp.concatenate(out)


# ---- variant: rolled frames, one GEMM per block with K = [f0 | f1 | f2] ---------------------
def rolled_fused(f0, f1, f2, keep, v, *, n, big_n):
    """Block j: every term of every axis i is one column block of ONE GEMM.

    In the frame rolled by i (modes i, i+1, ..., j-1, 0, ..., i-1) the three terms of axis i
    all contract the leading mode(s) and leave the rest in the same order, so
    `[f0 | f1 | F2] @ [roll_i(y_{j-1}); roll_i(y_j); roll_i(y_{j+1})]` is their sum; the j
    frames are concatenated along the columns and unrolled (2-D transposes) into the sum.
    """
    y = _blocks(v, n, big_n)
    f2m = f2.reshape(n, n * n)
    out = [jnp.zeros((1,), v.dtype)]
    for j in range(1, big_n + 1):
        has2 = j < big_n
        mat = [f0[:, None], f1] + ([f2m] if has2 else [])
        mat = jnp.concatenate(mat, axis=1)
        cols = []
        for i in range(j):
            rows = [
                _roll(y[j - 1], n, j - 1, i).reshape(1, -1),
                _roll(y[j], n, j, i).reshape(n, -1),
            ]
            if has2:
                y2 = jnp.where(keep[j + 1], y[j + 1], 0)
                rows.append(_roll(y2, n, j + 1, i).reshape(n * n, -1))
            cols.append(jnp.concatenate(rows, axis=0))
        big = jnp.concatenate(cols, axis=1)  # (K, j * n**(j-1))
        res = jnp.dot(mat, big, precision=_HI)  # (n, j * n**(j-1))
        m = n ** (j - 1)
        acc = sum(_unroll(res[:, i * m : (i + 1) * m], n, j, i) for i in range(j))
        out.append(jnp.where(keep[j], acc, 0))
    return jnp.concatenate(out)


# ---- variant: rolled frames, separate GEMMs for f1 (all axes) and f2 (all axes) -------------
def rolled_split(f0, f1, f2, keep, v, *, n, big_n):
    """As `rolled_fused`, but f1 and f2 are two GEMMs (no K-concatenation copy); f0 is an
    outer product fused into the sum."""
    y = _blocks(v, n, big_n)
    f2m = f2.reshape(n, n * n)
    out = [jnp.zeros((1,), v.dtype)]
    for j in range(1, big_n + 1):
        m = n ** (j - 1)
        z1 = jnp.concatenate([_roll(y[j], n, j, i).reshape(n, m) for i in range(j)], axis=1)
        r1 = jnp.dot(f1, z1, precision=_HI)
        if j < big_n:
            y2 = jnp.where(keep[j + 1], y[j + 1], 0)
            z2 = jnp.concatenate(
                [_roll(y2, n, j + 1, i).reshape(n * n, m) for i in range(j)], axis=1
            )
            r1 = r1 + jnp.dot(f2m, z2, precision=_HI)
        acc = 0
        for i in range(j):
            term = r1[:, i * m : (i + 1) * m] + f0[:, None] * _roll(y[j - 1], n, j - 1, i)[None]
            acc = acc + _unroll(term, n, j, i)
        out.append(jnp.where(keep[j], acc, 0))
    return jnp.concatenate(out)


# ---- variant: per-term GEMMs without copies, middle modes as batched matmuls -----------------
def batched(f0, f1, f2, keep, v, *, n, big_n, once=False):
    """First mode: left GEMM; last mode: right GEMM; middle: dot_general with a batch dim
    (f1 broadcast over the leading modes), so every output is already in natural layout."""
    y = _blocks_once(v, n, big_n) if once else _blocks(v, n, big_n)
    f2m = f2.reshape(n, n * n)

    def along(mat, z, i, modes):
        before = n**i
        z3 = z.reshape(before, n**modes, -1)
        if before == 1:
            return (mat @ z3[0]).reshape(-1)
        if z3.shape[2] == 1:
            return (z3[:, :, 0] @ mat.T).reshape(-1)
        mb = jnp.broadcast_to(mat, (before,) + mat.shape)
        out = jax.lax.dot_general(mb, z3, (((2,), (1,)), ((0,), (0,))), precision=_HI)
        return out.reshape(-1)

    out = [jnp.zeros((1,), v.dtype)]
    for j in range(1, big_n + 1):
        acc = 0
        for i in range(j):
            acc = acc + along(f1, y[j], i, 1)
            ins = jnp.expand_dims(y[j - 1].reshape((n,) * (j - 1)), i)
            shape = [1] * j
            shape[i] = n
            acc = acc + (ins * f0.reshape(shape)).reshape(-1)
            if j < big_n:
                acc = acc + jnp.where(keep[j + 1], along(f2m, y[j + 1], i, 2), 0)
        out.append(jnp.where(keep[j], acc, 0))
    return jnp.concatenate(out)


# ---- variant: einsum per term ---------------------------------------------------------------
def einsum(f0, f1, f2, keep, v, *, n, big_n, optimize="optimal"):
    y = [b.reshape((n,) * j) for j, b in enumerate(_blocks(v, n, big_n))]
    letters = "abcdefgh"
    out = [jnp.zeros((1,), v.dtype)]
    for j in range(1, big_n + 1):
        acc = 0
        idx = letters[:j]
        for i in range(j):
            src = idx[:i] + "z" + idx[i + 1 :]
            acc = acc + jnp.einsum(f"{idx[i]}z,{src}->{idx}", f1, y[j], optimize=optimize)
            ins = jnp.expand_dims(y[j - 1], i)
            shape = [1] * j
            shape[i] = n
            acc = acc + ins * f0.reshape(shape)
            if j < big_n:
                src2 = idx[:i] + "yz" + idx[i + 1 :]
                t = jnp.einsum(f"{idx[i]}yz,{src2}->{idx}", f2, y[j + 1], optimize=optimize)
                acc = acc + jnp.where(keep[j + 1], t, 0)
        out.append(jnp.where(keep[j], acc, 0).reshape(-1))
    return jnp.concatenate(out)


# ---- variant: batched, each block sliced out of the flat vector once ------------------------
def _blocks_once(v, n, big_n):
    """The blocks as separate buffers: without the barrier XLA re-slices the flat vector for
    every differently-shaped consumer (three copies of the largest block)."""
    return list(jax.lax.optimization_barrier(tuple(_blocks(v, n, big_n))))


def _mid(mat, z, before):
    """`mat` on the mode(s) after the first `before` entries of z `(before, k, after)`, as a
    batched matmul, so the result is already in natural layout."""
    mb = jnp.broadcast_to(mat, (before,) + mat.shape)
    return jax.lax.dot_general(mb, z, (((2,), (1,)), ((0,), (0,))), precision=_HI).reshape(-1)


def batched_ob(f0, f1, f2, keep, v, *, n, big_n):
    return batched(f0, f1, f2, keep, v, n=n, big_n=big_n, once=True)


# ---- variant: K-concatenation of the f1 and f2 terms of the first and last modes ----------
def kcat(f0, f1, f2, keep, v, *, n, big_n, once=True):
    """Block j: the first-mode terms `f1 y_j + F2 y_{j+1}` are ONE GEMM
    `[f1 | F2] @ [y_j; y_{j+1}]` (both viewed (k, n**(j-1)), stacked along the contraction),
    the last-mode terms likewise from the right; middle modes are batched matmuls. The
    stacked operands are built straight from the flat vector (the copy a slice costs anyway).
    """
    y = _blocks_once(v, n, big_n) if once else _blocks(v, n, big_n)
    f2m = f2.reshape(n, n * n)
    w = jnp.concatenate([f1, f2m], axis=1)  # (n, n + n*n)
    out = [jnp.zeros((1,), v.dtype)]
    for j in range(1, big_n + 1):
        m = n ** (j - 1)
        has2 = j < big_n
        y2 = jnp.where(keep[j + 1], y[j + 1], 0) if has2 else None
        if has2:
            left = jnp.concatenate([y[j].reshape(n, m), y2.reshape(n * n, m)], axis=0)
            acc = jnp.dot(w, left, precision=_HI).reshape(-1)
        else:
            acc = jnp.dot(f1, y[j].reshape(n, m), precision=_HI).reshape(-1)
        if j >= 2:
            if has2:
                right = jnp.concatenate([y[j].reshape(m, n), y2.reshape(m, n * n)], axis=1)
                acc = acc + jnp.dot(right, w.T, precision=_HI).reshape(-1)
            else:
                acc = acc + jnp.dot(y[j].reshape(m, n), f1.T, precision=_HI).reshape(-1)
        for i in range(1, j - 1):
            acc = acc + _mid(f1, y[j].reshape(n**i, n, -1), n**i)
            if has2:
                acc = acc + _mid(f2m, y2.reshape(n**i, n * n, -1), n**i)
        for i in range(j):
            ins = jnp.expand_dims(y[j - 1].reshape((n,) * (j - 1)), i)
            shape = [1] * j
            shape[i] = n
            acc = acc + (ins * f0.reshape(shape)).reshape(-1)
        out.append(jnp.where(keep[j], acc, 0))
    return jnp.concatenate(out)


def kcat_noob(f0, f1, f2, keep, v, *, n, big_n):
    return kcat(f0, f1, f2, keep, v, n=n, big_n=big_n, once=False)


# ---- variant: the best one: blocks sliced once, first/last modes as plain GEMMs, middle
# modes batched, and the long-contraction f2 term of the last modes split over its first
# contracted mode (a batch of short GEMMs and a sum instead of one (m, n*n) @ (n*n, n) GEMM,
# the shape XLA's CPU GEMM handles worst).
def _f2_last(f2, z, n, split):
    """`(before, n*n) @ F2^T` for z of shape `(before, n*n)`; output `(before, n)`."""
    if not split:
        return jnp.dot(z, f2.reshape(n, n * n).T, precision=_HI)
    prod = jax.lax.dot_general(
        z.reshape(-1, n, n), f2, (((2,), (2,)), ((1,), (1,))), precision=_HI
    )  # (p, before, c)
    return prod.sum(0)


def best(f0, f1, f2, keep, v, *, n, big_n, split="small"):
    y = _blocks_once(v, n, big_n)
    f2m = f2.reshape(n, n * n)
    out = [jnp.zeros((1,), v.dtype)]
    for j in range(1, big_n + 1):
        m = n ** (j - 1)
        acc = jnp.dot(f1, y[j].reshape(n, m), precision=_HI).reshape(-1)  # mode 0
        if j >= 2:  # last mode
            acc = acc + jnp.dot(y[j].reshape(m, n), f1.T, precision=_HI).reshape(-1)
        for i in range(1, j - 1):  # middle modes
            acc = acc + _mid(f1, y[j].reshape(n**i, n, -1), n**i)
        for i in range(j):  # f0 inserted at mode i of y_{j-1}: an outer product, fused
            ins = jnp.expand_dims(y[j - 1].reshape((n,) * (j - 1)), i)
            shape = [1] * j
            shape[i] = n
            acc = acc + (ins * f0.reshape(shape)).reshape(-1)
        if j < big_n:
            y2 = y[j + 1]
            t = jnp.dot(f2m, y2.reshape(n * n, m), precision=_HI).reshape(-1)  # modes 0, 1
            if j >= 2:  # the last two modes
                sp = split == "always" or (split == "small" and m <= n)
                t = t + _f2_last(f2, y2.reshape(m, n * n), n, sp).reshape(-1)
            for i in range(1, j - 1):
                t = t + _mid(f2m, y2.reshape(n**i, n * n, -1), n**i)
            # the f2 terms read y_{j+1}: masked by its block's flag (a select, not a
            # multiply, so a non-finite entry above the order cannot leak in)
            acc = acc + jnp.where(keep[j + 1], t, 0)
        out.append(jnp.where(keep[j], acc, 0))
    return jnp.concatenate(out)


def best_never(f0, f1, f2, keep, v, *, n, big_n):
    return best(f0, f1, f2, keep, v, n=n, big_n=big_n, split="never")


def best_always(f0, f1, f2, keep, v, *, n, big_n):
    return best(f0, f1, f2, keep, v, n=n, big_n=big_n, split="always")


VARIANTS = {
    "natural": natural,
    "rolled_fused": rolled_fused,
    "rolled_split": rolled_split,
    "batched": batched,
    "einsum": einsum,
    "batched_ob": batched_ob,
    "kcat": kcat,
    "kcat_noob": kcat_noob,
    "best": best,
    "best_never": best_never,
    "best_always": best_always,
}


ONLY = None
LOOP = 0  # --loop K: time K chained matvecs inside one compiled program (per matvec)


def _chain(mv, x, xp=jnp):
    """K matvecs, each normalized (so the chain stays finite); a steady state: the blocks are
    warm in cache and the call's dispatch is paid once."""
    for _ in range(LOOP):
        x = mv(x)
        x = x / xp.max(xp.abs(x))
    return x


def _looped(fn, *args):
    return jax.jit(lambda f0, f1, f2, keep, x: _chain(lambda z: fn(f0, f1, f2, keep, z), x))


CPU = False  # --cpu: report process CPU time instead of wall time


def _hlo_ops(compiled) -> int:
    """Instructions of the optimized HLO's entry computation (fusions count once)."""
    entry = compiled.as_text().split("ENTRY", 1)[1]
    body = entry.split("\n}", 1)[0]
    return sum(1 for line in body.splitlines() if " = " in line)


def _flops(compiled) -> float:
    c = compiled.cost_analysis()
    c = c[0] if isinstance(c, list) else c
    return float(c.get("flops", np.nan))


def measure(n: int, big_n: int, rounds: int = 15, mm: int = 2048, only=None):
    """Interleaved rounds; wall time and process CPU time (the latter is what a loaded,
    shared machine distorts least: it counts the cycles the call used, not its waits)."""
    only = only or ONLY
    F0, F1, F2 = _problem(n)
    field = qj.DenseField(F0, F1, F2)
    op = qj.carleman(qj.field_map(field, 0.1), big_n)
    keep = jnp.arange(big_n + 1) <= op.order
    rng = np.random.default_rng(1)
    v = jnp.asarray(rng.standard_normal(op.dim), jnp.float32)  # arbitrary, non-symmetric
    cur = jax.jit(qj.CarlemanOperator.flat_generator)
    ref = np.asarray(cur(op, v))
    if LOOP:
        cur = jax.jit(lambda op, x: _chain(op.flat_generator, x))
        ref = np.asarray(cur(op, v))
    A = _scipy_generator(*(np.asarray(x) for x in (F0, F1, F2.reshape(n, n * n))), big_n)
    vn = np.asarray(v)
    err_sp = float(np.max(np.abs(A @ vn - ref)) / np.max(np.abs(ref)))
    fns = {"current": lambda: cur(op, v), "scipy": lambda: A @ vn}
    if LOOP:
        fns["scipy"] = lambda: _chain(lambda x: A @ x, vn, np)
    info = {"current": (_flops(cur.lower(op, v).compile()), _hlo_ops(cur.lower(op, v).compile()))}
    errs = {"current": 0.0, "scipy": err_sp}

    def current_arrays(f0, f1, f2, keep, x, *, n, big_n):
        # the package's kernel with the operator built inside the program: the same kernel as
        # `current` without the per-call flattening of the operator pytree
        del keep
        o = qj.carleman(qj.field_map(qj.DenseField(f0, f1, f2), 0.1), big_n)
        return o.flat_generator(x)

    def floor(f0, f1, f2, keep, x, *, n, big_n):
        return x * 2  # one pass over the state: the cost of a call that does no work

    for name, fn in {"current_arrays": current_arrays, "floor": floor, **VARIANTS}.items():
        if only and name not in only and name not in ("current_arrays", "floor"):
            continue
        j = jax.jit(partial(fn, n=n, big_n=big_n))
        if LOOP:
            j = _looped(partial(fn, n=n, big_n=big_n), F0, F1, F2, keep)
        c = j.lower(F0, F1, F2, keep, v).compile()
        info[name] = (_flops(c), _hlo_ops(c))
        got = np.asarray(j(F0, F1, F2, keep, v))
        errs[name] = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
        if name == "floor":
            errs[name] = float("nan")
        fns[name] = lambda j=j: j(F0, F1, F2, keep, v)
    a = jnp.ones((mm, mm), jnp.float32)
    mmf = jax.jit(lambda x: x @ x)
    fns["mm"] = lambda: mmf(a)
    for fn in fns.values():
        jax.block_until_ready(fn())
    times = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    order = list(fns)
    shuffle = np.random.default_rng(2)
    for _ in range(rounds):
        # a fresh order every round: a contender timed right after scipy (or the big matmul)
        # finds the caches flushed, and a fixed order would charge that to the same one
        shuffle.shuffle(order)
        for k in order:
            fn = fns[k]
            t0, c0 = time.perf_counter(), time.process_time()
            jax.block_until_ready(fn())
            times[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    med = {k: float(np.median(t)) / max(LOOP, 1) for k, t in (cpu if CPU else times).items()}
    med["mm"] *= max(LOOP, 1)
    rate = 2 * mm**3 / med["mm"]
    flops0 = info["current"][0] / max(LOOP, 1)
    rows = []
    for k in fns:
        if k in ("mm", "scipy"):
            continue
        fl, ops = info[k]
        rows.append(
            (
                k,
                med[k] * 1e3,
                med["scipy"] / med[k],
                med["current"] / med[k],
                flops0 / med[k] / rate,  # same useful FLOPs for every variant
                fl,
                ops,
                errs[k],
            )
        )
    return rows, med, rate, err_sp


def main(argv):
    global ONLY, CPU, LOOP
    if "--patched" in argv:
        CPU = "--cpu" in argv
        for form in ("euler", "discrete"):
            for n, big_n in ((48, 3), (16, 4), (32, 3)):
                patched(n, big_n, form)
                sys.stdout.flush()
        return
    quick = "--quick" in argv
    if "--loop" in argv:
        LOOP = int(argv[argv.index("--loop") + 1])
    CPU = "--cpu" in argv
    if "--only" in argv:
        ONLY = argv[argv.index("--only") + 1].split(",")
    sizes = [(16, 3)] if quick else [(48, 3), (16, 4), (32, 3)]
    rounds = 5 if quick else 15
    if "--rounds" in argv:
        rounds = int(argv[argv.index("--rounds") + 1])
    print(
        f"timing: {'process CPU' if CPU else 'wall'} time, median of {rounds} rounds"
        + (f", per matvec of a chain of {LOOP} in one program" if LOOP else ", one call each")
    )
    for n, big_n in sizes:
        rows, med, rate, err_sp = measure(n, big_n, rounds=rounds, mm=1024 if quick else 2048)
        print(
            f"\n## n={n}, N={big_n}: scipy {med['scipy'] * 1e3:.2f} ms, matmul "
            f"{rate / 1e9:.1f} GFLOP/s, scipy err {err_sp:.1e}"
        )
        print(
            "| variant | ms | vs scipy | vs current | frac of matmul | XLA flops | HLO ops | err |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r[0]} | {r[1]:.3f} | {r[2]:.1f}x | {r[3]:.2f}x | {r[4]:.1%} | {r[5]:.3g} "
                f"| {r[6]} | {r[7]:.1e} |"
            )
        sys.stdout.flush()


# ---- the proposal applied to the package itself (monkeypatched, both compiled here) -------
def _along_batched(mat, z, axis: int, n: int, modes: int):
    """Proposed `qsgd_jax._field._along`: a middle mode as a batched matmul (natural layout)."""
    before = n**axis
    z3 = z.reshape(before, n**modes, -1)
    if before == 1:
        return (mat @ z3[0])[None]
    if z3.shape[2] == 1:
        return (z3[:, :, 0] @ mat.T)[:, :, None]
    mb = jnp.broadcast_to(mat, (before,) + mat.shape)
    return jax.lax.dot_general(mb, z3, (((2,), (1,)), ((0,), (0,))))  # (before, m, rest)


def _action(o, form):
    # the un-jitted action: `matvec` is an `eqx.filter_jit`, whose cached trace would keep
    # the unpatched `_along`
    return o.generator if form == "euler" else o.discrete_map


def _flat(o, x, form, once=False):
    """`flat_generator` / `flat_discrete`; `once`: each block sliced out of `x` once."""
    blocks = o.unflatten(x)
    if once:
        blocks = jax.lax.optimization_barrier(blocks)
    return o.flatten(_action(o, form)(blocks))


def patched(n: int, big_n: int, form: str, rounds: int = 21):
    """Package kernel as it is vs with the proposed `_along` (and the sliced-once blocks)."""
    import qsgd_jax._field as field_mod

    F0, F1, F2 = _problem(n)
    op = qj.carleman(qj.field_map(qj.DenseField(F0, F1, F2), 0.1), big_n)
    v = jnp.asarray(np.random.default_rng(1).standard_normal(op.dim), jnp.float32)
    old = jax.jit(lambda o, x: _flat(o, x, form)).lower(op, v).compile()
    ref = np.asarray(old(op, v))
    saved = field_mod._along
    field_mod._along = _along_batched
    try:
        new = jax.jit(lambda o, x: _flat(o, x, form)).lower(op, v).compile()
        both = jax.jit(lambda o, x: _flat(o, x, form, once=True)).lower(op, v).compile()
    finally:
        field_mod._along = saved
    fns = {"as is": old, "_along batched": new, "+ sliced once": both}
    errs = {
        k: float(np.max(np.abs(np.asarray(f(op, v)) - ref)) / np.max(np.abs(ref)))
        for k, f in fns.items()
    }
    order = list(fns)
    times = {k: [] for k in fns}
    rng = np.random.default_rng(3)
    for f in fns.values():
        jax.block_until_ready(f(op, v))
    for _ in range(rounds):
        rng.shuffle(order)
        for k in order:
            t0, c0 = time.perf_counter(), time.process_time()
            jax.block_until_ready(fns[k](op, v))
            times[k].append((time.process_time() - c0) if CPU else (time.perf_counter() - t0))
    med = {k: float(np.median(t)) for k, t in times.items()}
    print(f"\n## package kernel, form={form}, n={n}, N={big_n}")
    print("| kernel | ms | vs as is | HLO ops | err |\n|---|---|---|---|---|")
    for k, f in fns.items():
        print(
            f"| {k} | {med[k] * 1e3:.3f} | {med['as is'] / med[k]:.2f}x | {_hlo_ops(f)} "
            f"| {errs[k]:.1e} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
