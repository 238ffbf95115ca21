"""The error-propagation curve $E(t)$ of a linearized GD window, from a spectral quadrature.

For learning rate $\\eta$ and Hessian eigenvalues $\\lambda_\\nu$ of the active set
(`docs/math/propagation.md`),

$$E(t) = \\frac1s \\sum_\\nu |1 - \\eta\\lambda_\\nu|^t
= \\int \\rho(\\lambda)\\,|1-\\eta\\lambda|^t\\,d\\lambda
\\approx \\sum_j w_j |1 - \\eta\\theta_j|^t$$

is the mean growth factor of a perturbation after $t$ linearized GD steps. It splits into a
dissipative part $D(t)$ (modes with $|1-\\eta\\lambda| < 1$), a divergent part $G(t)$
($|1-\\eta\\lambda| > 1$) and a marginal part ($= 1$). As a sum of exponentials in $t$, $E$ is
convex with $E(0) = 1$, so it crosses 1 again at most once: at $t^*$, the end of a useful quantum
window. $G - D$ is increasing in $t$, so the divergent part overtakes the dissipative one at most
once: at $t_c$. Both are reported as the first integer step and as the real crossing point.

With `moment=2` every curve is the root-mean-square moment
$E_2(t) = (\\sum_j w_j |1-\\eta\\lambda_j|^{2t})^{1/2}$, the growth of an *isotropic* perturbation
(a read-out error) under the linearized steps; its crossings are those of $\\sum_j w_j a_j^{2t}$.
`spectral_growth` bundles $E$, $E_2$, the paper's proxy under both readings and the stability
numbers.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from jaxtyping import Array, Float

from ._errors import (
    InvalidArgumentError,
    check_finite,
    check_int_range,
    check_nonempty,
    check_positive,
    error_if_invalid,
    in_interval,
)

_BISECT = 60
MOMENTS = (1, 2)
_ETA_RULE = "must be finite and > 0"


class PropagationCurve(eqx.Module):
    """The error-propagation curve $E(t)$ and its parts on $t = 0, \\dots, T$, with the crossings.

    Returned by `error_propagation`.

    **Fields:**

    - `t`: the steps $0..T$ (float).
    - `total`: $E_p(t) = (\\sum_j w_j |1-\\eta\\lambda_j|^{pt})^{1/p}$ for the `moment` $p$
      ($E_p(0) = 1$).
    - `dissipative`, `divergent`, `marginal`: the parts of $E_p(t)^p$ from the modes with
      $|1-\\eta\\lambda|$ below, above and at 1 (they sum to `total` for $p = 1$); multiply by the
      active dimension $s$ for the un-normalized mode sum.
    - `t_star`: first integer $t \\ge 1$ with $E_p(t) \\ge 1$ ($1$ means no dissipative window,
      `inf` if not reached by $T$); `t_star_continuous`: the real root of $E_p(t) = 1$ in
      $(t^*-1, t^*]$.
    - `t_c`: first integer $t \\ge 0$ with $G(t) > D(t)$ (`inf` if not reached by $T$);
      `t_c_continuous`: the real crossing of $G$ and $D$.
    - `eta`: the learning rate.
    - `moment`: $p$, 1 (mean, $E$) or 2 (root mean square, $E_2$) (static).

    """

    t: Float[Array, " T"]
    total: Float[Array, " T"]
    dissipative: Float[Array, " T"]
    divergent: Float[Array, " T"]
    marginal: Float[Array, " T"]
    t_star: Float[Array, ""]
    t_star_continuous: Float[Array, ""]
    t_c: Float[Array, ""]
    t_c_continuous: Float[Array, ""]
    eta: Float[Array, ""]
    moment: int = eqx.field(static=True, default=1)


def _parts(a, w, t):
    """Dissipative, divergent and marginal sums $\\sum w\\,a^t$ at (real) step(s) `t`."""
    lead = (1,) * jnp.ndim(t)
    a, w = a.reshape(lead + a.shape), w.reshape(lead + w.shape)
    pw = jnp.power(a, t[..., None]) * w
    zero = jnp.zeros_like(pw)
    d = jnp.sum(jnp.where(a < 1, pw, zero), axis=-1)
    g = jnp.sum(jnp.where(a > 1, pw, zero), axis=-1)
    m = jnp.sum(jnp.where(a == 1, pw, zero), axis=-1)
    return d, g, m


def _normalized(nodes, weights):
    """Flat nodes and weights, the weights in the nodes' dtype and summing to 1."""
    w = jnp.ravel(weights).astype(nodes.dtype)
    return jnp.ravel(nodes), w / jnp.sum(w)


