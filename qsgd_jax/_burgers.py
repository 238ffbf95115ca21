"""The PNAS viscous Burgers benchmark (Liu et al., PNAS 118, e2026805118 (2021), Fig. 1).

$$\\partial_t u + u\\,\\partial_x u = \\nu\\,\\partial_x^2 u + F(x, t),\\qquad
x \\in [-L_0/2, L_0/2], \\quad u(\\pm L_0/2, t) = 0,$$

with $u(x, 0) = -U_0 \\sin(2\\pi x / L_0)$, forcing $F(x, t) = U_0\\, e^{-(x - L_0/4)^2 /
(2 (L_0/32)^2)} \\cos(2\\pi t)$ and Reynolds number $\\mathrm{Re}_0 = U_0 L_0 / \\nu = 20$
($L_0 = 1$). Central differences and the conservative flux $\\partial_x (u^2/2)$ give the
quadratic ODE $\\dot u = f_0(t) + f_1 u + f_2 (u \\otimes u)$:

- $f_1 = \\nu D_2$ (the stencil $[1, -2, 1] / \\Delta x^2$),
- $(f_2 (u \\otimes u))_i = -\\tfrac{1}{4\\Delta x}(u_{i+1}^2 - u_{i-1}^2)$,
- $f_0(t) = F(x_i, t)$ (time dependent: only the $f_0$ blocks of the Carleman generator change).

Two grids (`variant`):

- `"pnas"` (the default, the article's figure and its public reference script): $n_x = 16$
  nodes **including** both boundary nodes, $x_i = -\\tfrac12 + i\\,\\Delta x$ with
  $\\Delta x = 1/(n_x - 1)$; the Dirichlet condition is imposed by zeroing the rows of $f_1$ and
  $f_2$ at the two boundary nodes ($f_0$ is not zeroed; the Gaussian is $\\approx 10^{-14}$
  there); $U_0 = 1/\\sqrt{n_x - 1}$, so $\\nu = U_0 / 20$. $f_1$ then has two zero eigenvalues
  (eigenvectors non-zero on the boundary), which $\\lambda_1$ excludes.
- `"interior"` (an earlier variant of this library): $n_x$ interior points,
  $\\Delta x = 1/(n_x + 1)$, the boundary values enter as zeros, $U_0 = 1$.

The PNAS number is
$R = (\\lVert u_0\\rVert \\lVert f_2\\rVert + \\max_t\\lVert f_0(t)\\rVert / \\lVert u_0\\rVert)
/ |\\lambda_1|$ with spectral norms and $\\lambda_1$ the largest of the non-zero eigenvalues of
$f_1$ (43.59 for the article's setup). The error is the **absolute** spatial $\\ell_2$ norm
$\\lVert y_1(t) - u(t)\\rVert_2$, maximised over the time grid, against a tight-tolerance ODE
solution $u(t)$ (diffrax). The Carleman system $\\dot Y = A(t) Y$ is stepped by forward Euler on
the time grid (step $k$ uses $f_0(t_k)$), as the reference script does, so its error contains
the Euler time-discretization error too (reported separately as the plain Euler error of the
nonlinear ODE); `method="ode"` integrates it to tolerance instead (truncation error alone).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from ._carleman import carleman
from ._errors import check_int_range, check_positive, is_concrete
from ._evolution import Euler, drive, with_initial
from ._field import DenseField
from ._polynomial import PolynomialMap, field_map

VARIANTS = ("pnas", "interior")
METHODS = ("euler", "ode")

PNAS_R = 43.59
"""$R$ of the article's setup, as printed in its Fig. 1 caption."""


