r"""Sample complexity of vector-state tomography: shots for a target error, and back.

Explicit-constant versions of the Kerenidis–Prakash bounds ($O(\log s/\varepsilon^2)$ in
ℓ∞, $O(s \log s/\varepsilon^2)$ in ℓ2 shots per round; proof sketch in `shots_for_error`),
and the number of measurement rounds a state costs.
"""

from __future__ import annotations

import math
from typing import Literal

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._errors import InvalidArgumentError, check_int_range, check_positive
from ._checks import check_shots

_NormKind = Literal["l2", "linf"]

# Constants of the sample-complexity bounds (see `shots_for_error`).
_LINF_CONST = 25.0  # (5 t)^2 / t^2: per-entry error < 5 t on the good event
_FAIL_EVENTS = 6.0  # two-sided Chernoff bounds on n_i, n_0i, n_1i
_COMPLEX_FACTOR = 5.0  # phase noise: E|e_i|^2 ~ 5/(4N) complex vs 1/(4N) real


def interference_rounds(is_complex: bool) -> int:
    """Measurement rounds of $N$ shots each that tomography of a state costs.

    **Arguments:**

    - `is_complex`: whether the amplitudes are complex (their phase needs a second
      interference round).

    **Returns:** 2 for real amplitudes (basis + one interference round), 3 for complex ones.
    """
    return 3 if is_complex else 2


def _check_eps_delta_s(eps, delta, s, norm):
    check_positive("eps", eps)
    check_positive("delta", delta)
    if not 0 < float(delta) < 1:
        raise InvalidArgumentError(
            f"`delta` (failure probability) must lie in (0, 1), got {delta!r}."
        )
    check_int_range("s", s, 1)
    if norm not in ("l2", "linf"):
        raise InvalidArgumentError(f"`norm` must be 'l2' or 'linf', got {norm!r}.")


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

    **Arguments:**

    - `shots`: shots $N$ per round, an integer >= 1 (may be traced).
    - `delta`: failure probability in $(0, 1)$.
    - `s`: dimension of the support.
    - `norm`: `"l2"` or `"linf"`.
    - `complex_amplitudes`: whether the state is complex.

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
