"""Carleman embedding of a polynomial GD map, applied matrix-free on tensor blocks.

The Carleman state is $Y = (y_0, y_1, \\dots, y_{N_{\\max}})$ with $y_0 \\equiv 1$ and $y_j$ a
tensor of shape `(n,)*j`; the exact lift of $u$ is $y_j = u^{\\otimes j}$ (row-major order, so
the first factor of a Kronecker product acts on the first mode).

The operator applies two linear maps of the state (see the Carleman math page); an evolution
method (`Discrete()`, `Euler()`, ...), passed to the driver beside the operator, decides which
one it uses and how. The discrete map, the exact lift of
the GD map $F$ truncated at order $N$,

$$y_j \\leftarrow \\sum_{k=0}^{\\min(2j, N)} B_{j,k}\\, y_k,\\qquad
B_{j,k} = \\sum_{w \\in \\{0,1,2\\}^j,\\ \\sum w = k} F_{w_1} \\otimes \\dots \\otimes F_{w_j}.$$

and the generator (PNAS), the continuous Carleman matrix $A$ with blocks
$A_j^{j+m} = \\sum_{i=1}^{j} I^{\\otimes(i-1)} \\otimes f_{m+1} \\otimes I^{\\otimes(j-i)}$
($m = -1, 0, 1$).

Neither is ever assembled: words are applied mode by mode, sharing work through a dynamic
programme over (outputs produced, inputs left) and inserting the rank-one $F_0$ factors last.
The truncation order $N$ is a traced value: blocks above $N$ are masked out of a state sized
for the static `max_order`, so one compiled program serves every $N \\le N_{\\max}$.
"""

from __future__ import annotations

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jax.experimental import sparse as jsparse
from jaxtyping import Array, Bool, Inexact, Int

from ._errors import check_int_range, check_memory, is_concrete
from ._polynomial import PolynomialMap

Blocks = tuple[Inexact[Array, "..."], ...]
"""A Carleman state as blocks $(y_0, y_1, \\dots, y_{N_{\\max}})$, $y_j$ of shape `(n,)*j`."""

# Live intermediates of a matvec, as a multiple of the state size (DP tables, F0 insertions).
_WORKSPACE = 4


def carleman_dim(n: int, order: int) -> int:
    """$\\sum_{j=0}^{N} n^j$, the dimension of the order-$N$ Carleman state.

    **Arguments:** `n` (variables), `order` ($N$).

    **Returns:** the dimension.
    """
    return sum(n**j for j in range(order + 1))


def carleman_bytes(n: int, order: int, itemsize: int = 4) -> int:
    """Estimated peak bytes of one matvec: state, result and the working tensors.

    **Arguments:** `n`, `order` ($N$), `itemsize` (bytes per entry).

    **Returns:** the byte count.
    """
    return (2 + _WORKSPACE) * carleman_dim(n, order) * itemsize


def _insert(z, vec, positions):
    """Insert `vec` as new modes at `positions` (increasing) of tensor `z`."""
    n = vec.shape[0]
    for p in positions:
        z = jnp.expand_dims(z, p)
        shape = [1] * z.ndim
        shape[p] = n
        z = z * vec.reshape(shape)
    return z


