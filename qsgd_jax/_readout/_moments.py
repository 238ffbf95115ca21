r"""The sampled read-out's exact per-entry moments: what the Gaussian surrogate draws with.

For real amplitudes the mean and variance of $\hat\psi_i$ under the sampler (`Sampled`)
are computed from the exact law of the basis count, including the sign errors of unresolved
entries (`tomography_mean`, `tomography_std`); for complex ones the delta method, tapered
where the entry is unresolved.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Inexact


def real_dtype(x):
    """The real dtype of `x` (float64 for complex128)."""
    return jnp.finfo(x.dtype).dtype


# The surrogate's moments (see `tomography_mean`): below _LAM_EXACT expected basis counts the
# sums over the basis count are exact; above, the expansion in 1/lambda (relative error of
# the variance < 0.1 %) and sign errors below 1e-12.
_LAM_EXACT = 30.0
_N_TERMS = 80  # basis counts 0..79: the Bin(N, p) tail beyond is < 1e-15 for N p < 30
_TABLE_POINTS = 1025


@functools.cache
def _sign_error_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The sign-error term $H_\pm(\lambda) = \sum_{n\ge1} \mathrm{Poi}(n; \lambda)\sqrt n\,
    w_\pm(\lambda, n)$ tabulated on a grid.

    $w_+ = P(c_+ < c_-)$, $w_- = P(c_+ \le c_-)$ with independent $c_\pm \sim
    \mathrm{Poi}((\sqrt\lambda \pm \sqrt n)^2/4)$: the interference counts that agree and
    disagree with the true sign, given $n$ basis counts. Ties go to "+" in the sampler, hence
    the two tables. Grid uniform in $\sqrt\lambda$ on $[0, \sqrt{30}]$; float64 numpy, once.
    """
    u = np.linspace(0.0, math.sqrt(_LAM_EXACT), _TABLE_POINTS)
    lam = u**2
    n = np.arange(1, 121, dtype=np.float64)
    k = np.arange(0, 121, dtype=np.float64)
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, 122)))])

    def poisson(x, mu):  # pmf of Poi(mu) at integer x, mu >= 0 (broadcast)
        with np.errstate(divide="ignore", invalid="ignore"):
            logp = x * np.log(mu) - mu - log_fact[x.astype(int)]
        return np.where(mu > 0, np.exp(logp), (x == 0).astype(np.float64))

    lam_, n_ = lam[:, None, None], n[None, :, None]
    mu_p = (np.sqrt(lam_) + np.sqrt(n_)) ** 2 / 4
    mu_m = (np.sqrt(lam_) - np.sqrt(n_)) ** 2 / 4
    pmf_p = poisson(k[None, None, :], mu_p)
    pmf_m = poisson(k[None, None, :], mu_m)
    cdf_p = np.cumsum(pmf_p, axis=2)
    below = np.concatenate([np.zeros_like(cdf_p[..., :1]), cdf_p[..., :-1]], axis=2)
    w_plus = np.sum(pmf_m * below, axis=2)  # P(c+ < c-)
    w_minus = np.sum(pmf_m * cdf_p, axis=2)  # P(c+ <= c-)
    weight = poisson(n[None, :], lam[:, None]) * np.sqrt(n)[None, :]
    return lam, np.sum(weight * w_plus, axis=1), np.sum(weight * w_minus, axis=1)


def tomography_mean(psi: Inexact[Array, " s"], shots: ArrayLike) -> Inexact[Array, " s"]:
    r"""Mean $m_i = E[\hat\psi_i]$ of the sampled estimate (real amplitudes; exact law).

    With $a = |\psi_i|$, $\lambda = N a^2$ and $n \sim \mathrm{Bin}(N, a^2)$ basis counts,
    $\hat\psi_i = \hat\sigma_i\sqrt{n/N}$ where the sign is wrong with probability
    $w_\pm(n)$ (interference round, ties counted as "+"), so

    $$m_i = \mathrm{sign}(\psi_i)\, N^{-1/2}\big(E\sqrt n - 2E[\sqrt n\, w_\pm(n)]\big),
    \qquad E[\hat\psi_i^2] = E[n/N] = a^2 \text{ exactly}.$$

    For $\lambda < 30$ both expectations are sums over $n < 80$: $E\sqrt n$ under the exact
    binomial law; the sign term with Poisson counts (`_sign_error_table`, relative error
    $O(a^2)$, i.e. only when $N < 30/a^2$ with $a^2$ not small). For $\lambda \ge 30$,
    $m_i = \psi_i(1 - \epsilon)$ with $\epsilon = \frac{q}{8\lambda} -
    \frac{q(1 - 2a^2)/16 - 15q^2/128}{\lambda^2}$, $q = 1 - a^2$ (moments of the binomial;
    the sign term is below $10^{-12}$). Complex amplitudes: $m = \psi$ (delta method).

    **Arguments:**

    - `psi`: the normalized state on the support.
    - `shots`: shots $N$ per round.

    **Returns:** the mean, dtype of `psi`.
    """
    m, _ = real_moments(psi, shots)
    return m


