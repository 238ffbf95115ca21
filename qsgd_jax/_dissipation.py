"""Dissipation diagnostics of a GD map: spectrum of $F_1$, $\\rho(F_1)$, the PNAS number $R$.

Discrete dissipation (`docs/math/carleman.md`):
$\\rho(F_1) < 1 \\iff 0 < \\eta\\lambda_i(H) < 2$ for every
active $i$. Continuous (PNAS, Liu et al. 2021): $\\operatorname{Re}\\lambda_1(f_1) < 0$ and

$$R = \\frac{\\lVert u_{in}\\rVert\\,\\lVert f_2\\rVert
          + \\lVert f_0\\rVert / \\lVert u_{in}\\rVert}{|\\operatorname{Re}\\lambda_1(f_1)|}$$

(spectral norms; $\\lambda_1$ the eigenvalue of $f_1$ of largest real part). For $f_0 = 0$ and
$R < 1$ the order-$N$ Carleman error obeys $\\lVert u(t) - y_1(t)\\rVert \\le \\lVert u_{in}
\\rVert R^N (1 - e^{\\operatorname{Re}\\lambda_1 t})^N$.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Inexact, PRNGKeyArray

from ._errors import check_int_range, check_memory
from ._field import DenseField
from ._lanczos import lanczos_tridiag
from ._polynomial import PolynomialMap

DENSE_LIMIT = 2048
"""Active-set size up to which `method="auto"` uses a dense eigendecomposition."""

DEFAULT_DEPTH = 64
"""Default Krylov depth of `method="lanczos"`."""


class Dissipation(eqx.Module):
    """Dissipation report of a `PolynomialMap` (see the module docstring for the math).

    **Fields:**

    - `eigenvalues`: eigenvalues of $f_1 = -H$ (all of them for `method="dense"`, Ritz values
      for `"lanczos"`); complex when $f_1$ is not tagged symmetric.
    - `spectral_radius`: $\\rho(F_1) = \\max_i |1 + \\eta\\mu_i|$.
    - `re_lambda1`: $\\operatorname{Re}\\lambda_1(f_1)$, the largest real part.
    - `f0_norm`, `f2_norm`, `u_in_norm`: the norms entering $R$ (`f2_norm` is NaN when not
      computed: matrix-free degree-2 fields above `DENSE_LIMIT`).
    - `r_number`: $R$ (inf if $u_{in} = 0$ while $f_0 \\ne 0$ or $\\operatorname{Re}\\lambda_1
      \\ge 0$).
    - `method`: "dense" or "lanczos".
    """

    eigenvalues: Inexact[Array, " k"]
    spectral_radius: Float[Array, ""]
    re_lambda1: Float[Array, ""]
    f0_norm: Float[Array, ""]
    f2_norm: Float[Array, ""]
    u_in_norm: Float[Array, ""]
    r_number: Float[Array, ""]
    method: str = eqx.field(static=True)

    @property
    def discrete_dissipative(self) -> Bool[Array, ""]:
        """$\\rho(F_1) < 1$: every active mode of the linearized GD map contracts."""
        return self.spectral_radius < 1

    @property
    def continuous_dissipative(self) -> Bool[Array, ""]:
        """$\\operatorname{Re}\\lambda_1(f_1) < 0$."""
        return self.re_lambda1 < 0

    def pnas_bound(self, t, order) -> Float[Array, "..."]:
        """$\\lVert u_{in}\\rVert R^N (1 - e^{\\operatorname{Re}\\lambda_1 t})^N$ (valid for
        $f_0 = 0$, $R < 1$); `t` is the flow time ($t = k\\eta$ after $k$ GD steps)."""
        t = jnp.asarray(t, self.re_lambda1.dtype)
        return self.u_in_norm * (self.r_number * (1 - jnp.exp(self.re_lambda1 * t))) ** order

    def summary(self) -> str:
        """A human-readable verdict."""
        rho, r = float(self.spectral_radius), float(self.r_number)
        verdict = "dissipative" if rho < 1 else "NOT dissipative"
        return (
            f"{verdict}: rho(F1) = {rho:.4g} ({'<' if rho < 1 else '>='} 1), "
            f"Re lambda1(f1) = {float(self.re_lambda1):.4g}, PNAS R = {r:.4g} "
            f"({'R < 1: Carleman error shrinks geometrically in N' if r < 1 else 'R >= 1'}); "
            f"method = {self.method}."
        )


def _lanczos_extremes(matvec, n, dtype, depth, key):
    """Ritz values of $f_1$ from the library's Lanczos (full re-orthogonalization)."""
    v0 = jax.random.normal(key, (n,), dtype)
    alphas, betas = lanczos_tridiag(matvec, v0, depth, reortho=True)
    # a plain-JAX bisection, safe under vmap on several CPU devices (see `_condition`)
    return jax.scipy.linalg.eigh_tridiagonal(alphas, betas, eigvals_only=True)