class BurgersProblem(eqx.Module):
    """The PNAS viscous Burgers benchmark, discretized as a quadratic ODE.

    The discretization is the module docstring's. Build it with `burgers_problem`.

    **Fields:**

    - `x`: the grid $x_i$, shape `(n,)`.
    - `u0`: the initial condition $u(x_i, 0)$, shape `(n,)`.
    - `forcing`: the profile of $F$ at $\\cos(2\\pi t) = 1$ (amplitude $U_0$ included), shape
      `(n,)`.
    - `field`: a `DenseField` with $f_0$ = `forcing`, $f_1$ `(n, n)` and $f_2$ `(n, n, n)`.
    - `nu`, `reynolds`, `velocity`: $\\nu$, $\\mathrm{Re}_0$ and $U_0$ (static floats).
    - `variant`: "pnas" or "interior" (static).
    """

    x: Float[Array, " n"]
    u0: Float[Array, " n"]
    forcing: Float[Array, " n"]
    field: DenseField
    nu: float = eqx.field(static=True)
    reynolds: float = eqx.field(static=True)
    velocity: float = eqx.field(static=True)
    variant: str = eqx.field(static=True)

    @property
    def dx(self) -> float:
        """The grid spacing $\\Delta x$."""
        return _spacing(self.x.shape[0], self.variant)

    def field_at(self, t: ArrayLike) -> DenseField:
        """The field at time $t$: $f_0 = F(x)\\cos(2\\pi t)$, $f_1$ and $f_2$ unchanged.

        **Arguments:**

        - `t`: the time (a scalar; may be traced).

        **Returns:** a `DenseField` of dimension $n$.
        """
        return eqx.tree_at(lambda f: f.f0_, self.field, self.forcing * jnp.cos(2 * jnp.pi * t))


def _spacing(n: int, variant: str) -> float:
    """$\\Delta x$: the nodes span $[-1/2, 1/2]$ ("pnas") or lie strictly inside it ("interior")."""
    return 1.0 / (n - 1) if variant == "pnas" else 1.0 / (n + 1)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}.")


def burgers_problem(
    num_points: int = 16,
    reynolds: float = 20.0,
    *,
    variant: str = "pnas",
    velocity: float | None = None,
    forced: bool = True,
    dtype: Any = jnp.float64,
) -> BurgersProblem:
    """The PNAS viscous Burgers benchmark on `num_points` grid points.

    $f_1$, $f_2$, the forcing and $u(x, 0)$ as in the module docstring.

    **Arguments:**

    - `num_points`: $n_x$; with `variant="pnas"` the two boundary nodes are among them (16 in
      PNAS), with `"interior"` they are not.
    - `reynolds`: $\\mathrm{Re}_0 = U_0 L_0/\\nu$ (20 in PNAS).
    - `variant`: "pnas" (boundary nodes included, boundary rows of $f_1, f_2$ zeroed) or
      "interior" (interior points only).
    - `velocity`: $U_0$, the amplitude of $u(x, 0)$ and of the forcing; default
      $1/\\sqrt{n_x - 1}$ for "pnas" (as in the reference script), 1 for "interior".
    - `forced`: include the Gaussian forcing $F(x, t)$.
    - `dtype`: float dtype (float64 needs `jax_enable_x64`).

    **Returns:** a `BurgersProblem`.
    """
    if variant not in VARIANTS:
        raise ValueError(f"`variant` must be one of {VARIANTS}, got {variant!r}.")
    check_int_range("num_points", num_points, 3)
    check_positive("reynolds", reynolds)
    n = int(num_points)
    if velocity is None:
        velocity = 1.0 / np.sqrt(n - 1) if variant == "pnas" else 1.0
    check_positive("velocity", velocity)
    u_0 = float(velocity)
    nu = u_0 / float(reynolds)
    dx = _spacing(n, variant)
    x = -0.5 + dx * (np.arange(n) if variant == "pnas" else np.arange(1, n + 1))
    f1 = nu * (np.eye(n, k=1) + np.eye(n, k=-1) - 2 * np.eye(n)) / dx**2
    # (f2 (u ⊗ u))_i = -(u_{i+1}^2 - u_{i-1}^2) / (4 dx): one entry above, one below i
    i = np.arange(n - 1)
    f2 = np.zeros((n, n, n))
    f2[i, i + 1, i + 1] = -1 / (4 * dx)
    f2[i + 1, i, i] = 1 / (4 * dx)
    if variant == "pnas":
        # The boundary nodes are unknowns of the ODE; zero rows keep them at their initial
        # value (0 up to rounding), which is the Dirichlet condition. F0 stays as it is, as in
        # the reference script.
        f1[[0, -1]] = 0.0
        f2[[0, -1]] = 0.0
    profile = np.exp(-((x - 0.25) ** 2) / (2 * (1 / 32) ** 2))
    forcing = u_0 * profile if forced else np.zeros(n)
    a = lambda v: jnp.asarray(v, dtype)  # noqa: E731
    field = DenseField(a(forcing), a(f1), a(f2), symmetric=variant == "interior")
    u0 = -u_0 * np.sin(2 * np.pi * x)
    return BurgersProblem(a(x), a(u0), a(forcing), field, nu, float(reynolds), u_0, variant)


