r"""The classical side of the comparison: XLA's FLOP counts of the same SGD steps, measured step
time, and the break-even model size."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import numpy as np
import optax
from jaxtyping import PyTree

from .._errors import check_int_range, check_positive


def classical_flops(step: Callable, *args: Any, num_steps: int = 1) -> float:
    """FLOPs of `num_steps` calls of `step(*args)` from XLA's cost analysis of the jitted step.

    The arguments may be `jax.ShapeDtypeStruct`s: the step is lowered and compiled, not run.

    **Arguments:**

    - `step`: a function of `args` (jitted here).
    - `args`: its arguments.
    - `num_steps`: how many calls.

    **Returns:** the FLOPs (a float; NaN if XLA reports none).
    """
    compiled = jax.jit(step).lower(*args).compile()
    cost = compiled.cost_analysis()
    if isinstance(cost, list | tuple):
        cost = cost[0]
    flops = float(cost.get("flops", float("nan"))) if cost else float("nan")
    return flops * int(num_steps)


class StepCosts(eqx.Module):
    r"""Measured classical costs of one step of a model on one batch (`step_costs`).

    **Fields** (Python numbers):

    - `step_flops`: FLOPs of one dense SGD step $\theta - \eta\nabla L_b(\theta)$ (XLA).
    - `hvp_flops`: FLOPs of one Hessian-vector product on the batch (XLA, forward over reverse):
      what a coherent query to the block encoding of the batch's Hessian is charged.
    - `batch_size`: $B$.
    - `data_size`: entries of one batch (inputs and targets), the data a coherent query reads.
    """

    step_flops: float = eqx.field(static=True)
    hvp_flops: float = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    data_size: int = eqx.field(static=True)


def step_costs(loss_fn: Callable, params: PyTree, batch: PyTree) -> StepCosts:
    """XLA's FLOP counts of one SGD step and one HVP of `loss_fn` on `batch`.

    Nothing is run: the programs are only compiled, so `params` and `batch` may be pytrees of
    `jax.ShapeDtypeStruct` (a model far too large for this machine is costed all the same).

    **Arguments:**

    - `loss_fn`: `loss_fn(params, batch) -> scalar`.
    - `params`: the parameters (arrays or shapes).
    - `batch`: one batch (arrays or shapes; leaves share the leading batch axis $B$).

    **Returns:** a `StepCosts`.
    """

    def step(p, b):
        g = jax.grad(loss_fn)(p, b)
        return jax.tree_util.tree_map(lambda a, d: a - 0.1 * d, p, g)

    def hvp(p, v, b):
        return jax.jvp(lambda q: jax.grad(loss_fn)(q, b), (p,), (v,))[1]

    leaves = jax.tree_util.tree_leaves(batch)
    if not leaves or not np.shape(leaves[0]):
        raise ValueError("`batch` must hold arrays with a leading batch axis.")
    return StepCosts(
        step_flops=classical_flops(step, params, batch),
        hvp_flops=classical_flops(hvp, params, params, batch),
        batch_size=int(np.shape(leaves[0])[0]),
        data_size=int(sum(math.prod(np.shape(x)) for x in leaves)),
    )


def sgd_step_time(
    loss_fn: Callable, params: Any, batch: Any, learning_rate: float = 0.1, repeat: int = 5
) -> float:
    """Measured wall time (s, best of `repeat`) of one jitted `optax.sgd` step on this machine.

    **Arguments:**

    - `loss_fn`: `loss_fn(params, batch) -> scalar`.
    - `params`, `batch`: the step's inputs.
    - `learning_rate`: of the `optax.sgd` step.
    - `repeat`: timed repetitions after a warm-up.

    **Returns:** the best time in seconds.
    """
    opt = optax.sgd(learning_rate)
    state = opt.init(params)

    @jax.jit
    def step(p, s, b):
        grads = jax.grad(loss_fn)(p, b)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s

    jax.block_until_ready(step(params, state, batch))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(step(params, state, batch))
        best = min(best, time.perf_counter() - t0)
    return best


def break_even_n(
    quantum_total: float,
    classical_total: float,
    n0: int,
    *,
    quantum_power: float = 1.0,
    classical_power: float = 1.0,
    log_power: float = 0.0,
    n_max: float = 1e30,
) -> float:
    r"""Smallest $n$ from which the quantum cost stays below the classical one.

    Power laws fitted at the measured size $n_0$:
    $Q(n) = Q_0 (n/n_0)^{a} (\log_2 n/\log_2 n_0)^{q}$, $C(n) = C_0 (n/n_0)^{b}$. With samples
    $\propto s$ (what tomography needs) and $s \propto n^\sigma$, $a = \sigma$ per unit query
    cost (and $2\sigma$ when a query costs one HVP, itself $\propto s$); $b = 1$ for a dense
    classical baseline, $\sigma$ for a sparse one. When $a \ge b$ and $Q_0 > C_0$ the quantum
    cost never drops below: `inf`.

    **Arguments:**

    - `quantum_total`: $Q_0 > 0$; `classical_total`: $C_0 > 0$; `n0`: the measured size.
    - `quantum_power`: $a$; `classical_power`: $b$; `log_power`: $q$ (per-query polylog,
      e.g. QRAM depth).
    - `n_max`: the largest $n$ searched.

    **Returns:** the break-even $n$ (`inf` if none up to `n_max`; 2 if the quantum cost is
    below everywhere on the grid).
    """
    check_positive("quantum_total", quantum_total)
    check_positive("classical_total", classical_total)
    check_int_range("n0", n0, 1)
    for name, v in (("quantum_power", quantum_power), ("classical_power", classical_power)):
        check_positive(name, v, strict=False)
    check_positive("log_power", log_power, strict=False)
    ln0 = math.log2(max(n0, 2))

    def gap(logn):  # log Q - log C at n = 2**logn
        return (
            math.log(quantum_total)
            + log_power * math.log(logn / ln0)
            - math.log(classical_total)
            + (quantum_power - classical_power) * (logn - math.log2(max(n0, 1))) * math.log(2)
        )

    grid = np.linspace(1.0, math.log2(n_max), 4000)
    gaps = np.array([gap(x) for x in grid])
    above = np.nonzero(gaps >= 0)[0]
    if above.size == 0:
        return 2.0
    last = above[-1]
    if last == grid.size - 1:
        return math.inf
    lo, hi = grid[last], grid[last + 1]
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if gap(mid) >= 0 else (lo, mid)
    return float(2.0**hi)
