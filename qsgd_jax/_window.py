"""One quantum window: $T_q$ GD steps run as the quantum computer would, then read out.

At the upload point $\\bar\\theta$ (masked, $s$ active coordinates,
$u = \\theta - \\bar\\theta$) each step $t$ has its own Taylor model of the loss on that step's
batch (DESIGN §2): degree 1 ($F_2 = 0$, matrix-free Hessian-vector products, any model
size) or degree 2 (dense $g, H, \\mathcal{T}$, small active sets only). Its GD map is
Carleman-linearized at order $N$
and the state $Y = (1, y_1, \\dots, y_N)$ is evolved by the chosen form:

- "discrete": $Y \\leftarrow B_t Y$ (exact lift of the GD map, truncated);
- "euler": $Y \\leftarrow Y + \\eta A_t Y$ (PNAS);
- "taylor": $Y \\leftarrow T_K(hA_t)^r Y$, $h = \\eta/r$ (truncated Taylor / LCU, the flow form).

$y_1(T_q)$ is downloaded by tomography (or exactly: "infinite shots"), giving $\\hat\\theta =
\\bar\\theta + \\hat u$. The `WindowReport` measures every error term that applies against the
exact GD trajectory $u^{\\mathrm{GD}}_t$ on the same batches (true loss, not its Taylor model):

$$\\hat u - u^{\\mathrm{GD}}_{T} = \\underbrace{\\hat u - y_1}_{\\text{read-out}}
+ \\underbrace{y_1 - y_1^{\\mathrm{ref}}}_{\\text{Taylor}}
+ \\underbrace{y_1^{\\mathrm{ref}} - u^{\\mathrm{flow}}}_{\\text{Carleman}}
+ \\underbrace{u^{\\mathrm{flow}} - u^{\\mathrm{poly}}}_{\\text{time discr.}}
+ \\underbrace{u^{\\mathrm{poly}} - u^{\\mathrm{GD}}}_{\\text{Taylor model}}$$

($u^{\\mathrm{poly}}$: GD on the Taylor models; $u^{\\mathrm{flow}}$: their gradient flow by RK4;
$y_1^{\\mathrm{ref}}$: the Taylor series to order $K + 8$. For "discrete"/"euler" the Carleman term
is $y_1 - u^{\\mathrm{poly}}$ and the Taylor / time terms do not apply: NaN.) It also holds the
dissipation metrics at the window start, $\\kappa$ and $P$ of the window's history system
$L = I - \\sum_t |t\\rangle\\langle t-1| \\otimes M_t - \\dots$ (exact SVD when small, Lanczos
with exact substitutions otherwise) and the read-out cost, from which `resources` builds the
resource table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from ._carleman import CarlemanOperator, carleman_bytes, carleman_dim
from ._condition import amplification_rounds, condition_number, target_probability
from ._dissipation import DENSE_LIMIT, Dissipation, dissipation
from ._errors import (
    check_finite_tree,
    check_int_range,
    check_memory,
    check_positive,
    default_memory_limit,
    is_concrete,
)
from ._factored import AbstractCarlemanState, DenseState, FactoredState, as_state
from ._field import DenseField
from ._history import history_system
from ._loss_model import ActiveSet, LossField, dense_field
from ._polynomial import PolynomialMap
from ._prune import check_mask
from ._readout import download
from ._resources import resource_table
from ._status import NonFiniteError
from ._taylor import _taylor_apply
from ._tomography import interference_rounds, tomography

FORMS = ("discrete", "euler", "taylor")
READOUTS = ("exact", "sample", "gaussian")
BATCHING = ("sgd", "full")
_REF_EXTRA = 8  # extra Taylor terms of the reference series
_RK4_SUBSTEPS = 8  # RK4 substeps per GD step for the reference gradient flow
_DENSE_KAPPA = 1500  # history systems up to this many rows get an exact SVD


class WindowStatus(eqx.Enumeration):
    """Outcome of a window. `WindowStatus[s]` is the message of a concrete status `s`."""

    successful = "The window stayed bounded and close to exact GD; its output was read out."
    non_dissipative = (
        "The window is not dissipative: the norm of the Carleman state blew up (non-finite, or "
        "above `divergence_factor` x max(||theta_bar||, 1)); its output is NaN, not a result. "
        "Lower the learning rate (dissipation needs 0 < eta*lambda < 2 for every Hessian "
        "eigenvalue of the active set) or shorten the window."
    )
    error_growth = (
        "The window diverged from exact GD: its error ||y1(t) - u_GD(t)|| grew above "
        "`max_relative_error` x ||u_GD(t)||, so the simulated quantum run no longer follows the "
        "training dynamics (typically rho(F1) > 1: some eta*lambda outside (0, 2)); its output "
        "is NaN, not a result. Lower the learning rate or shorten the window."
    )


class WindowConfig(eqx.Module):
    """Configuration of a quantum window (traced: `eta`, `shots`, `order`; the rest static).

    **Arguments:**

    - `eta`: learning rate $\\eta > 0$ (traced: vmap / grad over it).
    - `num_steps`: window length $T_q \\ge 1$.
    - `degree`: Taylor model of the loss, 1 (matrix-free, model scale) or 2 (dense).
    - `order`: Carleman order $N \\le$ `max_order` (traced).
    - `max_order`: static $N_{\\max}$ sizing the state (default `order`).
    - `form`: "discrete", "euler" or "taylor".
    - `readout`: "exact" (infinite shots), "sample" (measurement statistics) or "gaussian"
      (differentiable surrogate).
    - `shots`: tomography shots $N_s$ per measurement round (traced).
    - `batching`: "sgd" (`batches` has a leading step axis, one batch per step) or "full" (one
      batch for every step: full-batch GD).
    - `taylor_order`, `segments`: $K$ and $r$ of the "taylor" form.
    - `idle`: idle copies $p$ of the history system (default 0: the article's Eq. 6, no
      padding; $p = T_q$ is the padded variant, which raises the target probability).
    - `diagnostics`: measure the error budget and the dissipation (off for speed, e.g. under
      `grad`).
    - `history`: with `diagnostics`, also $\\kappa$ and $P$ of the history system.
    - `keep_trajectory`: keep $y_1(t)$ for every step in the report (memory $T_q s$).
    - `kappa_iters`: Lanczos iterations of the matrix-free $\\kappa$ estimate.
    - `divergence_factor`: $\\lVert y_1\\rVert$ above this times $\\max(\\lVert\\bar\\theta\\rVert,
      1)$ counts as divergence.
    - `max_relative_error`: with `diagnostics`, a total error above this times
      $\\lVert u^{\\mathrm{GD}}_t\\rVert$ at any step counts as divergence (default 1: the
      window is further from exact GD than GD moved).
    - `state`: how the Carleman state is stored: "dense" (blocks $y_j$, any order and form,
      $s^N$ memory), "factored" (order $\\le 2$, discrete form, $y_2 = AB^\\top$ of rank
      $\\le 2T_q$: any model size), "auto" (dense where it fits in memory, else factored), or a
      state value such as `FactoredState(max_rank=16)` (compression).
    - `memory_limit`: bytes allowed for the Carleman state / dense Taylor models.
    """

    eta: Float[Array, ""]
    shots: Float[Array, ""]
    order: Int[Array, ""]
    num_steps: int = eqx.field(static=True)
    degree: int = eqx.field(static=True)
    max_order: int = eqx.field(static=True)
    form: str = eqx.field(static=True)
    readout: str = eqx.field(static=True)
    batching: str = eqx.field(static=True)
    taylor_order: int = eqx.field(static=True)
    segments: int = eqx.field(static=True)
    idle: int = eqx.field(static=True)
    diagnostics: bool = eqx.field(static=True)
    history: bool = eqx.field(static=True)
    keep_trajectory: bool = eqx.field(static=True)
    kappa_iters: int = eqx.field(static=True)
    divergence_factor: float = eqx.field(static=True)
    max_relative_error: float = eqx.field(static=True)
    state: AbstractCarlemanState | str = eqx.field(static=True)
    memory_limit: int | None = eqx.field(static=True)

    def __init__(self, eta, num_steps: int, *, degree: int = 1, order=1,
                 max_order: int | None = None, form: str = "discrete", readout: str = "exact",
                 shots=10_000, batching: str = "sgd", taylor_order: int = 4, segments: int = 1,
                 idle: int | None = None, diagnostics: bool = True, history: bool = True,
                 keep_trajectory: bool = False,
                 kappa_iters: int = 32, divergence_factor: float = 1e3,
                 max_relative_error: float = 1.0, state="dense",
                 memory_limit: int | None = None):  # fmt: skip
        check_positive("eta", eta)
        check_int_range("num_steps", num_steps, 1)
        for name, value, allowed in (("degree", degree, (1, 2)), ("form", form, FORMS),
                                     ("readout", readout, READOUTS),
                                     ("batching", batching, BATCHING)):  # fmt: skip
            if value not in allowed:
                raise ValueError(f"`{name}` must be one of {allowed}, got {value!r}.")
        if max_order is None:
            if not is_concrete(order):
                raise ValueError("`order` is traced, so pass a static `max_order`.")
            max_order = int(order)
        check_int_range("max_order", max_order, 1)
        check_int_range("order", order, 1, max_order)
        if readout != "exact":
            check_int_range("shots", shots, 1)
        check_int_range("taylor_order", taylor_order, 0)
        check_int_range("segments", segments, 1)
        check_int_range("kappa_iters", kappa_iters, 1)
        check_positive("divergence_factor", divergence_factor)
        check_positive("max_relative_error", max_relative_error)
        state = as_state(state)
        if not isinstance(state, str):
            state.check(max_order=int(max_order), form=form)
        self.eta = jnp.asarray(eta)
        self.shots = jnp.asarray(shots, jnp.result_type(float))
        self.order = jnp.asarray(order, jnp.int32)
        self.num_steps, self.degree, self.max_order = int(num_steps), int(degree), int(max_order)
        self.form, self.readout, self.batching = form, readout, batching
        self.taylor_order, self.segments = int(taylor_order), int(segments)
        if idle is not None:
            check_int_range("idle", idle, 0)
        self.idle = 0 if idle is None else int(idle)
        self.diagnostics, self.history = bool(diagnostics), bool(history)
        self.keep_trajectory = bool(keep_trajectory)
        self.kappa_iters, self.divergence_factor = int(kappa_iters), float(divergence_factor)
        self.max_relative_error, self.state = float(max_relative_error), state
        if memory_limit is not None:
            check_int_range("memory_limit", memory_limit, 1)
        self.memory_limit = memory_limit


class WindowReport(eqx.Module):
    """What a window measured (DESIGN §2 error budget; NaN where a term does not apply or
    `diagnostics=False`).

    **Fields:** per step $t = 0..T_q$ (absolute $\\ell_2$ norms on the active set):
    `model_error` ($u^{\\mathrm{poly}} - u^{\\mathrm{GD}}$), `carleman_error`,
    `time_discretization`, `taylor_truncation`, `total_error` ($y_1 - u^{\\mathrm{GD}}$),
    `gd_norm` ($\\lVert u^{\\mathrm{GD}}_t\\rVert$), `block_norms` ($\\lVert y_j(t)\\rVert$);
    `readout_error` ($\\lVert\\hat u - y_1(T_q)\\rVert$), `final_error` ($\\lVert\\hat u -
    u^{\\mathrm{GD}}_{T_q}\\rVert$); `dissipation` at the window start; `kappa`, `sigma_max`,
    `sigma_min`, `target_probability` $P$, `amplification_rounds` of the history system;
    `window_runs` (tomography samples + norm-estimation runs); `diverged_step` (first step at
    which the norms blew up or the error outgrew `max_relative_error`, $-1$ if none) and
    `status`; `y1` ($y_1(t)$ when kept); `compression_error` (cumulative Frobenius norm of
    what a compressing factored state dropped, 0 otherwise); `state` ("dense" or "factored"),
    `state_bytes` (bytes of the stored Carleman state) and `dense_state_bytes` (what the dense
    state of the same order would need); `kappa_scope` ("full": $\\kappa$ and $P$ of the whole
    Carleman history system, or "order-1 block": of its $(y_0, y_1)$ block, when the full
    Carleman space does not fit, i.e. with the factored state).
    """

    model_error: Float[Array, " T1"]
    carleman_error: Float[Array, " T1"]
    time_discretization: Float[Array, " T1"]
    taylor_truncation: Float[Array, " T1"]
    total_error: Float[Array, " T1"]
    gd_norm: Float[Array, " T1"]
    block_norms: Float[Array, "T1 N1"]
    readout_error: Float[Array, ""]
    final_error: Float[Array, ""]
    dissipation: Dissipation | None
    kappa: Float[Array, ""]
    sigma_max: Float[Array, ""]
    sigma_min: Float[Array, ""]
    target_probability: Float[Array, ""]
    amplification_rounds: Float[Array, ""]
    window_runs: Float[Array, ""]
    diverged_step: Int[Array, ""]
    status: WindowStatus
    y1: Float[Array, "T1 s"] | None
    compression_error: Float[Array, " T1"]
    num_steps: int = eqx.field(static=True)
    active_size: int = eqx.field(static=True)
    num_params: int = eqx.field(static=True)
    max_order: int = eqx.field(static=True)
    form: str = eqx.field(static=True)
    history_size: int = eqx.field(static=True)
    history_qubits: int = eqx.field(static=True)
    state: str = eqx.field(static=True)
    state_bytes: int = eqx.field(static=True)
    dense_state_bytes: int = eqx.field(static=True)
    kappa_scope: str = eqx.field(static=True)

    def relative(self) -> dict[str, Float[Array, " T1"]]:
        """Each per-step term divided by $\\lVert u^{\\mathrm{GD}}_t\\rVert$ (1 where it is 0)."""
        scale = jnp.where(self.gd_norm == 0, 1.0, self.gd_norm)
        names = ("model_error", "carleman_error", "time_discretization", "taylor_truncation",
                 "total_error")  # fmt: skip
        return {k: getattr(self, k) / scale for k in names}

    def raise_if_failed(self) -> WindowReport:
        """Raise `RuntimeError` (with the step) if the window diverged; else return `self`."""
        steps = np.ravel(np.asarray(self.diverged_step))
        if np.any(steps >= 0):
            i = int(np.flatnonzero(steps >= 0)[0])
            code = np.ravel(np.asarray(self.status._value))[i]
            why = WindowStatus.error_growth
            if code == WindowStatus.non_dissipative._value:
                why = WindowStatus.non_dissipative
            raise NonFiniteError(
                f"Quantum window diverged at step {int(steps[i])} of {self.num_steps} (first of "
                f"{int(np.sum(steps >= 0))} of {steps.size} windows). {WindowStatus[why]}"
            )
        return self

    def resources(self, *, eps: float = 1e-2, classical_flops_total: float | None = None,
                  **kwargs: Any) -> dict[str, Any]:  # fmt: skip
        """The resource table (`resource_table`) from this window's measured $\\kappa$, $P$ and
        read-out samples; `eps` is the target precision. Concrete reports only."""
        return resource_table(
            kappa=max(float(self.kappa), 1.0), target_probability=float(self.target_probability),
            eps=eps, n=self.active_size, order=self.max_order, num_steps=self.num_steps,
            idle=self.history_size // carleman_dim(self.active_size, self.max_order)
            - self.num_steps - 1,
            samples=max(float(self.window_runs), 1.0),
            classical_flops_total=classical_flops_total, **kwargs,
        )  # fmt: skip

    def summary(self) -> dict[str, Any]:
        """JSON-able summary of the final-step figures."""
        rel = self.relative()
        out = {k: float(v[-1]) for k, v in rel.items()}
        out.update(
            readout_error=float(self.readout_error), final_error=float(self.final_error),
            kappa=float(self.kappa), target_probability=float(self.target_probability),
            amplification_rounds=float(self.amplification_rounds),
            window_runs=float(self.window_runs), diverged_step=int(self.diverged_step),
            status=WindowStatus[self.status], num_steps=self.num_steps, form=self.form,
            active_size=self.active_size, history_size=self.history_size, state=self.state,
            state_bytes=self.state_bytes, dense_state_bytes=self.dense_state_bytes,
            kappa_scope=self.kappa_scope, compression_error=float(self.compression_error[-1]),
        )  # fmt: skip
        if self.dissipation is not None:
            out["spectral_radius"] = float(self.dissipation.spectral_radius)
            out["re_lambda1"] = float(self.dissipation.re_lambda1)
        return out


def _norm(x):
    return jnp.linalg.norm(x, axis=-1)


class _Steps(eqx.Module):
    """The per-step maps of one window: Taylor models, Carleman operators, quantum steps."""

    loss_fn: Callable
    active: ActiveSet
    batches: PyTree
    fields: DenseField | None
    eta: Float[Array, ""]
    config: WindowConfig

    def batch(self, t):
        if self.config.batching == "full":
            return self.batches
        return jax.tree_util.tree_map(lambda x: x[t], self.batches)

    def field(self, t, degree: int | None = None):
        """Step `t`'s Taylor model: dense (small s, degree 2) or matrix-free (`LossField`)."""
        if self.fields is None or degree == 1:
            degree = self.config.degree if degree is None else degree
            return LossField(self.loss_fn, self.active, self.batch(t), degree)
        if self.config.batching == "full":
            return self.fields
        return jax.tree_util.tree_map(lambda x: x[t], self.fields)

    def operator(self, field, order1: bool = False) -> CarlemanOperator:
        cfg = self.config
        if order1:  # the (y0, y1) block of the discrete lift
            return CarlemanOperator(PolynomialMap(field, self.eta), jnp.ones((), jnp.int32), 1,
                                    "discrete")  # fmt: skip
        form = "euler" if cfg.form == "taylor" else cfg.form
        return CarlemanOperator(PolynomialMap(field, self.eta), cfg.order, cfg.max_order, form)

    def advance(self, op: CarlemanOperator, Y, terms: int | None = None):
        """One quantum step of the configured form."""
        cfg = self.config
        if cfg.form != "taylor":
            return op.step(Y)
        terms = cfg.taylor_order if terms is None else terms
        order = jnp.asarray(terms)
        h = self.eta / cfg.segments
        v = op.flatten(Y)
        for _ in range(cfg.segments):
            v = _taylor_apply(op.flat_matvec, v, h, order, terms)
        return op.unflatten(v)

    def flat_step(self, t, x, order1: bool = False):
        """$M_t x$ on flat Carleman states, $t = 1..T_q$ (the history system's maps)."""
        if order1:
            op = self.operator(self.field(t - 1, degree=1), order1=True)
            return op.flatten(op.step(op.unflatten(x)))
        op = self.operator(self.field(t - 1))
        return op.flatten(self.advance(op, op.unflatten(x)))


