"""The library's one Lanczos iteration: tridiagonalization of a symmetric operator.

$Q^\\top A Q = T$ from a start vector, with full re-orthogonalization (the basis stored) or
without ($O(d)$ memory). The SLQ spectra (`slq_spectrum`, and one jitted step at a time in
`hessian_spectrum`'s host loop), the condition number $\\kappa(L)$ (`condition_number`) and the
matrix-free dissipation diagnostics all run it.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._errors import check_memory, default_memory_limit

REORTHO = ("auto", "full", "none")


# Not matfree's `decomp.tridiag_sym`: it allocates all `num_steps + 1` Lanczos vectors even with
# `reortho="none"` (matfree 0.6.3: `_tridiag_forward` pre-allocates the basis), which at model
# scale is exactly the memory the O(d) option exists to avoid, and it has no single-step form
# for `hessian_spectrum`'s host loop (one jitted step per call).
def lanczos_tridiag(
    matvec: Callable, v0: Float[Array, " d"], num_steps: int, *, reortho: bool = True
) -> tuple[Array, Array]:
    """Lanczos tridiagonalization $Q^\\top A Q = T$ from start vector `v0`; returns `T`'s diagonals.

    With `reortho=True` all basis vectors are kept (memory $(k{+}1) d$) and every new vector is
    orthogonalized against them twice (classical Gram–Schmidt, twice is enough); with
    `reortho=False` only three vectors live at a time (memory $O(d)$), at the price of ghost
    copies of converged Ritz values. On breakdown ($\\beta_j \\approx 0$: an invariant subspace
    was found) the remaining steps are decoupled ($\\beta = 0$) with diagonal $\\alpha_0$, so they
    get zero quadrature weight and do not move the extreme Ritz values.

    **Arguments:**

    - `matvec`: the symmetric operator $v \\mapsto A v$ on flat vectors.
    - `v0`: the start vector (normalized here).
    - `num_steps`: the Krylov depth $k$ (static).
    - `reortho`: full re-orthogonalization against the stored basis (static).

    **Returns:** `(alphas, betas)`, the diagonal (length $k$) and off-diagonal (length $k-1$)
    of $T$.
    """
    state = _lanczos_init(v0, num_steps, reortho)
    state = jax.lax.fori_loop(
        0, num_steps, lambda j, st: _lanczos_step(matvec, j, st, num_steps, reortho), state
    )
    return _lanczos_result(state)


def _lanczos_init(v0, num_steps, reortho):
    d, dtype = v0.shape[0], v0.dtype
    q0 = v0 / jnp.linalg.norm(v0)
    basis = jnp.zeros((num_steps, d), dtype).at[0].set(q0) if reortho else None
    zero = jnp.zeros((), dtype)
    return (
        q0,
        jnp.zeros((d,), dtype),
        zero,
        basis,
        jnp.zeros((num_steps,), dtype),
        jnp.zeros((num_steps,), dtype),
        zero,
        jnp.array(False),
    )


def _lanczos_result(state):
    *_, alphas, betas, _, _ = state
    return alphas, betas[:-1]


def _lanczos_step(matvec, j, state, num_steps, reortho):
    """One Lanczos step $j$ (see `lanczos_tridiag`); `state` from `_lanczos_init`."""
    q, q_prev, b_prev, basis, alphas, betas, scale, broken = state
    tol = float(jnp.finfo(q.dtype).eps) ** 0.75
    w = matvec(q) - b_prev * q_prev
    a = jnp.vdot(q, w)
    w = w - a * q
    if reortho:
        w = w - basis.T @ (basis @ w)
        w = w - basis.T @ (basis @ w)
    b = jnp.linalg.norm(w)
    scale = jnp.maximum(scale, jnp.abs(a) + b + b_prev)
    broken = broken | (b <= tol * scale)
    b = jnp.where(broken, jnp.zeros_like(b), b)
    q_next = jnp.where(broken, jnp.zeros_like(w), w / jnp.where(broken, jnp.ones_like(b), b))
    alphas = alphas.at[j].set(jnp.where(broken & (b_prev == 0) & (j > 0), alphas[0], a))
    betas = betas.at[j].set(b)
    if reortho:
        basis = basis.at[jnp.minimum(j + 1, num_steps - 1)].set(
            jnp.where(j + 1 < num_steps, q_next, basis[num_steps - 1])
        )
    return q_next, q, b, basis, alphas, betas, scale, broken


def _gauss_quadrature(alphas, betas):
    # eigh of the dense T, not jax.scipy.linalg.eigh_tridiagonal: the weights need the
    # eigenvectors' first components, and that routine computes eigenvalues only.
    t = jnp.diag(alphas) + jnp.diag(betas, 1) + jnp.diag(betas, -1)
    nodes, vecs = jnp.linalg.eigh(t)
    return nodes, jnp.square(vecs[0])


def lanczos_memory_bytes(dim: int, num_steps: int, reortho: bool, itemsize: int = 4) -> int:
    """Estimated bytes of one Lanczos run: the basis when re-orthogonalizing, else 6 vectors.

    **Arguments:**

    - `dim`: the operator's dimension $d$.
    - `num_steps`: the Lanczos depth $k$.
    - `reortho`: whether the basis is stored (full re-orthogonalization).
    - `itemsize`: bytes per float.

    **Returns:** the estimate in bytes, $(k + 4)\\,d$ or $6\\,d$ floats.
    """
    return int(itemsize * dim * ((num_steps + 4) if reortho else 6))


def _choose_reortho(reortho, dim, num_steps, itemsize, memory_limit) -> bool:
    if reortho not in REORTHO:
        raise ValueError(f"`reortho` must be one of {REORTHO}, got {reortho!r}.")
    limit = default_memory_limit() if memory_limit is None else int(memory_limit)
    need = lanczos_memory_bytes(dim, num_steps, True, itemsize)
    if reortho == "full":
        check_memory(f"Lanczos with full re-orthogonalization ({num_steps} x {dim})", need, limit)
        return True
    if reortho == "none":
        return False
    return need <= limit