def _first(cond, t):
    inf = jnp.full((), jnp.inf, t.dtype)
    return jnp.where(jnp.any(cond), t[jnp.argmax(cond)], inf)


def _bisect(below, lo, hi):
    """Refine a crossing in `[lo, hi]`: `below(t)` is True left of it, False right of it."""

    def body(_, lh):
        lo, hi = lh
        mid = 0.5 * (lo + hi)
        b = below(mid)
        return jnp.where(b, mid, lo), jnp.where(b, hi, mid)

    lo, hi = jax.lax.fori_loop(0, _BISECT, body, (lo, hi))
    return 0.5 * (lo + hi)


def _root(x, moment: int):
    """$x^{1/p}$, exact (no `pow`) for $p = 1$."""
    return x if moment == 1 else jnp.sqrt(x)


def eta_ok(eta):
    """Whether a learning rate (possibly traced) is finite and $> 0$, as a boolean array."""
    return in_interval(eta, 0, low_open=True)


def _check_eta(result, eta):
    """`result`, with the run-time check of a traced `eta` (concrete ones are checked at the
    door): the curves have no status to report it in."""
    return error_if_invalid(result, eta_ok(eta), "eta", _ETA_RULE, eta)


def _check_moment(moment) -> None:
    if moment not in MOMENTS:
        raise InvalidArgumentError(
            f"`moment` must be 1 (mean growth E) or 2 (root mean square E_2), got {moment!r}."
        )


def _quadrature(nodes, weights, eta, num_steps: int):
    """Validate a spectral quadrature and the curve's arguments; nodes, weights, eta as arrays."""
    if jnp.shape(nodes) != jnp.shape(weights):
        raise InvalidArgumentError(
            f"`nodes` and `weights` must have the same shape, got {jnp.shape(nodes)} and "
            f"{jnp.shape(weights)}."
        )
    check_nonempty(
        "nodes", jnp.size(nodes), "eigenvalues", "Pass the spectrum of a non-empty active set."
    )
    for name, x in (("nodes", nodes), ("weights", weights)):
        if jnp.issubdtype(jnp.result_type(x), jnp.complexfloating):
            raise InvalidArgumentError(
                f"`{name}` must be real (eigenvalues of a symmetric Hessian and their weights), "
                f"got dtype {jnp.result_type(x)}."
            )
    check_int_range("num_steps", num_steps, 1)
    check_positive("eta", eta)
    check_finite("nodes", nodes)
    check_positive("weights", jnp.sum(weights))
    check_positive("weights", jnp.min(weights), strict=False)
    nodes = jnp.asarray(nodes)
    if not jnp.issubdtype(nodes.dtype, jnp.floating):
        nodes = nodes.astype(jnp.float32)
    # Arrays, not Python floats, so that a new eta does not recompile.
    return nodes, jnp.asarray(weights), jnp.asarray(eta, nodes.dtype)


def error_propagation(
    nodes: ArrayLike,
    weights: ArrayLike,
    eta: ArrayLike,
    *,
    num_steps: int = 100,
    moment: int = 1,
) -> PropagationCurve:
    """The error-propagation curve $E(t) = \\sum_j w_j |1 - \\eta\\lambda_j|^t$ of a quadrature.

    With its dissipative / divergent / marginal parts, $t^*$ and $t_c$ (module docstring);
    `moment=2` gives the root-mean-square moment $E_2(t)$ instead.

    Exact when `nodes` are the eigenvalues and `weights` are all $1/s$; from SLQ
    (`SpectralDensity.nodes`, `.weights`) it carries the quadrature's accuracy. `eta` may be
    traced, so `vmap` over learning rates compiles once (a traced `eta` that is not finite and
    $> 0$ raises when the program runs).

    **Arguments:**

    - `nodes`: real eigenvalues or quadrature nodes $\\lambda_j$ (any shape, not empty).
    - `weights`: their weights $w_j \\ge 0$, same shape; normalized here to sum to 1.
    - `eta`: scalar learning rate $\\eta > 0$.
    - `num_steps`: last step $T \\ge 1$ (static).
    - `moment`: $p$ = 1 (mean) or 2 (root mean square) (static).

    **Returns:** a `PropagationCurve` with arrays of shape `(T + 1,)`.
    """
    _check_moment(moment)
    nodes, weights, eta_arr = _quadrature(nodes, weights, eta, num_steps)
    return _check_eta(_curve(nodes, weights, eta_arr, num_steps, moment), eta)