def _rk4_flow(field, u, eta):
    h = eta / _RK4_SUBSTEPS

    def sub(u, _):
        k1 = field(u)
        k2 = field(u + 0.5 * h * k1)
        k3 = field(u + 0.5 * h * k2)
        k4 = field(u + h * k3)
        return u + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4), None

    return jax.lax.scan(sub, u, None, length=_RK4_SUBSTEPS)[0]


@eqx.filter_jit
def _window_core(loss_fn, params, index, batches, config: WindowConfig, key):
    flat, unravel = ravel_pytree(params)
    dtype = flat.dtype
    base = jnp.zeros_like(flat).at[index].set(flat[index])
    active = ActiveSet(base, index, unravel)
    s, T, cfg = index.shape[0], config.num_steps, config
    eta = config.eta.astype(dtype)
    state = cfg.state
    factored = isinstance(state, FactoredState)
    fields = None
    if cfg.degree == 2 and not factored:
        make = lambda b: dense_field(loss_fn, active, b)  # noqa: E731
        fields = make(batches) if cfg.batching == "full" else jax.vmap(make)(batches)
    st = _Steps(loss_fn, active, batches, fields, eta, cfg)
    nan = jnp.full((), jnp.nan, dtype)
    zero_u = jnp.zeros((s,), dtype)
    k_read, k_diss, k_kappa = jax.random.split(key, 3)

    def y1_of(Y):
        return Y.y1 if factored else Y[1]

    def norms_of(Y):
        if factored:
            norms = jnp.stack([jnp.ones((), dtype), _norm(Y.y1), Y.y2_norm()])
            return norms[: cfg.max_order + 1]
        return jnp.stack([jnp.linalg.norm(y.reshape(-1)) for y in Y])

    def body(carry, t):
        Y, u_gd, u_poly, u_flow, Y_ref = carry
        field = st.field(t)
        if factored:
            Y = state.step(PolynomialMap(field, eta), cfg.order, Y)
        else:
            op = st.operator(field)
            Y = st.advance(op, Y)
        y1 = y1_of(Y)
        out = {"norms": norms_of(Y)}
        if factored:
            out["dropped"] = Y.dropped
        if cfg.keep_trajectory:
            out["y1"] = y1
        if cfg.diagnostics:
            batch = st.batch(t)
            grad = jax.grad(lambda u: loss_fn(active.embed(u), batch))(u_gd)
            u_gd = u_gd - eta * grad
            u_poly = u_poly + eta * field(u_poly)
            out["model"] = _norm(u_poly - u_gd)
            out["total"] = _norm(y1 - u_gd)
            out["gd"] = _norm(u_gd)
            if cfg.form == "taylor":
                u_flow = _rk4_flow(field, u_flow, eta)
                Y_ref = st.advance(op, Y_ref, cfg.taylor_order + _REF_EXTRA)
                out["taylor"] = _norm(y1 - Y_ref[1])
                out["carleman"] = _norm(Y_ref[1] - u_flow)
                out["time"] = _norm(u_flow - u_poly)
            else:
                out["carleman"] = _norm(y1 - u_poly)
        return (Y, u_gd, u_poly, u_flow, Y_ref), out

    if factored:
        Y0 = state.init(s, T, dtype)
    else:
        Y0 = tuple(
            jnp.ones((), dtype) if j == 0 else jnp.zeros((s,) * j, dtype)
            for j in range(cfg.max_order + 1)
        )
    carry = (Y0, zero_u, zero_u, zero_u, None if factored else Y0)
    (Y, u_gd, *_), out = jax.lax.scan(body, carry, jnp.arange(T))
    norms0 = jnp.zeros((cfg.max_order + 1,), dtype).at[0].set(1)
    norms = jnp.concatenate([norms0[None], out["norms"]])

    # Divergence: non-finite blocks, y1 far beyond the scale of the upload point, or (with
    # diagnostics) an error that outgrew the GD displacement itself.
    scale = jnp.maximum(jnp.linalg.norm(base), jnp.ones((), dtype))
    blown = ~jnp.all(jnp.isfinite(norms), axis=1) | (norms[:, 1] > cfg.divergence_factor * scale)
    astray = jnp.zeros_like(blown)
    if cfg.diagnostics:
        total, gd = out["total"], out["gd"]
        grew = ~jnp.isfinite(total) | (total > cfg.max_relative_error * gd)
        astray = jnp.concatenate([jnp.zeros((1,), bool), grew])
    bad = blown | astray
    diverged = jnp.any(bad)
    step = jnp.where(diverged, jnp.argmax(bad), -1).astype(jnp.int32)
    first_blown = jnp.any(blown & (jnp.cumsum(bad) == 1))
    status = WindowStatus.where(
        diverged,
        WindowStatus.where(first_blown, WindowStatus.non_dissipative, WindowStatus.error_growth),
        WindowStatus.successful,
    )

    y1 = y1_of(Y)
    if cfg.readout == "exact":
        u_hat, runs = y1, jnp.zeros((), dtype)
    elif cfg.readout == "gaussian":
        norm = jnp.linalg.norm(y1)
        # throw=False: a diverged state is reported (status, step) and replaced by NaN below.
        u_hat = norm * tomography(k_read, y1 / norm, cfg.shots, method="gaussian", throw=False)
        runs = (interference_rounds(False) * cfg.shots).astype(dtype)
    else:
        r = download(k_read, y1, cfg.shots, support=index, theta_bar=base, method=cfg.readout,
                     throw=False)  # fmt: skip
        u_hat, runs = r.u_hat, r.window_runs.astype(dtype)
    u_hat = jnp.where(diverged, jnp.full_like(u_hat, jnp.nan), u_hat)
    theta_hat = unravel(base.at[index].add(u_hat))

    def series(name):
        if name not in out:
            return jnp.full((T + 1,), jnp.nan, dtype)
        return jnp.concatenate([jnp.zeros((1,), dtype), out[name]])

    d = carleman_dim(s, cfg.max_order)
    # The factored state never holds the full Carleman space: kappa of its (y0, y1) block.
    d_kappa = carleman_dim(s, 1) if factored else d
    diss, kap = None, (nan, nan, nan, nan)
    if cfg.diagnostics:
        # rho(F1) needs only the linear part; a matrix-free degree-2 field would be densified.
        poly0 = PolynomialMap(st.field(0, degree=1 if factored else None), eta)
        diss = dissipation(poly0, method="auto", lanczos_depth=min(64, s), key=k_diss)
    if cfg.diagnostics and cfg.history:
        L = history_system(lambda t, x: st.flat_step(t, x, order1=factored), T, cfg.idle,
                           kind="function", dim=d_kappa)  # fmt: skip
        method = "dense" if L.size <= _DENSE_KAPPA else "lanczos"
        est = condition_number(L, method=method, num_iters=min(cfg.kappa_iters, L.size),
                               dtype=dtype, key=k_kappa)  # fmt: skip
        x0 = jnp.zeros((d_kappa,), dtype).at[0].set(1)  # the lift of u0 = 0
        x = L.solve(L.rhs(x0))
        P = target_probability(L, x, slice(1, 1 + s))
        kap = (est.kappa, est.sigma_max, est.sigma_min, P)
    y1s = None
    if cfg.keep_trajectory:
        y1s = jnp.concatenate([zero_u[None], out["y1"]])
    report = WindowReport(
        model_error=series("model"), carleman_error=series("carleman"),
        time_discretization=series("time"), taylor_truncation=series("taylor"),
        total_error=series("total"), gd_norm=series("gd"), block_norms=norms,
        readout_error=_norm(u_hat - y1),
        final_error=_norm(u_hat - u_gd) if cfg.diagnostics else nan,
        dissipation=diss, kappa=kap[0], sigma_max=kap[1], sigma_min=kap[2],
        target_probability=kap[3], amplification_rounds=amplification_rounds(kap[3]),
        window_runs=runs, diverged_step=step, status=status, y1=y1s,
        compression_error=series("dropped") if factored else jnp.zeros((T + 1,), dtype),
        num_steps=T, active_size=s, num_params=flat.shape[0], max_order=cfg.max_order,
        form=cfg.form, history_size=(T + cfg.idle + 1) * d,
        history_qubits=_clog2(T + cfg.idle + 1) + _clog2(d),
        state="factored" if factored else "dense",
        state_bytes=state.state_bytes(s, cfg.max_order, T, jnp.dtype(dtype).itemsize),
        dense_state_bytes=carleman_bytes(s, cfg.max_order, jnp.dtype(dtype).itemsize),
        kappa_scope="order-1 block" if factored else "full",
    )  # fmt: skip
    return theta_hat, report


