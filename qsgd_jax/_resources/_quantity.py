"""A number of a cost estimate with its provenance, formula and citation."""

from __future__ import annotations

import dataclasses
import enum
import math

from .._errors import InvalidArgumentError


class Provenance(enum.StrEnum):
    """Where a number of a cost estimate comes from (DESIGN §2, "End-to-end cost").

    - `MEASURED`: from this simulation ($\\kappa$, $P$, norms, $s$, $T$, XLA's FLOP counts).
    - `EXACT`: follows from definitions (the qubits of a register, the rounds for a given $P$).
    - `BOUND`: a published worst case evaluated at the measured inputs.
    - `ESTIMATE`: a published typical or numerically measured constant, or a well-kept
      estimator's output (the qdk resource estimator).
    - `ASSUMPTION`: a user knob with a default (error rates, bits, power), or a published
      scaling whose constant is assumed.
    - `UNAVAILABLE`: an input is missing; the note says which and how to get it. Never 0.
    """

    MEASURED = "measured"
    EXACT = "exact"
    BOUND = "bound"
    ESTIMATE = "estimate"
    ASSUMPTION = "assumption"
    UNAVAILABLE = "unavailable"


class UnavailableError(ValueError):
    """A quantity was asked for whose inputs are not available (the message says which)."""


@dataclasses.dataclass(frozen=True)
class Quantity:
    """One number of a cost estimate.

    **Fields:**

    - `name`: its key in the estimate.
    - `value`: the number (`nan` when unavailable: never 0).
    - `label`: its `Provenance`.
    - `formula`: how it is computed, in the estimate's symbols.
    - `citation`: the published source of the formula or constant ("" for definitions).
    - `unit`: e.g. "queries", "Toffolis", "qubits", "s", "J" ("" for pure numbers).
    - `note`: a caveat, or for an unavailable quantity what is missing and how to get it.
    - `depends_on`: the names of the quantities it was computed from.
    """

    name: str
    value: float
    label: Provenance
    formula: str
    citation: str = ""
    unit: str = ""
    note: str = ""
    depends_on: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        """Whether the value exists (the label is not `UNAVAILABLE`)."""
        return self.label != Provenance.UNAVAILABLE

    def require(self) -> float:
        """The value, or `UnavailableError` saying what is missing and how to get it."""
        if not self.available:
            raise UnavailableError(f"`{self.name}` is unavailable: {self.note}")
        return self.value

    def to_dict(self) -> dict:
        """JSON-able fields (`value` is `None` when unavailable)."""
        out = dataclasses.asdict(self)
        out["label"] = str(self.label)
        out["value"] = self.value if self.available else None
        out["depends_on"] = list(self.depends_on)
        return out


def given(
    name: str,
    value: float | int | None,
    label: Provenance,
    formula: str,
    *,
    missing: str = "",
    **kw,
) -> Quantity:
    """A leaf quantity: `value` with `label`, or unavailable (note `missing`) when `value` is
    `None` or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        kw.pop("note", None)
        return Quantity(name, math.nan, Provenance.UNAVAILABLE, formula, note=missing, **kw)
    return Quantity(name, float(value), label, formula, **kw)


def check_assumption(
    name: str,
    value,
    *,
    low: float = 0.0,
    strict: bool = False,
    high: float | None = None,
    high_open: bool = True,
) -> None:
    """Refuse a NaN, infinite, negative (or out-of-range) assumption, naming it and the range."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"assumption `{name}` must be a real number, got {value!r}."
        ) from None
    ok = math.isfinite(v) and (v > low if strict else v >= low)
    if high is not None:
        ok = ok and (v < high if high_open else v <= high)
    if not ok:
        lo = "(" if strict else "["
        hi = "inf)" if high is None else (f"{high})" if high_open else f"{high}]")
        raise InvalidArgumentError(
            f"assumption `{name}` must be a finite number in {lo}{low}, {hi}, got {value!r}; "
            f"set it in `Assumptions({name}=...)`."
        )
