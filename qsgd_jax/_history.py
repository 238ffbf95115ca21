"""The history-state linear system that a quantum linear-system algorithm solves.

For per-step maps $M_t$ ($t = 1..T$) on $\\mathbb{R}^d$ and $p$ idle steps (DESIGN §2,
"History-state linear system"),

$$L = I - \\sum_{t=1}^{T} |t\\rangle\\langle t-1| \\otimes M_t
        - \\sum_{t=T+1}^{T+p} |t\\rangle\\langle t-1| \\otimes I,\\qquad
  b = |0\\rangle \\otimes Y(0),$$

whose solution stacks the trajectory $x_t = M_t x_{t-1}$ followed by $p$ copies of $x_T$.
$L$ is unit lower block-triangular, so $L^{-1}$ and $L^{-\\top}$ are exact forward / backward
substitutions; the matrix-free condition-number estimator uses them for $\\sigma_{\\min}$
(Lanczos on $(L^\\top L)^{-1} = L^{-1}L^{-\\top}$) and Lanczos on $L^\\top L$ for
$\\sigma_{\\max}$; a CG-based inverse (lineax) is offered for general operators.

The Berry–Childs–Ostrander–Wang (BCOW) variant expands step $i$ into $K+1$ Taylor blocks:
$x_{i,j} = (hA_i/j)\\, x_{i,j-1}$ ($j = 1..K$) and $x_{i+1,0} = \\sum_j x_{i,j}$.

Per-step maps are given as one operator (time-independent), as a stack (a dense `(T, d, d)`
array or a pytree of operators whose leaves have a leading axis $T$) or as a function
`step(t, x)` of the time index $t = 1..T$ (SGD: mini-batch-dependent maps).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Inexact, Int

from ._errors import check_finite, check_int_range, check_memory
from ._taylor import apply, as_operator

Kind = Literal["constant", "stacked", "function"]


class StepMaps(eqx.Module):
    """The per-step maps $M_1..M_T$ (or generators $A_1..A_T$) in one of three forms.

    - `kind="constant"`: `ops` is one operator (lineax, dense `(d, d)`, or callable `x -> Mx`).
    - `kind="stacked"`: `ops` is a dense `(T, d, d)` array or a pytree of operators whose leaves
      carry a leading axis of length $T$ (e.g. `jax.vmap(lx.MatrixLinearOperator)(Ms)`).
    - `kind="function"`: `fn(t, x)` returns $M_t x$ for the traced time index $t = 1..T$.
    """

    ops: Any
    fn: Callable | None = eqx.field(static=True)
    kind: str = eqx.field(static=True)

    def __call__(self, t: Int[Array, ""], x: Inexact[Array, " d"]) -> Inexact[Array, " d"]:
        if self.kind == "constant":
            return apply(self.ops, x)
        if self.kind == "stacked":
            op_t = jax.tree_util.tree_map(lambda leaf: leaf[t - 1], self.ops)
            return apply(op_t, x)
        return self.fn(t, x)


def step_maps(maps, num_steps: int, kind: Kind = "constant") -> StepMaps:
    """Normalize per-step maps (see `StepMaps`), validating shapes and finiteness."""
    if kind == "constant":
        return StepMaps(ops=as_operator(maps, "maps"), fn=None, kind=kind)
    if kind == "stacked":
        if isinstance(maps, lx.AbstractLinearOperator):
            check_finite("maps", maps)
            ops = maps
        else:
            arr = jnp.asarray(maps)
            if arr.ndim != 3 or arr.shape[1] != arr.shape[2] or arr.shape[0] != num_steps:
                raise ValueError(
                    f"stacked `maps` must have shape (T, d, d) with T = num_steps = {num_steps}, "
                    f"got {arr.shape}."
                )
            check_finite("maps", arr)
            ops = jax.vmap(lx.MatrixLinearOperator)(arr)
        return StepMaps(ops=ops, fn=None, kind=kind)
    if kind == "function":
        if not callable(maps):
            raise TypeError(
                f"`maps` must be a callable step(t, x) for kind='function', got {maps!r}"
            )
        return StepMaps(ops=None, fn=maps, kind=kind)
    raise ValueError(f"`kind` must be 'constant', 'stacked' or 'function', got {kind!r}.")


def _infer_dim(maps, dim):
    if dim is not None:
        return int(dim)
    if isinstance(maps, lx.AbstractLinearOperator):
        return int(maps.in_structure().shape[-1])
    if not callable(maps):
        return int(jnp.shape(maps)[-1])
    raise ValueError("`dim` is required when the maps are callables.")


class _BlockSystem(eqx.Module):
    """Shared machinery of unit lower block-triangular systems on flat vectors."""

    dim: int = eqx.field(static=True)
    num_blocks: int = eqx.field(static=True)
    idle: int = eqx.field(static=True)

    @property
    def size(self) -> int:
        """Number of rows of $L$."""
        return self.dim * self.num_blocks

    def rhs(self, y0: Inexact[Array, " d"]) -> Inexact[Array, " D"]:
        """$b = |0\\rangle \\otimes Y(0)$ as a flat vector."""
        y0 = jnp.asarray(y0)
        if y0.shape != (self.dim,):
            raise ValueError(f"`y0` must have shape ({self.dim},), got {y0.shape}.")
        return jnp.zeros((self.num_blocks, self.dim), y0.dtype).at[0].set(y0).reshape(-1)

    def rmv(self, x: Inexact[Array, " D"]) -> Inexact[Array, " D"]:
        """$L^\\top x$ (by `jax.linear_transpose` of `mv`)."""
        return jax.linear_transpose(self.mv, x)(x)[0]

    def solve_transpose(self, b: Inexact[Array, " D"]) -> Inexact[Array, " D"]:
        """$L^{-\\top} b$ (backward substitution, the transpose of `solve`)."""
        return jax.linear_transpose(self.solve, b)(b)[0]

    def solution(self, y0: Inexact[Array, " d"]) -> Inexact[Array, "blocks d"]:
        """The exact solution $L^{-1}(|0\\rangle \\otimes Y(0))$, one row per block."""
        return self.solve(self.rhs(y0)).reshape(self.num_blocks, self.dim)

    def as_lineax(self, dtype=jnp.float64) -> lx.FunctionLinearOperator:
        """$L$ as a `lineax.FunctionLinearOperator` on flat vectors of `dtype`."""
        return lx.FunctionLinearOperator(self.mv, jax.ShapeDtypeStruct((self.size,), dtype))

    def to_dense(self, dtype=jnp.float64, memory_limit: int | None = None) -> Inexact[Array, "D D"]:
        """Dense $L$ (memory-checked)."""
        itemsize = jnp.dtype(dtype).itemsize
        check_memory(
            f"dense history matrix of size {self.size}", 2 * self.size**2 * itemsize, memory_limit
        )
        return jax.vmap(self.mv, in_axes=1, out_axes=1)(jnp.eye(self.size, dtype=dtype))

    @property
    def qubits(self) -> int:
        """$\\lceil\\log_2(\\text{blocks})\\rceil + \\lceil\\log_2 d\\rceil$ (time + state)."""
        return _clog2(self.num_blocks) + _clog2(self.dim)

    def target_blocks(self) -> tuple[int, int]:
        """Block range `[start, stop)` of the times $t \\in [T, T+p]$."""
        return self.num_blocks - self.idle - 1, self.num_blocks


class HistorySystem(_BlockSystem):
    """$L = I - \\sum_t |t\\rangle\\langle t-1|\\otimes M_t - \\sum_{idle}|t\\rangle\\langle t-1|
    \\otimes I$, matrix-free. Build with `history_system`."""

    maps: StepMaps
    num_steps: int = eqx.field(static=True)

    def mv(self, x: Inexact[Array, " D"]) -> Inexact[Array, " D"]:
        """$L x$."""
        X = x.reshape(self.num_blocks, self.dim)
        T = self.num_steps
        ts = jnp.arange(1, T + 1)
        MX = jax.vmap(self.maps)(ts, X[:T]) if T > 0 else X[:0]
        prev = jnp.concatenate([jnp.zeros_like(X[:1]), MX, X[T : T + self.idle]], axis=0)
        return (X - prev).reshape(-1)

    def solve(self, b: Inexact[Array, " D"]) -> Inexact[Array, " D"]:
        """$L^{-1} b$ by forward substitution: $x_t = M_t x_{t-1} + b_t$ (one `lax.scan`)."""
        B = b.reshape(self.num_blocks, self.dim)
        T = self.num_steps

        def step(x, tb):
            t, bt = tb
            x = self.maps(t, x) + bt
            return x, x

        x_T, xs = jax.lax.scan(step, B[0], (jnp.arange(1, T + 1), B[1 : T + 1]))
        idle = jnp.cumsum(B[T + 1 :], axis=0) + x_T[None]
        return jnp.concatenate([B[:1], xs, idle], axis=0).reshape(-1)


def history_system(
    maps, num_steps: int, idle: int = 0, *, kind: Kind = "constant", dim: int | None = None
) -> HistorySystem:
    """The history-state system $L$ for per-step maps $M_t$, $T$ steps and $p$ idle steps.

    **Arguments:**

    - `maps`: the per-step map(s) $M_t$ in the form given by `kind` (see `StepMaps`).
    - `num_steps`: $T \\ge 0$.
    - `idle`: $p \\ge 0$ idle copies of $x_T$.
    - `kind`: `"constant"`, `"stacked"` or `"function"`.
    - `dim`: state dimension $d$ (needed for callables).

    **Returns:** a `HistorySystem` with $T+p+1$ blocks of size $d$.
    """
    check_int_range("num_steps", num_steps, 0)
    check_int_range("idle", idle, 0)
    d = _infer_dim(maps, dim)
    sm = step_maps(maps, num_steps, kind)
    return HistorySystem(
        dim=d, num_blocks=num_steps + idle + 1, idle=idle, maps=sm, num_steps=num_steps
    )


class TaylorHistorySystem(_BlockSystem):
    """The BCOW expanded system with $K+1$ Taylor blocks per step. Build with
    `taylor_history_system`.

    Block layout: $(i, j)$ at index $i(K+1) + j$ for $i < T$, $j \\le K$; then
    $x_{T,0}, \\dots, x_{T+p,0}$. Rows: $x_{0,0} = b$; $x_{i,j} - (h/j)A_{i+1}x_{i,j-1} = b$;
    $x_{i+1,0} - \\sum_j x_{i,j} = b$; $x_{T+l} - x_{T+l-1} = b$.
    """

    generators: StepMaps
    h: Float[Array, ""]
    num_steps: int = eqx.field(static=True)
    order: int = eqx.field(static=True)

    def _taylor_blocks(self, t, x0):
        def body(x, j):
            x = self.generators(t, x) * (self.h / j.astype(x.dtype))
            return x, x

        _, xs = jax.lax.scan(body, x0, jnp.arange(1, self.order + 1))
        return xs  # (K, d): the "expected" x_{i,1..K} given x_{i,j-1}

    def mv(self, x: Inexact[Array, " D"]) -> Inexact[Array, " D"]:
        """$L x$."""
        T, K, d = self.num_steps, self.order, self.dim
        X = x.reshape(self.num_blocks, d)
        S = X[: T * (K + 1)].reshape(T, K + 1, d)
        tail = X[T * (K + 1) :]  # x_{T,0} .. x_{T+p,0}
        ts = jnp.arange(1, T + 1)
        hj = self.h / jnp.arange(1, K + 1).astype(x.dtype)
        # x_{i,j} - (h/j) A_i x_{i,j-1}
        AS = jax.vmap(lambda t, s: jax.vmap(lambda v: self.generators(t, v))(s))(ts, S[:, :K])
        inner = S[:, 1:] - hj[None, :, None] * AS
        sums = jnp.sum(S, axis=1)  # sum_j x_{i,j}: feeds x_{i+1,0}
        heads = jnp.concatenate([S[:1, 0], S[1:, 0] - sums[:-1]], axis=0) if T > 0 else S[:0, 0]
        steps = jnp.concatenate([heads[:, None], inner], axis=1).reshape(-1, d)
        if T > 0:
            tail_prev = jnp.concatenate([sums[-1:], tail[:-1]], axis=0)
        else:
            tail_prev = jnp.concatenate([jnp.zeros_like(tail[:1]), tail[:-1]], axis=0)
        return jnp.concatenate([steps, tail - tail_prev], axis=0).reshape(-1)

    def solve(self, b: Inexact[Array, " D"]) -> Inexact[Array, " D"]:
        """$L^{-1} b$ by forward substitution over steps and Taylor blocks."""
        T, K, d = self.num_steps, self.order, self.dim
        B = b.reshape(self.num_blocks, d)
        BS = B[: T * (K + 1)].reshape(T, K + 1, d)
        tail = B[T * (K + 1) :]

        def step(x_head, tb):
            t, bt = tb
            x0 = x_head + bt[0]

            def inner(x, jb):
                j, bj = jb
                x = self.generators(t, x) * (self.h / j.astype(x.dtype)) + bj
                return x, x

            _, xs = jax.lax.scan(inner, x0, (jnp.arange(1, K + 1), bt[1:]))
            blocks = jnp.concatenate([x0[None], xs], axis=0)
            return jnp.sum(blocks, axis=0), blocks

        if T > 0:
            carry, blocks = jax.lax.scan(step, jnp.zeros_like(B[0]), (jnp.arange(1, T + 1), BS))
        else:
            carry, blocks = jnp.zeros_like(B[0]), BS
        tail_x = jnp.cumsum(tail, axis=0) + carry[None]
        return jnp.concatenate([blocks.reshape(-1, d), tail_x], axis=0).reshape(-1)


def taylor_history_system(
    generators,
    num_steps: int,
    h: Float[ArrayLike, ""],
    order: int,
    idle: int = 0,
    *,
    kind: Kind = "constant",
    dim: int | None = None,
) -> TaylorHistorySystem:
    """The Berry–Childs–Ostrander–Wang system: each step expanded into $K+1$ Taylor blocks.

    **Arguments:**

    - `generators`: $A_t$ (the generator of step $t$; form given by `kind`, see `StepMaps`).
    - `num_steps`: $T$; each step applies $T_K(hA_t)$.
    - `h`: the step length $h$ (traced).
    - `order`: $K \\ge 0$ (static: it fixes the block layout).
    - `idle`: $p$ idle copies of $x_{T,0}$.

    **Returns:** a `TaylorHistorySystem` with $T(K+1) + p + 1$ blocks.
    """
    check_int_range("num_steps", num_steps, 0)
    check_int_range("idle", idle, 0)
    if not isinstance(order, int | np.integer) or order < 0:
        raise ValueError(
            f"`order` K must be a Python int >= 0 (it fixes the layout), got {order!r}."
        )
    d = _infer_dim(generators, dim)
    sm = step_maps(generators, num_steps, kind)
    check_finite("h", h)
    return TaylorHistorySystem(
        dim=d,
        num_blocks=num_steps * (order + 1) + idle + 1,
        idle=idle,
        generators=sm,
        h=jnp.asarray(h),
        num_steps=num_steps,
        order=int(order),
    )


# ---------------------------------------------------------------------------------------------
# Condition number, target probability, report


def lanczos_max_eigenvalue(
    matvec: Callable[[Array], Array], v0: Inexact[Array, " D"], num_iters: int
) -> Float[Array, ""]:
    """Largest eigenvalue of a symmetric operator by Lanczos with full reorthogonalization.

    Breakdown (an invariant subspace found before `num_iters`) is handled by continuing with a
    zero vector, which only adds zero Ritz values; use this for positive semi-definite operators.
    """
    m = int(num_iters)
    dt = v0.dtype
    Q = jnp.zeros((m + 1, v0.shape[0]), dt).at[0].set(v0 / jnp.linalg.norm(v0))
    eps = jnp.finfo(dt).eps

    def body(i, state):
        Q, alphas, betas = state
        v = Q[i]
        w = matvec(v)
        a = jnp.vdot(v, w)
        w = w - Q.T @ (Q @ w)
        w = w - Q.T @ (Q @ w)
        b = jnp.linalg.norm(w)
        scale = jnp.abs(a) + jnp.where(i > 0, betas[i - 1], jnp.zeros((), dt))
        ok = b > 1e3 * eps * scale
        Q = Q.at[i + 1].set(jnp.where(ok, w / jnp.where(ok, b, 1), jnp.zeros_like(w)))
        return Q, alphas.at[i].set(a), betas.at[i].set(jnp.where(ok, b, jnp.zeros((), dt)))

    _, alphas, betas = jax.lax.fori_loop(0, m, body, (Q, jnp.zeros(m, dt), jnp.zeros(m, dt)))
    return _tridiag_max_eigenvalue(alphas, betas[:-1])


def _tridiag_max_eigenvalue(a: Float[Array, " m"], b: Float[Array, " m1"]) -> Float[Array, ""]:
    """Largest eigenvalue of the symmetric tridiagonal matrix (diagonal `a`, off-diagonal `b`).

    Sturm-sequence bisection in plain JAX ops rather than LAPACK: a batched LAPACK eigensolver
    (what `vmap` of `eigvalsh` becomes) can deadlock when several virtual CPU devices run it at
    once, and sweeps shard exactly such vmapped computations over devices.
    """
    m = a.shape[0]
    dt = a.dtype
    b2 = jnp.concatenate([jnp.zeros((1,), dt), b**2])  # b2[i] couples rows i-1 and i
    absb = jnp.abs(b)
    radius = jnp.concatenate([absb, jnp.zeros((1,), dt)]) + jnp.concatenate(
        [jnp.zeros((1,), dt), absb]
    )
    lo, hi = jnp.min(a - radius), jnp.max(a + radius)
    tiny = jnp.finfo(dt).tiny

    def count_below(x):  # number of eigenvalues < x (negative pivots of T - xI = LDL^T)
        def body(d, i):
            d = a[i] - x - b2[i] / d
            d = jnp.where(d == 0, -tiny, d)
            return d, d < 0

        _, neg = jax.lax.scan(body, jnp.ones((), dt), jnp.arange(m))
        return jnp.sum(neg)

    def bisect(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        below_all = count_below(mid) == m
        return jnp.where(below_all, lo, mid), jnp.where(below_all, mid, hi)

    _, hi = jax.lax.fori_loop(0, 2 * jnp.finfo(dt).nmant + 8, bisect, (lo, hi))
    return hi


class ConditionEstimate(eqx.Module):
    """Extreme singular values and condition number of $L$.

    - `sigma_max`: $\\|L\\|_2$; `sigma_min`: $\\sigma_{\\min}(L)$; `kappa`: their ratio.
    """

    sigma_max: Float[Array, ""]
    sigma_min: Float[Array, ""]

    @property
    def kappa(self) -> Float[Array, ""]:
        return self.sigma_max / self.sigma_min


def condition_number(
    L,
    *,
    method: Literal["dense", "lanczos"] = "lanczos",
    inverse: Literal["triangular", "cg"] = "triangular",
    num_iters: int = 64,
    dtype=jnp.float64,
    key: jax.Array | None = None,
    cg_tol: float = 1e-10,
    cg_max_steps: int = 2000,
) -> ConditionEstimate:
    """$\\kappa(L) = \\sigma_{\\max}/\\sigma_{\\min}$, exactly (SVD) or matrix-free.

    **Arguments:**

    - `L`: a `HistorySystem` / `TaylorHistorySystem`, or any square `lineax` operator
      (with `inverse="cg"`).
    - `method`: `"dense"`: numpy-free `jnp.linalg.svd` of the assembled matrix (small sizes);
      `"lanczos"`: Lanczos on $L^\\top L$ for $\\sigma_{\\max}^2$ and on $(L^\\top L)^{-1}$ for
      $1/\\sigma_{\\min}^2$.
    - `inverse`: how $(L^\\top L)^{-1}v$ is applied: `"triangular"`: $L^{-1}L^{-\\top}v$ by exact
      substitutions (history systems); `"cg"`: lineax CG on $L^\\top L$.
    - `num_iters`: Lanczos iterations (capped at the size).
    - `dtype`: dtype of the probe vectors / dense matrix.
    - `key`: PRNG key of the random start vector (default `jax.random.key(0)`).

    **Returns:** a `ConditionEstimate`.
    """
    if isinstance(L, _BlockSystem):
        n = L.size
        to_dense = lambda: L.to_dense(dtype)  # noqa: E731
    elif isinstance(L, lx.AbstractLinearOperator):
        n = L.in_size()
        to_dense = L.as_matrix
        if inverse == "triangular":
            raise ValueError("`inverse='triangular'` needs a history system; use inverse='cg'.")
    else:
        raise TypeError(f"`L` must be a history system or a lineax operator, got {type(L)}.")
    if method == "dense":
        s = jnp.linalg.svd(to_dense(), compute_uv=False)
        return ConditionEstimate(sigma_max=s[0], sigma_min=s[-1])
    if method != "lanczos":
        raise ValueError(f"`method` must be 'dense' or 'lanczos', got {method!r}.")
    check_int_range("num_iters", num_iters, 1)
    m = min(int(num_iters), n)
    key = jax.random.key(0) if key is None else key
    v0 = jax.random.normal(key, (n,), dtype)
    if inverse == "triangular":
        return _lanczos_history(L, v0, m)
    if inverse == "cg":
        op = L.as_lineax(dtype) if isinstance(L, _BlockSystem) else L
        return _lanczos_cg(op, v0, m, cg_tol, cg_max_steps)
    raise ValueError(f"`inverse` must be 'triangular' or 'cg', got {inverse!r}.")


def _pair(mv, rmv, inv, v0, m):
    lmax = lanczos_max_eigenvalue(lambda v: rmv(mv(v)), v0, m)
    lmax_inv = lanczos_max_eigenvalue(inv, v0, m)
    return ConditionEstimate(sigma_max=jnp.sqrt(lmax), sigma_min=1 / jnp.sqrt(lmax_inv))


@eqx.filter_jit
def _lanczos_history(L, v0, m: int):
    return _pair(L.mv, L.rmv, lambda v: L.solve(L.solve_transpose(v)), v0, m)


@eqx.filter_jit
def _lanczos_cg(op, v0, m: int, tol: float, max_steps: int):
    n = v0.shape[0]
    rmv = op.transpose().mv
    normal = lx.TaggedLinearOperator(
        lx.FunctionLinearOperator(lambda v: rmv(op.mv(v)), jax.ShapeDtypeStruct((n,), v0.dtype)),
        lx.positive_semidefinite_tag,
    )
    solver = lx.CG(rtol=tol, atol=tol, max_steps=max_steps)
    return _pair(op.mv, rmv, lambda v: lx.linear_solve(normal, v, solver).value, v0, m)


def target_probability(
    L: _BlockSystem,
    x: Inexact[ArrayLike, " D"],
    target: slice | Int[ArrayLike, " k"] | None = None,
) -> Float[Array, ""]:
    """$P = \\sum_{t=T}^{T+p}\\|x_t[\\text{target}]\\|^2 / \\|x\\|^2$ for the normalized solution.

    **Arguments:**

    - `L`: the system (fixes the block layout).
    - `x`: a flat solution vector.
    - `target`: the entries of one block that hold "block 1" ($y_1$) — a slice or an index
      array into the flat state of dimension $d$ (the caller's layout); `None` = whole block.
    """
    X = jnp.asarray(x).reshape(L.num_blocks, L.dim)
    start, stop = L.target_blocks()
    tail = X[start:stop]
    if target is not None:
        tail = tail[:, target] if isinstance(target, slice) else tail[:, jnp.asarray(target)]
    return jnp.sum(jnp.abs(tail) ** 2) / jnp.sum(jnp.abs(X) ** 2)


def amplification_rounds(P: Float[ArrayLike, ""]) -> Float[Array, ""]:
    """Amplitude-amplification rounds $\\lceil \\pi / (4\\sqrt{P}) \\rceil$ to reach $O(1)$."""
    return jnp.ceil(jnp.pi / (4 * jnp.sqrt(jnp.asarray(P))))


class HistoryReport(eqx.Module):
    """Figures of a history-state system and its solution (DESIGN §2).

    - `kappa`, `norm` ($\\|L\\|_2$), `sigma_min`; `target_probability` $P$;
      `amplification_rounds` $\\lceil\\pi/(4\\sqrt P)\\rceil$; `qubits` (time + state registers);
      `size` (rows of $L$); `solution` (blocks × d).
    """

    kappa: Float[Array, ""]
    norm: Float[Array, ""]
    sigma_min: Float[Array, ""]
    target_probability: Float[Array, ""]
    amplification_rounds: Float[Array, ""]
    solution: Inexact[Array, "blocks d"]
    qubits: int = eqx.field(static=True)
    size: int = eqx.field(static=True)


def history_report(
    L: _BlockSystem,
    y0: Inexact[Array, " d"],
    target: slice | Int[ArrayLike, " k"] | None = None,
    *,
    method: Literal["dense", "lanczos", "auto"] = "auto",
    num_iters: int = 64,
    dense_max: int = 1500,
) -> HistoryReport:
    """Solve $L x = |0\\rangle\\otimes Y(0)$ and report $\\kappa$, $\\|L\\|$, $P$, rounds, qubits.

    `method="auto"` uses the exact SVD up to `dense_max` rows and Lanczos beyond.
    """
    y0 = jnp.asarray(y0)
    check_finite("y0", y0)
    if method == "auto":
        method = "dense" if L.size <= dense_max else "lanczos"
    est = condition_number(L, method=method, num_iters=num_iters, dtype=y0.dtype)
    x = L.solve(L.rhs(y0))
    P = target_probability(L, x, target)
    return HistoryReport(
        kappa=est.kappa,
        norm=est.sigma_max,
        sigma_min=est.sigma_min,
        target_probability=P,
        amplification_rounds=amplification_rounds(P),
        solution=x.reshape(L.num_blocks, L.dim),
        qubits=L.qubits,
        size=L.size,
    )


# ---------------------------------------------------------------------------------------------
# The paper's two regimes: kappa ~ T (dissipative) vs kappa ~ T^2 (almost dissipative)


def affine_gd_map(
    g: Float[Array, " n"], H: Float[Array, "n n"], eta: Float[ArrayLike, ""]
) -> Float[Array, "n1 n1"]:
    """The degree-1 GD map on the state $(1, u)$: $M = [[1, 0], [-\\eta g, I - \\eta H]]$."""
    n = g.shape[0]
    eta = jnp.asarray(eta).astype(g.dtype)
    top = jnp.zeros((1, n + 1), g.dtype).at[0, 0].set(1)
    bottom = jnp.concatenate([-eta * g[:, None], jnp.eye(n, dtype=g.dtype) - eta * H], axis=1)
    return jnp.concatenate([top, bottom], axis=0)


class KappaScaling(eqx.Module):
    """$\\kappa(T)$ for a dissipative and an almost-dissipative example, with fitted exponents
    ($\\kappa \\propto T^{a}$ by least squares in log-log)."""

    T: Int[Array, " m"]
    kappa_dissipative: Float[Array, " m"]
    kappa_almost: Float[Array, " m"]
    exponent_dissipative: float = eqx.field(static=True)
    exponent_almost: float = eqx.field(static=True)


def kappa_scaling(
    T_values=(25, 50, 100, 200),
    *,
    n: int = 6,
    eta: float = 0.1,
    drive: float = 1.0,
    idle: Literal["T"] | int = "T",
    method: Literal["dense", "lanczos"] = "lanczos",
    num_iters: int = 64,
    seed: int = 0,
) -> KappaScaling:
    """$\\kappa(L)$ vs $T$ for the affine GD map of an $n$-parameter quadratic, two regimes.

    Dissipative: $H$ with eigenvalues evenly in $[0.5, 3]$ (so $0 < \\eta\\lambda < 2$), random
    $g$. Almost dissipative: the smallest eigenvalue set to $0$ and $g$ given a component
    `drive` along that flat direction, so $u$ drifts linearly and $\\|M^k\\| \\sim k$.
    State $(1, u)$, $p$ = `idle` idle steps ($T$ by default).

    **Returns:** a `KappaScaling` with both curves and their fitted exponents.
    """
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = np.linspace(0.5, 3.0, n)
    g = rng.normal(size=n) / math.sqrt(n)
    H_d = (Q * lam) @ Q.T
    lam_a = lam.copy()
    lam_a[0] = 0.0
    H_a = (Q * lam_a) @ Q.T
    g_a = g - (Q[:, 0] @ g) * Q[:, 0] + drive * Q[:, 0]
    out = {}
    for name, (gg, HH) in {"d": (g, H_d), "a": (g_a, H_a)}.items():
        M = affine_gd_map(jnp.asarray(gg), jnp.asarray(HH), eta)
        ks = []
        for T in T_values:
            p = T if idle == "T" else int(idle)
            L = history_system(M, int(T), p)
            ks.append(float(condition_number(L, method=method, num_iters=num_iters).kappa))
        out[name] = np.asarray(ks)
    logT = np.log(np.asarray(T_values, float))
    fit = lambda k: float(np.polyfit(logT, np.log(k), 1)[0])  # noqa: E731
    return KappaScaling(
        T=jnp.asarray(T_values),
        kappa_dissipative=jnp.asarray(out["d"]),
        kappa_almost=jnp.asarray(out["a"]),
        exponent_dissipative=fit(out["d"]),
        exponent_almost=fit(out["a"]),
    )


def _clog2(x: int) -> int:
    return max(0, math.ceil(math.log2(x))) if x > 1 else 0


__all__ = [
    "ConditionEstimate",
    "HistoryReport",
    "HistorySystem",
    "KappaScaling",
    "StepMaps",
    "TaylorHistorySystem",
    "affine_gd_map",
    "amplification_rounds",
    "condition_number",
    "history_report",
    "history_system",
    "kappa_scaling",
    "lanczos_max_eigenvalue",
    "target_probability",
    "taylor_history_system",
]
