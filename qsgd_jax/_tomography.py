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

import math
from typing import Literal

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
    - `probs`: outcome probabilities (non-negative; only their ratios matter).
    - `shots`: number of trials $N$ (traced scalar; integer-valued).

    **Returns:** counts in the dtype of `probs`, summing to $N$ (exactly while $N <
    2^{24}$ in float32; above that float rounding is far below the shot noise).
    """
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
        tol = 1e-4 if jnp.finfo(psi.dtype).bits <= 32 else 1e-9
        if abs(norm - 1) > tol or abs(norm_on - 1) > tol:
            where = "" if support is None else f" (on the support: {norm_on:.6g})"
            raise ValueError(
                f"`{name}` must be a normalized state, ||{name}||_2 = 1 within {tol:g}, got "
                f"{norm:.6g}{where}; divide by the norm first (the norm itself is estimated "
                "separately, see `estimate_norm`)."
            )


def check_shots(shots) -> None:
    """Raise unless a concrete `shots` is an integer-valued number >= 1."""
    check_int_range("shots", shots, 1)


def _sample(key, psi, shots):
    rdtype = _real_dtype(psi)
    n = jnp.asarray(shots).astype(rdtype)
    k_basis, k_re, k_im = jax.random.split(key, 3)
    p = jnp.abs(psi) ** 2
    counts = multinomial_counts(k_basis, p, n)
    r = jnp.sqrt(counts / n)

    def interference(k, phase):
        # P(b, i) = |psi_i + (-1)^b e^{i alpha} r_i|^2 / 4, outcomes ordered (i, b).
        ref = r.astype(psi.dtype) if phase is None else phase * r.astype(psi.dtype)
        probs = jnp.stack([jnp.abs(psi + ref) ** 2, jnp.abs(psi - ref) ** 2], axis=1) / 4
        c = multinomial_counts(k, probs.reshape(-1).astype(rdtype), n).reshape(-1, 2)
        return c[:, 0] - c[:, 1]

    if jnp.iscomplexobj(psi):
        d_re = interference(k_re, None)
        d_im = interference(k_im, jnp.asarray(1j, psi.dtype))
        phase = jnp.arctan2(d_im, d_re)  # arctan2(0, 0) = 0: no counts, phase 0
        return r.astype(psi.dtype) * jnp.exp(1j * phase.astype(psi.dtype))
    d = interference(k_re, None)
    return jnp.where(d >= 0, r, -r).astype(psi.dtype)


def tomography_std(
    psi: Inexact[Array, " s"], shots: ArrayLike
) -> tuple[Float[Array, " s"], Float[Array, " s"]]:
    r"""Per-entry standard deviations of the sampled estimate, radial and tangential.

    Delta method for $r_i = \sqrt{n_i/N}$: $\mathrm{Var}\,r_i \approx (1 - p_i)/(4N)$ with
    $p_i = |\psi_i|^2$. The phase from two interference rounds adds a tangential error of
    variance $(1 - \tfrac12 p_i \sin^2 2\varphi_i)/N$ (complex amplitudes only; zero for
    real ones, whose signs are exact once $N p_i \gg 1$). Both are tapered by $1 -
    e^{-4Np_i}$ (resp. $1 - e^{-Np_i}$) so that they tend to $\approx p_i$, the sampler's
    variance, where $Np_i \lesssim 1$ and the estimate is mostly exactly 0.

    **Arguments:**

    - `psi`: the normalized state on the support.
    - `shots`: shots $N$ per round.

    **Returns:** `(radial, tangential)` standard deviations, real dtype of `psi`.
    """
    rdtype = _real_dtype(psi)
    n = jnp.asarray(shots).astype(rdtype)
    p = jnp.abs(psi) ** 2
    var_r = (1 - p) / (4 * n) * (1 - jnp.exp(-4 * n * p))
    if jnp.iscomplexobj(psi):
        sin2 = jnp.sin(2 * jnp.angle(psi)) ** 2
        var_t = (1 - p * sin2 / 2) / n * (1 - jnp.exp(-n * p))
    else:
        var_t = jnp.zeros_like(p)
    return _safe_sqrt(var_r), _safe_sqrt(var_t)


def _safe_sqrt(x):
    """$\\sqrt{\\max(x, 0)}$ with a zero (not NaN) gradient where $x \\le 0$."""
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1)), 0)


def _gaussian(key, psi, shots):
    std_r, std_t = tomography_std(psi, shots)
    z = jax.random.normal(key, (2,) + psi.shape, std_r.dtype)
    if jnp.iscomplexobj(psi):
        mag = jnp.abs(psi)
        safe = jnp.where(mag > 0, mag, 1)
        unit = jnp.where(mag > 0, psi / safe.astype(psi.dtype), jnp.ones_like(psi))
        noise = (std_r * z[0]).astype(psi.dtype) + 1j * (std_t * z[1]).astype(psi.dtype)
        return psi + unit * noise
    return psi + std_r * z[0]


def tomography(
    key: PRNGKeyArray,
    psi: Inexact[Array, " n"],
    shots: ArrayLike,
    *,
    support: Int[Array, " s"] | None = None,
    method: _Method = "sample",
) -> Inexact[Array, " n"]:
    r"""Estimate a normalized state's amplitudes from $N$ shots per measurement round.

    `method="sample"` (default) draws the actual measurement statistics (module docstring):
    $\hat\psi_i = \hat\sigma_i\sqrt{n_i/N}$, using `interference_rounds` $\times N$ copies.
    `method="gaussian"` is the differentiable surrogate $\hat\psi = \psi + \sigma \odot z$
    with the per-entry variances of `tomography_std`; use it under `grad`.

    **Arguments:**

    - `key`: PRNG key (same key, same estimate).
    - `psi`: the state, real or complex, $\|\psi\|_2 = 1$ (on `support` if given).
    - `shots`: shots $N$ per round, an integer >= 1; traced, so it may be vmapped.
    - `support`: optional indices of the known support (length $s \le n$); the state is
      measured there and the estimate is exactly 0 elsewhere.
    - `method`: `"sample"` or `"gaussian"`.

    **Returns:** the estimate $\hat\psi$, same shape and dtype as `psi`.
    """
    psi = jnp.asarray(psi)
    if not jnp.issubdtype(psi.dtype, jnp.inexact):
        raise TypeError(f"`psi` must be a float or complex array, got dtype {psi.dtype}.")
    if method not in ("sample", "gaussian"):
        raise ValueError(f"`method` must be 'sample' or 'gaussian', got {method!r}.")
    _check_state("psi", psi, support)
    check_shots(shots)
    sub = psi if support is None else psi[support]
    est = _sample(key, sub, shots) if method == "sample" else _gaussian(key, sub, shots)
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
    "tomography_std",
]
