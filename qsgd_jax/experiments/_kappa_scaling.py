"""The paper's two regimes of the history-state system: $\\kappa \\sim T$ (dissipative) vs
$\\kappa \\sim T^2$ (almost dissipative), a study built on `condition_number`."""

from __future__ import annotations

import math
from typing import Literal

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .._condition import affine_gd_map, condition_number
from .._history import history_system


class KappaScaling(eqx.Module):
    """$\\kappa(T)$ for a dissipative and an almost-dissipative example, with fitted exponents
    ($\\kappa \\propto T^{a}$ by least squares in log-log).

    **Fields:** `T`; `kappa_dissipative`, `kappa_almost` ($\\kappa$ at each $T$);
    `exponent_dissipative`, `exponent_almost` (the fitted $a$).
    """

    T: Int[Array, " m"]
    kappa_dissipative: Float[Array, " m"]
    kappa_almost: Float[Array, " m"]
    exponent_dissipative: float = eqx.field(static=True)
    exponent_almost: float = eqx.field(static=True)


def kappa_scaling(
    T_values=(25, 50, 100, 200),
    *,
    n: int = 6,
    eta: float = 0.1,
    drive: float = 1.0,
    idle: Literal["T"] | int = 0,
    method: Literal["dense", "lanczos"] = "lanczos",
    num_iters: int = 64,
    seed: int = 0,
) -> KappaScaling:
    """$\\kappa(L)$ vs $T$ for the affine GD map of an $n$-parameter quadratic, two regimes.

    Dissipative: $H$ with eigenvalues evenly in $[0.5, 3]$ (so $0 < \\eta\\lambda < 2$), random
    $g$. Almost dissipative: the smallest eigenvalue set to $0$ and $g$ given a component
    `drive` along that flat direction, so $u$ drifts linearly and $\\|M^k\\| \\sim k$.
    State $(1, u)$; `idle`: $p$ idle steps, 0 by default (the article's Eq. 6, no padding) or
    `"T"` for $p = T$ (the padded system). Both regimes keep their exponents either way
    (measured, $n = 6$, $T = 25 \\dots 200$, dense SVD: 1.10 vs 1.77 at $p = 0$, 1.09 vs 1.82 at
    $p = T$); padding roughly doubles $\\kappa$.

    **Arguments:**

    - `T_values`: the window lengths $T$.
    - `n`: parameters of the quadratic.
    - `eta`: the learning rate $\\eta$.
    - `drive`: the almost-dissipative example's gradient component along the flat direction.
    - `idle`: idle steps $p$ (an int $\\ge 0$) or `"T"`.
    - `method`, `num_iters`: how $\\kappa$ is computed (`condition_number`).
    - `seed`: seed of the eigenbasis and the gradient.

    **Returns:** a `KappaScaling` with both curves and their fitted exponents.
    """
    if not (idle == "T" or (isinstance(idle, int | np.integer) and idle >= 0)):
        raise ValueError(f"`idle` must be an int >= 0 or 'T' (p = T), got {idle!r}.")
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = np.linspace(0.5, 3.0, n)
    g = rng.normal(size=n) / math.sqrt(n)
    H_d = (Q * lam) @ Q.T
    lam_a = lam.copy()
    lam_a[0] = 0.0
    H_a = (Q * lam_a) @ Q.T
    g_a = g - (Q[:, 0] @ g) * Q[:, 0] + drive * Q[:, 0]
    out = {}
    for name, (gg, HH) in {"d": (g, H_d), "a": (g_a, H_a)}.items():
        M = affine_gd_map(jnp.asarray(gg), jnp.asarray(HH), eta)
        ks = []
        for T in T_values:
            p = int(T) if idle == "T" else int(idle)
            L = history_system(M, int(T), p)
            ks.append(float(condition_number(L, method=method, num_iters=num_iters).kappa))
        out[name] = np.asarray(ks)
    logT = np.log(np.asarray(T_values, float))
    fit = lambda k: float(np.polyfit(logT, np.log(k), 1)[0])  # noqa: E731
    return KappaScaling(
        T=jnp.asarray(T_values),
        kappa_dissipative=jnp.asarray(out["d"]),
        kappa_almost=jnp.asarray(out["a"]),
        exponent_dissipative=fit(out["d"]),
        exponent_almost=fit(out["a"]),
    )
