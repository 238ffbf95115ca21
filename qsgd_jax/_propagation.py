"""The error-propagation curve $E(t)$ of a linearized GD window, from a spectral quadrature.

For learning rate $\\eta$ and Hessian eigenvalues $\\lambda_\\nu$ of the active set (DESIGN §2),

$$E(t) = \\frac1s \\sum_\\nu |1 - \\eta\\lambda_\\nu|^t
= \\int \\rho(\\lambda)\\,|1-\\eta\\lambda|^t\\,d\\lambda
\\approx \\sum_j w_j |1 - \\eta\\theta_j|^t$$

is the mean growth factor of a perturbation after $t$ linearized GD steps. It splits into a
dissipative part $D(t)$ (modes with $|1-\\eta\\lambda| < 1$), a divergent part $G(t)$
($|1-\\eta\\lambda| > 1$) and a marginal part ($= 1$). As a sum of exponentials in $t$, $E$ is
convex with $E(0) = 1$, so it crosses 1 again at most once: at $t^*$, the end of a useful quantum
window. $G - D$ is increasing in $t$, so the divergent part overtakes the dissipative one at most
once: at $t_c$. Both are reported as the first integer step and as the real crossing point.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Scalar

from ._errors import check_finite, check_int_range, check_positive

_BISECT = 60


class PropagationCurve(eqx.Module):
    """$E(t)$ and its parts on $t = 0, 1, \\dots, T$, with the crossing steps.

    **Fields:**
    - `t`: the steps $0..T$ (float).
    - `total`, `dissipative`, `divergent`, `marginal`: $E(t)$ and its three parts, normalized
      ($E(0) = 1$); multiply by the active dimension $s$ for the un-normalized mode sum.
    - `t_star`: first integer $t \\ge 1$ with $E(t) \\ge 1$ ($1$ means no dissipative window,
      `inf` if not reached by $T$); `t_star_continuous`: the real root of $E(t) = 1$ in
      $(t^*-1, t^*]$.
    - `t_c`: first integer $t \\ge 0$ with $G(t) > D(t)$ (`inf` if not reached by $T$);
      `t_c_continuous`: the real crossing of $G$ and $D$.
    - `eta`: the learning rate.
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


def error_propagation(
    nodes: Float[Array, "..."],
    weights: Float[Array, "..."],
    eta: float | Scalar,
    *,
    num_steps: int = 100,
) -> PropagationCurve:
    """$E(t)$, its dissipative / divergent / marginal parts, $t^*$ and $t_c$ from a quadrature.

    Exact when `nodes` are the eigenvalues and `weights` are all $1/s$; from SLQ
    (`SpectralDensity.nodes`, `.weights`) it carries the quadrature's accuracy. `eta` may be
    traced, so `vmap` over learning rates compiles once.

    **Arguments:**
    - `nodes`: eigenvalues or quadrature nodes $\\lambda_j$ (any shape).
    - `weights`: their weights $w_j \\ge 0$, same shape; normalized here to sum to 1.
    - `eta`: learning rate $\\eta > 0$.
    - `num_steps`: last step $T$ (static).

    **Returns:** a `PropagationCurve`.
    """
    if jnp.shape(nodes) != jnp.shape(weights):
        raise ValueError(
            f"`nodes` and `weights` must have the same shape, got {jnp.shape(nodes)} and "
            f"{jnp.shape(weights)}."
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
    eta = jnp.asarray(eta, nodes.dtype)
    return _curve(nodes, jnp.asarray(weights), eta, num_steps)


@eqx.filter_jit
def _curve(nodes, weights, eta, num_steps):
    dtype = nodes.dtype
    lam = jnp.ravel(nodes)
    w = jnp.ravel(weights).astype(dtype)
    w = w / jnp.sum(w)
    eta = jnp.asarray(eta, dtype)
    a = jnp.abs(1 - eta * lam)
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
    return PropagationCurve(t, total, d, g, m, t_star, t_star_c, t_c, t_c_c, eta)


def propagation_from_spectrum(density, eta: float | Scalar, *, num_steps: int = 100):
    """`error_propagation` from a `SpectralDensity`'s quadrature nodes and weights."""
    return error_propagation(density.nodes, density.weights, eta, num_steps=num_steps)
