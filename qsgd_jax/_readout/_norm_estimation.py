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

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._choice import as_choice
from .._errors import (
    InvalidArgumentError,
    check_finite,
    check_int_range,
    check_positive,
    is_concrete,
)


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
    r"""BHMT bound $2\pi\sqrt{a(1-a)}/M + \pi^2/M^2$ on $|\tilde a - a|$, met with probability
    $\ge 8/\pi^2$.

    **Arguments:**

    - `amplitude`: the true probability $a \in [0, 1]$.
    - `num_queries`: phase-register size $M$.

    **Returns:** the bound, a scalar.
    """
    a = jnp.asarray(amplitude)
    return 2 * jnp.pi * jnp.sqrt(a * (1 - a)) / num_queries + (jnp.pi / num_queries) ** 2


class AbstractNormEstimation(eqx.Module):
    r"""Abstract base class of the norm estimators (`KnownNorm`, `AmplitudeEstimation`).

    **Class attributes:**

    - `needs_scale`: whether `estimate` needs the normalization $c \ge \|y_1\|$.
    """

    needs_scale: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def estimate(
        self, key: PRNGKeyArray, norm: Float[Array, ""], scale: Float[Array, ""] | None
    ) -> Float[Array, ""]:
        r"""Estimate $\|y_1\|$ from its true value (checked finite and >= 0 by the caller).

        **Arguments:**

        - `key`: PRNG key.
        - `norm`: the true norm $\|y_1\|$.
        - `scale`: the normalization $c \ge \|y_1\|$ (checked), or None if not `needs_scale`.

        **Returns:** the estimate $\widehat{\|y_1\|}$, dtype of `norm`.
        """

    @property
    @abc.abstractmethod
    def runs(self) -> int:
        """Window runs that one estimate costs (a Python int)."""


class KnownNorm(AbstractNormEstimation):
    r"""The norm taken as known: $\widehat{\|y_1\|} = \|y_1\|$, no window runs.

    **Arguments:** none.
    """

    needs_scale: ClassVar[bool] = False

    def estimate(self, key, norm, scale):
        del key, scale
        return norm

    @property
    def runs(self) -> int:
        return 0


class AmplitudeEstimation(AbstractNormEstimation):
    r"""Canonical amplitude estimation of $a = (\|y_1\|/c)^2$ (module docstring).

    $\widehat{\|y_1\|} = c\sqrt{\tilde a}$ with $\tilde a$ from `amplitude_estimation`.
    It costs $2(M - 1) + 1$ window runs (each Grover iterate runs the window forward and
    backward, plus the initial preparation) and needs the normalization $c$ (`scale`).

    **Arguments:**

    - `num_queries`: size $M \ge 1$ of the phase register (static; default 1024).
    """

    num_queries: int = eqx.field(static=True, default=1024)
    needs_scale: ClassVar[bool] = True

    def __check_init__(self):
        check_int_range("num_queries", self.num_queries, 1)

    def estimate(self, key, norm, scale):
        a = jnp.clip((norm / scale) ** 2, 0, 1)
        return scale * jnp.sqrt(amplitude_estimation(key, a, self.num_queries))

    @property
    def runs(self) -> int:
        return 2 * (int(self.num_queries) - 1) + 1


_SHORTHANDS = {"known": KnownNorm, "amplitude_estimation": AmplitudeEstimation}


def as_norm_estimation(
    value: AbstractNormEstimation | str, name: str = "method"
) -> AbstractNormEstimation:
    """Return the norm estimator `value`, converting a string shorthand.

    **Arguments:**

    - `value`: an `AbstractNormEstimation` (returned as is), `"known"` (`KnownNorm()`) or
      `"amplitude_estimation"` (`AmplitudeEstimation()`, $M = 1024$).
    - `name`: the caller's argument name, used in the error message.

    **Returns:** an `AbstractNormEstimation`.

    **Raises:** `InvalidChoiceError` (a `TypeError` and a `ValueError`) naming `name` and the
    value for anything else.
    """
    example = "AmplitudeEstimation(num_queries=M)"
    return as_choice(value, AbstractNormEstimation, _SHORTHANDS, name, "a norm estimator", example)


def estimate_norm(
    key: PRNGKeyArray,
    norm: ArrayLike,
    *,
    method: AbstractNormEstimation | str = AmplitudeEstimation(),
    scale: ArrayLike | None = None,
) -> Float[Array, ""]:
    r"""Estimate $\|y_1\|$ by amplitude estimation, or return it exactly (`KnownNorm()`).

    **Arguments:**

    - `key`: PRNG key (unused by `KnownNorm`).
    - `norm`: the true norm $\|y_1\| \ge 0$, a scalar.
    - `method`: the estimator, `AmplitudeEstimation(num_queries=M)` (default $M = 1024$) or
      `KnownNorm()`, or the shorthand `"amplitude_estimation"` / `"known"`.
    - `scale`: the normalization $c \ge \|y_1\|$ (required for amplitude estimation; it comes
      from the window, e.g. the history-state norm).

    **Returns:** the norm estimate $\widehat{\|y_1\|}$, a scalar of the dtype of `norm`.
    """
    method = as_norm_estimation(method)
    norm = jnp.asarray(norm)
    if not jnp.issubdtype(norm.dtype, jnp.floating):
        norm = norm.astype(jnp.result_type(float))
    check_finite("norm", norm)
    check_positive("norm", norm, strict=False)
    if not method.needs_scale:
        return method.estimate(key, norm, None)
    if scale is None:
        raise InvalidArgumentError(
            "amplitude estimation needs `scale`, the normalization c >= ||y1|| such that the "
            "window lands on y1 with probability (||y1||/c)^2 (e.g. the history-state norm); "
            "pass it, or use method=KnownNorm()."
        )
    check_positive("scale", scale)
    scale = jnp.asarray(scale).astype(norm.dtype)
    if is_concrete((norm, scale)) and float(norm) > float(scale) * (1 + 1e-6):
        raise InvalidArgumentError(
            f"`scale` must be >= the norm it normalizes, got scale={float(scale):.6g} < "
            f"norm={float(norm):.6g}."
        )
    return method.estimate(key, norm, scale)
