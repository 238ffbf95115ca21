"""The factored Carleman state: the order-2 window at any model size.

A window starts at the upload point, $u_0 = 0$, so its truncated discrete Carleman state at
order $N = 2$ is $Y = (1, y_1, y_2)$ with $y_2(0) = 0$ (see the Carleman math page). Writing
$y_2 \\leftrightarrow$ the $s \\times s$ matrix $Y_2$ ($a \\otimes b \\leftrightarrow
a b^\\top$) and
$F_2[Y_2] := F_2\\,\\mathrm{vec}(Y_2) = -\\tfrac{\\eta}{2}\\sum_i \\mathcal{T}(a_i, b_i, \\cdot)$
for $Y_2 = \\sum_i a_i b_i^\\top$, one step of the truncated lift is

$$y_1' = F_0 + F_1 y_1 + F_2[Y_2],\\qquad
Y_2' = F_1 Y_2 F_1^\\top + F_0\\, y_1'^\\top + (y_1' - F_0)\\, F_0^\\top .$$

In factors $Y_2 = A B^\\top$ ($A, B \\in \\mathbb{R}^{s \\times r}$):
$A' = [F_1 A,\\ F_0,\\ y_1' - F_0]$, $B' = [F_1 B,\\ y_1',\\ F_0]$, so the rank grows by 2 per
step and is at most $2T$ after $T$ steps, with no approximation. $F_1$ acts on the $2r$ factor
columns as a batch of Hessian-vector products and $F_2[A B^\\top]$ costs $r$ third-order
directional derivatives (jvps of an HVP): nothing of size $s^2$ is ever formed.

Optional compression (`max_rank`, `rtol`) re-factors after each step: $A = Q_A R_A$,
$B = Q_B R_B$, $R_A R_B^\\top = U \\Sigma V^\\top$, and keeps the leading singular triplets; the
Frobenius norm of what is dropped is reported as its own error term (exactly 0 when nothing is
dropped).

`FactoredState` is a value passed to the driver and as `WindowConfig(state=...)`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Inexact, Int

from .._errors import check_int_range
from .base import AbstractEvolution
from .discrete import Discrete
from .state import AbstractCarlemanState


class FactoredY(eqx.Module):
    """A factored order-2 Carleman state $(1, y_1, A B^\\top)$.

    **Fields:** `y1` shape `(s,)`; `a`, `b` shape `(s, r)` (fixed width $r$; unused columns are
    zero); `steps` (steps taken, the slot of the next new columns); `dropped` (cumulative
    Frobenius norm of what compression dropped).
    """

    y1: Inexact[Array, " s"]
    a: Inexact[Array, "s r"]
    b: Inexact[Array, "s r"]
    steps: Int[Array, ""]
    dropped: Float[Array, ""]

    def y2(self) -> Inexact[Array, "s s"]:
        """The dense matrix $Y_2 = A B^\\top$ (small $s$ only: checks and tests)."""
        return self.a @ self.b.T

    def y2_norm(self) -> Float[Array, ""]:
        """$\\lVert A B^\\top\\rVert_F$ from the $r \\times r$ Gram matrices."""
        sq = jnp.sum((self.a.T @ self.a) * (self.b.T @ self.b))
        return jnp.sqrt(jnp.maximum(sq, 0))


class FactoredState(AbstractCarlemanState):
    """Factored order-2 state $y_2 = A B^\\top$ (discrete form, orders $N \\in \\{1, 2\\}$).

    **Arguments:**

    - `max_rank`: keep at most this many singular triplets of $Y_2$ after each step
      (`None`: exact, the rank grows to $2T$).
    - `rtol`: also drop singular values below `rtol` $\\times \\sigma_{\\max}$ (0: keep all).

    With compression the window's `compression` term is the cumulative Frobenius norm
    $\\sum_t \\delta_t$ of the dropped parts. To first order in $\\eta$ and for $\\lVert F_1
    \\rVert \\le 1$ (a dissipative window) it bounds $\\lVert Y_2 - Y_2^{\\mathrm{exact}}\\rVert_F$;
    compression is not meant to be differentiated through (singular vectors of repeated
    singular values have no derivative).
    """

    max_rank: int | None = eqx.field(static=True, default=None)
    rtol: float = eqx.field(static=True, default=0.0)

    def __check_init__(self):
        if self.max_rank is not None:
            check_int_range("max_rank", self.max_rank, 1)
        if not (isinstance(self.rtol, int | float) and 0 <= self.rtol < 1):
            raise ValueError(f"`rtol` must be a number in [0, 1), got {self.rtol!r}.")

    @property
    def compresses(self) -> bool:
        """Whether a step re-factors and truncates $Y_2$ (`max_rank` or `rtol` set)."""
        return self.max_rank is not None or self.rtol > 0

    def check(self, *, max_order: int, method: AbstractEvolution) -> None:
        if max_order > 2:
            raise ValueError(
                f"`state=FactoredState()` supports Carleman orders N <= 2, got max_order = "
                f"{max_order}; use `state=DenseState()` for N = 3, 4 (needs s^N memory)."
            )
        if not isinstance(method, Discrete):
            raise ValueError(
                f"`state=FactoredState()` runs the 'discrete' form only (`Discrete()`: its rank "
                f"grows by 2 per step); form {method.name!r} triples the rank per step. Use "
                "`state=DenseState()`."
            )

    def width(self, num_steps: int) -> int:
        """Stored factor width $r$: $2T$ exactly, or the rank cap."""
        full = 2 * num_steps
        return full if self.max_rank is None else min(self.max_rank, full)

    def state_bytes(self, s: int, max_order: int, num_steps: int, itemsize: int) -> int:
        return (2 * s * self.width(num_steps) + s) * itemsize

    def zero(self, s: int, max_order: int, num_steps: int, dtype) -> FactoredY:
        """The lift of $u_0 = 0$: $y_1 = 0$, $Y_2 = 0$.

        **Arguments:** `s` (active parameters), `max_order` ($\\le 2$), `num_steps` ($T$, sizes
        the factors), `dtype`.

        **Returns:** a `FactoredY`.
        """
        r = self.width(num_steps)
        z = jnp.zeros((s, r), dtype)
        zero = jnp.zeros((), dtype)
        return FactoredY(jnp.zeros((s,), dtype), z, z, jnp.zeros((), jnp.int32), zero)

    def y1(self, y: FactoredY) -> Inexact[Array, " s"]:
        return y.y1

    def dropped(self, y: FactoredY) -> Float[Array, ""]:
        return y.dropped

    def block_norms(self, y: FactoredY, max_order: int) -> Float[Array, " N1"]:
        one = jnp.ones((), y.y1.dtype)
        return jnp.stack([one, jnp.linalg.norm(y.y1), y.y2_norm()])[: max_order + 1]

    def step(self, method: AbstractEvolution, op, y: FactoredY, method_state):
        """One truncated `Discrete()` step at the operator's traced order $N \\in \\{1, 2\\}$
        (see the module docs).

        **Arguments:** `method` (`Discrete()`, checked by `check`), `op` (the step's
        `CarlemanOperator` or anything with its `poly` and `order`), `y` (the state),
        `method_state` (passed through).

        **Returns:** `(y, method_state, {})` with the new `FactoredY`.
        """
        poly, order = op.poly, op.order
        field, eta = poly.field, poly.eta
        r = y.a.shape[1]
        f0 = poly.F0
        # F1 on y1 and on every factor column: one batch of 2r + 1 HVPs.
        cols = jnp.concatenate([y.y1[:, None], y.a, y.b], axis=1)
        f1c = cols + eta * jax.vmap(field.linear, in_axes=1, out_axes=1)(cols)
        f1_y1, f1_a, f1_b = f1c[:, 0], f1c[:, 1 : r + 1], f1c[:, r + 1 :]
        keep2 = (order >= 2).astype(f0.dtype)
        y1 = f0 + f1_y1
        if field.degree == 2:
            y1 = y1 + keep2 * eta * field.quadratic_pairs(y.a, y.b)
        new_a = jnp.stack([f0, y1 - f0], axis=1)
        new_b = jnp.stack([y1, f0], axis=1)
        if self.compresses:
            a, b, dropped = self._compress(
                jnp.concatenate([f1_a, new_a], axis=1), jnp.concatenate([f1_b, new_b], axis=1), r
            )
        else:
            at = (jnp.zeros((), jnp.int32), 2 * y.steps)
            a = jax.lax.dynamic_update_slice(f1_a, new_a, at)
            b = jax.lax.dynamic_update_slice(f1_b, new_b, at)
            dropped = jnp.zeros((), f0.dtype)
        # Order 1 truncates y2 away, as the dense state zeroes blocks above the order.
        new = FactoredY(y1, keep2 * a, keep2 * b, y.steps + 1, y.dropped + keep2 * dropped)
        return new, method_state, {}

    def _compress(self, a, b, r: int):
        """Best rank-$\\le r$ factors of $A B^\\top$ (QR + SVD of the small core)."""
        qa, ra = jnp.linalg.qr(a)
        qb, rb = jnp.linalg.qr(b)
        u, sv, vt = jnp.linalg.svd(ra @ rb.T)
        idx = jnp.arange(sv.shape[0])
        keep = idx < r
        if self.rtol > 0:
            keep = keep & (sv > self.rtol * sv[0])
        kept = jnp.where(keep, sv, 0)
        dropped = jnp.sqrt(jnp.sum(jnp.where(keep, 0, sv) ** 2))
        a_new, b_new = qa @ (u * kept[None, :]), qb @ vt.T
        k = a_new.shape[1]
        if k >= r:
            return a_new[:, :r], b_new[:, :r], dropped
        pad = ((0, 0), (0, r - k))
        return jnp.pad(a_new, pad), jnp.pad(b_new, pad), dropped
