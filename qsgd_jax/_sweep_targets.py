"""Ready-made sweep targets: functions of a configuration dict with traced scalar fields."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from ._carleman import carleman
from ._condition import affine_gd_map, condition_number
from ._evolve import carleman_error
from ._field import DenseField
from ._history import history_system
from ._loss_model import taylor_field
from ._polynomial import PolynomialMap
from ._toy import CubicLoss


def magnitude_keep(theta: Float[Array, " n"], sparsity) -> Bool[Array, " n"]:
    """Keep the $(1 - \\text{sparsity})\\,n$ largest-magnitude entries; `sparsity` may be traced."""
    n = theta.shape[0]
    rank = jnp.argsort(jnp.argsort(jnp.abs(theta)))  # 0 = smallest magnitude
    return rank >= jnp.floor(sparsity * n).astype(rank.dtype)


def masked_field(field: DenseField, keep: Bool[Array, " n"]) -> DenseField:
    """Restrict a dense field to the coordinates in `keep` (a traced mask, fixed shapes).

    Rows and columns of pruned coordinates are zeroed, so a pruned coordinate that starts at 0
    stays exactly 0 and the active block is the active-set field of DESIGN §2.
    """
    k = keep.astype(field.f1.dtype)
    f2 = None
    if field.f2 is not None:
        f2 = field.f2 * k[:, None, None] * k[None, :, None] * k[None, None, :]
    return DenseField(
        field.f0_ * k, field.f1 * k[:, None] * k[None, :], f2, symmetric=field.symmetric
    )


def toy_window_error(
    config, *, loss: CubicLoss, theta_bar: Float[Array, " n"], steps: int = 30, max_order: int = 3
) -> dict:
    """Carleman window error and dissipation at (eta, sparsity, order) on a toy loss.

    Prunes `theta_bar` by magnitude at `config["sparsity"]`, takes the Taylor model of `loss` at
    the pruned point, and runs a window of `steps` GD steps from $u = 0$ at Carleman order
    `config["order"]` (`<= max_order`) with learning rate `config["eta"]`.

    **Returns:** `max_error` (max relative Carleman error), `rho` ($\\rho(F_1)$ on the active
    set) and `active` (number of active coordinates).
    """
    eta, sparsity, order = config["eta"], config["sparsity"], config["order"]
    keep = magnitude_keep(theta_bar, sparsity)
    dtype = theta_bar.dtype
    field = masked_field(taylor_field(loss, theta_bar * keep.astype(dtype), None), keep)
    eta = jnp.asarray(eta, dtype)
    poly = PolynomialMap(field, eta)
    err = carleman_error(
        carleman(poly, order, max_order=max_order), jnp.zeros_like(theta_bar), steps
    )
    # pruned coordinates get mu = -1/eta, i.e. |1 + eta mu| = 0: they do not count in rho
    f1 = field.f1 - jnp.diag(jnp.where(keep, 0.0, 1.0).astype(dtype)) / eta
    rho = jnp.max(jnp.abs(1 + eta * jnp.linalg.eigvalsh(f1)))
    return {"max_error": err.max_relative, "rho": rho, "active": jnp.sum(keep)}


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
    so one compiled program serves every $T \\le$ `max_steps`.

    **Returns:** `kappa`, `sigma_max`, `sigma_min` (matrix-free Lanczos estimates).
    """
    steps, eta = config["T"], config["eta"]
    m = affine_gd_map(g, H, jnp.asarray(eta, g.dtype))

    def step(t, x):
        return jnp.where(t <= jnp.asarray(steps, t.dtype), m @ x, x)

    system = history_system(step, max_steps, idle, kind="function", dim=g.shape[0] + 1)
    est = condition_number(system, num_iters=num_iters, dtype=g.dtype)
    return {"kappa": est.kappa, "sigma_max": est.sigma_max, "sigma_min": est.sigma_min}
