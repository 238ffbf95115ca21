r"""Runs of a window that the read-out costs: tomography samples and norm estimation.

Each sample of the downloaded state is one full run of the window (QLSA × amplification
rounds); the norm $\lVert y_1\rVert$ costs amplitude-estimation runs on top (DESIGN §2,
"Read-out").
"""

from __future__ import annotations

import math

from .._errors import check_int_range, check_number
from .._readout import AmplitudeEstimation, interference_rounds, shots_for_error


def _check_eps(name: str, eps: float) -> None:
    check_number(name, eps, low=0, high=1, low_open=True, high_open=True)


def tomography_samples(eps: float, s: int, delta: float = 0.05) -> tuple[int, int]:
    r"""Samples (window runs) for an $\ell_2$ read-out error $\varepsilon$ of a real
    $s$-dimensional state: the worst-case bound and the typical count.

    Both count the computational-basis round and the interference (sign) round
    (`qsgd_jax.readout.interference_rounds`): $2N$ samples for $N$ shots per round.

    - bound (w.p. $\ge 1 - \delta$, `qsgd_jax.readout.shots_for_error`):
      $N = \lceil 25\, s \ln(6s/\delta)/\varepsilon^2\rceil$;
    - typical: the $\ell_2$ error of a spread-out state is $\sqrt{(s-1)/(4N)}$, so
      $N = \lceil (s - 1)/(4\varepsilon^2)\rceil$ (at least 1).

    **Arguments:**

    - `eps`: $\varepsilon \in (0, 1)$.
    - `s`: the dimension $s \ge 1$ (active parameters).
    - `delta`: failure probability $\delta \in (0, 1)$ of the bound.

    **Returns:** `(bound, typical)`, total samples (ints).
    """
    _check_eps("eps", eps)
    check_int_range("s", s, 1)
    _check_eps("delta", delta)
    rounds = interference_rounds(False)
    bound = rounds * shots_for_error(float(eps), float(delta), int(s), "l2")
    typical = rounds * max(1, math.ceil((int(s) - 1) / (4 * float(eps) ** 2)))
    return bound, typical


def norm_estimation_queries(probability: float, rel_error: float) -> tuple[int, int]:
    r"""Amplitude estimation of $a$ = `probability` to relative norm error $\varepsilon_n$.

    $\lVert y_1\rVert = c\sqrt a$, so a relative error $\varepsilon_n$ of the norm needs
    $|\tilde a - a| \le 2a\varepsilon_n$. With the Brassard–Høyer–Mosca–Tapp bound
    $|\tilde a - a| \le 2\pi\sqrt{a(1-a)}/M + \pi^2/M^2$ (met w.p. $\ge 8/\pi^2$,
    `qsgd_jax.readout.ae_error_bound`), the smallest $M$ is $\lceil\pi/z\rceil$ with
    $z = \sqrt{a(1-a) + 2a\varepsilon_n} - \sqrt{a(1-a)}$; it costs $2(M - 1) + 1$ runs of the
    (unamplified) window (`qsgd_jax.readout.AmplitudeEstimation`).

    **Arguments:**

    - `probability`: $a \in (0, 1]$ (the window's target probability $P$).
    - `rel_error`: $\varepsilon_n \in (0, 1)$.

    **Returns:** `(M, runs)`.
    """
    check_number("probability", probability, low=0, high=1, low_open=True)
    _check_eps("rel_error", rel_error)
    a, e = float(probability), float(rel_error)
    spread = math.sqrt(a * (1 - a))
    z = math.sqrt(a * (1 - a) + 2 * a * e) - spread
    m = max(1, math.ceil(math.pi / z))
    return m, AmplitudeEstimation(num_queries=m).runs
