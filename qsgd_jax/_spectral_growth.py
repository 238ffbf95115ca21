"""The spectral models of error growth at one upload point, in one result, with the stability
numbers: $E(t)$, $E_2(t)$ (`error_propagation`) and the paper's proxy under readings (i) and
(ii) (`paper_error_proxy`), which the measured growth (`perturbation_growth`) is compared with.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Int

from ._errors import check_positive
from ._propagation import MOMENTS, PaperProxy, PropagationCurve, _curve, _proxy, _quadrature, eta_ok
from ._status import (
    RESULTS,
    AbstractResult,
    apply_throw,
    argument_status,
    finite_status,
    first_nonfinite_step,
)


class SpectralGrowth(AbstractResult):
    """The spectral models of error growth at one upload point, with the stability numbers.

    Returned by `spectral_growth`. For Hessian eigenvalues $\\lambda$ (or SLQ nodes) of the active
    set, learning rate $\\eta$ and horizon $T$:

    **Fields:**

    - `mean`: $E(t)$, the mean growth (`PropagationCurve`, `moment=1`).
    - `rms`: $E_2(t) = (\\frac1s\\sum_\\nu (1-\\eta\\lambda_\\nu)^{2t})^{1/2}$, the growth of an
      isotropic perturbation under the linearized full-batch steps (`moment=2`).
    - `paper_mean`, `paper_rms`: $E_\\text{paper}$ under readings (i) and (ii) (`PaperProxy`).
    - `edge_ratio`: $\\eta\\lambda_{\\max}/2$; above 1 the top mode is beyond the linear stability
      limit of GD ($|1-\\eta\\lambda_{\\max}| > 1$).
    - `min_mode_drift`: $\\eta|\\lambda_{\\min}|T$; "almost dissipative" when the most negative
      (or flattest) mode has $\\eta|\\lambda_{\\min}|T \\lesssim 1$.
    - `radius_power`: $\\rho(F_1)^T = \\max_\\nu|1-\\eta\\lambda_\\nu|^T$, the worst growth of any
      mode over the horizon.
    - `status`: `RESULTS.invalid_argument` when a traced $\\eta$ was not finite and $> 0$, else
      `RESULTS.nonfinite` when a curve is NaN or inf (the linearized dynamics overflowed);
      `nonfinite_step`: the first such step $t$ (-1 if none).
    """

    mean: PropagationCurve
    rms: PropagationCurve
    paper_mean: PaperProxy
    paper_rms: PaperProxy
    edge_ratio: Float[Array, ""]
    min_mode_drift: Float[Array, ""]
    radius_power: Float[Array, ""]
    status: RESULTS
    nonfinite_step: Int[Array, ""]
    what = "The spectral growth model"


def spectral_growth(
    nodes: ArrayLike,
    weights: ArrayLike,
    eta: ArrayLike,
    *,
    a_c: ArrayLike = 0.4,
    num_steps: int = 100,
    throw: bool = True,
) -> SpectralGrowth:
    """$E(t)$, $E_2(t)$, $E_\\text{paper}(t)$ under readings (i) and (ii), and stability numbers.

    The spectral predictions that the measured growth of `perturbation_growth` is compared with
    (`error_propagation` and `paper_error_proxy` at both moments, one quadrature). Exact when
    `nodes` are the eigenvalues of the active Hessian (`exact_hessian_spectrum`) and `weights`
    all equal; from SLQ it carries the quadrature's accuracy (the extreme nodes are Ritz values).

    **Arguments:**

    - `nodes`, `weights`: the quadrature (as for `error_propagation`); for a `SpectralDensity`
      or `ExactSpectrum` `d`, pass `d.nodes, d.weights`.
    - `eta`: scalar learning rate $\\eta > 0$ (may be traced).
    - `a_c`: the proxy's cut-off on $|\\eta\\lambda|$ (the paper: 0.4).
    - `num_steps`: horizon $T \\ge 1$ (static).
    - `throw`: raise `NonFiniteError` (eagerly, or at run time under `jit`) when `status` is not
      successful; with `False` the caller reads `status`.

    **Returns:** a `SpectralGrowth`; its curves have shape `(T + 1,)`.
    """
    check_positive("a_c", a_c, strict=False)
    nodes, weights, eta = _quadrature(nodes, weights, eta, num_steps)
    out = _growth_models(nodes, weights, eta, jnp.asarray(a_c, nodes.dtype), num_steps)
    return apply_throw(out, throw)


@eqx.filter_jit
def _growth_models(nodes, weights, eta, a_c, num_steps):
    mean, rms = (_curve(nodes, weights, eta, num_steps, p) for p in MOMENTS)
    paper_mean, paper_rms = (_proxy(nodes, weights, eta, a_c, num_steps, p) for p in MOMENTS)
    horizon = jnp.asarray(num_steps, nodes.dtype)
    rho = jnp.max(jnp.abs(1 - eta * nodes))
    # An empty proxy (no kept mass) is NaN by definition, not a failure.
    curves = [mean.total, rms.total] + [
        jnp.where(p.kept_mass > 0, p.value, jnp.ones_like(p.value)) for p in (paper_mean, paper_rms)
    ]
    return SpectralGrowth(
        mean,
        rms,
        paper_mean,
        paper_rms,
        eta * jnp.max(nodes) / 2,
        eta * jnp.abs(jnp.min(nodes)) * horizon,
        rho**num_steps,
        argument_status(eta_ok(eta), finite_status(*curves)),
        first_nonfinite_step(*curves),
    )