class CarlemanOperator(eqx.Module):
    """The truncated Carleman operator of a `PolynomialMap` (build it with `carleman`).

    **Fields:** `poly` (the map), `order` (traced truncation order $N$), `max_order` (static
    $N_{\\max}$, the size of the state).

    `discrete_map(Y)` applies $B$, `generator(Y)` applies $A$; both keep $y_0$ fixed and zero
    every block above the order. The evolution method is not part of the operator: it is
    passed beside it (`evolve(op, Y0, T, method=Euler())`, `method.apply(op, Y)`).
    """

    poly: PolynomialMap
    order: Int[Array, ""]
    max_order: int = eqx.field(static=True)

    @property
    def n(self) -> int:
        """Number of variables $n$ of the map."""
        return self.poly.n

    @property
    def eta(self):
        """The learning rate $\\eta$ of the map (the flow time of one GD step)."""
        return self.poly.eta

    @property
    def dtype(self):
        """The map's dtype."""
        return self.poly.dtype

    @property
    def dim(self) -> int:
        """Dimension of the state at `max_order` (the traced order uses a prefix of it)."""
        return carleman_dim(self.n, self.max_order)

    @property
    def memory_bytes(self) -> int:
        """Estimated peak bytes of one matvec."""
        return carleman_bytes(self.n, self.max_order, jnp.dtype(self.dtype).itemsize)

    # ---- states -------------------------------------------------------------------------
    def block_mask(self) -> Bool[Array, " N1"]:
        """`mask[j]` is true for the blocks $j \\le N$ kept by the truncation."""
        return jnp.arange(self.max_order + 1, dtype=self.order.dtype) <= self.order

    def truncate(self, blocks: Blocks) -> Blocks:
        """Zero every block above the order $N$."""
        keep = self.block_mask()
        return tuple(jnp.where(keep[j], y, jnp.zeros_like(y)) for j, y in enumerate(blocks))

    def lift(self, u: Inexact[Array, " n"]) -> Blocks:
        """$(1, u, u \\otimes u, \\dots)$, truncated at the order."""
        if u.shape != (self.n,):
            raise ValueError(f"`u` must have shape ({self.n},), got {u.shape}.")
        blocks = [jnp.ones((), u.dtype)]
        for _ in range(self.max_order):
            blocks.append(jnp.multiply.outer(blocks[-1], u))
        return self.truncate(tuple(blocks))

    def project(self, blocks: Blocks) -> Inexact[Array, " n"]:
        """The degree-1 block $y_1$ (the estimate of $u$)."""
        return blocks[1]

    def zeros(self) -> Blocks:
        """The all-zero state at `max_order` (note: $y_0 = 0$, not the lift of anything)."""
        return tuple(jnp.zeros((self.n,) * j, self.dtype) for j in range(self.max_order + 1))

    def flatten(self, blocks: Blocks) -> Inexact[Array, " dim"]:
        """The blocks as one flat vector of length `dim` (row-major, $y_0$ first)."""
        return jnp.concatenate([y.reshape(-1) for y in blocks])

    def unflatten(self, v: Inexact[Array, " dim"]) -> Blocks:
        """The inverse of `flatten`."""
        out, start = [], 0
        for j in range(self.max_order + 1):
            size = self.n**j
            out.append(v[start : start + size].reshape((self.n,) * j))
            start += size
        return tuple(out)

    # ---- actions ------------------------------------------------------------------------
    def discrete_map(self, blocks: Blocks) -> Blocks:
        """$B Y$, the exact lift of the GD map truncated at the order."""
        return self.truncate(self._discrete(self.truncate(blocks)))

    def generator(self, blocks: Blocks) -> Blocks:
        """$A Y$, the continuous Carleman matrix of the gradient flow, truncated."""
        return self._generator(blocks)

    def _discrete(self, y: Blocks) -> Blocks:
        big_n, p = self.max_order, self.poly
        # z[(i, r)]: sum over {1,2}-words of the first i output modes applied to the inputs,
        # with r input modes not yet consumed; layout (outputs..., remaining inputs...).
        z = {(0, k): y[k] for k in range(1, big_n + 1)}
        for i in range(big_n):
            for r in range(big_n - i):
                terms = []
                if (i, r + 1) in z:
                    terms.append(p.linear_axis(z[(i, r + 1)], i))
                if self.poly.degree == 2 and (i, r + 2) in z:
                    terms.append(p.quadratic_axes(z[(i, r + 2)], i))
                if terms:
                    z[(i + 1, r)] = sum(terms[1:], terms[0])
        w = [y[0]] + [z[(j, 0)] for j in range(1, big_n + 1)]
        f0 = p.f0_vec()
        out = [y[0]]
        for j in range(1, big_n + 1):
            acc = jnp.zeros((self.n,) * j, self.dtype)
            for m in range(j + 1):
                for positions in itertools.combinations(range(j), m):
                    acc = acc + _insert(w[j - m], f0, positions)
            out.append(acc)
        return tuple(out)

    def _generator(self, y: Blocks) -> Blocks:
        # The truncation masks the *products* (a where on each term, fused by XLA into the one
        # pass that sums a block's terms) rather than the input blocks: a masked input would be
        # materialized as a copy for every matmul that reads it.
        big_n, f = self.max_order, self.poly.field
        f0 = f.f0()
        keep = self.block_mask()

        def kept(k, term):
            return jnp.where(keep[k], term, jnp.zeros_like(term))

        out = [jnp.zeros_like(y[0])]
        for j in range(1, big_n + 1):
            terms = [kept(j, f.linear_axis(y[j], i)) for i in range(j)]
            terms += [kept(j - 1, _insert(y[j - 1], f0, (i,))) for i in range(j)]
            if f.degree == 2 and j < big_n:
                terms += [kept(j + 1, f.quadratic_axes(y[j + 1], i)) for i in range(j)]
            out.append(kept(j, sum(terms[1:], terms[0])))
        return tuple(out)

    # ---- flat and exported views ---------------------------------------------------------
    def flat_generator(self, v: Inexact[Array, " dim"]) -> Inexact[Array, " dim"]:
        """`generator` on flat vectors."""
        return self.flatten(self.generator(self.unflatten(v)))

    def flat_discrete(self, v: Inexact[Array, " dim"]) -> Inexact[Array, " dim"]:
        """`discrete_map` on flat vectors."""
        return self.flatten(self.discrete_map(self.unflatten(v)))

    def as_lineax(self, *, which: str = "discrete") -> lx.FunctionLinearOperator:
        """$B$ (`which="discrete"`) or $A$ (`"generator"`) on flat vectors, as a lineax operator.

        **Arguments:** `which` (the map).

        **Returns:** a `lineax.FunctionLinearOperator`.
        """
        spec = jax.ShapeDtypeStruct((self.dim,), self.dtype)
        return lx.FunctionLinearOperator(_flat(self, which), spec)

    def to_dense(self, *, which: str = "discrete", memory_limit=None):
        """The `(dim, dim)` matrix of $B$ (`which="discrete"`) or of $A$ (`"generator"`); the
        matrix of a method's per-step map is `method.matrix(op)`.

        **Arguments:** `which` (the map), `memory_limit` (bytes allowed; small sizes only).

        **Returns:** the dense matrix.
        """
        check_memory(
            f"A dense Carleman matrix of dimension {self.dim}", 8 * self.dim**2, memory_limit
        )
        return _dense(self, which)

    def to_bcoo(self, *, which: str = "discrete", memory_limit=None):
        """The same matrix as a `jax.experimental.sparse.BCOO` (small sizes only).

        **Arguments:** as `to_dense`.

        **Returns:** a `BCOO` matrix.
        """
        return jsparse.BCOO.fromdense(self.to_dense(which=which, memory_limit=memory_limit))


