"""Condition number, target probability and amplification rounds of history-state systems.

$\\kappa(L) = \\sigma_{\\max}/\\sigma_{\\min}$ exactly (SVD, small sizes) or matrix-free: Lanczos
on $L^\\top L$ for $\\sigma_{\\max}^2$ and on $(L^\\top L)^{-1} = L^{-1}L^{-\\top}$ (exact block
substitutions, or lineax CG for general operators) for $1/\\sigma_{\\min}^2$. The target
probability $P$ is the weight of the normalized solution on $t \\in [T, T+p]$, block 1; amplitude
amplification needs $\\lceil \\pi / (4\\sqrt P) \\rceil$ rounds (DESIGN §2). The $T$ vs $T^2$
regimes of $\\kappa$ are a study built on this module: `qsgd_jax.experiments.kappa_scaling`.
"""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, ArrayLike, Float, Inexact, Int

from ._dissipation import _lanczos_extremes
from ._errors import check_finite, check_int_range
from ._history import _BlockSystem

# ---------------------------------------------------------------------------------------------
# Condition number, target probability, report


class ConditionEstimate(eqx.Module):
    """Extreme singular values and condition number of $L$.

    **Fields:** `sigma_max` ($\\|L\\|_2$), `sigma_min` ($\\sigma_{\\min}(L)$); the property
    `kappa` is their ratio.
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
    dtype=None,
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
    - `dtype`: dtype of the probe vectors / dense matrix (default: the default float dtype).
    - `key`: PRNG key of the random start vector (default `jax.random.key(0)`).

    **Returns:** a `ConditionEstimate`.
    """
    dtype = jnp.result_type(float) if dtype is None else dtype
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
    if inverse == "triangular":
        return _lanczos_history(L, key, n, dtype, m)
    if inverse == "cg":
        op = L.as_lineax(dtype) if isinstance(L, _BlockSystem) else L
        return _lanczos_cg(op, key, n, dtype, m, cg_tol, cg_max_steps)
    raise ValueError(f"`inverse` must be 'triangular' or 'cg', got {inverse!r}.")


def _pair(mv, rmv, inv, key, n, dtype, m):
    # The largest Ritz value of L^T L and of (L^T L)^{-1}, from one start vector (same key):
    # the library's Lanczos with full re-orthogonalization, then `eigh_tridiagonal`, a
    # bisection in plain JAX ops, not LAPACK: a batched LAPACK eigensolver (what `vmap` of
    # `eigvalsh` becomes) can deadlock when several virtual CPU devices run it at once, and
    # sweeps shard such vmapped computations over devices. Measured (jax 0.10.2, 4 forced CPU
    # devices, a 64-way vmap of 64 x 64 tridiagonals sharded over them, under jit): no
    # deadlock, largest eigenvalue within 1.3e-14 of scipy's `eigvalsh_tridiagonal` (float64);
    # tests/test_spectrum.py runs that check in a subprocess.
    lmax = _lanczos_extremes(lambda v: rmv(mv(v)), n, dtype, m, key)[-1]
    lmax_inv = _lanczos_extremes(inv, n, dtype, m, key)[-1]
    return ConditionEstimate(sigma_max=jnp.sqrt(lmax), sigma_min=1 / jnp.sqrt(lmax_inv))


@eqx.filter_jit
def _lanczos_history(L, key, n: int, dtype, m: int):
    return _pair(L.mv, L.rmv, lambda v: L.solve(L.solve_transpose(v)), key, n, dtype, m)


@eqx.filter_jit
def _lanczos_cg(op, key, n: int, dtype, m: int, tol: float, max_steps: int):
    rmv = op.transpose().mv
    normal = lx.TaggedLinearOperator(
        lx.FunctionLinearOperator(lambda v: rmv(op.mv(v)), jax.ShapeDtypeStruct((n,), dtype)),
        lx.positive_semidefinite_tag,
    )
    solver = lx.CG(rtol=tol, atol=tol, max_steps=max_steps)
    return _pair(op.mv, rmv, lambda v: lx.linear_solve(normal, v, solver).value, key, n, dtype, m)


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

    **Returns:** $P \\in [0, 1]$.
    """
    X = jnp.asarray(x).reshape(L.num_blocks, L.dim)
    start, stop = L.target_blocks()
    tail = X[start:stop]
    if target is not None:
        tail = tail[:, target] if isinstance(target, slice) else tail[:, jnp.asarray(target)]
    return jnp.sum(jnp.abs(tail) ** 2) / jnp.sum(jnp.abs(X) ** 2)


def amplification_rounds(P: Float[ArrayLike, ""]) -> Float[Array, ""]:
    """Amplitude-amplification rounds $\\lceil \\pi / (4\\sqrt{P}) \\rceil$ to reach $O(1)$.

    **Arguments:**

    - `P`: the target probability (array or float, traceable).

    **Returns:** the number of rounds (a float array).
    """
    return jnp.ceil(jnp.pi / (4 * jnp.sqrt(jnp.asarray(P))))


class HistoryReport(eqx.Module):
    """Figures of a history-state system and its solution (DESIGN §2).

    **Fields:**

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

    **Arguments:**

    - `L`: the history system.
    - `y0`: the initial Carleman state $Y(0)$.
    - `target`: the entries of block 1 (see `target_probability`).
    - `method`: `"dense"`, `"lanczos"` or `"auto"` (for $\\kappa$, see `condition_number`).
    - `num_iters`: Lanczos iterations.
    - `dense_max`: the largest size `"auto"` solves densely.

    **Returns:** a `HistoryReport`.
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
# The affine GD map of a quadratic (the examples of `qsgd_jax.experiments.kappa_scaling`)


def affine_gd_map(
    g: Float[Array, " n"], H: Float[Array, "n n"], eta: Float[ArrayLike, ""]
) -> Float[Array, "n1 n1"]:
    """The degree-1 GD map on the state $(1, u)$: $M = [[1, 0], [-\\eta g, I - \\eta H]]$.

    **Arguments:**

    - `g`: the gradient $g$ at the expansion point.
    - `H`: the Hessian $H$.
    - `eta`: the learning rate $\\eta$.

    **Returns:** the $(n+1) \\times (n+1)$ matrix $M$.
    """
    n = g.shape[0]
    eta = jnp.asarray(eta).astype(g.dtype)
    top = jnp.zeros((1, n + 1), g.dtype).at[0, 0].set(1)
    bottom = jnp.concatenate([-eta * g[:, None], jnp.eye(n, dtype=g.dtype) - eta * H], axis=1)
    return jnp.concatenate([top, bottom], axis=0)
