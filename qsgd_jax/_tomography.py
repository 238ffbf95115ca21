r"""Vector-state tomography simulated from its measurement statistics (DESIGN §2, read-out).

The window's output is a normalized state $|\psi\rangle \propto y_1$ on the active set
(dimension $s$). Its amplitudes are estimated the way a quantum computer would
(Kerenidis–Prakash vector-state tomography, arXiv:1812.03584, Alg. 4.1):

1. **basis round**: $N$ copies measured in the computational basis give multinomial counts
   $n_i \sim \mathrm{Mult}(N, |\psi_i|^2)$ and magnitudes $r_i = \sqrt{n_i/N}$;
2. **interference round(s)**: $N$ copies of $(|0\rangle|\psi\rangle + e^{i\alpha}|1\rangle
   |r\rangle)/\sqrt2$, Hadamard on the control, measured: outcome $(b, i)$ has probability
   $\tfrac14|\psi_i + (-1)^b e^{i\alpha} r_i|^2$, so $P(0,i) - P(1,i) = r_i
   \mathrm{Re}(e^{-i\alpha}\psi_i)$. Real amplitudes need one round ($\alpha = 0$, sign
   $\hat\sigma_i = \mathrm{sign}(n_{0i} - n_{1i})$), complex ones two ($\alpha = 0, \pi/2$,
   phase $\hat\varphi_i = \arg[(n_{0i} - n_{1i}) + i(n'_{0i} - n'_{1i})]$).

The estimate is $\hat\psi_i = r_i \hat\sigma_i$ (or $r_i e^{i\hat\varphi_i}$). Counts are
drawn exactly, by splitting the shots down a binary tree of conditional binomials
(`multinomial_counts`), so the cost is $O(s)$ draws whatever the number of shots and `shots`
is a traced argument (sweeps over shots do not recompile).
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Inexact, Int, PRNGKeyArray

from ._errors import check_finite, check_int_range, check_positive, is_concrete

_NormKind = Literal["l2", "linf"]
_Method = Literal["sample", "gaussian"]

# Constants of the sample-complexity bounds (see `shots_for_error`).
_LINF_CONST = 25.0  # (5 t)^2 / t^2: per-entry error < 5 t on the good event
_FAIL_EVENTS = 6.0  # two-sided Chernoff bounds on n_i, n_0i, n_1i
_COMPLEX_FACTOR = 5.0  # phase noise: E|e_i|^2 ~ 5/(4N) complex vs 1/(4N) real


def interference_rounds(is_complex: bool) -> int:
    """Measurement rounds of $N$ shots each: 2 for real amplitudes, 3 for complex ones."""
    return 3 if is_complex else 2


def multinomial_counts(
    key: PRNGKeyArray, probs: Float[Array, " k"], shots: ArrayLike
) -> Float[Array, " k"]:
    r"""Exact multinomial counts $n \sim \mathrm{Mult}(N, p)$ with a traced number of shots.

    The shots are split down a binary tree over the $k$ outcomes: a node holding $m$ shots
    sends $\mathrm{Bin}(m, p_L/(p_L + p_R))$ of them left, the rest right. That is the
    multinomial law exactly, needs $k - 1$ binomial draws and $\lceil\log_2 k\rceil$
    sequential levels, and never materializes the $N$ individual outcomes.

    **Arguments:**

    - `key`: PRNG key.
    - `probs`: outcome probabilities (1-D, finite, non-negative, not all zero; only their
      ratios matter).
    - `shots`: number of trials $N$, a finite integer >= 1 (may be traced: then a bad value
      raises at run time, see `tomography`).

    **Returns:** counts in the dtype of `probs`, summing to $N$ (exactly while $N <
    2^{24}$ in float32; above that float rounding is far below the shot noise).
    """
    probs = jnp.asarray(probs)
    if probs.ndim != 1 or probs.shape[0] == 0:
        raise ValueError(f"`probs` must be a non-empty 1-D array, got shape {probs.shape}.")
    if not jnp.issubdtype(probs.dtype, jnp.floating):
        raise TypeError(f"`probs` must be a real float array, got dtype {probs.dtype}.")
    check_finite("probs", probs)
    if is_concrete(probs):
        pn = np.asarray(probs)
        if np.any(pn < 0) or not np.sum(pn) > 0:
            raise ValueError(
                f"`probs` must be non-negative and not all zero, got min {pn.min():.6g} and "
                f"sum {pn.sum():.6g}."
            )
    check_shots(shots)
    shots = jnp.asarray(shots)
    if not is_concrete(probs):
        probs = eqx.error_if(
            probs,
            ~jnp.all(jnp.isfinite(probs)) | jnp.any(probs < 0) | ~(jnp.sum(probs) > 0),
            "`probs` must be finite, non-negative and not all zero (checked at run time: "
            "the value is traced).",
        )
    if is_concrete(shots):
        return _multinomial(key, probs, shots)
    ok = _shots_ok(shots)
    shots = eqx.error_if(
        shots, ~ok, "`shots` must be a finite integer >= 1 (checked at run time: it is traced)."
    )
    # An invalid value would hang the binomial sampler (inf): draw 0 shots and return NaN.
    counts = _multinomial(key, probs, jnp.where(ok, shots, jnp.zeros_like(shots)))
    return jnp.where(ok, counts, jnp.full_like(counts, jnp.nan))


def _multinomial(
    key: PRNGKeyArray, probs: Float[Array, " k"], shots: ArrayLike
) -> Float[Array, " k"]:
    """`multinomial_counts` without input checks (valid `shots` and `probs`)."""
    dtype = probs.dtype
    k = probs.shape[0]
    # Bottom-up pairwise sums; each level padded to even length with zero probability.
    ratios = []
    q = jnp.clip(probs, 0, None)
    while q.shape[0] > 1:
        if q.shape[0] % 2:
            q = jnp.concatenate([q, jnp.zeros((1,), dtype)])
        pairs = q.reshape(-1, 2)
        q = pairs[:, 0] + pairs[:, 1]
        ratios.append(jnp.where(q > 0, pairs[:, 0] / jnp.where(q > 0, q, 1), 0))
    ratios = ratios[::-1]  # top (1 node) first
    counts = jnp.reshape(jnp.asarray(shots).astype(dtype), (1,))
    k_top, k_bottom = jax.random.split(key)
    # Top levels (<= _SCAN_NODES nodes) in one scan over a fixed buffer: one binomial call
    # in the program instead of one per level keeps compilation fast; they are cheap anyway.
    depth = 0
    while depth < len(ratios) and 2**depth <= _SCAN_NODES:
        depth += 1
    if depth:
        width = 2 ** (depth - 1)
        table = jnp.stack([jnp.pad(r, (0, width - r.shape[0])) for r in ratios[:depth]])
        buf = jnp.zeros((2 * width,), dtype).at[0].set(counts[0])

        def step(buf, xs):
            ratio, sub = xs
            nodes = buf[:width]
            left = _split(sub, nodes, ratio)
            return jnp.stack([left, nodes - left], axis=1).reshape(-1), None

        buf, _ = jax.lax.scan(step, buf, (table, jax.random.split(k_top, depth)))
        counts = buf
    bottom = ratios[depth:]
    for ratio, sub in zip(bottom, jax.random.split(k_bottom, max(len(bottom), 1)), strict=False):
        counts = counts[: ratio.shape[0]]  # drop the zero-probability padding node
        left = _split(sub, counts, ratio)
        counts = jnp.stack([left, counts - left], axis=1).reshape(-1)
    return counts[:k]


_SCAN_NODES = 2048


def _split(key, counts, ratio):
    r"""$\mathrm{Bin}(m, r)$ per node, exact at $r \in \{0, 1\}$ (padding nodes stay empty)."""
    draw = jax.random.binomial(key, counts, jnp.clip(ratio, 0, 1), dtype=counts.dtype)
    return jnp.where(ratio >= 1, counts, jnp.where(ratio <= 0, 0, jnp.minimum(draw, counts)))


def _real_dtype(x):
    return jnp.finfo(x.dtype).dtype


def check_support(support, n: int, vector: str) -> None:
    """Raise unless `support` is a 1-D integer array of distinct indices into `n` entries."""
    support = support if isinstance(support, jax.core.Tracer) else jnp.asarray(support)
    if support.ndim != 1 or not jnp.issubdtype(support.dtype, jnp.integer):
        raise TypeError(
            f"`support` must be a 1-D integer index array, got shape {support.shape} "
            f"and dtype {support.dtype}."
        )
    if support.shape[0] > n:
        raise ValueError(
            f"`support` has {support.shape[0]} entries but {vector} has only {n}; the "
            "support must be a subset of its indices."
        )
    if is_concrete(support):
        idx = np.asarray(support)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(
                f"`support` indices must lie in [0, {n - 1}], got min {idx.min()} and "
                f"max {idx.max()}."
            )
        if np.unique(idx).size != idx.size:
            raise ValueError("`support` has repeated indices; each index must appear once.")


def _norm_tol(dtype) -> float:
    return 1e-4 if jnp.finfo(dtype).bits <= 32 else 1e-9


def _check_state(name: str, psi, support) -> None:
    if psi.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D amplitude vector, got shape {psi.shape}.")
    if psi.shape[0] == 0:
        raise ValueError(f"`{name}` is empty; tomography needs at least one amplitude.")
    n = psi.shape[0]
    if support is not None:
        check_support(support, n, f"the vector `{name}`")
    check_finite(name, psi)
    if is_concrete(psi):
        sq = np.abs(np.asarray(psi, dtype=np.complex128 if np.iscomplexobj(psi) else None))
        norm = float(np.sqrt(np.sum(sq**2)))
        if support is not None:
            norm_on = float(np.sqrt(np.sum(sq[np.asarray(support)] ** 2)))
        else:
            norm_on = norm
        tol = _norm_tol(psi.dtype)
        if abs(norm - 1) > tol or abs(norm_on - 1) > tol:
            where = "" if support is None else f" (on the support: {norm_on:.6g})"
            raise ValueError(
                f"`{name}` must be a normalized state, ||{name}||_2 = 1 within {tol:g}, got "
                f"{norm:.6g}{where}; divide by the norm first (the norm itself is estimated "
                "separately, see `estimate_norm`)."
            )


def _state_ok(psi, sub) -> Array:
    """Traced: `psi` finite and of unit norm on the whole vector and on the support `sub`."""
    tol = _norm_tol(psi.dtype)
    finite = jnp.all(jnp.isfinite(psi))
    norm = jnp.linalg.norm(psi)
    norm_on = jnp.linalg.norm(sub)
    return finite & (jnp.abs(norm - 1) <= tol) & (jnp.abs(norm_on - 1) <= tol)


def check_shots(shots, *, integer: bool = True) -> None:
    """Raise unless a concrete `shots` is a real, finite, integer-valued scalar >= 1.

    `integer=False` allows any real value >= 1 (the Gaussian surrogate is smooth in $N$). A
    traced `shots` is checked at run time instead (see `tomography`).
    """
    if isinstance(shots, bool):
        raise TypeError(f"`shots` must be an integer >= 1, got the boolean {shots!r}.")
    if not is_concrete(shots):
        if jnp.ndim(shots) != 0:
            raise ValueError(f"`shots` must be a scalar, got shape {jnp.shape(shots)}.")
        return
    arr = np.asarray(shots)
    if arr.ndim != 0:
        raise ValueError(
            f"`shots` must be a scalar (one number of shots per round), got shape {arr.shape}; "
            "vmap over an array of shots instead."
        )
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"`shots` must be an integer >= 1, got {shots!r} of dtype {arr.dtype}.")
    if arr.dtype.kind == "f" and not np.isfinite(arr):
        raise ValueError(
            f"`shots` must be a finite integer >= 1, got {shots!r}; an infinite number of shots "
            "is the exact read-out (pass the exact state instead of sampling it)."
        )
    if integer:
        check_int_range("shots", shots, 1)
    elif not arr >= 1:
        raise ValueError(f"`shots` must be >= 1, got {shots!r}.")


def _shots_ok(shots: Array, integer: bool = True) -> Array:
    """Traced: `shots` is finite and >= 1 (and an integer, unless `integer=False`)."""
    real = shots if jnp.issubdtype(shots.dtype, jnp.floating) else shots.astype(float)
    ok = jnp.isfinite(real) & (real >= 1)
    return ok & (real == jnp.round(real)) if integer else ok


def _sample(key, psi, shots):
    rdtype = _real_dtype(psi)
    n = jnp.asarray(shots).astype(rdtype)
    k_basis, k_re, k_im = jax.random.split(key, 3)
    p = jnp.abs(psi) ** 2
    counts = _multinomial(k_basis, p, n)
    r = jnp.sqrt(counts / n)

    def interference(k, phase):
        # P(b, i) = |psi_i + (-1)^b e^{i alpha} r_i|^2 / 4, outcomes ordered (i, b).
        ref = r.astype(psi.dtype) if phase is None else phase * r.astype(psi.dtype)
        probs = jnp.stack([jnp.abs(psi + ref) ** 2, jnp.abs(psi - ref) ** 2], axis=1) / 4
        c = _multinomial(k, probs.reshape(-1).astype(rdtype), n).reshape(-1, 2)
        return c[:, 0] - c[:, 1]

    if jnp.iscomplexobj(psi):
        d_re = interference(k_re, None)
        d_im = interference(k_im, jnp.asarray(1j, psi.dtype))
        phase = jnp.arctan2(d_im, d_re)  # arctan2(0, 0) = 0: no counts, phase 0
        return r.astype(psi.dtype) * jnp.exp(1j * phase.astype(psi.dtype))
    d = interference(k_re, None)
    return jnp.where(d >= 0, r, -r).astype(psi.dtype)


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
    m, _ = _real_moments(psi, shots)
    return m


def _real_moments(psi, shots):
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
    rdtype = _real_dtype(psi)
    n = jnp.asarray(shots).astype(rdtype)
    p = jnp.abs(psi) ** 2
    if jnp.iscomplexobj(psi):
        var_r = (1 - p) / (4 * n) * (1 - jnp.exp(-4 * n * p))
        sin2 = jnp.sin(2 * jnp.angle(psi)) ** 2
        var_t = (1 - p * sin2 / 2) / n * (1 - jnp.exp(-n * p))
    else:
        _, var_r = _real_moments(psi, shots)
        var_t = jnp.zeros_like(p)
    return _safe_sqrt(var_r), _safe_sqrt(var_t)


def _safe_sqrt(x):
    """$\\sqrt{\\max(x, 0)}$ with a zero (not NaN) gradient where $x \\le 0$."""
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1)), 0)


def _gaussian(key, psi, shots):
    if jnp.iscomplexobj(psi):
        std_r, std_t = tomography_std(psi, shots)
        z = jax.random.normal(key, (2,) + psi.shape, std_r.dtype)
        mag = jnp.abs(psi)
        safe = jnp.where(mag > 0, mag, 1)
        unit = jnp.where(mag > 0, psi / safe.astype(psi.dtype), jnp.ones_like(psi))
        noise = (std_r * z[0]).astype(psi.dtype) + 1j * (std_t * z[1]).astype(psi.dtype)
        return psi + unit * noise
    mean, var = _real_moments(psi, shots)
    return mean + _safe_sqrt(var) * jax.random.normal(key, psi.shape, psi.dtype)


def tomography(
    key: PRNGKeyArray,
    psi: Inexact[Array, " n"],
    shots: ArrayLike,
    *,
    support: Int[Array, " s"] | None = None,
    method: _Method = "sample",
    throw: bool = True,
) -> Inexact[Array, " n"]:
    r"""Estimate a normalized state's amplitudes from $N$ shots per measurement round.

    `method="sample"` (default) draws the actual measurement statistics (module docstring):
    $\hat\psi_i = \hat\sigma_i\sqrt{n_i/N}$, using `interference_rounds` $\times N$ copies.
    `method="gaussian"` is the differentiable surrogate $\hat\psi = m + \sigma \odot z$
    with the sampler's per-entry mean and variance (`tomography_mean`, `tomography_std`;
    sign errors of unresolved entries included); use it under `grad`.

    Bad input raises before any sampling: concretely when the values are known, and, when
    `psi` or `shots` are traced (`jit`, `vmap`, `sweep`), at run time through
    `equinox.error_if` (non-finite or non-normalized state, shots not a finite integer
    >= 1). With `throw=False` the traced checks do not raise and the estimate is NaN
    instead (for callers that report a status of their own).

    **Arguments:**

    - `key`: PRNG key (same key, same estimate).
    - `psi`: the state, real or complex, $\|\psi\|_2 = 1$ (on `support` if given).
    - `shots`: shots $N$ per round, an integer >= 1 (for `"gaussian"` any real >= 1: the
      surrogate is differentiable in $N$); traced, so it may be vmapped.
    - `support`: optional indices of the known support (length $s \le n$); the state is
      measured there and the estimate is exactly 0 elsewhere.
    - `method`: `"sample"` or `"gaussian"`.
    - `throw`: raise at run time on invalid traced input (default) or return NaN.

    **Returns:** the estimate $\hat\psi$, same shape and dtype as `psi`.
    """
    psi = jnp.asarray(psi)
    if not jnp.issubdtype(psi.dtype, jnp.inexact):
        raise TypeError(f"`psi` must be a float or complex array, got dtype {psi.dtype}.")
    if method not in ("sample", "gaussian"):
        raise ValueError(f"`method` must be 'sample' or 'gaussian', got {method!r}.")
    _check_state("psi", psi, support)
    check_shots(shots, integer=method == "sample")
    shots = jnp.asarray(shots)
    sub = psi if support is None else psi[support]
    traced = not is_concrete((psi, shots))
    ok = jnp.ones((), bool)
    if traced:
        ok_state = _state_ok(psi, sub)
        ok_shots = _shots_ok(shots, integer=method == "sample")
        if throw:
            sub = eqx.error_if(
                sub,
                ~ok_state,
                "`psi` must be a finite, normalized state (||psi||_2 = 1, on the support if "
                "given); checked at run time because the value is traced.",
            )
            shots = eqx.error_if(
                shots,
                ~ok_shots,
                "`shots` must be a finite integer >= 1 (a finite real >= 1 for the Gaussian "
                "surrogate); checked at run time because the value is traced.",
            )
        ok = ok_state & ok_shots
        # Invalid values would hang the binomial sampler (inf shots) or feed it NaN: sample a
        # harmless stand-in and return NaN (reached only with throw=False or EQX_ON_ERROR=nan).
        sub = jnp.where(ok, sub, jnp.zeros_like(sub).at[0].set(1))
        shots = jnp.where(ok, shots, jnp.ones_like(shots))
    est = _sample(key, sub, shots) if method == "sample" else _gaussian(key, sub, shots)
    if traced:
        est = jnp.where(ok, est, jnp.full_like(est, jnp.nan))
    if support is None:
        return est
    return jnp.zeros_like(psi).at[support].set(est)


def _check_eps_delta_s(eps, delta, s, norm):
    check_positive("eps", eps)
    check_positive("delta", delta)
    if not 0 < float(delta) < 1:
        raise ValueError(f"`delta` (failure probability) must lie in (0, 1), got {delta!r}.")
    check_int_range("s", s, 1)
    if norm not in ("l2", "linf"):
        raise ValueError(f"`norm` must be 'l2' or 'linf', got {norm!r}.")


def shots_for_error(
    eps: float,
    delta: float,
    s: int,
    norm: _NormKind = "l2",
    *,
    complex_amplitudes: bool = False,
) -> int:
    r"""Shots $N$ per round that guarantee $\|\hat\psi - \psi\| \le \varepsilon$ w.p. $\ge
    1 - \delta$.

    For real amplitudes (proof sketch): Chernoff with $\mathrm{KL}(q\|p) \ge (\sqrt q -
    \sqrt p)^2$ gives $P(|\sqrt{n/N} - \sqrt{p}| \ge t) \le 2e^{-Nt^2}$ for every
    binomial count. On the event that this holds for $n_i, n_{0i}, n_{1i}$ (all $i$; union
    bound over $6s$ tails), a sign error needs $\min(|\psi_i|, r_i) < 2t$, so every entry
    is off by less than $5t$. Hence

    $$N_\infty = \lceil 25 \ln(6s/\delta) / \varepsilon^2 \rceil, \qquad N_2 = \lceil 25\,
    s \ln(6s/\delta) / \varepsilon^2 \rceil,$$

    the $O(\log s/\varepsilon^2)$ and $O(s \log s/\varepsilon^2)$ of Kerenidis–Prakash
    with explicit constants. These are worst-case bounds: for a spread-out state the typical
    $\ell_2$ error is only $\sqrt{(s-1)/(4N)}$. For complex amplitudes the bound is
    multiplied by 5 (the phase adds $\approx 1/N$ per entry to the $1/(4N)$ of the
    magnitude); that factor is a heuristic, checked empirically, not proved.

    **Arguments:**

    - `eps`: target error $\varepsilon > 0$.
    - `delta`: failure probability in $(0, 1)$.
    - `s`: dimension of the support.
    - `norm`: `"l2"` or `"linf"`.
    - `complex_amplitudes`: whether the state is complex.

    **Returns:** shots per round (total samples: times `interference_rounds`).
    """
    _check_eps_delta_s(eps, delta, s, norm)
    factor = _COMPLEX_FACTOR if complex_amplitudes else 1.0
    dim = float(s) if norm == "l2" else 1.0
    log_term = math.log(_FAIL_EVENTS * int(s) / float(delta))
    return math.ceil(factor * _LINF_CONST * dim * log_term / float(eps) ** 2)


def tomography_error_bound(
    shots: ArrayLike,
    delta: float,
    s: int,
    norm: _NormKind = "l2",
    *,
    complex_amplitudes: bool = False,
) -> Float[Array, ""]:
    r"""The error $\varepsilon$ guaranteed w.p. $\ge 1 - \delta$ by $N$ shots (inverse of
    `shots_for_error`).

    **Arguments:** as `shots_for_error`, with `shots` (traced) in place of `eps`.

    **Returns:** $\varepsilon = \sqrt{c\, d \ln(6s/\delta) / N}$ ($d = s$ for ℓ2, 1 for ℓ∞).
    """
    _check_eps_delta_s(1.0, delta, s, norm)
    check_shots(shots)
    factor = _COMPLEX_FACTOR if complex_amplitudes else 1.0
    dim = float(s) if norm == "l2" else 1.0
    log_term = math.log(_FAIL_EVENTS * int(s) / float(delta))
    shots = jnp.asarray(shots)
    if not jnp.issubdtype(shots.dtype, jnp.floating):
        shots = shots.astype(jnp.result_type(float))
    return jnp.sqrt(factor * _LINF_CONST * dim * log_term / shots)


__all__ = [
    "interference_rounds",
    "multinomial_counts",
    "shots_for_error",
    "tomography",
    "tomography_error_bound",
    "tomography_mean",
    "tomography_std",
]
