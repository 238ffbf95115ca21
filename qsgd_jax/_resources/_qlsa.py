r"""Query counts of quantum linear-system algorithms (QLSAs): one small class per algorithm.

A QLSA prepares $L^{-1}b/\lVert L^{-1}b\rVert$ to error $\varepsilon$ from a block encoding of
$L/\alpha$; $\kappa$ is that of $L/\alpha$, i.e. $\alpha/\sigma_{\min}(L)$ ($= \kappa(L)$ for
the norm-based normalization $\alpha = \lVert L\rVert$). Each class holds its constants as fields
and says whether its count is a published worst case (`BOUND`), a published measured constant
(`ESTIMATE`) or a published scaling with an assumed constant (`ASSUMPTION`).
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import equinox as eqx

from .._errors import InvalidArgumentError, check_positive
from ._quantity import Provenance


def _check_kappa_eps(kappa: float, eps: float) -> None:
    check_positive("kappa", kappa)
    if float(kappa) < 1:
        raise InvalidArgumentError(f"`kappa` must be >= 1 (a condition number), got {kappa!r}.")
    check_positive("eps", eps)
    if float(eps) >= 1:
        raise InvalidArgumentError(f"`eps` (QLSA precision) must lie in (0, 1), got {eps!r}.")


class AbstractQLSA(eqx.Module):
    """A quantum linear-system algorithm: its query count, label, formula and citation.

    **Class attributes:** `name` (short, for tables).
    """

    name: eqx.AbstractClassVar[str]

    @abc.abstractmethod
    def queries(self, kappa: float, eps: float) -> float:
        """Queries to the block encoding of $L/\\alpha$ for condition number `kappa` $\\ge 1$ and
        precision `eps` $\\in (0, 1)$ (checked)."""

    @property
    @abc.abstractmethod
    def provenance(self) -> Provenance:
        """`BOUND`, `ESTIMATE` or `ASSUMPTION` (see the module docstring)."""

    @property
    @abc.abstractmethod
    def formula(self) -> str:
        """The count in symbols."""

    @property
    @abc.abstractmethod
    def citation(self) -> str:
        """The published source."""


class HHL(AbstractQLSA):
    r"""Harrow–Hassidim–Lloyd: $C\kappa^2/\varepsilon$ queries.

    Phase estimation to precision $\varepsilon/\kappa$ costs $O(\kappa/\varepsilon)$ queries and
    amplitude amplification of the $O(1/\kappa)$ success amplitude $O(\kappa)$ repetitions.
    No constant is published: $C$ is an assumption.

    **Arguments:** `constant` $C > 0$ (default 1).
    """

    constant: float = 1.0
    name: ClassVar[str] = "HHL"

    def __check_init__(self):
        check_positive("constant", self.constant)

    def queries(self, kappa: float, eps: float) -> float:
        _check_kappa_eps(kappa, eps)
        return float(self.constant) * float(kappa) ** 2 / float(eps)

    @property
    def provenance(self) -> Provenance:
        return Provenance.ASSUMPTION

    @property
    def formula(self) -> str:
        return f"C κ²/ε, C = {self.constant:g}"

    @property
    def citation(self) -> str:
        return (
            "Harrow, Hassidim, Lloyd, PRL 103, 150502 (2009), arXiv:0811.3171 (leading order; "
            "the constant C is assumed)"
        )


class ChildsKothariSomma(AbstractQLSA):
    r"""Childs–Kothari–Somma, the Chebyshev (LCU) variant with variable-time amplitude
    amplification: $C\kappa\ln(\kappa/\varepsilon)^q$ queries.

    The paper proves $O(\kappa\,\mathrm{polylog}(\kappa/\varepsilon))$ without an explicit
    constant; $q$ (default 2) and $C$ are assumptions.

    **Arguments:** `constant` $C > 0$ (1); `log_power` $q \ge 0$ (2).
    """

    constant: float = 1.0
    log_power: float = 2.0
    name: ClassVar[str] = "CKS"

    def __check_init__(self):
        check_positive("constant", self.constant)
        check_positive("log_power", self.log_power, strict=False)

    def queries(self, kappa: float, eps: float) -> float:
        _check_kappa_eps(kappa, eps)
        k = float(kappa)
        return float(self.constant) * k * math.log(k / float(eps)) ** float(self.log_power)

    @property
    def provenance(self) -> Provenance:
        return Provenance.ASSUMPTION

    @property
    def formula(self) -> str:
        return f"C κ ln(κ/ε)^q, C = {self.constant:g}, q = {self.log_power:g}"

    @property
    def citation(self) -> str:
        return (
            "Childs, Kothari, Somma, SIAM J. Comput. 46, 1920 (2017), arXiv:1511.02306: "
            "Chebyshev-LCU variant with variable-time amplitude amplification, "
            "O(κ polylog(κ/ε)) (constant and polylog power assumed)"
        )


class DiscreteAdiabatic(AbstractQLSA):
    r"""Costa et al.'s discrete adiabatic walk followed by eigenstate filtering.

    The walk reaches error $\Delta$ in $\alpha_w\kappa/\Delta$ steps (one query each); the
    filter (Lin & Tong's minimax polynomial $R_\ell(x; 1/\kappa)$ of degree $2\ell$, with
    $|R_\ell| \le 2e^{-\sqrt2\,\ell/\kappa}$ away from the kernel) takes it to $\varepsilon$ with
    $\ell = \lceil \kappa\ln(2/\varepsilon)/\sqrt2\rceil$; the filter succeeds with probability
    $\ge (1 - \Delta^2/2)^2$, charged as repetitions:

    $$Q = \frac{\alpha_w\kappa/\Delta + 2\lceil\kappa\ln(2/\varepsilon)/\sqrt2\rceil}
               {(1 - \Delta^2/2)^2}.$$

    Two published walk constants: $\alpha_w = 2305$, the analytic bound of Costa, An, Sanders,
    Su, Babbush, Berry (PRX Quantum 3, 040303 (2022), arXiv:2111.08152) for positive-definite
    $A$ (`COSTA_BOUND`), and $\alpha_w \approx 1.84$, measured on random matrices by Costa, An,
    Babbush, Berry (arXiv:2312.07690 v3, "about 1,200 times smaller than the upper bound";
    v1 reported 1.56) (`COSTA_NUMERICAL`). The history matrix $L$ is not Hermitian: applying
    the constant to its Hermitian dilation is an assumption.

    **Arguments:**

    - `walk_constant`: $\alpha_w > 0$.
    - `walk_error`: $\Delta \in (0, 1)$, the walk's target error before filtering (default
      0.25, an assumption).
    - `label`: `BOUND` for the analytic constant, `ESTIMATE` for the measured one.
    """

    walk_constant: float = 2305.0
    walk_error: float = 0.25
    label: Provenance = eqx.field(default=Provenance.BOUND, static=True)
    name: ClassVar[str] = "Costa"

    def __check_init__(self):
        check_positive("walk_constant", self.walk_constant)
        check_positive("walk_error", self.walk_error)
        if float(self.walk_error) >= 1:
            raise InvalidArgumentError(f"`walk_error` must lie in (0, 1), got {self.walk_error!r}.")

    def queries(self, kappa: float, eps: float) -> float:
        _check_kappa_eps(kappa, eps)
        k, d = float(kappa), float(self.walk_error)
        walk = float(self.walk_constant) * k / d
        ell = math.ceil(k * math.log(2.0 / float(eps)) / math.sqrt(2.0))
        return (walk + 2 * ell) / (1 - d**2 / 2) ** 2

    @property
    def provenance(self) -> Provenance:
        return self.label

    @property
    def formula(self) -> str:
        return (
            f"(α_w κ/Δ + 2⌈κ ln(2/ε)/√2⌉)/(1 − Δ²/2)², α_w = {self.walk_constant:g}, "
            f"Δ = {self.walk_error:g}"
        )

    @property
    def citation(self) -> str:
        walk = (
            "α_w = 2305: Costa et al., PRX Quantum 3, 040303 (2022), arXiv:2111.08152"
            if self.label == Provenance.BOUND
            else "α_w measured on random matrices: Costa, An, Babbush, Berry, arXiv:2312.07690"
        )
        return (
            f"{walk}; filter: Lin & Tong, Quantum 4, 361 (2020), arXiv:1910.14596 (Δ assumed; "
            "constant applied to the Hermitian dilation of L)"
        )


COSTA_BOUND = DiscreteAdiabatic()
COSTA_NUMERICAL = DiscreteAdiabatic(walk_constant=1.84, label=Provenance.ESTIMATE)
QLSAS: tuple[AbstractQLSA, ...] = (HHL(), ChildsKothariSomma(), COSTA_BOUND, COSTA_NUMERICAL)
"""The QLSAs every estimate reports (the totals use `Assumptions.qlsa`)."""
