"""Resource model: QLSA query counts, qubits, samples, totals, and the classical comparison.

Each named quantum linear-system algorithm (QLSA) has one function with its published leading
scaling and citation; every constant is an argument (default 1, i.e. leading-order scaling only:
set constants from the cited analyses for absolute counts). The combination (DESIGN §2,
"Resource model"):

$$\\text{total} = \\text{queries} \\times \\text{rounds} \\times \\text{samples}
  + \\text{re-upload},$$

with rounds $= \\lceil \\pi/(4\\sqrt{P})\\rceil$ of amplitude amplification, samples the
tomography shots (each one a full run) and re-upload the state-preparation cost. The classical
side is the FLOP count of the same $T$ GD steps from XLA's cost analysis of the jitted step.
All measured inputs ($\\kappa$, $P$, norms, $\\alpha$) should come from the simulation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax

from ._carleman import carleman_dim
from ._errors import check_int_range, check_positive
from ._taylor import block_encoding_normalization as block_encoding_normalization

__all__ = [
    "block_encoding_normalization",
    "break_even_n",
    "childs_kothari_somma_queries",
    "classical_flops",
    "costa_queries",
    "hhl_queries",
    "markdown_table",
    "num_qubits",
    "resource_table",
    "sgd_step_time",
    "table_markdown",
    "total_cost",
]


def _check_k_eps(kappa, eps):
    check_positive("kappa", kappa)
    if float(kappa) < 1:
        raise ValueError(f"`kappa` must be >= 1 (a condition number), got {kappa!r}.")
    check_positive("eps", eps)
    if float(eps) >= 1:
        raise ValueError(f"`eps` must lie in (0, 1), got {eps!r}.")


def hhl_queries(kappa: float, eps: float, *, constant: float = 1.0) -> float:
    """HHL query count $C\\,\\kappa^2/\\epsilon$.

    Harrow, Hassidim, Lloyd, "Quantum algorithm for linear systems of equations",
    Phys. Rev. Lett. 103, 150502 (2009), arXiv:0811.3171 (the $\\tilde O(\\kappa^2/\\epsilon)$
    dependence of phase-estimation-based inversion with amplitude amplification).

    **Arguments:** `kappa` $\\ge 1$; `eps` $\\in (0,1)$; `constant` $C$ (default 1).

    **Returns:** the query count (float).
    """
    _check_k_eps(kappa, eps)
    return float(constant) * float(kappa) ** 2 / float(eps)


def childs_kothari_somma_queries(
    kappa: float, eps: float, *, constant: float = 1.0, log_power: float = 2.0
) -> float:
    """Childs–Kothari–Somma query count $C\\,\\kappa\\,\\ln(\\kappa/\\epsilon)^{q}$.

    Childs, Kothari, Somma, "Quantum algorithm for systems of linear equations with exponentially
    improved dependence on precision", SIAM J. Comput. 46, 1920 (2017), arXiv:1511.02306:
    $O(\\kappa\\,\\mathrm{polylog}(\\kappa/\\epsilon))$ with variable-time amplitude amplification.
    The polylog exponent $q$ is `log_power` (default 2, a conservative reading of the
    Chebyshev/LCU variant).

    **Arguments:** `kappa` $\\ge 1$; `eps` $\\in (0,1)$; `constant` $C$ (1); `log_power` $q$ (2).

    **Returns:** the query count (a float).
    """
    _check_k_eps(kappa, eps)
    return float(constant) * float(kappa) * math.log(float(kappa) / float(eps)) ** log_power


def costa_queries(kappa: float, eps: float, *, constant: float = 1.0) -> float:
    """Costa et al. discrete-adiabatic query count $C\\,\\kappa\\,\\ln(1/\\epsilon)$ (optimal).

    Costa, An, Sanders, Su, Babbush, Berry, "Optimal scaling quantum linear-systems solver via
    discrete adiabatic theorem", PRX Quantum 3, 040303 (2022), arXiv:2111.08152: $O(\\kappa)$
    walk steps for constant precision plus eigenstate filtering, $O(\\kappa\\log(1/\\epsilon))$
    in total. Their analysis gives a large explicit worst-case constant; pass it as `constant`.

    **Arguments:** `kappa` $\\ge 1$; `eps` $\\in (0,1)$; `constant` $C$ (default 1).

    **Returns:** the query count (a float).
    """
    _check_k_eps(kappa, eps)
    return float(constant) * float(kappa) * math.log(1.0 / float(eps))


QLSAS: dict[str, Callable[..., float]] = {
    "hhl": hhl_queries,
    "cks": childs_kothari_somma_queries,
    "costa": costa_queries,
}


def num_qubits(dim: int, ancillas: int = 0) -> int:
    """$\\lceil\\log_2 \\mathrm{dim}\\rceil$ + `ancillas`.

    **Arguments:**

    - `dim`: the dimension of the state.
    - `ancillas`: extra qubits.

    **Returns:** the qubit count.
    """
    if dim < 1:
        raise ValueError(f"`dim` must be >= 1, got {dim}.")
    return (0 if dim == 1 else math.ceil(math.log2(dim))) + int(ancillas)


def total_cost(queries: float, rounds: float, samples: float = 1.0, reupload: float = 0.0) -> float:
    """queries × amplification rounds × tomography samples + re-upload cost.

    **Arguments:**

    - `queries`: QLSA queries per solve.
    - `rounds`: amplitude-amplification rounds.
    - `samples`: tomography samples.
    - `reupload`: the cost of re-uploading the parameters.

    **Returns:** the total (a float).
    """
    for name, v in (("queries", queries), ("rounds", rounds), ("samples", samples)):
        check_positive(name, v, strict=False)
    check_positive("reupload", reupload, strict=False)
    return float(queries) * float(rounds) * float(samples) + float(reupload)


def classical_flops(step: Callable, *args: Any, num_steps: int = 1) -> float:
    """FLOPs of `num_steps` calls of `step(*args)` from XLA's cost analysis of the jitted step.

    **Arguments:**

    - `step`: a function of `args` (jitted here).
    - `args`: its arguments.
    - `num_steps`: how many calls.

    **Returns:** the FLOPs (a float; 0 if XLA reports none).
    """
    compiled = jax.jit(step).lower(*args).compile()
    cost = compiled.cost_analysis()
    if isinstance(cost, list | tuple):
        cost = cost[0]
    flops = float(cost.get("flops", float("nan"))) if cost else float("nan")
    return flops * int(num_steps)


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
    log_power: float = 1.0,
    n_max: float = 1e30,
) -> float:
    """Smallest $n$ from which the quantum count stays below the classical one.

    Model: measured at size $n_0$; the classical FLOPs grow linearly,
    $C(n) = C_0\\, n/n_0$; the quantum count grows polylogarithmically through the per-query
    cost (block encoding / QRAM depth), $Q(n) = Q_0 (\\log_2 n/\\log_2 n_0)^{q}$, $q$ =
    `log_power`, with $\\kappa$, $P$, $N$, $T$ held at their measured values.

    **Arguments:**

    - `quantum_total`: $Q_0$, the quantum count measured at $n_0$.
    - `classical_total`: $C_0$, the classical FLOPs at $n_0$.
    - `n0`: the measured size.
    - `log_power`: $q$.
    - `n_max`: the largest $n$ searched.

    **Returns:** the break-even $n$ (`inf` if none up to `n_max`).
    """
    check_positive("quantum_total", quantum_total)
    check_positive("classical_total", classical_total)
    ln0 = math.log2(max(n0, 2))

    def gap(logn):  # log(Q) - log(C) at n = 2**logn
        return (
            math.log(quantum_total)
            + log_power * math.log(logn / ln0)
            - math.log(classical_total)
            - (logn - math.log2(n0)) * math.log(2)
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


def resource_table(
    *,
    kappa: float,
    target_probability: float,
    eps: float,
    n: int,
    order: int,
    num_steps: int,
    idle: int = 0,
    samples: float = 1.0,
    reupload: float = 0.0,
    ancillas: int = 0,
    classical_flops_total: float | None = None,
    qlsa_constants: dict[str, dict[str, float]] | None = None,
    log_power: float = 1.0,
) -> dict[str, Any]:
    """A resource table for one run (JSON-able dict; `table_markdown` renders it).

    **Arguments:**

    - `kappa`, `target_probability`: measured $\\kappa(L)$ and $P$ of the history system.
    - `eps`: target precision; `n`: active parameters; `order`: Carleman order $N$;
      `num_steps`: $T$.
    - `idle`: $p$ idle blocks of the history system. The default 0 is the article's system
      (Eq. 6: $T + 1$ blocks, no padding); $p > 0$ is the padded variant (a larger target
      probability for $p$ more blocks). `kappa` and `target_probability` must be measured on
      the system with this $p$.
    - `samples`: tomography samples (each a full run); `reupload`: re-upload cost.
    - `ancillas`: extra ancilla qubits of the block encoding / QLSA.
    - `classical_flops_total`: FLOPs of the same $T$ GD steps (`classical_flops`).
    - `qlsa_constants`: per-QLSA keyword constants, e.g. `{"costa": {"constant": 2.0}}`.
    - `log_power`: exponent of the per-query polylog in `break_even_n`.

    **Returns:** a dict with the inputs, `history_form` (`"article"` for $p = 0$, else
    `"padded"`), `dim`, `qubits`, `rounds`, and per QLSA `queries`, `total` and `break_even_n`.
    """
    check_int_range("idle", idle, 0)
    check_int_range("num_steps", num_steps, 0)
    check_positive("target_probability", target_probability)
    if target_probability > 1:
        raise ValueError(f"`target_probability` must lie in (0, 1], got {target_probability}.")
    qlsa_constants = qlsa_constants or {}
    dim = (num_steps + idle + 1) * carleman_dim(int(n), int(order))
    rounds = float(math.ceil(math.pi / (4 * math.sqrt(target_probability))))
    table: dict[str, Any] = {
        "kappa": float(kappa),
        "target_probability": float(target_probability),
        "eps": float(eps),
        "n": int(n),
        "order": int(order),
        "num_steps": int(num_steps),
        "idle": int(idle),
        "history_form": "article" if int(idle) == 0 else "padded",
        "dim": int(dim),
        "qubits": num_qubits(dim, ancillas),
        "rounds": rounds,
        "samples": float(samples),
        "classical_flops": classical_flops_total,
        "qlsa": {},
    }
    for name, fn in QLSAS.items():
        q = fn(kappa, eps, **qlsa_constants.get(name, {}))
        tot = total_cost(q, rounds, samples, reupload)
        be = (
            break_even_n(tot, classical_flops_total, n, log_power=log_power)
            if classical_flops_total
            else None
        )
        table["qlsa"][name] = {"queries": q, "total": tot, "break_even_n": be}
    return table


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """The library's one Markdown table writer (resource tables, experiment reports, the demo).

    **Arguments:**

    - `header`: the column titles.
    - `rows`: the rows, one value per column; floats are printed with 4 significant digits,
      anything else (e.g. pre-formatted strings) with `str`.

    **Returns:** the table as a string (header, separator, one line per row).
    """

    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def table_markdown(table: dict[str, Any]) -> str:
    """Render `resource_table` output as a Markdown table.

    **Arguments:**

    - `table`: a `resource_table` dict.

    **Returns:** a one-paragraph summary of the run's figures, then a table with one row per
    QLSA (queries, total cost, break-even $n$).
    """
    head = (
        f"κ = {table['kappa']:.4g}, P = {table['target_probability']:.3g}, "
        f"ε = {table['eps']:.3g}, n = {table['n']}, N = {table['order']}, T = "
        f"{table['num_steps']}, p = {table.get('idle', 0)} "
        f"({table.get('history_form', 'article')} history system), "
        f"dim = {table['dim']}, qubits = {table['qubits']}, "
        f"rounds = {table['rounds']:.0f}, samples = {table['samples']:.3g}, classical FLOPs = "
        f"{table['classical_flops']}"
    )
    rows = [
        [
            name,
            f"{r['queries']:.3g}",
            f"{r['total']:.3g}",
            "—" if r["break_even_n"] is None else f"{r['break_even_n']:.3g}",
        ]
        for name, r in table["qlsa"].items()
    ]
    return head + "\n\n" + markdown_table(["QLSA", "queries", "total", "break-even n"], rows)
