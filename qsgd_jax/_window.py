"""One quantum window: $T_q$ GD steps run as the quantum computer would, then read out.

At the upload point $\\bar\\theta$ (masked, $s$ active coordinates,
$u = \\theta - \\bar\\theta$) each step $t$ has its own Taylor model of the loss on that step's
batch (`docs/math/budget.md`): degree 1 ($F_2 = 0$, matrix-free Hessian-vector products, any model
size) or degree 2 (dense $g, H, \\mathcal{T}$, small active sets only). Its GD map is
Carleman-linearized at order $N$
and the state $Y = (1, y_1, \\dots, y_N)$ (an `AbstractCarlemanState`: dense blocks or
factored) is evolved by the chosen method (an `AbstractEvolution`):

- `Discrete()`: $Y \\leftarrow B_t Y$ (exact lift of the GD map, truncated);
- `Euler()`: $Y \\leftarrow Y + \\eta A_t Y$ (PNAS);
- `TruncatedTaylor(K, r)`: $Y \\leftarrow T_K(hA_t)^r Y$, $h = \\eta/r$ (LCU, the flow form);
- `Expm()`: $Y \\leftarrow e^{\\eta A_t} Y$ (dense reference).

$y_1(T_q)$ is downloaded by tomography (or exactly: "infinite shots"), giving $\\hat\\theta =
\\bar\\theta + \\hat u$. The `WindowReport` measures every error term that applies against the
exact GD trajectory $u^{\\mathrm{GD}}_t$ on the same batches (true loss, not its Taylor model):

$$\\hat u - u^{\\mathrm{GD}}_{T} = \\underbrace{\\hat u - y_1}_{\\text{read-out}}
+ \\underbrace{y_1 - y_1^{\\mathrm{ref}}}_{\\text{Taylor}}
+ \\underbrace{y_1^{\\mathrm{ref}} - u^{\\mathrm{flow}}}_{\\text{Carleman}}
+ \\underbrace{u^{\\mathrm{flow}} - u^{\\mathrm{poly}}}_{\\text{time discr.}}
+ \\underbrace{u^{\\mathrm{poly}} - u^{\\mathrm{GD}}}_{\\text{Taylor model}}$$

($u^{\\mathrm{poly}}$: GD on the Taylor models; $u^{\\mathrm{flow}}$: their gradient flow by RK4;
$y_1^{\\mathrm{ref}}$: the Taylor series to order $K + 8$; the terms come from the one error
budget. For `Discrete`/`Euler` the Carleman term is
$y_1 - u^{\\mathrm{poly}}$ and the Taylor / time terms do not apply: NaN.) It also holds the
dissipation metrics at the window start, $\\kappa$ and $P$ of the window's history system
$L = I - \\sum_t |t\\rangle\\langle t-1| \\otimes M_t - \\dots$ (exact SVD when small, Lanczos
with exact substitutions otherwise) and the read-out cost, from which `resources` builds the
resource table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from ._batching import step_batch
from ._budget import budget_step
from ._carleman import CarlemanOperator, carleman_bytes, carleman_dim
from ._condition import amplification_rounds
from ._dissipation import dissipation
from ._errors import check_finite_tree
from ._evolution import Discrete, FactoredState, drive, with_initial
from ._field import DenseField
from ._history_scale import ScaleScan, log_scales, scale_scan
from ._loss_model import ActiveSet, LossField, dense_field
from ._polynomial import PolynomialMap
from ._readout import download
from ._status import RESULTS, apply_throw, argument_status
from ._window_config import WindowConfig, resolve_window, window_index
from ._window_report import WindowReport

_DENSE_KAPPA = 1500  # history systems up to this many rows get an exact SVD


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
        return step_batch(self.batches, t, self.config.full_batch)

    def field(self, t, degree: int | None = None):
        """Step `t`'s Taylor model: dense (small s, degree 2) or matrix-free (`LossField`)."""
        if self.fields is None or degree == 1:
            degree = self.config.degree if degree is None else degree
            return LossField(self.loss_fn, self.active, self.batch(t), degree)
        return step_batch(self.fields, t, self.config.full_batch)

    def operator(self, field, order1: bool = False) -> CarlemanOperator:
        """Step's Carleman operator (`order1`: the $(y_0, y_1)$ block, whose history system is
        the one a factored state can afford)."""
        poly, cfg = PolynomialMap(field, self.eta), self.config
        if order1:
            return CarlemanOperator(poly, jnp.ones((), jnp.int32), 1)
        return CarlemanOperator(poly, cfg.order, cfg.max_order)

    def flat_step(self, t, x, order1: bool = False):
        """$M_t x$ on flat Carleman states, $t = 1..T_q$ (the history system's maps)."""
        field = self.field(t - 1, degree=1) if order1 else self.field(t - 1)
        method = Discrete() if order1 else self.config.method
        return method.flat_step(self.operator(field, order1), x)