def _clog2(x: int) -> int:
    return int(np.ceil(np.log2(x))) if x > 1 else 0


def window_index(params: PyTree, mask: PyTree) -> Int[Array, " s"]:
    """Validate `mask` against `params` and return the flat indices of the active set."""
    check_mask(params, mask)
    if not is_concrete(mask):
        raise TypeError(
            "`mask` must be concrete (not traced under jit/vmap/grad): it fixes the active-set "
            "size s, an array shape. Close over it instead of passing it as a traced argument."
        )
    m = np.concatenate([np.ravel(np.asarray(x)) for x in jax.tree_util.tree_leaves(mask)])
    return jnp.asarray(np.flatnonzero(m), jnp.int32)


def _dense_needs(s: int, p: int, itemsize: int, config: WindowConfig) -> list[tuple[str, int]]:
    """(what, bytes) of every large allocation of a dense-state window."""
    mx, needs = config.max_order, []
    if mx > 1:
        needs.append((f"A Carleman state of order N = {mx} over the active set s = {s} "
                      f"(dimension {carleman_dim(s, mx):,}; order N needs s^N entries)",
                      2 * carleman_bytes(s, mx, itemsize)))  # fmt: skip
    if config.degree == 2:
        copies = 1 if config.batching == "full" else config.num_steps
        needs.append((f"Dense degree-2 Taylor models (g, H, T) of {copies} step(s) on s = {s} "
                      f"active parameters (s^3 = {s**3:,} entries each)",
                      2 * copies * s**3 * itemsize))  # fmt: skip
    return needs


