"""Ready-made sweep targets: functions of a configuration dict with traced scalar fields."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, Float, Int, PyTree

from ._carleman import carleman
from ._condition import affine_gd_map, condition_number
from ._errors import InvalidArgumentError, in_interval
from ._evolve import carleman_error
from ._field import DenseField
from ._history import history_system
from ._loss_model import taylor_field
from ._polynomial import PolynomialMap
from ._prune import _magnitude_keep
from ._readout import tomography
from ._sweep import check_range, sweep_target
from ._toy import CubicLoss


def masked_field(field: DenseField, keep: Bool[Array, " n"]) -> DenseField:
    """Restrict a dense field to the coordinates in `keep` (a traced mask, fixed shapes).

    Rows and columns of pruned coordinates are zeroed, so a pruned coordinate that starts at 0
    stays exactly 0 and the active block is the active-set field of `docs/math/taylor.md`.

    **Arguments:**

    - `field`: a `DenseField`.
    - `keep`: bool vector, `True` = active coordinate.

    **Returns:** the restricted `DenseField`.
    """
    k = keep.astype(field.f1.dtype)
    f2 = None
    if field.f2 is not None:
        f2 = field.f2 * k[:, None, None] * k[None, :, None] * k[None, None, :]
    return DenseField(
        field.f0_ * k, field.f1 * k[:, None] * k[None, :], f2, symmetric=field.symmetric
    )


def _window_error(loss_c, theta_c, config, steps: int, max_order: int) -> dict:
    """Window error at (eta, sparsity, order) for a loss of the candidate coordinates."""
    eta, sparsity, order = config["eta"], config["sparsity"], config["order"]
    # `sweep` checked the grid before tracing (`_check_window`); a direct traced call gets
    # NaN outputs for values out of range instead of a host callback in the program
    ok = (
        in_interval(jnp.asarray(eta), 0, low_open=True)
        & in_interval(jnp.asarray(sparsity), 0, 1, high_open=True)
        & in_interval(jnp.asarray(order), 1, max_order, integer=True)
    )
    keep = _magnitude_keep(theta_c, sparsity)
    dtype = theta_c.dtype
    field = taylor_field(lambda th, _: loss_c(th), theta_c * keep.astype(dtype), None)
    field = masked_field(field, keep)
    eta = jnp.asarray(eta, dtype)
    op = carleman(PolynomialMap(field, eta), order, max_order=max_order)
    err = carleman_error(op, jnp.zeros_like(theta_c), steps, throw=False)
    # pruned coordinates get mu = -1/eta, i.e. |1 + eta mu| = 0: they do not count in rho
    f1 = field.f1 - jnp.diag(jnp.where(keep, 0.0, 1.0).astype(dtype)) / eta
    rho = jnp.max(jnp.abs(1 + eta * jnp.linalg.eigvalsh(f1)))
    nan = jnp.full((), jnp.nan, dtype)
    return {
        "max_error": jnp.where(ok, err.max_relative, nan),
        "rho": jnp.where(ok, rho, nan),
        "active": jnp.sum(keep),
    }


def _check_window(values, *, max_order: int = 3, **_) -> None:
    check_range(values, "eta", low=0, low_open=True)
    check_range(values, "sparsity", low=0, high=1, high_open=True)
    check_range(values, "order", low=1, high=max_order, integer=True)


def _check_readout(values, **_) -> None:
    check_range(values, "shots", low=1, integer=True)
    check_range(values, "seed", low=0, high=2**31 - 1, integer=True)


def _check_history(values, *, max_steps: int, **_) -> None:
    check_range(values, "T", low=0, high=max_steps, integer=True)
    check_range(values, "eta", low=0, low_open=True)


@sweep_target(_check_window)
def toy_window_error(
    config, *, loss: CubicLoss, theta_bar: Float[Array, " n"], steps: int = 30, max_order: int = 3
) -> dict:
    """Carleman window error and dissipation at (eta, sparsity, order) on a toy loss.

    Prunes `theta_bar` by magnitude at `config["sparsity"]`, takes the Taylor model of `loss` at
    the pruned point, and runs a window of `steps` GD steps from $u = 0$ at Carleman order
    `config["order"]` (`<= max_order`) with learning rate `config["eta"]`. `sweep` checks the
    grid first: `eta > 0`, `sparsity` in [0, 1), `order` an integer in [1, `max_order`].

    **Arguments:**

    - `config`: `eta`, `sparsity`, `order` (traced scalars under `sweep`).
    - `loss`: the toy loss.
    - `theta_bar`: the point whose magnitudes are pruned and where the Taylor model is taken.
    - `steps`: GD steps of the window.
    - `max_order`: the static largest Carleman order.

    **Returns:** `max_error` (max relative Carleman error), `rho` ($\\rho(F_1)$ on the active
    set) and `active` (number of active coordinates); `max_error` and `rho` are NaN where a
    traced configuration is out of range (a direct call under `jit`/`vmap`; `sweep` refuses
    such a grid before tracing).
    """
    return _window_error(loss, theta_bar, config, steps, max_order)


def top_magnitude_index(params: PyTree, k: int) -> Int[Array, " k"]:
    """Flat indices of the `k` largest-magnitude entries of a (concrete) parameter pytree.

    **Arguments:**

    - `params`: the parameter pytree.
    - `k`: how many indices, in [1, number of parameters].

    **Returns:** the indices, sorted ascending (int32).
    """
    flat = np.asarray(ravel_pytree(params)[0])
    if not 1 <= k <= flat.size:
        raise InvalidArgumentError(
            f"`k` must lie in [1, {flat.size}] (the number of parameters), got {k}."
        )
    return jnp.asarray(np.sort(np.argsort(-np.abs(flat), kind="stable")[:k]), jnp.int32)


@sweep_target(_check_window)
def model_window_error(
    config,
    *,
    loss_fn,
    params: PyTree,
    batch,
    index: Int[Array, " k"],
    steps: int = 30,
    max_order: int = 3,
) -> dict:
    """`toy_window_error` for a model: the window evolves the coordinates `index` of `params`.

    The other parameters stay frozen at their values; among the candidates, `config["sparsity"]`
    prunes by magnitude (traced). Pick the candidates with `top_magnitude_index(params, k)`;
    $k \\approx 20$ keeps an order-3 Carleman state small (its dimension is $\\sum_j k^j$).

    **Arguments:**

    - `config`: `eta`, `sparsity`, `order` (traced scalars under `sweep`).
    - `loss_fn`, `params`, `batch`: the model's loss, its parameters and one batch.
    - `index`: the flat indices of the candidate coordinates.
    - `steps`, `max_order`: as for `toy_window_error`.

    **Returns:** as `toy_window_error`.
    """
    flat, unravel = ravel_pytree(params)

    def loss_c(theta_c):
        return loss_fn(unravel(flat.at[index].set(theta_c)), batch)

    return _window_error(loss_c, flat[index], config, steps, max_order)


@sweep_target(_check_readout)
def readout_error(config, *, psi: Float[Array, " s"]) -> dict:
    """l2 and l-inf tomography error of the normalized state `psi` at traced `config["shots"]`.

    `config["seed"]` (an integer) selects the PRNG key, so seeds can be a sweep axis too.
    `sweep` checks the grid first: `shots` an integer >= 1, `seed` an integer >= 0.

    **Arguments:**

    - `config`: `shots` and `seed` (traced scalars under `sweep`).
    - `psi`: the normalized state.

    **Returns:** `l2` and `linf`, the errors of the estimate (NaN for invalid traced shots).
    """
    key = jax.random.key(config["seed"])
    # the grid is checked before tracing: no run-time check (a host callback) in the sweep's
    # program; a direct traced call with invalid shots gets NaN errors
    est = tomography(key, psi, config["shots"], throw=False)
    diff = est - psi
    return {"l2": jnp.linalg.norm(diff), "linf": jnp.max(jnp.abs(diff))}


@sweep_target(_check_history)
def history_kappa(
    config,
    *,
    g: Float[Array, " n"],
    H: Float[Array, "n n"],
    max_steps: int,
    idle: int = 0,
    num_iters: int = 64,
) -> dict:
    """$\\kappa$ of the degree-1 history system at traced (`T`, `eta`) with a fixed total length.

    The system always has `max_steps + idle` blocks after the initial one: the first
    `config["T"]` apply the affine GD map $M = [[1, 0], [-\\eta g, I - \\eta H]]$, the rest are
    idle copies. This is the system with $T$ steps and $p = $ `max_steps - T + idle` idle steps,
    so one compiled program serves every $T \\le$ `max_steps` (`sweep` checks `T` in
    [0, `max_steps`] and `eta > 0` first).

    **Arguments:**

    - `config`: `T` and `eta` (traced scalars under `sweep`).
    - `g`, `H`: gradient and Hessian of the quadratic.
    - `max_steps`: the largest $T$ (fixes the system's length).
    - `idle`: extra idle steps.
    - `num_iters`: Lanczos iterations of `condition_number`.

    **Returns:** `kappa`, `sigma_max`, `sigma_min` (matrix-free Lanczos estimates; NaN where a
    traced `T` or `eta` is out of range, in a direct call: `sweep` refuses such a grid).
    """
    steps, eta = config["T"], config["eta"]
    ok = in_interval(jnp.asarray(steps), 0, max_steps, integer=True) & in_interval(
        jnp.asarray(eta), 0, low_open=True
    )
    m = affine_gd_map(g, H, jnp.asarray(eta, g.dtype))

    def step(t, x):
        return jnp.where(t <= jnp.asarray(steps, t.dtype), m @ x, x)

    system = history_system(step, max_steps, idle, kind="function", dim=g.shape[0] + 1)
    est = condition_number(system, num_iters=num_iters, dtype=g.dtype)
    out = {"kappa": est.kappa, "sigma_max": est.sigma_max, "sigma_min": est.sigma_min}
    return {k: jnp.where(ok, v, jnp.full_like(v, jnp.nan)) for k, v in out.items()}