def real_moments(psi, shots):
    """(mean, variance) of the sampled estimate per entry; complex: (psi, None)."""
    if jnp.iscomplexobj(psi):
        return psi, None
    dtype = psi.dtype
    n = jnp.asarray(shots).astype(dtype)
    p = psi**2
    lam = n * p
    # Resolved entries: expansion in 1/lambda (lambda clipped so the other branch stays finite).
    lam_b = jnp.maximum(lam, _LAM_EXACT)
    q = 1 - p
    eps = q / (8 * lam_b) - (q * (1 - 2 * p) / 16 - 15 * q**2 / 128) / lam_b**2
    mean_b = psi * (1 - eps)
    var_b = p * eps * (2 - eps)  # p (1 - (1 - eps)^2) without cancellation
    # Unresolved entries: exact sums over the basis count n = 0 .. _N_TERMS - 1.
    small = lam < _LAM_EXACT
    p_s = jnp.clip(jnp.where(small, p, 0), 0, 1 - 1e-6)
    lam_s = jnp.where(small, lam, 0)
    pos = lam_s > 0
    lam_safe = jnp.where(pos, lam_s, 1)
    log1mp = jnp.log1p(-p_s)

    def term(carry, j):
        # P(j) / P(j - 1) = (N - j + 1) p / (j (1 - p)); zero once j > N
        log_pmf, acc = carry
        factor = lam_safe - (j - 1) * p_s
        alive = pos & (factor > 0)
        log_pmf = log_pmf + jnp.log(jnp.where(alive, factor, 1)) - jnp.log(j) - log1mp
        acc = acc + jnp.sqrt(j) * jnp.where(alive, jnp.exp(log_pmf), 0)
        return (jnp.where(alive, log_pmf, -jnp.inf), acc), None

    # a scan, not an unrolled sum: O(s) memory and a small program
    js = jnp.arange(1, _N_TERMS).astype(dtype)
    init = (n * log1mp, jnp.zeros_like(psi))  # log P(n = 0)
    (_, sqrt_n_mean), _ = jax.lax.scan(term, init, js)
    grid, h_plus, h_minus = _sign_error_table()
    grid = jnp.asarray(grid, dtype)
    h = jnp.where(
        psi >= 0,
        jnp.interp(lam_s, grid, jnp.asarray(h_plus, dtype)),
        jnp.interp(lam_s, grid, jnp.asarray(h_minus, dtype)),
    )
    sign = jnp.where(psi >= 0, 1, -1).astype(dtype)
    mean_s = sign * (sqrt_n_mean - 2 * h) / jnp.sqrt(n)
    var_s = p - mean_s**2
    mean = jnp.where(small, mean_s, mean_b)
    var = jnp.where(small, var_s, var_b)
    return mean, jnp.maximum(var, 0)


def tomography_std(
    psi: Inexact[Array, " s"], shots: ArrayLike
) -> tuple[Float[Array, " s"], Float[Array, " s"]]:
    r"""Per-entry standard deviations of the sampled estimate about its mean, radial and
    tangential.

    Real amplitudes: exact, $\mathrm{Var}\,\hat\psi_i = |\psi_i|^2 - m_i^2$ with the mean
    $m_i$ of `tomography_mean` (since $\hat\psi_i^2 = n_i/N$ has mean $|\psi_i|^2$). This
    includes the sign errors of unresolved entries ($N|\psi_i|^2 \lesssim 10$): e.g. for
    $\psi_i = -\sqrt p$, $p = 1.3\times10^{-4}$, $N = 10^4$ it is $0.80\,p$, and the mean
    square error $\mathrm{Var} + (m_i - \psi_i)^2 = 2p - 2\psi_i m_i$ is $1.10\,p$. Where
    $N|\psi_i|^2 \gg 1$ it tends to the delta method's $(1 - p_i)/(4N)$; the tangential
    part is 0.

    Complex amplitudes (delta method, tapered): radial $(1 - p_i)/(4N)\,(1 - e^{-4Np_i})$;
    the phase from two interference rounds adds a tangential variance $(1 - \tfrac12 p_i
    \sin^2 2\varphi_i)/N\,(1 - e^{-Np_i})$.

    **Arguments:**

    - `psi`: the normalized state on the support.
    - `shots`: shots $N$ per round.

    **Returns:** `(radial, tangential)` standard deviations, real dtype of `psi`.
    """
    rdtype = real_dtype(psi)
    n = jnp.asarray(shots).astype(rdtype)
    p = jnp.abs(psi) ** 2
    if jnp.iscomplexobj(psi):
        var_r = (1 - p) / (4 * n) * (1 - jnp.exp(-4 * n * p))
        sin2 = jnp.sin(2 * jnp.angle(psi)) ** 2
        var_t = (1 - p * sin2 / 2) / n * (1 - jnp.exp(-n * p))
    else:
        _, var_r = real_moments(psi, shots)
        var_t = jnp.zeros_like(p)
    return safe_sqrt(var_r), safe_sqrt(var_t)


def safe_sqrt(x):
    """$\\sqrt{\\max(x, 0)}$ with a zero (not NaN) gradient where $x \\le 0$."""
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1)), 0)
