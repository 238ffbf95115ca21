"""The configuration of a quantum window, and the checks that run before any work.

`WindowConfig` holds what a sweep may trace (`eta`, `shots`, `order`, the method's own traced
values) and the static choices; `resolve_window` refuses, before anything is allocated, batches
that do not fit and states too large for memory, and resolves `state="auto"`.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, Float, Int, PyTree

from ._batching import is_full_batch
from ._carleman import carleman_bytes, carleman_dim
from ._dissipation import DENSE_LIMIT
from ._errors import (
    InvalidArgumentError,
    check_choice,
    check_int_range,
    check_memory,
    check_number,
    check_positive,
    default_memory_limit,
    in_interval,
    is_concrete,
)
from ._evolution import (
    AbstractCarlemanState,
    AbstractEvolution,
    DenseState,
    Discrete,
    FactoredState,
    as_evolution,
    as_state,
)
from ._prune import check_mask
from ._readout import AbstractReadout, as_readout
from ._readout._checks import check_shots


class WindowConfig(eqx.Module):
    """Configuration of a quantum window (traced: `eta`, `shots`, `order` and the method's
    arrays, such as `TruncatedTaylor`'s $K$; the rest static).

    **Arguments:**

    - `eta`: learning rate $\\eta > 0$ (traced: vmap / grad over it).
    - `num_steps`: window length $T_q \\ge 1$.
    - `degree`: Taylor model of the loss, 1 (matrix-free, model scale) or 2 (dense).
    - `order`: Carleman order $N \\le$ `max_order` (traced).
    - `max_order`: static $N_{\\max}$ sizing the state (default `order`).
    - `method`: the evolution method, a value: `Discrete()` (default), `Euler()`,
      `TruncatedTaylor(K, segments)`, `Expm()` (small sizes), or the shorthand of one.
    - `readout`: the read-out method, a value: `Exact()` (infinite shots, the default),
      `Sampled()` (measurement statistics) or `GaussianSurrogate()` (differentiable), or the
      shorthand "exact", "sample", "gaussian".
    - `shots`: tomography shots $N_s$ per measurement round (traced).
    - `batching`: "sgd" (`batches` has a leading step axis, one batch per step) or "full" (one
      batch for every step: full-batch GD).
    - `idle`: idle copies $p$ of the history system (default 0: the article's Eq. 6, no
      padding; $p = T_q$ is the padded variant, which raises the target probability).
    - `diagnostics`: measure the error budget and the dissipation (off for speed, e.g. under
      `grad`).
    - `history`: with `diagnostics`, also $\\kappa$ and $P$ of the history system.
    - `keep_trajectory`: keep $y_1(t)$ for every step in the report (memory $T_q s$).
    - `kappa_iters`: Lanczos iterations of the matrix-free $\\kappa$ estimate.
    - `y0_scales`: with `history`, also measure $\\kappa$ and $P$ of the history system at this
      many scales $c$ of the constant component $y_0 \\equiv c$ (a log grid of $\\pm 2$ decades
      around $\\max_t\\lVert y_1(t)\\rVert$), from which `qsgd_jax.resources.estimate` chooses
      the $c$ minimizing queries × rounds (default 0: only $c = 1$; each scale costs one more
      $\\kappa$ estimate).
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
    method: AbstractEvolution
    readout: AbstractReadout
    batching: str = eqx.field(static=True)
    idle: int = eqx.field(static=True)
    diagnostics: bool = eqx.field(static=True)
    history: bool = eqx.field(static=True)
    keep_trajectory: bool = eqx.field(static=True)
    kappa_iters: int = eqx.field(static=True)
    y0_scales: int = eqx.field(static=True)
    divergence_factor: float = eqx.field(static=True)
    max_relative_error: float = eqx.field(static=True)
    state: AbstractCarlemanState | str = eqx.field(static=True)
    memory_limit: int | None = eqx.field(static=True)

    def __init__(
        self,
        eta,
        num_steps: int,
        *,
        degree: int = 1,
        order=1,
        max_order: int | None = None,
        method: AbstractEvolution | str = Discrete(),
        readout: AbstractReadout | str = "exact",
        shots=10_000,
        batching: str = "sgd",
        idle: int | None = None,
        diagnostics: bool = True,
        history: bool = True,
        keep_trajectory: bool = False,
        kappa_iters: int = 32,
        y0_scales: int = 0,
        divergence_factor: float = 1e3,
        max_relative_error: float = 1.0,
        state="dense",
        memory_limit: int | None = None,
    ):
        check_positive("eta", eta)  # a real scalar always; > 0 now if concrete
        check_int_range("num_steps", num_steps, 1)
        method = as_evolution(method)
        check_choice("degree", degree, (1, 2))
        is_full_batch(batching)
        if max_order is None:
            if not is_concrete(order):
                raise InvalidArgumentError("`order` is traced, so pass a static `max_order`.")
            check_int_range("order", order, 1)  # before int(): 1.5 must not become 1
            max_order = int(order)
        check_int_range("max_order", max_order, 1)
        check_int_range("order", order, 1, max_order)
        readout = as_readout(readout, "readout")
        if readout.uses_shots:  # the surrogate is smooth in N: any real >= 1
            check_shots(shots, integer=readout.integer_shots)
        else:  # unused, but still one real number
            check_number("shots", shots, finite=False)
        check_int_range("kappa_iters", kappa_iters, 1)
        check_int_range("y0_scales", y0_scales, 0)
        check_positive("divergence_factor", divergence_factor)
        check_positive("max_relative_error", max_relative_error)
        if state != "auto":
            state = as_state(state)
            state.check(max_order=int(max_order), method=method)
        self.eta = jnp.asarray(eta)
        self.shots = jnp.asarray(shots, jnp.result_type(float))
        order = jnp.asarray(order)
        if jnp.issubdtype(order.dtype, jnp.floating):  # traced: a non-integral N becomes -1,
            order = jnp.where(in_interval(order, integer=True), order, -1)  # `arguments_ok`
        self.order = order.astype(jnp.int32)  # reports it, rather than truncating it
        self.num_steps, self.degree, self.max_order = int(num_steps), int(degree), int(max_order)
        self.method, self.readout, self.batching = method, readout, batching
        if idle is not None:
            check_int_range("idle", idle, 0)
        self.idle = 0 if idle is None else int(idle)
        self.diagnostics, self.history = bool(diagnostics), bool(history)
        self.keep_trajectory = bool(keep_trajectory)
        self.kappa_iters, self.divergence_factor = int(kappa_iters), float(divergence_factor)
        self.y0_scales = int(y0_scales)
        self.max_relative_error, self.state = float(max_relative_error), state
        if memory_limit is not None:
            check_int_range("memory_limit", memory_limit, 1)
        self.memory_limit = memory_limit

    @property
    def full_batch(self) -> bool:
        """Whether one batch serves every step (`batching="full"`: full-batch GD)."""
        return is_full_batch(self.batching)

    def arguments_ok(self) -> Bool[Array, ""]:
        """Whether the traced fields hold valid values: the run-time side of the door checks.

        A concrete configuration was checked when it was built; a traced one (`eta`, `shots`
        or `order` under `jit`, `vmap`, `grad` or a sweep) is only known when the program runs.
        The window ORs this predicate into its status (`RESULTS.invalid_argument` where it is
        false), so that `throw=False` reports it and `throw=True` raises, instead of running,
        e.g., gradient *ascent* for a negative $\\eta$.

        **Returns:** a traceable bool: $\\eta$ finite and $> 0$, `shots` finite and $\\ge 1$
        (an integer for sampling read-outs; not checked for `Exact()`), `order` an integer in
        [1, `max_order`], and the method's own traced values (`TruncatedTaylor`'s $K$).
        """
        ok = in_interval(self.eta, 0, low_open=True)
        ok = ok & in_interval(self.order, 1, self.max_order, integer=True)
        if self.readout.uses_shots:
            ok = ok & in_interval(self.shots, 1, integer=self.readout.integer_shots)
        return ok & self.method.arguments_ok()


def window_index(params: PyTree, mask: PyTree) -> Int[Array, " s"]:
    """Validate `mask` against `params` and return the flat indices of the active set.

    **Arguments:** `params` (pytree), `mask` (concrete bool pytree like it).

    **Returns:** the indices, shape `(s,)`.
    """
    check_mask(params, mask)
    if not is_concrete(mask):
        raise InvalidArgumentError(
            "`mask` must be concrete (not traced under jit/vmap/grad): it fixes the active-set "
            "size s, an array shape. Close over it instead of passing it as a traced argument."
        )
    m = np.concatenate([np.ravel(np.asarray(x)) for x in jax.tree_util.tree_leaves(mask)])
    return jnp.asarray(np.flatnonzero(m), jnp.int32)


def _dense_needs(s: int, p: int, itemsize: int, config: WindowConfig) -> list[tuple[str, int]]:
    """(what, bytes) of every large allocation of a dense-state window."""
    mx, needs = config.max_order, []
    if mx > 1:
        needs.append(
            (
                f"A Carleman state of order N = {mx} over the active set s = {s} "
                f"(dimension {carleman_dim(s, mx):,}; order N needs s^N entries)",
                2 * carleman_bytes(s, mx, itemsize),
            )
        )
    if config.degree == 2:
        copies = 1 if config.full_batch else config.num_steps
        needs.append(
            (
                f"Dense degree-2 Taylor models (g, H, T) of {copies} step(s) on s = {s} "
                f"active parameters (s^3 = {s**3:,} entries each)",
                2 * copies * s**3 * itemsize,
            )
        )
    return needs


def _factored_needs(s: int, p: int, itemsize: int, config, state) -> list[tuple[str, int]]:
    r = state.width(config.num_steps)
    return [
        (
            f"A factored order-2 Carleman state (s = {s}, rank {r}) and its batch of {2 * r + 1}"
            f" Hessian-vector products over {p:,} parameters",
            3 * state.state_bytes(s, 2, config.num_steps, itemsize)
            + 4 * (2 * r + 1) * p * itemsize,
        )
    ]


def resolve_window(params: PyTree, index, batches: PyTree, config: WindowConfig) -> WindowConfig:
    """Raise, before any work, for batches too short or a state too large for memory.

    **Arguments:** `params`, `index` (from `window_index`), `batches`, `config`.

    **Returns:** `config` with `state="auto"` resolved (dense where it fits, else factored).
    """
    check_window(params, index, batches, config)
    s = int(index.shape[0])
    flat = ravel_pytree(params)[0]
    p, itemsize = int(flat.shape[0]), jnp.dtype(flat.dtype).itemsize
    limit = default_memory_limit() if config.memory_limit is None else config.memory_limit
    state = config.state
    if isinstance(state, str):  # "auto"
        dense_ok = all(b <= limit for _, b in _dense_needs(s, p, itemsize, config))
        can_factor = config.max_order <= 2 and isinstance(config.method, Discrete)
        state = DenseState() if dense_ok or not can_factor else FactoredState()
    if isinstance(state, FactoredState):
        needs = _factored_needs(s, p, itemsize, config, state)
    else:
        needs = _dense_needs(s, p, itemsize, config)
    if config.diagnostics:  # rho(F1): dense eigendecomposition of f1, or a Lanczos basis
        dense_diss = s <= DENSE_LIMIT
        needs.append(
            (
                f"The dissipation diagnostics on s = {s} ("
                f"{'dense s x s eigendecomposition' if dense_diss else 'Lanczos basis'})",
                (4 * s * s if dense_diss else 70 * s) * itemsize,
            )
        )
    for what, nbytes in needs:
        check_memory(what, nbytes, limit)
    return dataclasses.replace(config, state=state)


def check_window(params: PyTree, index, batches: PyTree, config: WindowConfig) -> None:
    """Raise, before any work, for batches that do not fit the window.

    **Arguments:** `params`, `index`, `batches`, `config` (as `resolve_window`).

    **Returns:** `None`.
    """
    leaves = jax.tree_util.tree_leaves(batches)
    if not leaves:
        raise InvalidArgumentError("`batches` is empty; pass the window's batch(es).")
    if not config.full_batch:
        lengths = {int(jnp.shape(x)[0]) if jnp.ndim(x) else 0 for x in leaves}
        nb = min(lengths)
        if len(lengths) != 1 or nb < config.num_steps:
            raise InvalidArgumentError(
                f"`batches` holds {nb} batches (leading axis of every leaf: {sorted(lengths)}) "
                f"but the window has T_q = config.num_steps = {config.num_steps} steps; pass at "
                "least one batch per step, or batching='full' for full-batch GD."
            )