def burgers_r_number(problem: BurgersProblem, ts: Float[Array, " T"]) -> dict:
    """The PNAS nonlinearity number $R$ of a Burgers problem over a time grid.

    $R = (\\lVert u_0\\rVert \\lVert f_2\\rVert + \\max_t\\lVert f_0(t)\\rVert / \\lVert u_0\\rVert)
    / |\\lambda_1|$ with spectral norms (module docstring). $\\lambda_1$ is the largest real part
    among the eigenvalues of $f_1$ that are not zero (relative tolerance $10^{-9}$ of the largest
    modulus); $\\max_t\\lVert f_0(t)\\rVert$ is taken over `ts`, as the reference script does.
    $R = \\infty$ where $\\lambda_1 \\ge 0$.

    **Arguments:**

    - `problem`: a `BurgersProblem`.
    - `ts`: the time grid, shape `(T,)`.

    **Returns:** a dict of floats `R`, `lambda1`, `f2_norm` (spectral norm of the $n \\times n^2$
    unfolding), `f0_max_norm`, `u0_norm`.
    """
    n = problem.x.shape[0]
    f1 = np.asarray(problem.field.f1, np.float64)
    eigs = np.linalg.eigvals(f1)
    nonzero = eigs[np.abs(eigs) > 1e-9 * np.abs(eigs).max()]
    lambda1 = float(nonzero.real.max())
    f2_norm = float(np.linalg.norm(np.asarray(problem.field.f2, np.float64).reshape(n, -1), 2))
    t = np.asarray(ts, np.float64)
    f0_max = float(
        np.linalg.norm(np.asarray(problem.forcing)) * np.abs(np.cos(2 * np.pi * t)).max()
    )
    u0_norm = float(np.linalg.norm(np.asarray(problem.u0)))
    r = (u0_norm * f2_norm + f0_max / u0_norm) / abs(lambda1) if lambda1 < 0 else np.inf
    return {
        "R": float(r),
        "lambda1": lambda1,
        "f2_norm": f2_norm,
        "f0_max_norm": f0_max,
        "u0_norm": u0_norm,
    }


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


def _check_times(ts) -> None:
    if ts.ndim != 1 or ts.shape[0] < 2:
        raise ValueError(f"`ts` must be a 1-D time grid with at least 2 points, got {ts.shape}.")
    if is_concrete(ts) and not bool(np.all(np.diff(np.asarray(ts)) > 0)):
        raise ValueError("`ts` must be strictly increasing.")


def burgers_reference(
    problem: BurgersProblem, ts: Float[Array, " T"], rtol: float = 1e-10
) -> Float[Array, "T n"]:
    """The reference solution $u(t)$ of the nonlinear Burgers ODE (diffrax, to tolerance).

    Tsit5 with a PID step-size controller (relative tolerance `rtol`, absolute `rtol / 100`).

    **Arguments:**

    - `problem`: a `BurgersProblem`.
    - `ts`: the strictly increasing time grid, shape `(T,)`, starting at the initial time.
    - `rtol`: the relative tolerance, $> 0$.

    **Returns:** $u(t_k)$ for every $t_k$ in `ts`, shape `(T, n)`.
    """
    _check_times(ts)
    check_positive("rtol", rtol)
    return _reference(problem, ts, rtol)