@eqx.filter_jit
def _curve(nodes, weights, eta, num_steps, moment):
    dtype = nodes.dtype
    lam, w = _normalized(nodes, weights)
    a = jnp.abs(1 - eta * lam) ** moment
    t = jnp.arange(num_steps + 1, dtype=dtype)
    d, g, m = _parts(a, w, t)
    total = d + g + m
    one = jnp.ones((), dtype)

    t_star = _first((total >= 1) & (t >= 1), t)
    lo = jnp.where(jnp.isfinite(t_star), t_star - 1, t[-1])
    hi = jnp.where(jnp.isfinite(t_star), t_star, t[-1])

    def e_below(x):
        dd, gg, mm = _parts(a, w, x)
        return dd + gg + mm < one

    t_star_c = jnp.where(jnp.isfinite(t_star), _bisect(e_below, lo, hi), t_star)

    t_c = _first(g > d, t)
    lo = jnp.where(jnp.isfinite(t_c), jnp.maximum(t_c - 1, 0), t[-1])
    hi = jnp.where(jnp.isfinite(t_c), t_c, t[-1])

    def g_below(x):
        dd, gg, _ = _parts(a, w, x)
        return gg <= dd

    t_c_c = jnp.where(t_c == 0, t_c, _bisect(g_below, lo, hi))
    t_c_c = jnp.where(jnp.isfinite(t_c), t_c_c, t_c)
    return PropagationCurve(
        t, _root(total, moment), d, g, m, t_star, t_star_c, t_c, t_c_c, eta, moment
    )


def propagation_from_spectrum(
    density: Any, eta: ArrayLike, *, num_steps: int = 100, moment: int = 1
) -> PropagationCurve:
    """The error-propagation curve $E(t)$ of a spectral density (`error_propagation` of its SLQ).

    **Arguments:**

    - `density`: a `SpectralDensity` (from `hessian_spectrum`) or an `ExactSpectrum`; its
      `nodes` and `weights` are the quadrature.
    - `eta`: learning rate $\\eta > 0$.
    - `num_steps`: last step $T$ (static).
    - `moment`: 1 ($E$) or 2 ($E_2$) (static).

    **Returns:** a `PropagationCurve` with arrays of shape `(T + 1,)`.
    """
    return error_propagation(
        density.nodes, density.weights, eta, num_steps=num_steps, moment=moment
    )


class PaperProxy(eqx.Module):
    """The paper's error proxy $E_\\text{paper}(t)$ on $t = 0, 1, \\dots, T$.

    Returned by `paper_error_proxy`.

    **Fields:**

    - `t`: the steps $0..T$ (float).
    - `value`: $E_\\text{paper}(t)$, normalized over the kept modes ($E_\\text{paper}(0) = 1$);
      NaN everywhere when no mass is kept.
    - `kept_mass`: $N_c$, the fraction of spectral mass with $|\\eta\\lambda| \\ge a_c$
      (the weights are normalized to sum to 1 first); 0 when nothing is kept.
    - `first_below`: first integer $t \\ge 1$ with $E_\\text{paper}(t) < 1$ (`inf` if none by
      $T$): where the "possible quantum speedup" band starts.
    - `crosses_back`: first integer $t >$ `first_below` with $E_\\text{paper}(t) \\ge 1$
      (`inf` if none by $T$, or if it never dropped below 1): where the band ends.
    - `minimum`, `argmin`: the smallest value over $t$ and its step (NaN and 0 when nothing is
      kept).
    - `eta`, `a_c`: the learning rate and the cut-off on $|\\eta\\lambda|$.
    - `moment`: the reading, 1 (mean, (i)) or 2 (root mean square, (ii)) (static).

    """

    t: Float[Array, " T"]
    value: Float[Array, " T"]
    kept_mass: Float[Array, ""]
    first_below: Float[Array, ""]
    crosses_back: Float[Array, ""]
    minimum: Float[Array, ""]
    argmin: Float[Array, ""]
    eta: Float[Array, ""]
    a_c: Float[Array, ""]
    moment: int = eqx.field(static=True, default=1)


