"""Small helpers shared by several modules."""

from __future__ import annotations

from ._errors import check_int_range


def ceil_log2(x: int) -> int:
    """$\\lceil\\log_2 x\\rceil$: the qubits that index $x$ items (0 for $x = 1$).

    Integer arithmetic (`(x - 1).bit_length()`), so exact at every size (a float `log2` rounds
    up at $x = 2^{k} + 1$ only while $x < 2^{53}$).

    **Arguments:**

    - `x`: an integer $\\ge 1$.

    **Returns:** $\\lceil\\log_2 x\\rceil$, a Python int.
    """
    check_int_range("x", x, 1)
    return (int(x) - 1).bit_length()