def unfolding_norm(f2: Inexact[Array, "n n n"]) -> Float[Array, ""]:
    """Spectral norm of the mode-1 unfolding $F \\in \\mathbb{R}^{n \\times n^2}$ of `f2`.

    $\\lVert F\\rVert_2 = \\sqrt{\\lambda_{\\max}(F F^T)}$ from the $n \\times n$ Gram matrix, so
    the memory is $O(n^2)$ beyond `f2` itself (an SVD of $F$ would allocate an $n^2 \\times n^2$
    factor: 415 GB at $n = 567$ in float32).

    **Arguments:**

    - `f2`: the quadratic coefficient tensor, shape `(n, n, n)`.

    **Returns:** $\\lVert F\\rVert_2$ (real, of the precision of `f2`).
    """
    n = f2.shape[0]
    unfold = f2.reshape(n, n * n)
    gram = unfold @ jnp.conj(unfold).T
    gram = 0.5 * (gram + jnp.conj(gram).T)  # exactly Hermitian for eigvalsh
    top = jnp.max(jnp.linalg.eigvalsh(gram))
    return jnp.sqrt(jnp.maximum(top, 0.0)).astype(jnp.finfo(f2.dtype).dtype)


def dissipation_bytes(field, *, method: str = "dense") -> int:
    """Estimated peak bytes of `dissipation` on `field` (every dense intermediate).

    Dense: materializing the field (nothing for a `DenseField`; `to_dense`'s working set
    otherwise), the eigendecomposition of $f_1$ (a few $n^2$ arrays) and the $n \\times n$
    Gram matrix of the $f_2$ unfolding. Lanczos: the Krylov basis, $n \\times$ depth (64).
    Use it to budget diagnostics before running them.

    **Arguments:**

    - `field`: the GD map's field.
    - `method`: `"dense"` or `"lanczos"`.

    **Returns:** the estimate in bytes.
    """
    n, degree = field.n, field.degree
    itemsize = jnp.dtype(field.f0().dtype).itemsize
    if method == "lanczos":
        return int(itemsize * n * (DEFAULT_DEPTH + 4))
    need = 6 * n * n  # f1 copy, eigenvector workspace, the Gram matrix and its eigvalsh
    if not isinstance(field, DenseField):
        need += n * n + (2 * n**3 if degree == 2 else 0)  # materialized f1, f2 and one slab
        num_params = getattr(getattr(field, "active", None), "base", None)
        if num_params is not None:  # a loss field: forward-mode Hessian over all parameters
            need += 2 * n * num_params.shape[0]
    return int(itemsize * need)


def dissipation(
    poly: PolynomialMap,
    u_in: Inexact[Array, " n"] | None = None,
    *,
    method: str = "auto",
    lanczos_depth: int = 64,
    key: PRNGKeyArray | None = None,
    memory_limit: int | None = None,
) -> Dissipation:
    """Spectral dissipation diagnostics of a GD map on its active set.

    **Arguments:**

    - `poly`: the map.
    - `u_in`: the initial condition $u(0)$ entering $R$ (default: zero, so $R = \\infty$ unless
      $f_0 = 0$).
    - `method`: "dense" (full eigendecomposition), "lanczos" (matrix-free Ritz values of $H$,
      needs a symmetric field), or "auto" (dense up to `DENSE_LIMIT` active parameters).
    - `lanczos_depth`: Krylov depth for "lanczos" (at most $n$).
    - `key`: PRNG key of the Lanczos start vector (default `jax.random.key(0)`).
    - `memory_limit`: bytes allowed for the dense diagnostics (`dissipation_bytes`; default:
      see `qsgd_jax._errors`); above it a `MemoryLimitError` is raised before any work.

    **Returns:** a `Dissipation` report.
    """
    field, n = poly.field, poly.n
    if method == "auto":
        method = "dense" if (n <= DENSE_LIMIT or isinstance(field, DenseField)) else "lanczos"
    if method not in ("dense", "lanczos"):
        raise ValueError(f"`method` must be 'auto', 'dense' or 'lanczos', got {method!r}.")
    dtype = poly.dtype
    f0 = field.f0()
    u_in = jnp.zeros((n,), dtype) if u_in is None else jnp.asarray(u_in, dtype)
    if u_in.shape != (n,):
        raise ValueError(f"`u_in` must have shape ({n},), got {u_in.shape}.")
    f2_norm = jnp.asarray(0.0 if field.degree == 1 else np.nan, dtype)
    if method == "dense":
        check_memory(
            f"Dense dissipation diagnostics of a degree-{field.degree} map with n = {n}",
            dissipation_bytes(field, method="dense"),
            memory_limit,
        )
        dense = field.to_dense(memory_limit=memory_limit)
        if dense.symmetric:
            eigs = jnp.linalg.eigvalsh(dense.f1)
        else:
            eigs = jnp.linalg.eigvals(dense.f1)
        if dense.f2 is not None:
            f2_norm = unfolding_norm(dense.f2)
    else:
        if not field.symmetric:
            raise ValueError("`method='lanczos'` needs a symmetric f1 (a loss-derived field).")
        check_int_range("lanczos_depth", lanczos_depth, 1, n)
        key = jax.random.key(0) if key is None else key
        eigs = _lanczos_extremes(field.linear, n, dtype, lanczos_depth, key)
    real_dtype = jnp.finfo(dtype).dtype
    rho = jnp.max(jnp.abs(1 + poly.eta.astype(eigs.dtype) * eigs)).astype(real_dtype)
    re1 = jnp.max(jnp.real(eigs)).astype(real_dtype)
    f0_norm = jnp.linalg.norm(f0)
    u_norm = jnp.linalg.norm(u_in)
    drive = jnp.where(f0_norm == 0, 0.0, f0_norm / u_norm)
    r = (u_norm * f2_norm + drive) / jnp.abs(re1)
    r = jnp.where(re1 < 0, r, jnp.inf).astype(real_dtype)
    return Dissipation(eigs, rho, re1, f0_norm, f2_norm, u_norm, r, method)