def _divergence(norms, out, base, cfg):
    """First diverged step and status: non-finite blocks, $y_1$ far beyond the scale of the
    upload point, or (with diagnostics) an error that outgrew the GD displacement itself."""
    dtype = norms.dtype
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
    status = RESULTS.where(
        diverged,
        RESULTS.where(first_blown, RESULTS.non_dissipative, RESULTS.error_growth),
        RESULTS.successful,
    )
    return diverged, step, status


def _history(st, cfg, s, T, dtype, key, factored, norms) -> ScaleScan:
    """$\\kappa$, $\\sigma_{\\max}$, $\\sigma_{\\min}$ and $P$ of the window's history system at
    the $y_0$ scale $c = 1$ (entry 0) and, with `config.y0_scales`, on a log grid around
    $\\max_t \\lVert y_1(t)\\rVert$ (for the cost estimate's choice of $c$)."""
    # The factored state never holds the full Carleman space: kappa of its (y0, y1) block.
    d = carleman_dim(s, 1) if factored else carleman_dim(s, cfg.max_order)
    size = (T + cfg.idle + 1) * d
    scales = jnp.ones((1,), dtype)
    if cfg.y0_scales:
        center = jnp.maximum(jnp.max(norms[:, 1]), jnp.finfo(dtype).tiny)
        scales = jnp.concatenate([scales, log_scales(center, 2.0, cfg.y0_scales)])
    return scale_scan(
        lambda t, x: st.flat_step(t, x, order1=factored),
        T,
        d,
        scales,
        idle=cfg.idle,
        target=slice(1, 1 + s),
        method="dense" if size <= _DENSE_KAPPA else "lanczos",
        num_iters=min(cfg.kappa_iters, size),
        key=key,
        dtype=dtype,
    )


