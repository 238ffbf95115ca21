"""Polynomial vector fields $f(u) = f_0 + f_1 u + f_2 (u \\otimes u)$: dense and matrix-free.

A field is the right-hand side of the gradient flow $du/d\\tau = f(u)$ of a Taylor model of the
loss around the upload point $\\bar\\theta$ (`docs/math/taylor.md`): $f_0 = -g$, $f_1 = -H$,
$f_2 = -\\tfrac12 \\mathcal{T}_{(1)}$. The GD map with learning rate $\\eta$ is one forward-Euler
step of it, see `PolynomialMap`.

Fields only expose the three actions the Carleman engine needs, so dense and matrix-free
representations are interchangeable:

- `f0()`: the constant term, shape `(n,)`;
- `linear_axis(z, axis)`: $f_1$ applied along one mode of a tensor;
- `quadratic_axes(z, axis)`: $f_2$ contracting modes `axis, axis+1` into one output mode.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Inexact

from ._errors import check_memory


class AbstractField(eqx.Module):
    """The interface of a polynomial vector field $f(u) = f_0 + f_1 u + f_2 (u \\otimes u)$.

    A field on $\\mathbb{R}^n$ of degree 1 ($f_2 = 0$) or 2. Subclasses implement `n`,
    `degree`, `symmetric`, `f0`, `linear` and `quadratic`; the mode-wise actions the Carleman
    engine uses (`linear_axis`, `quadratic_axes`, `quadratic_pairs`) and `to_dense` have generic
    implementations that a subclass may override with cheaper ones.

    **Fields:** none of its own (an abstract base class: see `DenseField` and `LossField`).
    """

    @property
    @abc.abstractmethod
    def n(self) -> int:
        """Dimension $n$ (the active-set size $s$ for loss-derived fields)."""

    @property
    @abc.abstractmethod
    def degree(self) -> int:
        """1 (affine, $f_2 = 0$) or 2."""

    @property
    @abc.abstractmethod
    def symmetric(self) -> bool:
        """Structural tag: $f_1$ is symmetric (true for every loss-derived field)."""

    @abc.abstractmethod
    def f0(self) -> Inexact[Array, " n"]:
        """The constant term $f_0$, shape `(n,)`."""

    @abc.abstractmethod
    def linear(self, v: Inexact[Array, " n"]) -> Inexact[Array, " n"]:
        """The linear term $f_1 v$.

        **Arguments:**

        - `v`: a vector, shape `(n,)`.

        **Returns:** $f_1 v$, shape `(n,)`.
        """

    @abc.abstractmethod
    def quadratic(self, x: Inexact[Array, "n n"]) -> Inexact[Array, " n"]:
        """The quadratic term on a matrix: $f_2\\,\\mathrm{vec}(X) = \\sum_{ab} (f_2)_{iab} X_{ab}$.

        **Arguments:**

        - `x`: a matrix $X$, shape `(n, n)`.

        **Returns:** $f_2\\,\\mathrm{vec}(X)$, shape `(n,)`.
        """

    def quadratic_uu(self, u: Inexact[Array, " n"]) -> Inexact[Array, " n"]:
        """The quadratic term on a point: $f_2 (u \\otimes u)$.

        **Arguments:**

        - `u`: a vector, shape `(n,)`.

        **Returns:** $f_2 (u \\otimes u)$, shape `(n,)`.
        """
        return self.quadratic(jnp.outer(u, u))

    def quadratic_pairs(
        self, a: Inexact[Array, "n r"], b: Inexact[Array, "n r"]
    ) -> Inexact[Array, " n"]:
        """The quadratic term on a factored matrix: $f_2\\,\\mathrm{vec}(A B^\\top)$.

        This is how the factored order-2 Carleman state applies $f_2$ without forming an
        $n \\times n$ matrix; subclasses override it with a cheaper contraction.

        **Arguments:**

        - `a`, `b`: the factors $A, B$, shape `(n, r)`; $a_i, b_i$ are their columns.

        **Returns:** $\\sum_i f_2 (a_i \\otimes b_i)$, shape `(n,)`.
        """
        return jnp.sum(jax.vmap(lambda x, y: self.quadratic(jnp.outer(x, y)), 1)(a, b), axis=0)

    def __call__(self, u: Inexact[Array, " n"]) -> Inexact[Array, " n"]:
        """Evaluate the field: $f(u) = f_0 + f_1 u + f_2(u \\otimes u)$.

        **Arguments:**

        - `u`: a point, shape `(n,)`.

        **Returns:** $f(u)$, shape `(n,)`.
        """
        out = self.f0() + self.linear(u)
        if self.degree == 2:
            out = out + self.quadratic_uu(u)
        return out

    def linear_axis(self, z: Inexact[Array, "..."], axis: int) -> Inexact[Array, "..."]:
        """Apply $f_1$ along one mode of a tensor (a Carleman block).

        **Arguments:**

        - `z`: a tensor of shape `(n,) * k`.
        - `axis`: the mode $0 \\le$ `axis` $< k$ that $f_1$ acts on.

        **Returns:** $z$ with $f_1$ applied to mode `axis`, shape `(n,) * k`.
        """
        zm = jnp.moveaxis(z, axis, 0)
        flat = zm.reshape(self.n, -1)
        out = jax.vmap(self.linear, in_axes=1, out_axes=1)(flat)
        return jnp.moveaxis(out.reshape(zm.shape), 0, axis)

    def quadratic_axes(self, z: Inexact[Array, "..."], axis: int) -> Inexact[Array, "..."]:
        """Contract two adjacent modes of a tensor with $f_2$ (a Carleman block).

        **Arguments:**

        - `z`: a tensor of shape `(n,) * k`, $k \\ge 2$.
        - `axis`: the first of the two contracted modes `axis, axis + 1`.

        **Returns:** the contraction, shape `(n,) * (k - 1)`, its new mode at `axis`.
        """
        zm = jnp.moveaxis(z, (axis, axis + 1), (0, 1))
        flat = zm.reshape(self.n, self.n, -1)
        out = jax.vmap(self.quadratic, in_axes=2, out_axes=1)(flat)
        return jnp.moveaxis(out.reshape(zm.shape[1:]), 0, axis)

    def to_dense(self, *, memory_limit: int | None = None) -> DenseField:
        """Materialize $f_0, f_1, f_2$ as a `DenseField` (small $n$ only: $f_2$ has $n^3$ entries).

        The memory is checked first: $f_2$ and one $n \\times n \\times n$ slice batch of the
        basis $e_a e_b^T$, never the whole $n^4$ basis.

        **Arguments:**

        - `memory_limit`: bytes allowed (default: `default_memory_limit()`); above it,
          `MemoryLimitError` is raised before anything is allocated.

        **Returns:** a `DenseField` with the same $f_0, f_1, f_2$ and `symmetric` tag.
        """
        n, itemsize = self.n, jnp.dtype(self.f0().dtype).itemsize
        need = itemsize * (3 * n**2 + (2 * n**3 if self.degree == 2 else 0))
        check_memory(
            f"Materializing a degree-{self.degree} field with n = {n} (f2 has n^3 entries)",
            need,
            memory_limit,
        )
        return self._to_dense()

    @eqx.filter_jit
    def _to_dense(self) -> DenseField:
        eye = jnp.eye(self.n, dtype=self.f0().dtype)
        f1 = jax.vmap(self.linear, in_axes=1, out_axes=1)(eye)
        f2 = None
        if self.degree == 2:
            # one row a of the basis at a time: X_b = e_a e_b^T for all b, shape (n, n, n)
            def slab(e_a):
                return jax.vmap(lambda e_b: self.quadratic(jnp.outer(e_a, e_b)))(eye)  # [b, i]

            cols = jax.lax.map(slab, eye)  # [a, b, i]
            f2 = jnp.moveaxis(cols, 2, 0)
        return DenseField(self.f0(), f1, f2, symmetric=self.symmetric)


class DenseField(AbstractField):
    """A polynomial vector field given by explicit arrays $f_0, f_1, f_2$.

    **Arguments:**

    - `f0`: shape `(n,)` (stored as the field `f0_`; `f0()` returns it).
    - `f1`: shape `(n, n)`.
    - `f2`: shape `(n, n, n)` with $(f_2)_{iab}$ the coefficient of $u_a u_b$ in component $i$
      (the mode-1 unfolding reshaped), or `None` for degree 1.
    - `symmetric`: structural tag for $f_1$.
    """

    f0_: Inexact[Array, " n"]
    f1: Inexact[Array, "n n"]
    f2: Inexact[Array, "n n n"] | None
    symmetric_: bool = eqx.field(static=True)

    def __init__(self, f0, f1, f2=None, *, symmetric: bool = False):
        self.f0_ = f0
        self.f1 = f1
        self.f2 = f2
        self.symmetric_ = symmetric

    @property
    def n(self) -> int:
        return self.f0_.shape[-1]

    @property
    def degree(self) -> int:
        return 1 if self.f2 is None else 2

    @property
    def symmetric(self) -> bool:
        return self.symmetric_

    def f0(self):
        return self.f0_

    def linear(self, v):
        return self.f1 @ v

    def quadratic(self, x):
        return jnp.einsum("iab,ab->i", self.f2, x)

    def quadratic_uu(self, u):
        return jnp.einsum("iab,a,b->i", self.f2, u, u)

    def quadratic_pairs(self, a, b):
        return jnp.einsum("iab,ar,br->i", self.f2, a, b)

    # Each action is one matmul on a 2-D or 3-D view of the tensor: modes before and after
    # the contracted ones are folded into one axis each (see `_along`). The Carleman matvec
    # is nothing but these products, so their layout is its speed.
    def linear_axis(self, z, axis):
        return _along(self.f1, z, axis, self.n, 1).reshape(z.shape)

    def quadratic_axes(self, z, axis):
        n = self.n
        out = _along(self.f2.reshape(n, n * n), z, axis, n, 2)
        return out.reshape(z.shape[:axis] + (n,) + z.shape[axis + 2 :])

    def to_dense(self, *, memory_limit: int | None = None) -> DenseField:
        return self  # already dense: nothing is allocated


def _along(mat, z, axis: int, n: int, modes: int):
    """`mat` of shape `(m, n**modes)` contracted with modes `axis .. axis+modes-1` of `z`.

    Returns a 3-D array `(n**axis, m, rest)`. The first and last modes are plain GEMMs on
    2-D views (no copies). A middle mode costs one transposed copy of the input (the GEMM
    wants the contracted mode last); its output comes out as `(before, rest, m)` and the
    swap back is not materialized: XLA folds it into whatever reads the result (the sum of
    the Carleman terms).
    """
    before = n**axis
    z3 = z.reshape(before, n**modes, -1)
    if before == 1:
        return (mat @ z3[0])[None]
    if z3.shape[2] == 1:
        return (z3[:, :, 0] @ mat.T)[:, :, None]
    out = jax.lax.dot_general(z3, mat, (((1,), (1,)), ((), ())))  # (before, rest, m)
    return jnp.swapaxes(out, 1, 2)