@eqx.filter_jit
def _reference(problem, ts, rtol):
    return _solve(lambda t, u, _: problem.field_at(t)(u), problem.u0, ts, rtol)


def burgers_euler(problem: BurgersProblem, ts: Float[Array, " T"]) -> Float[Array, "T n"]:
    """Plain forward Euler of the nonlinear Burgers ODE on a time grid.

    $u_{k+1} = u_k + (t_{k+1} - t_k)\\, f(t_k, u_k)$.

    The time-discretization error of the Carleman runs with `method="euler"` is this scheme's
    error against `burgers_reference`.

    **Arguments:**

    - `problem`: a `BurgersProblem`.
    - `ts`: the strictly increasing time grid, shape `(T,)`, starting at the initial time.

    **Returns:** $u_k$ for every $t_k$ in `ts`, shape `(T, n)` ($u_0$ first).
    """
    _check_times(ts)
    return _euler(problem, ts)


@eqx.filter_jit
def _euler(problem, ts):
    def body(u, inputs):
        t, dt = inputs
        u = u + dt * problem.field_at(t)(u)
        return u, u

    _, us = jax.lax.scan(body, problem.u0, (ts[:-1], jnp.diff(ts)))
    return jnp.concatenate([problem.u0[None], us])


def burgers_carleman(
    problem: BurgersProblem,
    order: int | Int[ArrayLike, ""],
    ts: Float[Array, " T"],
    *,
    method: str = "euler",
    rtol: float = 1e-10,
    max_order: int | None = None,
) -> Float[Array, "T n"]:
    """The Carleman approximation $y_1(t)$ of Burgers: the order-$N$ system $\\dot Y = A(t)Y$.

    **Arguments:**

    - `problem`: a `BurgersProblem`.
    - `order`: the truncation order $N$ (may be traced when `max_order` is given).
    - `ts`: the time grid, starting at the initial time.
    - `method`: "euler" (forward Euler on `ts`, $Y_{k+1} = Y_k + (t_{k+1} - t_k) A(t_k) Y_k$, as
      the PNAS reference script) or "ode" (diffrax to tolerance `rtol`).
    - `rtol`: tolerance of "ode".
    - `max_order`: static size of the Carleman state (default `order`, which must then be
      concrete); one compiled program serves every $N \\le$ `max_order`.

    **Returns:** the degree-1 block $y_1(t_k)$ for every $t_k$ in `ts`, shape `(T, n)`.
    """
    _check_method(method)
    _check_times(ts)
    check_positive("rtol", rtol)
    op = carleman(field_map(problem.field, 1.0), order, max_order=max_order)
    return _carleman_run(problem, op, ts, method, rtol)


@eqx.filter_jit
def _carleman_run(problem, op, ts, method, rtol):
    y0 = op.lift(problem.u0)

    def op_at(t, eta):
        return eqx.tree_at(lambda o: o.poly, op, PolynomialMap(problem.field_at(t), eta))

    if method == "ode":
        return _solve(lambda t, y, _: op_at(t, op.eta).generator(y), y0, ts, rtol)[1]
    run = drive(
        Euler(),
        lambda x: op_at(*x),
        y0,
        (ts[:-1], jnp.diff(ts)),
        observe=lambda x, op, y, stats, c: (c, op.project(y)),
    )
    return with_initial(op.project(y0), run.out)


