r"""Norm estimation for the downloaded vector: amplitude estimation, or the norm taken as known.

The state only gives the direction $y_1/\|y_1\|$. The window lands on the $y_1$ block with
probability $a = (\|y_1\| / c)^2$, where $c \ge \|y_1\|$ is the window's known normalization
(e.g. the norm of the whole history state). Canonical amplitude estimation (Brassard, Høyer,
Mosca, Tapp, arXiv:quant-ph/0005055) with an $M$-dimensional phase register estimates $a$ as
$\tilde a = \sin^2(\pi y / M)$ from one outcome $y \in \{0, \dots, M-1\}$; then
$\widehat{\|y_1\|} = c \sqrt{\tilde a}$. The error is $|\tilde a - a| \le 2\pi\sqrt{a(1-a)}/M +
\pi^2/M^2$ with probability $\ge 8/\pi^2$, i.e. $\sim \pi/M$ for $M$ queries.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._errors import check_finite, check_int_range, check_positive, is_concrete

NormMethod = Literal["known", "amplitude_estimation"]


def _fejer(delta, m: int):
    r"""$F_M(\Delta) = \sin^2(M\pi\Delta) / (M^2\sin^2(\pi\Delta))$, equal to 1 at integers."""
    den = jnp.sin(jnp.pi * delta)
    small = jnp.abs(den) < 1e-6
    safe = jnp.where(small, 1, den)
    return jnp.where(small, 1, (jnp.sin(m * jnp.pi * delta) / (m * safe)) ** 2)


def amplitude_estimation_probs(amplitude: ArrayLike, num_queries: int) -> Float[Array, " M"]:
    r"""Exact outcome distribution of canonical amplitude estimation.

    With $a = \sin^2(\pi\theta_a)$, the input state is an equal superposition of the Grover
    operator's eigenvectors with phases $\pm\theta_a$, which are orthogonal, so phase
    estimation gives $P(y) = \tfrac12 F_M(y/M - \theta_a) + \tfrac12 F_M(y/M + \theta_a)$.

    **Arguments:**

    - `amplitude`: the probability $a \in [0, 1]$ being estimated.
    - `num_queries`: size $M$ of the phase register (static; $M - 1$ Grover iterations).

    **Returns:** $P(y)$ for $y = 0, \dots, M-1$, summing to 1.
    """
    check_int_range("num_queries", num_queries, 1)
    a = jnp.asarray(amplitude)
    if not jnp.issubdtype(a.dtype, jnp.floating):
        a = a.astype(jnp.result_type(float))
    theta = jnp.arcsin(jnp.sqrt(jnp.clip(a, 0, 1))) / jnp.pi
    y = jnp.arange(num_queries, dtype=a.dtype) / num_queries
    return 0.5 * _fejer(y - theta, num_queries) + 0.5 * _fejer(y + theta, num_queries)


def amplitude_estimation(
    key: PRNGKeyArray, amplitude: ArrayLike, num_queries: int
) -> Float[Array, ""]:
    r"""Sample one amplitude-estimation outcome and return $\tilde a = \sin^2(\pi y/M)$.

    **Arguments:**

    - `key`: PRNG key.
    - `amplitude`: the true probability $a \in [0, 1]$.
    - `num_queries`: phase-register size $M$ (static).

    **Returns:** the estimate $\tilde a$.
    """
    probs = amplitude_estimation_probs(amplitude, num_queries)
    y = jax.random.categorical(key, jnp.log(probs))
    return jnp.sin(jnp.pi * y.astype(probs.dtype) / num_queries) ** 2


def ae_error_bound(amplitude: ArrayLike, num_queries: int) -> Float[Array, ""]:
    r"""BHMT bound $2\pi\sqrt{a(1-a)}/M + \pi^2/M^2$, met with probability $\ge 8/\pi^2$."""
    a = jnp.asarray(amplitude)
    return 2 * jnp.pi * jnp.sqrt(a * (1 - a)) / num_queries + (jnp.pi / num_queries) ** 2


def norm_estimation_runs(num_queries: int, method: NormMethod = "amplitude_estimation") -> int:
    """Window runs that norm estimation costs: $2(M-1) + 1$ for AE (each Grover iterate runs
    the window forward and backward, plus the initial preparation), 0 for a known norm."""
    return 0 if method == "known" else 2 * (int(num_queries) - 1) + 1


def estimate_norm(
    key: PRNGKeyArray,
    norm: ArrayLike,
    *,
    method: NormMethod = "amplitude_estimation",
    scale: ArrayLike | None = None,
    num_queries: int = 1024,
) -> Float[Array, ""]:
    r"""Estimate $\|y_1\|$ by amplitude estimation, or return it exactly (`method="known"`).

    $\widehat{\|y_1\|} = c\sqrt{\tilde a}$ with $\tilde a$ from `amplitude_estimation` at
    $a = (\|y_1\|/c)^2$.

    **Arguments:**

    - `key`: PRNG key (unused for `"known"`).
    - `norm`: the true norm $\|y_1\| \ge 0$.
    - `method`: `"amplitude_estimation"` or `"known"`.
    - `scale`: the normalization $c \ge \|y_1\|$ (required for amplitude estimation; it comes
      from the window, e.g. the history-state norm).
    - `num_queries`: phase-register size $M$ (static).

    **Returns:** the norm estimate, dtype of `norm`.
    """
    norm = jnp.asarray(norm)
    if not jnp.issubdtype(norm.dtype, jnp.floating):
        norm = norm.astype(jnp.result_type(float))
    check_finite("norm", norm)
    check_positive("norm", norm, strict=False)
    if method == "known":
        return norm
    if method != "amplitude_estimation":
        raise ValueError(f"`method` must be 'known' or 'amplitude_estimation', got {method!r}.")
    if scale is None:
        raise ValueError(
            "amplitude estimation needs `scale`, the normalization c >= ||y1|| such that the "
            "window lands on y1 with probability (||y1||/c)^2 (e.g. the history-state norm); "
            "pass it, or use method='known'."
        )
    check_positive("scale", scale)
    check_int_range("num_queries", num_queries, 1)
    scale = jnp.asarray(scale).astype(norm.dtype)
    if is_concrete((norm, scale)) and float(norm) > float(scale) * (1 + 1e-6):
        raise ValueError(
            f"`scale` must be >= the norm it normalizes, got scale={float(scale):.6g} < "
            f"norm={float(norm):.6g}."
        )
    a = jnp.clip((norm / scale) ** 2, 0, 1)
    return scale * jnp.sqrt(amplitude_estimation(key, a, num_queries))


__all__ = [
    "ae_error_bound",
    "amplitude_estimation",
    "amplitude_estimation_probs",
    "estimate_norm",
    "norm_estimation_runs",
]
