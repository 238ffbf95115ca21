"""The history-state linear system that a quantum linear-system algorithm solves.

For per-step maps $M_t$ ($t = 1..T$) on $\\mathbb{R}^d$ and $p$ idle steps (DESIGN §2,
"History-state linear system"),

$$L = I - \\sum_{t=1}^{T} |t\\rangle\\langle t-1| \\otimes M_t
        - \\sum_{t=T+1}^{T+p} |t\\rangle\\langle t-1| \\otimes I,\\qquad
  b = |0\\rangle \\otimes Y(0),$$

whose solution stacks the trajectory $x_t = M_t x_{t-1}$ followed by $p$ copies of $x_T$.

**The article's form is $p = 0$, the default.** The published system (Liu et al. 2024, Eq. 6)
is block lower-bidiagonal with $I$ on the diagonal and $-M_t$ below it, $T + 1$ blocks and no
idle padding. Padding ($p > 0$ copies of $x_T$, as in the PNAS and Berry–Childs–Ostrander–Wang
constructions) is offered as an option: it raises the probability of measuring a final-time
block, $P$, at the price of $p$ more blocks. The article places the inhomogeneous term $b$ in
every block of the right-hand side, $(\\hat y_\\text{in}, b, \\dots, b)$; here it is carried by
the constant component $y_0 \\equiv 1$ of the state, which gives the same trajectory.

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

from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Inexact, Int

from ._errors import check_finite, check_int_range, check_memory, is_concrete
from ._evolution import TruncatedTaylor
from ._misc import ceil_log2
from ._taylor import apply, as_operator

Kind = Literal["constant", "stacked", "function"]


class StepMaps(eqx.Module):
    """The per-step maps $M_1..M_T$ (or generators $A_1..A_T$) in one of three forms.

    **Fields:** `ops`, `fn`, `kind`:

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
    """Normalize per-step maps (see `StepMaps`), validating shapes and finiteness.

    **Arguments:** `maps` (in the form given by `kind`), `num_steps` ($T$), `kind`.

    **Returns:** a `StepMaps`.
    """
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

    def as_lineax(self, dtype=None) -> lx.FunctionLinearOperator:
        """$L$ as a `lineax.FunctionLinearOperator` on flat vectors of `dtype` (default float)."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        return lx.FunctionLinearOperator(self.mv, jax.ShapeDtypeStruct((self.size,), dtype))

    def to_dense(self, dtype=None, memory_limit: int | None = None) -> Inexact[Array, "D D"]:
        """Dense $L$ (memory-checked), of `dtype` (default: the default float dtype)."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        itemsize = jnp.dtype(dtype).itemsize
        check_memory(
            f"dense history matrix of size {self.size}", 2 * self.size**2 * itemsize, memory_limit
        )
        return jax.vmap(self.mv, in_axes=1, out_axes=1)(jnp.eye(self.size, dtype=dtype))

    @property
    def qubits(self) -> int:
        """$\\lceil\\log_2(\\text{blocks})\\rceil + \\lceil\\log_2 d\\rceil$ (time + state)."""
        return ceil_log2(self.num_blocks) + ceil_log2(self.dim)

    def target_blocks(self) -> tuple[int, int]:
        """Block range `[start, stop)` of the times $t \\in [T, T+p]$."""
        return self.num_blocks - self.idle - 1, self.num_blocks


class HistorySystem(_BlockSystem):
    """$L = I - \\sum_t |t\\rangle\\langle t-1|\\otimes M_t - \\sum_{idle}|t\\rangle\\langle t-1|
    \\otimes I$, matrix-free. Build with `history_system`.

    **Fields:** `maps` (the `StepMaps`), `num_steps` $T$, `dim` $d$, `num_blocks`, `idle` $p$.
    """

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
    """The history-state system $L$ for per-step maps $M_t$, $T$ steps and $p$ idle steps
    ($p = 0$: the article's Eq. 6, see the module docstring).

    **Arguments:**

    - `maps`: the per-step map(s) $M_t$ in the form given by `kind` (see `StepMaps`).
    - `num_steps`: $T \\ge 0$.
    - `idle`: $p \\ge 0$ idle copies of $x_T$ (default 0, the article's form; $p > 0$ is the
      padded variant).
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

    **Fields:** `generators` (the `StepMaps` of $A_t$), `h`, `num_steps`, `order` $K$, `dim`,
    `num_blocks`, `idle`.

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
    order: int | None = None,
    idle: int = 0,
    *,
    method=None,
    kind: Kind = "constant",
    dim: int | None = None,
) -> TaylorHistorySystem:
    """The Berry–Childs–Ostrander–Wang system: each step expanded into $K+1$ Taylor blocks.

    **Arguments:**

    - `generators`: $A_t$ (the generator of step $t$; form given by `kind`, see `StepMaps`).
    - `num_steps`: $T$ GD steps; each applies $T_K(hA_t)$ (per segment, see `method`).
    - `h`: the segment length $h$ (traced; $\\eta / r$ for $r$ segments).
    - `order`: $K \\ge 0$ (static: it fixes the block layout); or give `method`.
    - `idle`: $p$ idle copies of $x_{T,0}$ (default 0, unpadded as in the article; BCOW pad).
    - `method`: a `TruncatedTaylor(K, segments)` with a concrete $K$: its $K$, and its $r$
      segments per GD step (the system then has $Tr$ Taylor steps, step $t$'s generator on
      each of its segments).
    - `kind`, `dim`: as `history_system`.

    **Returns:** a `TaylorHistorySystem` with $T r (K+1) + p + 1$ blocks.
    """
    check_int_range("num_steps", num_steps, 0)
    check_int_range("idle", idle, 0)
    segments = 1
    if method is not None:
        if order is not None:
            raise ValueError("pass the Taylor order as `order` or as `method`, not both.")
        if not isinstance(method, TruncatedTaylor):
            raise TypeError(
                f"`method` must be a `TruncatedTaylor` (the system's blocks are its Taylor "
                f"terms), got {method!r}."
            )
        if not is_concrete(method.K):
            raise ValueError("`method.K` must be concrete: it fixes the block layout.")
        order, segments = int(method.K), method.segments
    if not isinstance(order, int | np.integer) or order < 0:
        raise ValueError(
            f"`order` K must be a Python int >= 0 (it fixes the layout), got {order!r}."
        )
    d = _infer_dim(generators, dim)
    sm = step_maps(generators, num_steps, kind)
    if segments > 1 and kind == "stacked":  # Taylor step i runs on GD step ceil(i / r)
        ops = jax.tree_util.tree_map(lambda x: jnp.repeat(x, segments, axis=0), sm.ops)
        sm = StepMaps(ops=ops, fn=None, kind=kind)
    elif segments > 1 and kind == "function":
        sm = StepMaps(ops=None, fn=_per_segment(sm.fn, segments), kind=kind)
    check_finite("h", h)
    steps = num_steps * segments
    return TaylorHistorySystem(
        dim=d,
        num_blocks=steps * (order + 1) + idle + 1,
        idle=idle,
        generators=sm,
        h=jnp.asarray(h),
        num_steps=steps,
        order=int(order),
    )


def _per_segment(fn, segments: int):
    def step(t, x):
        return fn((t - 1) // segments + 1, x)

    return step