def burgers_errors(
    problem: BurgersProblem,
    orders: Sequence[int] = (1, 2, 3, 4),
    *,
    t_final: float = 3.0,
    num_times: int = 4000,
    method: str = "euler",
    rtol: float = 1e-10,
    progress: Callable[[str], Any] | None = None,
) -> dict:
    """The absolute Carleman error of Burgers against the ODE reference, for each order.

    The time grid is `num_times` equally spaced points on $[0, t_f]$ (PNAS: 4000 on $[0, 3]$).

    **Arguments:**

    - `problem`: a `BurgersProblem`.
    - `orders`: the truncation orders $N$ to run (each with a state of exactly that order).
    - `t_final`, `num_times`: the time grid.
    - `method`: "euler" (PNAS) or "ode", see `burgers_carleman`.
    - `rtol`: tolerance of the reference ODE solve (and of `method="ode"`).
    - `progress`: optional callable receiving one line per order.

    **Returns:** `setup`, the $R$ diagnostics of `burgers_r_number` (`R`, `lambda1`, ...),
    `error_kind` ("absolute"), `times`, `reference_norm` ($\\lVert u(t)\\rVert_2$), `euler`
    (the plain forward-Euler error of the nonlinear ODE, the time-discretization floor of
    `method="euler"`: `max_error`, `error`), and per order the absolute error curve
    $\\lVert y_1(t) - u(t)\\rVert_2$ (`error`) and its maximum over the grid (`max_error`).
    All of it JSON-able (floats, lists, dicts).
    """
    _check_method(method)
    check_positive("t_final", t_final)
    check_int_range("num_times", num_times, 2)
    check_positive("rtol", rtol)
    orders = tuple(int(o) for o in orders)
    if not orders:
        raise ValueError("`orders` must name at least one Carleman order.")
    for o in orders:
        check_int_range("orders", o, 1)
    dt = t_final / (num_times - 1)
    if method == "euler":
        # Forward Euler on Y is stable only if dt |mu| < 2 for the generator's eigenvalues mu,
        # which reach N times the most negative eigenvalue of f1 at order N.
        lam_min = float(np.linalg.eigvals(np.asarray(problem.field.f1)).real.min())
        if dt * max(orders) * abs(lam_min) >= 2:
            raise ValueError(
                f"`num_times` = {num_times} on [0, {t_final}] gives dt = {dt:.3g}, too large for "
                f"forward Euler at order {max(orders)} (needs dt < 2 / (N |lambda_min(f1)|) = "
                f"{2 / (max(orders) * abs(lam_min)):.3g}); use more time points."
            )
    ts = jnp.linspace(0.0, t_final, num_times, dtype=problem.u0.dtype)
    r_info = burgers_r_number(problem, ts)
    ref = np.asarray(burgers_reference(problem, ts, rtol))
    out = {
        "setup": {
            "variant": problem.variant,
            "num_points": int(problem.x.shape[0]),
            "dx": problem.dx,
            "reynolds": problem.reynolds,
            "velocity": problem.velocity,
            "nu": problem.nu,
            "t_final": t_final,
            "num_times": num_times,
            "dt": dt,
            "method": method,
            "rtol": rtol,
        },
        **r_info,
        "error_kind": "absolute",
        "times": np.asarray(ts).tolist(),
        "reference_norm": np.linalg.norm(ref, axis=1).tolist(),
        "orders": {},
    }
    if method == "euler":
        e = np.linalg.norm(np.asarray(burgers_euler(problem, ts)) - ref, axis=1)
        out["euler"] = {"max_error": float(e.max()), "error": e.tolist()}
    for order in orders:
        y1 = burgers_carleman(problem, order, ts, method=method, rtol=rtol)
        err = np.linalg.norm(np.asarray(y1) - ref, axis=1)
        err = np.where(np.isfinite(err), err, np.inf)
        out["orders"][str(order)] = {"max_error": float(err.max()), "error": err.tolist()}
        if progress is not None:
            progress(f"Burgers N = {order}: max absolute error {err.max():.4g}")
    return out


__all__ = [
    "PNAS_R",
    "BurgersProblem",
    "burgers_carleman",
    "burgers_errors",
    "burgers_euler",
    "burgers_problem",
    "burgers_r_number",
    "burgers_reference",
]
