"""Independent oracles and random test problems shared by the tests."""

from __future__ import annotations

import functools
import itertools

import numpy as np


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