def _flat(op: CarlemanOperator, which: str):
    maps = {"discrete": op.flat_discrete, "generator": op.flat_generator}
    if which not in maps:
        raise ValueError(f"`which` must be one of {tuple(maps)}, got {which!r}.")
    return maps[which]


@eqx.filter_jit
def _dense(op: CarlemanOperator, which: str):
    return jax.vmap(_flat(op, which), in_axes=1, out_axes=1)(jnp.eye(op.dim, dtype=op.dtype))


def carleman(
    poly: PolynomialMap,
    order,
    *,
    max_order: int | None = None,
    memory_limit: int | None = None,
) -> CarlemanOperator:
    """The order-$N$ Carleman linearization of a GD map.

    **Arguments:**

    - `poly`: the `PolynomialMap` ($F_0, F_1, F_2$ and $\\eta$).
    - `order`: truncation order $N \\ge 1$; may be traced when `max_order` is given.
    - `max_order`: static $N_{\\max}$ fixing the state size; default `order` (then `order` must
      be concrete).
    - `memory_limit`: bytes allowed for one matvec's working set (default: a fraction of the
      available memory, see `qsgd_jax._errors.default_memory_limit`).

    **Returns:** a `CarlemanOperator`. Raises before allocating anything when the order is out
    of range or the state would not fit.
    """
    if max_order is None:
        if not is_concrete(order):
            raise ValueError(
                "`order` is traced, so pass a static `max_order` (the largest order the compiled "
                "program must support)."
            )
        check_int_range("order", order, 1)
        max_order = int(order)
    if not isinstance(max_order, int) or max_order < 1:
        raise ValueError(f"`max_order` must be an integer >= 1, got {max_order!r}.")
    check_int_range("order", order, 1, max_order)
    n = poly.n
    itemsize = jnp.dtype(poly.dtype).itemsize
    check_memory(
        f"A Carleman state of order {max_order} over n = {n} "
        f"(dimension {carleman_dim(n, max_order):,})",
        carleman_bytes(n, max_order, itemsize),
        memory_limit,
    )
    order = jnp.asarray(order, dtype=jnp.int32)
    if not is_concrete(order):
        order = eqx.error_if(
            order, (order < 1) | (order > max_order), f"`order` must lie in [1, {max_order}]."
        )
    return CarlemanOperator(poly, order, max_order)