def _factored_needs(s: int, p: int, itemsize: int, config, state) -> list[tuple[str, int]]:
    r = state.width(config.num_steps)
    return [(f"A factored order-2 Carleman state (s = {s}, rank {r}) and its batch of {2 * r + 1}"
             f" Hessian-vector products over {p:,} parameters",
             3 * state.state_bytes(s, 2, config.num_steps, itemsize)
             + 4 * (2 * r + 1) * p * itemsize)]  # fmt: skip


def resolve_window(params: PyTree, index, batches: PyTree, config: WindowConfig) -> WindowConfig:
    """Raise, before any work, for batches too short or a state too large for memory; return
    `config` with `state="auto"` resolved (dense where it fits, else factored)."""
    check_window(params, index, batches, config)
    s = int(index.shape[0])
    flat = ravel_pytree(params)[0]
    p, itemsize = int(flat.shape[0]), jnp.dtype(flat.dtype).itemsize
    limit = default_memory_limit() if config.memory_limit is None else config.memory_limit
    state = config.state
    if isinstance(state, str):  # "auto"
        dense_ok = all(b <= limit for _, b in _dense_needs(s, p, itemsize, config))
        can_factor = config.max_order <= 2 and config.form == "discrete"
        state = DenseState() if dense_ok or not can_factor else FactoredState()
    if isinstance(state, FactoredState):
        needs = _factored_needs(s, p, itemsize, config, state)
    else:
        needs = _dense_needs(s, p, itemsize, config)
    if config.diagnostics:  # rho(F1): dense eigendecomposition of f1, or a Lanczos basis
        dense_diss = s <= DENSE_LIMIT
        needs.append((f"The dissipation diagnostics on s = {s} ("
                      f"{'dense s x s eigendecomposition' if dense_diss else 'Lanczos basis'})",
                      (4 * s * s if dense_diss else 70 * s) * itemsize))  # fmt: skip
    for what, nbytes in needs:
        check_memory(what, nbytes, limit)
    return dataclasses.replace(config, state=state)


