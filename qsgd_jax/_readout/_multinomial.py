r"""Exact multinomial counts with a traced number of shots: the sampler behind `Sampled`.

The shots are split down a binary tree over the $k$ outcomes: a node holding $m$ shots sends
$\mathrm{Bin}(m, p_L/(p_L + p_R))$ of them left, the rest right. That is the multinomial law
exactly, needs $k - 1$ binomial draws and $\lceil\log_2 k\rceil$ sequential levels, and never
materializes the $N$ individual outcomes, so the cost is $O(k)$ draws whatever the number of
shots and `shots` may be traced (sweeps over shots do not recompile).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import InvalidArgumentError, check_finite, is_concrete
from ._checks import check_shots, shots_ok

# Top levels of the tree with at most this many nodes run in one `lax.scan` (see `multinomial`).
_SCAN_NODES = 2048


def multinomial_counts(
    key: PRNGKeyArray, probs: Float[Array, " k"], shots: ArrayLike
) -> Float[Array, " k"]:
    r"""Exact multinomial counts $n \sim \mathrm{Mult}(N, p)$ with a traced number of shots.

    Drawn by the binary tree of conditional binomials of the module docstring.

    **Arguments:**

    - `key`: PRNG key.
    - `probs`: outcome probabilities $p$ ($k$,), finite, non-negative, not all zero; only
      their ratios matter.
    - `shots`: number of trials $N$, a finite integer >= 1 (may be traced: then a bad value
      raises at run time, see `tomography`).

    **Returns:** counts $n$ ($k$,) in the dtype of `probs`, summing to $N$ (exactly while $N
    < 2^{24}$ in float32; above that float rounding is far below the shot noise).
    """
    probs = jnp.asarray(probs)
    if probs.ndim != 1 or probs.shape[0] == 0:
        raise InvalidArgumentError(
            f"`probs` must be a non-empty 1-D array, got shape {probs.shape}."
        )
    if not jnp.issubdtype(probs.dtype, jnp.floating):
        raise InvalidArgumentError(f"`probs` must be a real float array, got dtype {probs.dtype}.")
    check_finite("probs", probs)
    if is_concrete(probs):
        pn = np.asarray(probs)
        if np.any(pn < 0) or not np.sum(pn) > 0:
            raise InvalidArgumentError(
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
        return multinomial(key, probs, shots)
    ok = shots_ok(shots)
    shots = eqx.error_if(
        shots, ~ok, "`shots` must be a finite integer >= 1 (checked at run time: it is traced)."
    )
    # An invalid value would hang the binomial sampler (inf): draw 0 shots and return NaN.
    counts = multinomial(key, probs, jnp.where(ok, shots, jnp.zeros_like(shots)))
    return jnp.where(ok, counts, jnp.full_like(counts, jnp.nan))


def multinomial(
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


def _split(key, counts, ratio):
    r"""$\mathrm{Bin}(m, r)$ per node, exact at $r \in \{0, 1\}$ (padding nodes stay empty)."""
    draw = jax.random.binomial(key, counts, jnp.clip(ratio, 0, 1), dtype=counts.dtype)
    return jnp.where(ratio >= 1, counts, jnp.where(ratio <= 0, 0, jnp.minimum(draw, counts)))
