"""Tables: the library's one Markdown table writer and the compact per-QLSA resource table."""

from __future__ import annotations

import math
from typing import Any

from .._carleman import carleman_dim
from .._errors import InvalidArgumentError, check_int_range, check_number
from .._misc import ceil_log2
from ._qlsa import COSTA_NUMERICAL, HHL, ChildsKothariSomma


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


_TABLE_QLSAS = {"hhl": HHL(), "cks": ChildsKothariSomma(), "costa": COSTA_NUMERICAL}


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
    ancillas: int = 0,
    classical_flops_total: float | None = None,
) -> dict[str, Any]:
    r"""A compact resource table of one history system: qubits, rounds and, per QLSA, queries
    and queries × rounds × samples (JSON-able; `table_markdown` renders it).

    The labelled end-to-end estimate (Toffolis, physical qubits, seconds, the classical
    baseline) is `estimate`; this table is the figures of `WindowReport.resources`.

    **Arguments:**

    - `kappa` $\ge 1$, `target_probability` $\in (0, 1]$: measured $\kappa(L)$ and $P$.
    - `eps`: the QLSA precision in (0, 1); `n`: active parameters; `order`: $N$;
      `num_steps`: $T$; `idle`: $p \ge 0$ (0: the article's Eq. 6).
    - `samples`: tomography samples (each a full run); `ancillas`: extra qubits.
    - `classical_flops_total`: FLOPs of the same $T$ steps, recorded as `classical_flops`.

    **Returns:** a dict with the inputs, `history_form` (`"article"` for $p = 0$, else
    `"padded"`), `dim`, `qubits`, `rounds`, and per QLSA (`"hhl"`, `"cks"`, `"costa"`: the
    Costa et al. count with its numerically measured constant) `queries` and `total`.
    """
    check_int_range("idle", idle, 0)
    check_int_range("num_steps", num_steps, 0)
    check_int_range("ancillas", ancillas, 0)
    check_number("target_probability", target_probability, low=0, high=1, low_open=True)
    check_number("samples", samples, low=1)
    if not (math.isfinite(float(kappa)) and float(kappa) >= 1):
        raise InvalidArgumentError(
            f"`kappa` must be a finite condition number >= 1, got {kappa!r}."
        )
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
        "qubits": ceil_log2(dim) + int(ancillas),
        "rounds": rounds,
        "samples": float(samples),
        "classical_flops": classical_flops_total,
        "qlsa": {},
    }
    for name, qlsa in _TABLE_QLSAS.items():
        q = qlsa.queries(kappa, eps)
        table["qlsa"][name] = {"queries": q, "total": q * rounds * float(samples)}
    return table


def table_markdown(table: dict[str, Any]) -> str:
    """Render `resource_table` output as Markdown.

    **Arguments:**

    - `table`: a `resource_table` dict.

    **Returns:** a one-paragraph summary of the figures, then one row per QLSA (queries, total).
    """
    head = (
        f"κ = {table['kappa']:.4g}, P = {table['target_probability']:.3g}, "
        f"ε = {table['eps']:.3g}, n = {table['n']}, N = {table['order']}, T = "
        f"{table['num_steps']}, p = {table['idle']} ({table['history_form']} history system), "
        f"dim = {table['dim']}, qubits = {table['qubits']}, rounds = {table['rounds']:.0f}, "
        f"samples = {table['samples']:.3g}"
    )
    rows = [[name, f"{r['queries']:.3g}", f"{r['total']:.3g}"] for name, r in table["qlsa"].items()]
    return head + "\n\n" + markdown_table(["QLSA", "queries", "queries × rounds × samples"], rows)