def paper_error_proxy(
    nodes: ArrayLike,
    weights: ArrayLike,
    eta: ArrayLike,
    *,
    a_c: ArrayLike = 0.4,
    num_steps: int = 100,
    moment: int = 1,
) -> PaperProxy:
    """The paper's error proxy (its Eqs. 7–8): $E(t)$ restricted to the modes with $|a| \\ge a_c$.

    With $a = -\\eta\\lambda$ (so $1 + a$ is the eigenvalue of $F_1 = I - \\eta H$) and the
    moment $p$ (reading (i): $p = 1$; reading (ii), isotropic read-out noise: $p = 2$),

    $$E_\\text{paper}(t) = \\Big(\\frac{1}{N_c} \\sum_{j:\\,|a_j| \\ge a_c} w_j |1 + a_j|^{pt}
    \\Big)^{1/p}, \\qquad N_c = \\sum_{j:\\,|a_j| \\ge a_c} w_j .$$

    The abundant near-zero modes ($|a| < a_c$) would keep $E(t)$ at 1; the proxy drops them and
    renormalizes over the rest. As printed, the paper's formula has no $\\eta$; the cut-off is
    taken on $|\\eta\\lambda|$ (`docs/math/propagation.md`). With `a_c = 0` it is
    `error_propagation(...).total`.

    If no mass is kept ($N_c = 0$: every $|\\eta\\lambda_j| < a_c$) the proxy is undefined: `value`
    and `minimum` are NaN, `kept_mass` is 0, `first_below` and `crosses_back` are `inf`.

    Exact when `nodes` are the eigenvalues and `weights` are all $1/s$; from SLQ it carries the
    quadrature's accuracy. `eta` and `a_c` may be traced (`vmap` over them compiles once; a
    traced `eta` that is not finite and $> 0$ raises when the program runs).

    **Arguments:**

    - `nodes`: real eigenvalues or quadrature nodes $\\lambda_j$ (any shape, not empty).
    - `weights`: their weights $w_j \\ge 0$, same shape; normalized here to sum to 1.
    - `eta`: scalar learning rate $\\eta > 0$.
    - `a_c`: cut-off $a_c \\ge 0$ on $|\\eta\\lambda|$ (the paper: 0.4).
    - `num_steps`: last step $T \\ge 1$ (static).
    - `moment`: $p$ = 1 or 2 (static).

    **Returns:** a `PaperProxy` with arrays `t`, `value` of shape `(T + 1,)`.
    """
    _check_moment(moment)
    check_positive("a_c", a_c, strict=False)
    nodes, weights, eta_arr = _quadrature(nodes, weights, eta, num_steps)
    # An array, not a Python float, so that a new a_c does not recompile.
    proxy = _proxy(nodes, weights, eta_arr, jnp.asarray(a_c, nodes.dtype), num_steps, moment)
    return _check_eta(proxy, eta)


@eqx.filter_jit
def _proxy(nodes, weights, eta, a_c, num_steps, moment):
    dtype = nodes.dtype
    lam, w = _normalized(nodes, weights)
    a = -eta * lam
    zero = jnp.zeros((), dtype)
    kept = jnp.where(jnp.abs(a) >= a_c, w, zero)
    t = jnp.arange(num_steps + 1, dtype=dtype)
    growth = jnp.abs(1 + a) ** moment
    total = jnp.sum(jnp.power(growth[None], t[:, None]) * kept[None], axis=-1)
    # N_c is the t = 0 term of the same reduction, so that E_paper(0) is exactly 1.
    n_c = total[0]
    nan = jnp.full((), jnp.nan, dtype)
    # Guarded division: the NaN comes from the `where`, not from 0/0 (no invalid-value flags).
    value = jnp.where(
        n_c > 0, _root(total / jnp.where(n_c > 0, n_c, jnp.ones((), dtype)), moment), nan
    )
    first_below = _first((value < 1) & (t >= 1), t)
    crosses_back = _first((value >= 1) & (t > first_below), t)
    i_min = jnp.argmin(jnp.where(n_c > 0, value, zero))
    minimum = jnp.where(n_c > 0, value[i_min], nan)
    return PaperProxy(t, value, n_c, first_below, crosses_back, minimum, t[i_min], eta, a_c, moment)


def paper_proxy_from_spectrum(
    density: Any,
    eta: ArrayLike,
    *,
    a_c: ArrayLike = 0.4,
    num_steps: int = 100,
    moment: int = 1,
) -> PaperProxy:
    """The paper's error proxy $E_\\text{paper}(t)$ of a spectral density (`paper_error_proxy`).

    **Arguments:**

    - `density`: a `SpectralDensity` (from `hessian_spectrum`) or an `ExactSpectrum`; its
      `nodes` and `weights` are the quadrature.
    - `eta`: learning rate $\\eta > 0$.
    - `a_c`: cut-off $a_c \\ge 0$ on $|\\eta\\lambda|$ (the paper: 0.4).
    - `num_steps`: last step $T$ (static).
    - `moment`: reading (i) $p = 1$ or (ii) $p = 2$ (static).

    **Returns:** a `PaperProxy` with arrays `t`, `value` of shape `(T + 1,)`.
    """
    return paper_error_proxy(
        density.nodes, density.weights, eta, a_c=a_c, num_steps=num_steps, moment=moment
    )
