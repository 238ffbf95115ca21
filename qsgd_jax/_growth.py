"""Measured error propagation: how a perturbation of the upload point grows through SGD steps.

A window starts at $\\bar\\theta = m \\odot \\theta$ with the masked SGD steps
$\\varphi_t(\\theta) = \\theta - \\eta\\, m \\odot \\nabla L_{b_t}(\\theta)$ on its batches,
$\\Phi_t = \\varphi_t \\circ \\dots \\circ \\varphi_1$, and
$J_t = \\partial\\Phi_t/\\partial\\theta$ at $\\bar\\theta$ on the $s$ active coordinates. A
read-out error $\\delta$ made at upload has grown to $J_t\\delta$ after $t$ steps, to first
order. For isotropic $\\delta$

$$G_\\text{true}(t) = \\Big(\\frac{\\mathbb E\\lVert J_t\\delta\\rVert^2}
{\\mathbb E\\lVert\\delta\\rVert^2}\\Big)^{1/2} = \\frac{\\lVert J_t\\rVert_F}{\\sqrt s},$$

estimated (Hutchinson) with $k$ probes $v_p$ with $\\mathbb E[v v^\\top] = I/s$ (Rademacher or
Gaussian, scaled by $1/\\sqrt s$) as $(\\frac1k\\sum_p \\lVert J_t v_p\\rVert^2)^{1/2}$; each probe
costs one `jvp` through the `lax.scan` of the SGD steps (about one HVP per step), and the probes
are vmapped. With the $s$ unit vectors as probes the estimate is exact. The linearized counterpart
$G_\\text{lin}(t)$ uses the window's linear maps $J^\\text{lin}_t = \\prod_k (I - \\eta
H_{b_k}(\\bar\\theta))$ (every Hessian at $\\bar\\theta$). In full-batch GD on a quadratic loss both
equal $E_2(t)$ (`spectral_growth`). The finite-perturbation growth
$\\lVert\\Phi_t(\\bar\\theta+\\delta) - \\Phi_t(\\bar\\theta)\\rVert / \\lVert\\delta\\rVert$ of an
actual $\\delta$ shows where linear response stops holding.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree, Scalar

from ._batching import is_full_batch, step_batch
from ._errors import (
    InvalidArgumentError,
    check_finite,
    check_finite_tree,
    check_int_range,
    check_memory,
    check_nonempty,
    check_positive,
    is_concrete,
)
from ._loss_model import ActiveSet, active_set
from ._propagation import eta_ok
from ._spectrum import stack_batches
from ._status import (
    RESULTS,
    AbstractResult,
    apply_throw,
    argument_status,
    finite_status,
    first_nonfinite_step,
)

PROBES = ("rademacher", "gaussian", "exact")


class PerturbationGrowth(AbstractResult):
    """The measured growth $G(t)$ of isotropic perturbations, $t = 0, \\dots, T$ (module docstring).

    Returned by `perturbation_growth`.

    **Fields:**

    - `t`: the steps $0..T$ (float).
    - `value`: $G(t) = (\\frac1k\\sum_p\\lVert J_t v_p\\rVert^2)^{1/2}$, $G_\\text{true}$ or
      $G_\\text{lin}$ ($G(0) = 1$ for exact probes, $\\approx 1$ for random ones).
    - `per_probe`: each probe's estimate $\\lVert J_t v_p\\rVert$, shape `(T + 1, k)`.
    - `spread`: the standard deviation over the probes of `per_probe` (`inf` with one random
      probe, 0 for exact probes); the estimate's standard error is about `spread` $/\\sqrt k$
      (`standard_error`).
    - `eta`: the learning rate.
    - `status`: `RESULTS.invalid_argument` when a traced $\\eta$ was not finite and $> 0$, else
      `RESULTS.nonfinite` when `value` has a NaN or inf (SGD diverged); `nonfinite_step`: the
      first such step (-1 if none).
    - `probes`: `"rademacher"`, `"gaussian"` or `"exact"`; `linearized`: whether this is
      $G_\\text{lin}$ (static).
    """

    t: Float[Array, " T1"]
    value: Float[Array, " T1"]
    per_probe: Float[Array, "T1 k"]
    spread: Float[Array, " T1"]
    eta: Float[Array, ""]
    status: RESULTS
    nonfinite_step: Int[Array, ""]
    probes: str = eqx.field(static=True)
    linearized: bool = eqx.field(static=True)
    what = "The perturbation-growth measurement"

    @property
    def standard_error(self) -> Float[Array, " T1"]:
        """About `spread` $/\\sqrt k$: the uncertainty of `value` from the finite probe count."""
        k = self.per_probe.shape[-1]
        return self.spread / jnp.sqrt(jnp.asarray(k, self.spread.dtype))


class FinitePerturbationGrowth(AbstractResult):
    """The growth of one actual perturbation $\\delta$ through true SGD, beside its linear response.

    Returned by `finite_perturbation_growth`.

    **Fields:**

    - `t`: the steps $0..T$ (float).
    - `finite`: $\\lVert\\Phi_t(\\bar\\theta+\\delta) - \\Phi_t(\\bar\\theta)\\rVert
      /\\lVert\\delta\\rVert$.
    - `linear`: $\\lVert J_t\\delta\\rVert/\\lVert\\delta\\rVert$, the first-order prediction.
    - `nonlinearity`: $\\lVert\\Phi_t(\\bar\\theta+\\delta) - \\Phi_t(\\bar\\theta)
      - J_t\\delta\\rVert / \\lVert J_t\\delta\\rVert$: where it nears 1, linear response has
      stopped holding (NaN where $J_t\\delta = 0$).
    - `delta_norm`: $\\lVert\\delta\\rVert$; `eta`: the learning rate.
    - `status`: `RESULTS.invalid_argument` when a traced $\\eta$ was not finite and $> 0$, else
      `RESULTS.nonfinite` when `finite` or `linear` has a NaN or inf (a run diverged, or a
      traced $\\delta$ was zero or not finite); `nonfinite_step`: the first such step.
    """

    t: Float[Array, " T1"]
    finite: Float[Array, " T1"]
    linear: Float[Array, " T1"]
    nonlinearity: Float[Array, " T1"]
    delta_norm: Float[Array, ""]
    eta: Float[Array, ""]
    status: RESULTS
    nonfinite_step: Int[Array, ""]
    what = "The finite-perturbation growth"


def _validate(params, mask, batches, eta, num_steps, batching):
    """Check the common arguments; returns the active set and the (stacked) batches."""
    check_finite_tree("params", params)
    check_finite_tree("batches", batches)
    active = active_set(params, mask)
    check_int_range("num_steps", num_steps, 0)
    check_positive("eta", eta)
    if not is_full_batch(batching):
        batches = stack_batches(batches)
        lengths = {
            jnp.shape(x)[0] if jnp.ndim(x) else 0 for x in jax.tree_util.tree_leaves(batches)
        }
        if len(lengths) > 1:
            raise InvalidArgumentError(
                f"`batches` leaves disagree on the leading (step) axis: {lengths}."
            )
        have = min(lengths, default=0)
        check_nonempty("batches", have, "batches (a leading step axis of length 0)")
        if have < num_steps:
            raise InvalidArgumentError(
                f"`batches` must hold one batch per SGD step, a leading step axis of length >= "
                f"num_steps = {num_steps}, got {have}; pass more batches, or batching='full' "
                "to reuse one batch every step."
            )
    return active, batches


def _sgd_step(loss_fn, params, index, batches, eta, batching):
    """The active-set SGD step $u \\mapsto u - \\eta P^\\top\\nabla L_{b_t}(\\bar\\theta + Pu)$."""
    flat, unravel = ravel_pytree(params)
    active = ActiveSet(jnp.zeros_like(flat).at[index].set(flat[index]), index, unravel)
    grad = jax.grad(loss_fn)

    def step(u, t):
        batch = step_batch(batches, t, is_full_batch(batching))
        return u - eta * active.restrict(grad(active.embed(u), batch))

    return step, flat.dtype


def perturbation_growth(
    loss_fn: Callable[[PyTree, PyTree], Scalar],
    params: PyTree,
    mask: PyTree | None,
    batches: PyTree,
    eta: ArrayLike,
    key: PRNGKeyArray,
    *,
    num_steps: int,
    num_probes: int = 16,
    probes: str = "rademacher",
    linearized: bool = False,
    batching: str = "sgd",
    probe_batch_size: int | None = None,
    memory_limit: int | None = None,
    throw: bool = True,
) -> PerturbationGrowth:
    """$G_\\text{true}(t) = \\lVert J_t\\rVert_F/\\sqrt s$, or $G_\\text{lin}(t)$ (`linearized`).

    Hutchinson's estimate with `num_probes` random probes, or exact with `probes="exact"` (the
    $s$ unit vectors; $s$ jvps per step), by `jvp` through the scan of the $T$ SGD steps from
    $\\bar\\theta = m \\odot$ `params` (module docstring). `eta` may be traced (`vmap` over
    learning rates compiles once).

    **Arguments:**

    - `loss_fn`: pure `loss_fn(params, batch) -> scalar`.
    - `params`: the upload point (pruned entries are set to 0); real floats.
    - `mask`: concrete bool pytree like `params` (`True` = active), or `None` (all active).
    - `batches`: batch $b_t$ of step $t = 1..T$ at index $t - 1$ of the leaves' leading step axis
      (length $\\ge T$; `batching="sgd"`), or one batch used at every step (`"full"`).
    - `eta`: scalar learning rate $\\eta > 0$.
    - `key`: PRNG key of the random probes (unused by `"exact"`).
    - `num_steps`: $T \\ge 0$ (static).
    - `num_probes`: $k \\ge 1$ random probes (ignored by `"exact"`, which uses $s$).
    - `probes`: `"rademacher"`, `"gaussian"` or `"exact"`.
    - `linearized`: every step's map is $I - \\eta H_{b_t}(\\bar\\theta)$ ($G_\\text{lin}$) instead
      of the Jacobian of the true step along the SGD trajectory ($G_\\text{true}$) (static).
    - `batching`: `"sgd"` or `"full"` (above).
    - `probe_batch_size`: probes vmapped at once (`None`: all); fewer bound the memory of the
      model's jvps at the price of recomputing the SGD trajectory once per chunk.
    - `memory_limit`: bytes allowed for the probes' tangents and outputs (default:
      `qsgd_jax._errors.default_memory_limit()`); above it a `MemoryLimitError` before any work.
    - `throw`: raise `NonFiniteError` (eagerly, or at run time under `jit`) when `status` is not
      successful; with `False` the caller reads `status`.

    **Returns:** a `PerturbationGrowth` with arrays of shape `(T + 1,)`.
    """
    active, batches = _validate(params, mask, batches, eta, num_steps, batching)
    if probes not in PROBES:
        raise InvalidArgumentError(f"`probes` must be one of {PROBES}, got {probes!r}.")
    check_int_range("num_probes", num_probes, 1)
    if probe_batch_size is not None:
        check_int_range("probe_batch_size", probe_batch_size, 1)
    s, itemsize = active.size, active.base.dtype.itemsize
    k = s if probes == "exact" else int(num_probes)
    chunk = k if probe_batch_size is None else min(int(probe_batch_size), k)
    check_memory(
        f"Perturbation growth with k = {k} probes of s = {s} active coordinates over "
        f"T = {num_steps} steps ({chunk} probes at a time)",
        itemsize * (k * s + 3 * chunk * s + 2 * (num_steps + 1) * k),
        memory_limit,
    )
    dtype = active.base.dtype
    if probes == "exact":
        v0 = jnp.eye(s, dtype=dtype)
    else:
        # Drawn outside the growth program: one compiled draw serves every program of a shape.
        draw = jax.random.rademacher if probes == "rademacher" else jax.random.normal
        v0 = draw(key, (k, s), dtype) / jnp.sqrt(jnp.asarray(s, dtype))
    out = _probe_growth(
        loss_fn,
        params,
        active.index,
        batches,
        jnp.asarray(eta, dtype),
        v0,
        num_steps,
        probes,
        linearized,
        batching,
        None if probe_batch_size is None else chunk,
    )
    return apply_throw(out, throw)


@eqx.filter_jit
def _probe_growth(
    loss_fn, params, index, batches, eta, v0, num_steps, probes, linearized, batching, chunk
):
    step, dtype = _sgd_step(loss_fn, params, index, batches, eta, batching)
    u0 = jnp.zeros(v0.shape[1:], dtype)

    def run(v):
        def body(carry, t):
            u, v = carry
            u_next, v = jax.jvp(lambda x: step(x, t), (u,), (v,))
            return (u if linearized else u_next, v), jnp.linalg.norm(v)

        _, norms = jax.lax.scan(body, (u0, v), jnp.arange(num_steps))
        return jnp.concatenate([jnp.linalg.norm(v)[None], norms])

    # Under vmap the trajectory u does not depend on the probe: it is computed once per chunk.
    per_probe = jax.vmap(run)(v0) if chunk is None else jax.lax.map(run, v0, batch_size=chunk)
    per_probe = per_probe.T
    value = jnp.sqrt(jnp.mean(jnp.square(per_probe), axis=1))
    if probes == "exact":
        spread = jnp.zeros_like(value)
    elif v0.shape[0] > 1:
        spread = jnp.std(per_probe, axis=1, ddof=1)
    else:
        spread = jnp.full_like(value, jnp.inf)
    t = jnp.arange(num_steps + 1, dtype=dtype)
    return PerturbationGrowth(
        t,
        value,
        per_probe,
        spread,
        eta,
        argument_status(eta_ok(eta), finite_status(value)),
        first_nonfinite_step(value),
        probes,
        linearized,
    )


def finite_perturbation_growth(
    loss_fn: Callable[[PyTree, PyTree], Scalar],
    params: PyTree,
    mask: PyTree | None,
    batches: PyTree,
    eta: ArrayLike,
    delta: ArrayLike,
    *,
    num_steps: int,
    batching: str = "sgd",
    throw: bool = True,
) -> FinitePerturbationGrowth:
    """Push one perturbation $\\delta$ of the upload point through $T$ true SGD steps.

    Runs $\\Phi_t(\\bar\\theta)$ with the jvp $J_t\\delta$ beside it and
    $\\Phi_t(\\bar\\theta+\\delta)$ (two trajectories, about two HVPs a step), so that the finite
    growth, its first-order prediction and their gap come from one scan
    (`FinitePerturbationGrowth`). Use it with an actual tomography error (`qsgd_jax.readout`)
    to see how far linear response holds.

    **Arguments:**

    - `loss_fn`, `params`, `mask`, `batches`, `eta`, `num_steps`, `batching`, `throw`: as for
      `perturbation_growth`.
    - `delta`: the perturbation of the $s$ active coordinates (in the order of the flattened
      `params`), shape `(s,)`, real, finite and nonzero.

    **Returns:** a `FinitePerturbationGrowth` with arrays of shape `(T + 1,)`.
    """
    active, batches = _validate(params, mask, batches, eta, num_steps, batching)
    dtype = jnp.result_type(delta)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise InvalidArgumentError(f"`delta` must be real, got dtype {dtype}.")
    if jnp.shape(delta) != (active.size,):
        raise InvalidArgumentError(
            f"`delta` must perturb the s = {active.size} active coordinates, shape "
            f"({active.size},), got shape {jnp.shape(delta)}."
        )
    check_finite("delta", delta)
    delta = jnp.asarray(delta, active.base.dtype)
    if is_concrete(delta) and not np.any(np.asarray(delta)):
        raise InvalidArgumentError(
            "`delta` is zero: the growth ratio of a zero perturbation is undefined."
        )
    eta = jnp.asarray(eta, active.base.dtype)
    out = _finite(loss_fn, params, active.index, batches, eta, delta, num_steps, batching)
    return apply_throw(out, throw)


@eqx.filter_jit
def _finite(loss_fn, params, index, batches, eta, delta, num_steps, batching):
    step, dtype = _sgd_step(loss_fn, params, index, batches, eta, batching)
    norm = jnp.linalg.norm

    def body(carry, t):
        u, up, w = carry
        u, w = jax.jvp(lambda x: step(x, t), (u,), (w,))
        up = step(up, t)
        gap = up - u
        return (u, up, w), jnp.stack([norm(gap), norm(w), norm(gap - w)])

    u0 = jnp.zeros_like(delta)
    _, rows = jax.lax.scan(body, (u0, delta, delta), jnp.arange(num_steps))
    d = norm(delta)
    first = jnp.stack([d, d, jnp.zeros_like(d)])
    rows = jnp.concatenate([first[None], rows])
    finite, linear = rows[:, 0] / d, rows[:, 1] / d
    nonlinearity = rows[:, 2] / rows[:, 1]
    t = jnp.arange(num_steps + 1, dtype=dtype)
    return FinitePerturbationGrowth(
        t,
        finite,
        linear,
        nonlinearity,
        d,
        eta,
        argument_status(eta_ok(eta), finite_status(finite, linear)),
        first_nonfinite_step(finite, linear),
    )