@eqx.filter_jit
def _window_core(loss_fn, params, index, batches, config: WindowConfig, key):
    flat, unravel = ravel_pytree(params)
    dtype = flat.dtype
    base = jnp.zeros_like(flat).at[index].set(flat[index])
    active = ActiveSet(base, index, unravel)
    s, T, cfg = index.shape[0], config.num_steps, config
    eta = config.eta.astype(dtype)
    state, method = cfg.state, cfg.method
    factored = isinstance(state, FactoredState)
    fields = None
    if cfg.degree == 2 and not factored:
        make = lambda b: dense_field(loss_fn, active, b)  # noqa: E731
        fields = make(batches) if cfg.full_batch else jax.vmap(make)(batches)
    st = _Steps(loss_fn, active, batches, fields, eta, cfg)
    nan = jnp.full((), jnp.nan, dtype)
    zero_u = jnp.zeros((s,), dtype)
    k_read, k_diss, k_kappa = jax.random.split(key, 3)

    def observe(t, op, Y, stats, carry):
        u_gd, refs = carry
        y1 = state.y1(Y)
        out = {"norms": state.block_norms(Y, cfg.max_order), "dropped": state.dropped(Y)}
        if cfg.keep_trajectory:
            out["y1"] = y1
        if cfg.diagnostics:
            batch = st.batch(t)
            grad = jax.grad(lambda u: loss_fn(active.embed(u), batch))(u_gd)
            u_gd = u_gd - eta * grad
            refs, terms = budget_step(method, op, y1, refs)
            out.update(terms, model=_norm(refs[0] - u_gd), total=_norm(y1 - u_gd))
            out["gd"] = _norm(u_gd)
        return (u_gd, refs), out

    Y0 = state.zero(s, cfg.max_order, T, dtype)
    refs = (zero_u, zero_u, None if factored else Y0)
    run = drive(
        method,
        lambda t: st.operator(st.field(t)),
        Y0,
        jnp.arange(T),
        state=state,
        observe=observe,
        carry=(zero_u, refs),
    )
    Y, (u_gd, _), out = run.final, run.carry, run.out
    norms0 = jnp.zeros((cfg.max_order + 1,), dtype).at[0].set(1)
    norms = with_initial(norms0, out["norms"])
    diverged, step, status = _divergence(norms, out, base, cfg)
    # A traced eta, shots or order out of range: reported, and the output is NaN.
    ok = cfg.arguments_ok()
    status, diverged = argument_status(ok, status), diverged | ~ok

    y1 = state.y1(Y)
    # throw=False: a diverged state is reported (status, step) and its output replaced by NaN.
    r = download(
        k_read, y1, cfg.shots, support=index, theta_bar=base, method=cfg.readout, throw=False
    )
    u_hat, runs = r.u_hat, r.window_runs.astype(dtype)
    u_hat = jnp.where(diverged, jnp.full_like(u_hat, jnp.nan), u_hat)
    theta_hat = unravel(base.at[index].add(u_hat))

    def series(name):
        if name not in out:
            return jnp.full((T + 1,), jnp.nan, dtype)
        return with_initial(jnp.zeros((), dtype), out[name])

    d = carleman_dim(s, cfg.max_order)
    diss, scan, kap = None, None, (nan, nan, nan, nan)
    if cfg.diagnostics:
        # rho(F1) needs only the linear part; a matrix-free degree-2 field would be densified.
        poly0 = PolynomialMap(st.field(0, degree=1 if factored else None), eta)
        diss = dissipation(poly0, method="auto", lanczos_depth=min(64, s), key=k_diss)
        if cfg.history:
            scan = _history(st, cfg, s, T, dtype, k_kappa, factored, norms)
            kap = (scan.kappa[0], scan.sigma_max[0], scan.sigma_min[0])
            kap += (scan.target_probability[0],)
    itemsize = jnp.dtype(dtype).itemsize
    report = WindowReport(
        model_error=series("model"),
        carleman_error=series("carleman"),
        time_discretization=series("time"),
        taylor_truncation=series("taylor"),
        total_error=series("total"),
        gd_norm=series("gd"),
        block_norms=norms,
        readout_error=_norm(u_hat - y1),
        final_error=_norm(u_hat - u_gd) if cfg.diagnostics else nan,
        dissipation=diss,
        kappa=kap[0],
        sigma_max=kap[1],
        sigma_min=kap[2],
        target_probability=kap[3],
        amplification_rounds=amplification_rounds(kap[3]),
        scale_scan=scan,
        window_runs=runs,
        diverged_step=step,
        status=status,
        y1=with_initial(zero_u, out["y1"]) if cfg.keep_trajectory else None,
        compression_error=series("dropped"),
        num_steps=T,
        active_size=s,
        num_params=flat.shape[0],
        max_order=cfg.max_order,
        method=method.name,
        history_size=(T + cfg.idle + 1) * d,
        history_qubits=_clog2(T + cfg.idle + 1) + _clog2(d),
        state="factored" if factored else "dense",
        state_bytes=state.state_bytes(s, cfg.max_order, T, itemsize),
        dense_state_bytes=carleman_bytes(s, cfg.max_order, itemsize),
        kappa_scope="order-1 block" if factored else "full",
    )
    return theta_hat, report


def _clog2(x: int) -> int:
    return int(np.ceil(np.log2(x))) if x > 1 else 0


def quantum_window(
    loss_fn: Callable[[PyTree, Any], Array],
    params: PyTree,
    mask: PyTree,
    batches: PyTree,
    config: WindowConfig,
    key: PRNGKeyArray,
    *,
    throw: bool = True,
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
    - `throw`: a diverging window raises `NonFiniteError` (a `RuntimeError`) naming the step,
      eagerly or, under `jit`/`vmap`, at run time. With `throw=False` it is reported
      (`report.status`, `report.diverged_step`) and $\\hat\\theta$ is NaN.

    **Returns:** `(params_hat, report)`: $\\hat\\theta$ as a pytree like `params` and a
    `WindowReport`.
    """
    check_finite_tree("params", params)
    check_finite_tree("batches", batches)
    index = window_index(params, mask)
    config = resolve_window(params, index, batches, config)
    if not config.full_batch:
        batches = jax.tree_util.tree_map(lambda x: x[: config.num_steps], batches)
    params_hat, report = _window_core(loss_fn, params, index, batches, config, key)
    report, params_hat = apply_throw(report, throw, params_hat)
    return params_hat, report
