"""Condition number, target probability and the T vs T^2 regimes of history-state systems.

$\\kappa(L) = \\sigma_{\\max}/\\sigma_{\\min}$ exactly (SVD, small sizes) or matrix-free: Lanczos
on $L^\\top L$ for $\\sigma_{\\max}^2$ and on $(L^\\top L)^{-1} = L^{-1}L^{-\\top}$ (exact block
substitutions, or lineax CG for general operators) for $1/\\sigma_{\\min}^2$. The target
probability $P$ is the weight of the normalized solution on $t \\in [T, T+p]$, block 1; amplitude
amplification needs $\\lceil \\pi / (4\\sqrt P) \\rceil$ rounds (DESIGN §2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Inexact, Int

from ._errors import check_finite, check_int_range
from ._history import _BlockSystem, history_system

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
    idle: Literal["T"] | int = 0,
    method: Literal["dense", "lanczos"] = "lanczos",
    num_iters: int = 64,
    seed: int = 0,
) -> KappaScaling:
    """$\\kappa(L)$ vs $T$ for the affine GD map of an $n$-parameter quadratic, two regimes.

    Dissipative: $H$ with eigenvalues evenly in $[0.5, 3]$ (so $0 < \\eta\\lambda < 2$), random
    $g$. Almost dissipative: the smallest eigenvalue set to $0$ and $g$ given a component
    `drive` along that flat direction, so $u$ drifts linearly and $\\|M^k\\| \\sim k$.
    State $(1, u)$; `idle`: $p$ idle steps, 0 by default (the article's Eq. 6, no padding) or
    `"T"` for $p = T$ (the padded system). Both regimes keep their exponents either way
    (measured, $n = 6$, $T = 25 \\dots 200$, dense SVD: 1.10 vs 1.77 at $p = 0$, 1.09 vs 1.82 at
    $p = T$); padding roughly doubles $\\kappa$.

    **Returns:** a `KappaScaling` with both curves and their fitted exponents.
    """
    if not (idle == "T" or (isinstance(idle, int | np.integer) and idle >= 0)):
        raise ValueError(f"`idle` must be an int >= 0 or 'T' (p = T), got {idle!r}.")
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
            p = int(T) if idle == "T" else int(idle)
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