def check_window(params: PyTree, index, batches: PyTree, config: WindowConfig) -> None:
    """Raise, before any work, for batches that do not fit the window."""
    leaves = jax.tree_util.tree_leaves(batches)
    if not leaves:
        raise ValueError("`batches` is empty; pass the window's batch(es).")
    if config.batching == "sgd":
        lengths = {int(jnp.shape(x)[0]) if jnp.ndim(x) else 0 for x in leaves}
        nb = min(lengths)
        if len(lengths) != 1 or nb < config.num_steps:
            raise ValueError(
                f"`batches` holds {nb} batches (leading axis of every leaf: {sorted(lengths)}) "
                f"but the window has T_q = config.num_steps = {config.num_steps} steps; pass at "
                "least one batch per step, or batching='full' for full-batch GD."
            )


def quantum_window(
    loss_fn: Callable[[PyTree, Any], Array],
    params: PyTree,
    mask: PyTree,
    batches: PyTree,
    config: WindowConfig,
    key: PRNGKeyArray,
) -> tuple[PyTree, WindowReport]:
    """Run one quantum window of $T_q$ steps from $\\bar\\theta = m \\odot$ `params`; read it out.

    **Arguments:**

    - `loss_fn`: pure `loss_fn(params, batch) -> scalar` (a module-level function or a bound
      method of an `eqx.Module` compiles once; a fresh lambda per call recompiles).
    - `params`: the upload point (pruned entries are set to 0).
    - `mask`: bool pytree like `params` (`True` = active), concrete.
    - `batches`: the batches of the $T_q$ steps, leaves with a leading step axis of length
      $\\ge T_q$ (`batching="sgd"`), or one batch (`"full"`).
    - `config`: a `WindowConfig`.
    - `key`: PRNG key of the read-out and of the Lanczos probes (same key, same result).

    **Returns:** `(params_hat, report)`: $\\hat\\theta$ as a pytree like `params` and a
    `WindowReport`. Outside a transformation a diverging window raises `RuntimeError` naming
    the step; under `jit`/`vmap` it is reported (`report.status`, `report.diverged_step`) and
    $\\hat\\theta$ is NaN.
    """
    check_finite_tree("params", params)
    check_finite_tree("batches", batches)
    index = window_index(params, mask)
    config = resolve_window(params, index, batches, config)
    if config.batching == "sgd":
        batches = jax.tree_util.tree_map(lambda x: x[: config.num_steps], batches)
    params_hat, report = _window_core(loss_fn, params, index, batches, config, key)
    if is_concrete(report.diverged_step):
        report.raise_if_failed()
    return params_hat, report


__all__ = ["WindowConfig", "WindowReport", "WindowStatus", "quantum_window"]
