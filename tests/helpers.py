"""Independent oracles, random test problems and the method families shared by the tests.

The family lists (`METHODS`, `STATES`, `READOUTS`, `EVOLUTION_CASES`) are what the
transformation tests parametrize over, as lineax's `tests/helpers.py` lists its solvers: a new
method, state representation or read-out is tested under jit, vmap, grad and jvp by adding it
here.
"""

from __future__ import annotations

import functools
import itertools
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

import qsgd_jax as qj


class Midpoint(qj.AbstractEvolution):
    """A method defined outside the library, as the how-to shows (RK2 of the flow)."""

    name: ClassVar[str] = "midpoint"

    def step(self, op, blocks, state):
        eta, y = op.eta, op.truncate(blocks)
        half = tuple(b + 0.5 * eta * a for b, a in zip(y, op.generator(y), strict=True))
        return tuple(b + eta * a for b, a in zip(y, op.generator(half), strict=True)), state, {}


METHODS = [qj.Discrete(), qj.Euler(), qj.TruncatedTaylor(3, segments=2), qj.Expm(), Midpoint()]
STATES = [qj.DenseState(), qj.FactoredState(), qj.FactoredState(max_rank=2)]
READOUTS = [qj.readout.Exact(), qj.readout.Sampled(), qj.readout.GaussianSurrogate()]
# Every (method, state) pair the driver runs: each method on dense blocks, and the discrete
# power on each factored representation (the factored state's rank grows by 2 per step only for
# it).
EVOLUTION_CASES = [(m, STATES[0]) for m in METHODS] + [(qj.Discrete(), s) for s in STATES[1:]]


def family_id(value) -> str:
    """A readable pytest id of a method, state or read-out value."""
    if isinstance(value, tuple):
        return "-".join(family_id(v) for v in value)
    rank = getattr(value, "max_rank", None)
    return type(value).__name__ + (f"{rank}" if rank else "")


def tiny_problem(seed: int = 0, n: int = 40, d: int = 4, steps: int = 3):
    """A tanh regression on `d` features: loss, params, mask (5 of 8 weights active), batches
    (one per step, leading axis `steps`), float64."""
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(steps, n, d)))
    y = jnp.asarray(rng.normal(size=(steps, n)))
    params = {"w": jnp.asarray(rng.normal(size=(d, 2))) * 0.5}
    mask = {"w": jnp.asarray(np.arange(2 * d).reshape(d, 2) % 8 < 5)}

    def loss(p, batch):
        bx, by = batch
        return 0.5 * jnp.mean((jnp.tanh(bx @ p["w"]).sum(axis=1) - by) ** 2)

    params = jax.tree_util.tree_map(lambda a, m: jnp.where(m, a, 0.0), params, mask)
    return loss, params, mask, (x, y)


def random_map(n: int, seed: int, *, degree: int = 2, scale: float = 0.3):
    """Random dense (F0, F1, F2) in numpy float64, F2 with shape (n, n, n)."""
    rng = np.random.default_rng(seed)
    F0 = scale * rng.standard_normal(n)
    F1 = np.eye(n) + scale * rng.standard_normal((n, n))
    F2 = scale * rng.standard_normal((n, n, n)) if degree == 2 else None
    return F0, F1, F2


def kron_all(mats):
    return functools.reduce(np.kron, mats, np.ones((1, 1)))


def dense_discrete(F0, F1, F2, order):
    """Carleman matrix of the "discrete" form, assembled block by block with np.kron.

    B_{j,k} = sum over words w in {0,1,2}^j with sum(w) = k of F_{w_1} kron ... kron F_{w_j}.
    """
    n = F0.shape[0]
    Fs = {0: F0.reshape(n, 1), 1: F1, 2: None if F2 is None else F2.reshape(n, n * n)}
    sizes = [n**j for j in range(order + 1)]
    offs = np.concatenate([[0], np.cumsum(sizes)])
    M = np.zeros((offs[-1], offs[-1]))
    M[0, 0] = 1.0
    for j in range(1, order + 1):
        for w in itertools.product((0, 1, 2), repeat=j):
            k = sum(w)
            if k > order or (Fs[2] is None and 2 in w):
                continue
            M[offs[j] : offs[j + 1], offs[k] : offs[k + 1]] += kron_all([Fs[a] for a in w])
    return M


def dense_generator(f0, f1, f2, order):
    """PNAS Carleman matrix A: A_j^{j+m} = sum_i I^(i-1) kron f_{m+1} kron I^(j-i)."""
    n = f0.shape[0]
    fs = {-1: f0.reshape(n, 1), 0: f1, 1: None if f2 is None else f2.reshape(n, n * n)}
    sizes = [n**j for j in range(order + 1)]
    offs = np.concatenate([[0], np.cumsum(sizes)])
    A = np.zeros((offs[-1], offs[-1]))
    eye = np.eye(n)
    for j in range(1, order + 1):
        for m in (-1, 0, 1):
            k = j + m
            if k > order or fs[m] is None:
                continue
            blk = sum(
                kron_all([eye] * (i - 1) + [fs[m]] + [eye] * (j - i)) for i in range(1, j + 1)
            )
            A[offs[j] : offs[j + 1], offs[k] : offs[k + 1]] += blk
    return A
