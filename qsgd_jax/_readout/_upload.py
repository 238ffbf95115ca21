r"""Re-upload cost of an $s$-sparse vector in $\mathbb{R}^n$: sparse state preparation vs QRAM.

Two standard ways to load the downloaded weights back (`docs/math/readout.md`):

- **sparse state preparation**: $O(s)$ gates (one multi-controlled rotation per non-zero,
  each acting on $\lceil\log_2 n\rceil$ qubits; Gleinig & Hoefler, DAC 2021,
  arXiv:2108.06150, count $O(s \log n)$ CNOTs), on $\lceil\log_2 n\rceil + 1$ qubits;
- **QRAM** (bucket brigade, Giovannetti, Lloyd, Maccone, PRL 100, 160501 (2008)): query depth
  $O(\log n)$ but $O(n)$ qubits (routers) for an $n$-entry memory.

Constants are exposed as arguments; both figures are always reported.
"""

from __future__ import annotations

import math

import equinox as eqx

from .._errors import check_int_range, check_positive


class UploadCost(eqx.Module):
    r"""Cost of one re-upload of an $s$-sparse vector of length $n$ (Python numbers, static).

    **Fields:**

    - `sparse_gates`: gates of sparse state preparation, $c_g s$.
    - `sparse_cnots`: CNOTs of sparse state preparation, $c_g s \lceil\log_2 n\rceil$.
    - `sparse_qubits`: qubits of sparse state preparation, $\lceil\log_2 n\rceil + 1$.
    - `qram_depth`: depth of one QRAM query, $c_d \lceil\log_2 n\rceil$.
    - `qram_qubits`: qubits of the QRAM, $c_q n$.
    """

    sparse_gates: int = eqx.field(static=True)
    sparse_cnots: int = eqx.field(static=True)
    sparse_qubits: int = eqx.field(static=True)
    qram_depth: int = eqx.field(static=True)
    qram_qubits: int = eqx.field(static=True)


def upload_cost(
    s: int,
    n: int,
    *,
    gate_const: float = 1.0,
    depth_const: float = 1.0,
    qubit_const: float = 1.0,
) -> UploadCost:
    r"""Re-upload cost: sparse state preparation ($O(s)$ gates) and QRAM ($O(\log n)$ depth,
    $O(n)$ qubits).

    **Arguments:**

    - `s`: number of non-zeros (active parameters), $1 \le s \le n$.
    - `n`: length of the full parameter vector.
    - `gate_const`, `depth_const`, `qubit_const`: the constants $c_g, c_d, c_q$ above.

    **Returns:** an `UploadCost`.
    """
    check_int_range("n", n, 1)
    check_int_range("s", s, 1, int(n))
    for name, c in (
        ("gate_const", gate_const),
        ("depth_const", depth_const),
        ("qubit_const", qubit_const),
    ):
        check_positive(name, c)
    log_n = max(1, math.ceil(math.log2(int(n))))
    return UploadCost(
        sparse_gates=math.ceil(gate_const * s),
        sparse_cnots=math.ceil(gate_const * s * log_n),
        sparse_qubits=log_n + 1,
        qram_depth=math.ceil(depth_const * log_n),
        qram_qubits=math.ceil(qubit_const * n),
    )
