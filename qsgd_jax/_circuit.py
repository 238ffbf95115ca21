"""Circuit level (tiny instances): block encoding, LCU circuit for $T_K(hA)$, state vectors.

Validation level for the algebraic truncated-Taylor / LCU figures (`docs/math/evolution.md`):

- block encoding of $A$ ($d \\times d$, padded to $2^m$) by the unitary dilation
  $U = \\begin{pmatrix} A/\\alpha & \\sqrt{I - AA^\\dagger/\\alpha^2} \\\\
  \\sqrt{I - A^\\dagger A/\\alpha^2} & -A^\\dagger/\\alpha \\end{pmatrix}$
  on one ancilla qubit (the leading qubit; $\\langle 0|U|0\\rangle = A/\\alpha$), built from the
  SVD of $A/\\alpha$ so that it is unitary to rounding even when $\\alpha = \\|A\\|$;
- $(A/\\alpha)^k$ by $k$ applications of $U$, each on its *own* ancilla qubit (ancillas
  $1..K$): projecting every ancilla on $|0\\rangle$ gives the product of the top-left blocks, so
  no ancilla reset is needed between applications;
- PREPARE $V|0\\rangle = \\sum_k \\sqrt{c_k/s_K}\\,|k\\rangle$ on a coefficient register of
  $\\lceil\\log_2(K+1)\\rceil$ qubits, $c_k = (h\\alpha)^k/k!$ (a Householder reflection);
- SELECT $= \\sum_k |k\\rangle\\langle k| \\otimes U^{(k)}\\cdots U^{(1)}$ (branch $k$ applies the
  block encoding on ancillas $1..k$);
- $W = (V^\\dagger \\otimes I)\\,\\mathrm{SELECT}\\,(V \\otimes I)$, so
  $\\langle 0|W|0\\rangle = T_K(hA)/s_K$; post-selecting all ancillas and the coefficient
  register on $|0\\rangle$ leaves $T_K(hA)y/\\|\\cdot\\|$ with probability
  $\\|T_K(hA)y\\|^2/(s_K^2\\|y\\|^2)$.

Qubits: $m + K + \\lceil\\log_2(K+1)\\rceil \\le$ `MAX_QUBITS` = 14; larger circuits are refused.
State vectors are tensors of shape `(2**c, 2, …, 2, 2**m)` (coefficient register, $K$ ancillas,
system); operators act by `einsum`, never as $2^{14}\\times 2^{14}$ matrices.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float, Inexact

from ._errors import check_finite, check_int_range, check_positive, is_concrete
from ._taylor import taylor_coefficients

MAX_QUBITS = 14
"""Largest circuit (system + ancillas + coefficient register) simulated."""


def _clog2(x: int) -> int:
    return 0 if x <= 1 else math.ceil(math.log2(x))


def check_qubits(num_qubits: int, what: str) -> None:
    """Refuse circuits above `MAX_QUBITS`.

    **Arguments:** `num_qubits` (of the circuit), `what` (its name in the message).

    **Returns:** `None`; raises `ValueError` above the limit.
    """
    if num_qubits > MAX_QUBITS:
        raise ValueError(
            f"{what} needs {num_qubits} qubits, above the circuit-level limit of {MAX_QUBITS} "
            "(state vectors of 2**qubits amplitudes). Use a smaller dimension or Taylor order, "
            "or the algebraic level (`taylor_evolve`)."
        )


def _pad(A: Inexact[Array, "d d"]) -> Inexact[Array, "D D"]:
    d = A.shape[0]
    D = 1 << _clog2(d)
    return jnp.zeros((D, D), A.dtype).at[:d, :d].set(A)


def block_encoding(
    A: Inexact[ArrayLike, "d1 d2"], alpha: Float[ArrayLike, ""]
) -> Complex[Array, "D2 D2"]:
    """Unitary dilation block encoding $U$ of $A/\\alpha$ (one ancilla, the leading qubit).

    **Arguments:**

    - `A`: square matrix, padded with zeros to $D = 2^{\\lceil\\log_2 d\\rceil}$.
    - `alpha`: normalization, $\\alpha \\ge \\|A\\|_2$ (checked).

    **Returns:** the complex $2D \\times 2D$ unitary with top-left block $A/\\alpha$.
    """
    A = jnp.asarray(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"`A` must be a square matrix, got shape {A.shape}.")
    check_finite("A", A)
    check_positive("alpha", alpha)
    m = _clog2(A.shape[0])
    check_qubits(m + 1, "the block encoding")
    if is_concrete((A, alpha)):
        norm = float(np.linalg.norm(np.asarray(A), 2))
        if float(alpha) < norm * (1 - 1e-12):
            raise ValueError(
                f"`alpha` = {float(alpha):.6g} is below ‖A‖ = {norm:.6g}: the block encoding "
                "needs alpha >= ‖A‖."
            )
    cdt = jnp.complex128 if jnp.dtype(A.dtype).itemsize >= 8 else jnp.complex64
    B = _pad(A).astype(cdt) / jnp.asarray(alpha).astype(cdt)
    W, s, Vh = jnp.linalg.svd(B)
    c = jnp.sqrt(jnp.clip(1 - s**2, 0, None)).astype(cdt)
    V = Vh.conj().T
    left = (W * c[None, :]) @ W.conj().T  # sqrt(I - B B^dagger)
    right = (V * c[None, :]) @ V.conj().T  # sqrt(I - B^dagger B)
    B = (W * s.astype(cdt)[None, :]) @ Vh  # re-assembled so the blocks share one SVD
    top = jnp.concatenate([B, left], axis=1)
    bottom = jnp.concatenate([right, -B.conj().T], axis=1)
    return jnp.concatenate([top, bottom], axis=0)


def prepare_unitary(amplitudes: Inexact[Array, " n"]) -> Inexact[Array, "n n"]:
    """A unitary $V$ with $V|0\\rangle$ = `amplitudes` (unit norm), by a Householder reflection.

    **Arguments:** `amplitudes` (unit norm, shape `(n,)`).

    **Returns:** the `(n, n)` unitary.
    """
    a = amplitudes / jnp.linalg.norm(amplitudes).astype(amplitudes.dtype)
    e0 = jnp.zeros_like(a).at[0].set(1)
    w = e0 - a
    ww = jnp.vdot(w, w)
    eye = jnp.eye(a.shape[0], dtype=a.dtype)
    safe = jnp.where(jnp.abs(ww) > 1e-30, ww, jnp.ones_like(ww))
    H = eye - 2 * jnp.outer(w, w.conj()) / safe
    return jnp.where(jnp.abs(ww) > 1e-30, H, eye)


class LCUCircuit(eqx.Module):
    """The LCU circuit for $T_K(hA)$ on $m + K + c$ qubits. Build with `lcu_circuit`.

    **Fields:**

    - `U`: block encoding of $A/\\alpha$ ($2D\\times 2D$); `V`: PREPARE ($2^c\\times 2^c$).
    - `coefficients`: $c_k$ padded with zeros to $2^c$; `coefficient_sum`: $s_K$.
    - `order` $K$, `system_qubits` $m$, `dim` $d$ (static).
    """

    U: Complex[Array, "D2 D2"]
    V: Inexact[Array, "C C"]
    coefficients: Float[Array, " C"]
    coefficient_sum: Float[Array, ""]
    alpha: Float[Array, ""]
    order: int = eqx.field(static=True)
    system_qubits: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)

    @property
    def coefficient_qubits(self) -> int:
        """Qubits $c$ of the coefficient register ($2^c \\ge K + 1$)."""
        return _clog2(self.order + 1)

    @property
    def num_qubits(self) -> int:
        """System + $K$ block-encoding ancillas + coefficient register."""
        return self.system_qubits + self.order + self.coefficient_qubits

    @property
    def state_shape(self) -> tuple[int, ...]:
        """Shape of the state-vector tensor (coefficient register, ancillas, system)."""
        return (1 << self.coefficient_qubits,) + (2,) * self.order + (1 << self.system_qubits,)

    def initial_state(self, y: Inexact[Array, " d"]) -> Complex[Array, "..."]:
        """$|0\\rangle_c|0^K\\rangle|y/\\|y\\|\\rangle$ (system padded to $2^m$)."""
        D = 1 << self.system_qubits
        ys = jnp.zeros(D, self.U.dtype).at[: self.dim].set(y.astype(self.U.dtype))
        ys = ys / jnp.linalg.norm(ys).astype(ys.dtype)
        psi = jnp.zeros(self.state_shape, self.U.dtype)
        return psi.at[(0,) * (self.order + 1)].set(ys)

    def prepare(self, psi, adjoint: bool = False):
        """$V$ (or $V^\\dagger$) on the coefficient register."""
        V = self.V.astype(psi.dtype)
        V = V.conj().T if adjoint else V
        return jnp.tensordot(V, psi, axes=(1, 0))

    def select(self, psi):
        """SELECT: on branch $k$ apply $U$ on ancillas $1..k$ (in that order)."""
        D = 1 << self.system_qubits
        U4 = self.U.reshape(2, D, 2, D)
        k = jnp.arange(psi.shape[0])
        for j in range(1, self.order + 1):
            # move ancilla j (axis j) next to the system axis, apply U on (ancilla, system)
            moved = jnp.moveaxis(psi, j, -2)
            applied = jnp.einsum("aibj,...bj->...ai", U4, moved)
            new = jnp.moveaxis(applied, -2, j)
            mask = (k >= j).reshape((-1,) + (1,) * (psi.ndim - 1))
            psi = jnp.where(mask, new, psi)
        return psi

    def __call__(self, psi):
        """$W\\psi = V^\\dagger\\,\\mathrm{SELECT}\\,V\\,\\psi$."""
        return self.prepare(self.select(self.prepare(psi)), adjoint=True)

    def to_dense(self, which: str = "W") -> Complex[Array, "N N"]:
        """Dense matrix of `"W"`, `"select"` or `"prepare"` (on all qubits; small only)."""
        fn = {"W": self.__call__, "select": self.select, "prepare": self.prepare}[which]
        N = math.prod(self.state_shape)
        if N > 4096:
            raise ValueError(f"to_dense is for <= 12 qubits (4096 amplitudes), got {N}.")
        eye = jnp.eye(N, dtype=self.U.dtype)
        cols = jax.vmap(lambda e: fn(e.reshape(self.state_shape)).reshape(-1))(eye)
        return cols.T


def lcu_circuit(
    A: Inexact[ArrayLike, "d1 d2"],
    h: Float[ArrayLike, ""],
    order: int,
    alpha: Float[ArrayLike, ""] | None = None,
) -> LCUCircuit:
    """Build the LCU circuit for $T_K(hA)$ (see the module docstring).

    **Arguments:**

    - `A`: $d \\times d$ generator (dense).
    - `h`: segment length.
    - `order`: $K \\ge 0$ (static: it fixes the number of ancillas).
    - `alpha`: block-encoding normalization (default $\\|A\\|_2$); must be $\\ge \\|A\\|_2$.

    **Returns:** an `LCUCircuit`. Raises before any work when it would exceed `MAX_QUBITS`.
    """
    A = jnp.asarray(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"`A` must be a square matrix, got shape {A.shape}.")
    check_int_range("order", order, 0)
    order = int(order)
    m = _clog2(A.shape[0])
    check_qubits(m + order + _clog2(order + 1), f"the LCU circuit (d = {A.shape[0]}, K = {order})")
    check_finite("A", A)
    if alpha is None:
        alpha = jnp.linalg.norm(A, ord=2)
    U = block_encoding(A, alpha)
    rdt = jnp.abs(A).dtype
    x = jnp.asarray(h).astype(rdt) * jnp.asarray(alpha).astype(rdt)
    c = taylor_coefficients(x, order, order)
    C = 1 << _clog2(order + 1)
    c = jnp.zeros(C, rdt).at[: order + 1].set(c)
    s = jnp.sum(c)
    V = prepare_unitary(jnp.sqrt(c / s))
    return LCUCircuit(
        U=U,
        V=V,
        coefficients=c,
        coefficient_sum=s,
        alpha=jnp.asarray(alpha).astype(rdt),
        order=order,
        system_qubits=m,
        dim=A.shape[0],
    )


class PostSelection(eqx.Module):
    """Outcome of running the LCU circuit and post-selecting ancillas on $|0\\rangle$.

    **Fields:**

    - `state`: normalized post-selected system state (first $d$ entries), complex.
    - `probability`: success probability; `final_state`: the full state vector tensor.
    """

    state: Complex[Array, " d"]
    probability: Float[Array, ""]
    final_state: Complex[Array, "..."]


def run_lcu(circuit: LCUCircuit, y: Inexact[Array, " d"]) -> PostSelection:
    """Simulate $W$ on $|0\\rangle|0^K\\rangle|y\\rangle$; post-select ancillas on $|0\\rangle$.

    **Arguments:** `circuit` (from `lcu_circuit`), `y` (the system vector, shape `(d,)`).

    **Returns:** a `PostSelection`.
    """
    y = jnp.asarray(y)
    if y.shape != (circuit.dim,):
        raise ValueError(f"`y` must have shape ({circuit.dim},), got {y.shape}.")
    check_finite("y", y)
    psi = _simulate(circuit, y)
    good = psi[(0,) * (circuit.order + 1)]
    prob = jnp.sum(jnp.abs(good) ** 2)
    return PostSelection(
        state=good[: circuit.dim] / jnp.sqrt(prob).astype(good.dtype),
        probability=prob,
        final_state=psi,
    )


@eqx.filter_jit
def _simulate(circuit: LCUCircuit, y):
    return circuit(circuit.initial_state(y))
