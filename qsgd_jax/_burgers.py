"""The PNAS viscous Burgers benchmark (Liu et al., PNAS 118, e2026805118 (2021), §"Numerics").

$$\\partial_t u + u\\,\\partial_x u = \\nu\\,\\partial_x^2 u + F(x, t),\\qquad
x \\in [-L_0/2, L_0/2], \\quad u(\\pm L_0/2, t) = 0,$$

with $u(x, 0) = -U_0 \\sin(2\\pi x / L_0)$, forcing $F(x, t) = U_0\\, e^{-(x - L_0/4)^2 /
(2 (L_0/32)^2)} \\cos(2\\pi t)$ and Reynolds number $\\mathrm{Re}_0 = U_0 L_0 / \\nu = 20$
($U_0 = L_0 = 1$, time in units of $L_0/U_0$). Central differences on $n_x = 16$ interior points
($\\Delta x = L_0 / (n_x + 1)$) and the conservative flux $\\partial_x (u^2/2)$ give the quadratic
ODE $\\dot u = f_0(t) + f_1 u + f_2 (u \\otimes u)$:

- $f_1 = \\nu D_2$ (the Dirichlet Laplacian stencil $[1, -2, 1] / \\Delta x^2$),
- $(f_2)_{i,ab}$: $-\\tfrac{1}{4\\Delta x}(u_{i+1}^2 - u_{i-1}^2)$,
- $f_0(t) = F(x_i, t)$ (time-dependent: the Carleman generator is $A(t)$, only its $f_0$ blocks
  change in time).

The Carleman state $Y = (1, y_1, \\dots, y_N)$ obeys the linear ODE $\\dot Y = A(t) Y$ ("euler"
form generator); here it is integrated to tolerance by diffrax, so the measured error is the
Carleman truncation alone (no time-discretization term). The reference is the nonlinear ODE,
also by diffrax. The PNAS number $R$ uses $\\max_t\\lVert f_0(t)\\rVert = \\lVert f_0(0)\\rVert$.
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._carleman import carleman
from ._dissipation import dissipation
from ._errors import check_int_range, check_positive
from ._field import DenseField
from ._polynomial import field_map


class BurgersProblem(eqx.Module):
    """The discretized Burgers ODE (build it with `burgers_problem`).

    **Fields:** `x` (interior grid), `u0` ($u(x, 0)$), `forcing` (the profile of $F$ at
    $\\cos(2\\pi t) = 1$), `field` (a `DenseField` with $f_0$ = `forcing`), `nu`, `reynolds`.
    """

    x: Float[Array, " n"]
    u0: Float[Array, " n"]
    forcing: Float[Array, " n"]
    field: DenseField
    nu: float = eqx.field(static=True)
    reynolds: float = eqx.field(static=True)

    def field_at(self, t) -> DenseField:
        """The field at time $t$: $f_0 = F(x)\\cos(2\\pi t)$."""
        return eqx.tree_at(lambda f: f.f0_, self.field, self.forcing * jnp.cos(2 * jnp.pi * t))


def burgers_problem(
    num_points: int = 16, reynolds: float = 20.0, *, forced: bool = True, dtype=jnp.float64
) -> BurgersProblem:
    """The PNAS Burgers setup on `num_points` interior points (module docstring).

    **Arguments:**

    - `num_points`: interior grid points $n_x$ (16 in PNAS).
    - `reynolds`: $\\mathrm{Re}_0 = U_0 L_0/\\nu$ (20 in PNAS).
    - `forced`: include the Gaussian forcing $F(x, t)$.
    - `dtype`: float dtype (float64 needs `jax_enable_x64`).
    """
    check_int_range("num_points", num_points, 3)
    check_positive("reynolds", reynolds)
    n = num_points
    dx = 1.0 / (n + 1)
    nu = 1.0 / reynolds
    x = -0.5 + dx * np.arange(1, n + 1)
    lap = (np.eye(n, k=1) + np.eye(n, k=-1) - 2 * np.eye(n)) / dx**2
    f2 = np.zeros((n, n, n))
    for i in range(n):
        if i + 1 < n:
            f2[i, i + 1, i + 1] -= 1 / (4 * dx)
        if i > 0:
            f2[i, i - 1, i - 1] += 1 / (4 * dx)
    forcing = np.exp(-((x - 0.25) ** 2) / (2 * (1 / 32) ** 2)) if forced else np.zeros(n)
    a = lambda v: jnp.asarray(v, dtype)  # noqa: E731
    field = DenseField(a(forcing), a(nu * lap), a(f2), symmetric=True)
    return BurgersProblem(a(x), a(-np.sin(2 * np.pi * x)), a(forcing), field, nu, reynolds)


def _solve(rhs, y0, ts, rtol):
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(rhs),
        diffrax.Tsit5(),
        t0=ts[0],
        t1=ts[-1],
        dt0=1e-3,
        y0=y0,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=rtol * 1e-2),
        max_steps=200_000,
    )
    return sol.ys


@eqx.filter_jit
def burgers_reference(
    problem: BurgersProblem, ts: Float[Array, " T"], rtol: float = 1e-10
) -> Float[Array, "T n"]:
    """The nonlinear ODE solution $u(t)$ at times `ts` (diffrax Tsit5, tolerance `rtol`)."""
    return _solve(lambda t, u, _: problem.field_at(t)(u), problem.u0, ts, rtol)


@eqx.filter_jit
def burgers_carleman(
    problem: BurgersProblem,
    order,
    ts: Float[Array, " T"],
    rtol: float = 1e-10,
    *,
    max_order: int = 4,
) -> Float[Array, "T n"]:
    """$y_1(t)$ of the order-$N$ Carleman system $\\dot Y = A(t)Y$ at times `ts` (diffrax).

    `order` is traced (one compiled program for every $N \\le$ `max_order`).
    """
    op = carleman(field_map(problem.field, 1.0), order, form="euler", max_order=max_order)
    y0 = op.lift(problem.u0)

    def rhs(t, y, _):
        op_t = eqx.tree_at(lambda o: o.poly.field, op, problem.field_at(t))
        return op_t.matvec(y)

    return _solve(rhs, y0, ts, rtol)[1]


def burgers_errors(
    problem: BurgersProblem,
    orders=(1, 2, 3, 4),
    *,
    t_final: float = 1.0,
    num_times: int = 101,
    rtol: float = 1e-9,
    progress=None,
) -> dict:
    """Carleman error against the ODE reference for each order (JSON-able dict).

    **Returns:** `R` (PNAS number at $t = 0$), `re_lambda1`, `times`, `reference_norm`
    ($\\lVert u(t)\\rVert_2$), and per order the absolute error curve
    $\\lVert y_1(t) - u(t)\\rVert_2$, its time maximum `max_error` and `max_relative_error`
    ($\\max_t$ error / $\\max_t\\lVert u(t)\\rVert$).
    """
    check_positive("t_final", t_final)
    check_int_range("num_times", num_times, 2)
    ts = jnp.linspace(0.0, t_final, num_times, dtype=problem.u0.dtype)
    diss = dissipation(field_map(problem.field, 1.0), problem.u0)
    ref = burgers_reference(problem, ts, rtol)
    ref_norm = np.linalg.norm(np.asarray(ref), axis=1)
    out = {
        "setup": {
            "num_points": int(problem.x.shape[0]),
            "reynolds": problem.reynolds,
            "nu": problem.nu,
            "t_final": t_final,
            "rtol": rtol,
        },  # fmt: skip
        "R": float(diss.r_number),
        "re_lambda1": float(diss.re_lambda1),
        "times": np.asarray(ts).tolist(),
        "reference_norm": ref_norm.tolist(),
        "orders": {},
    }
    for order in orders:
        y1 = burgers_carleman(problem, jnp.asarray(order), ts, rtol, max_order=max(orders))
        err = np.linalg.norm(np.asarray(y1) - np.asarray(ref), axis=1)
        err = np.where(np.isfinite(err), err, np.inf)
        out["orders"][str(order)] = {
            "max_error": float(err.max()),
            "max_relative_error": float(err.max() / ref_norm.max()),
            "error": err.tolist(),
        }
        if progress is not None:
            progress(f"Burgers N = {order}: max error {err.max():.3e}")
    return out


__all__ = ["BurgersProblem", "burgers_carleman", "burgers_errors", "burgers_problem",
           "burgers_reference"]  # fmt: skip
