"""The result of a cost estimate: labelled quantities, how labels combine, the summary line."""

from __future__ import annotations

import math

import equinox as eqx

from ._qlsa import AbstractQLSA
from ._quantity import Provenance, Quantity, given

_ORDER = (
    Provenance.UNAVAILABLE,
    Provenance.ASSUMPTION,
    Provenance.ESTIMATE,
    Provenance.BOUND,
    Provenance.MEASURED,
    Provenance.EXACT,
)
# Targets the user sets (precisions, failure probability) specify the computation rather than
# describe it: they do not weaken the label of what is computed from them.
_TARGETS = ("eps", "eps_tomo", "delta", "norm_error")


def qlsa_key(qlsa: AbstractQLSA) -> str:
    """The key of a QLSA's query count in an estimate, e.g. `"queries Costa (bound)"`."""
    return f"queries {qlsa.name} ({qlsa.provenance})"


class CostEstimate(eqx.Module):
    """The labelled cost of one window (`estimate`).

    **Fields:** `quantities` (name → `Quantity`, in the order of the computation), `qlsa` (the
    key of the QLSA the totals use), `statement` (the break-even statement, one paragraph).

    `est[name]` is the `Quantity`; `est.value(name)` its number, or `UnavailableError` saying
    what is missing and how to get it.
    """

    quantities: dict = eqx.field(static=True)
    qlsa: str = eqx.field(static=True)
    statement: str = eqx.field(static=True)

    def __getitem__(self, name: str) -> Quantity:
        if name not in self.quantities:
            raise KeyError(f"no quantity {name!r}; the estimate has {list(self.quantities)}.")
        return self.quantities[name]

    def value(self, name: str) -> float:
        """The number of quantity `name`; `UnavailableError` if its inputs are missing."""
        return self[name].require()

    def to_dict(self) -> dict:
        """JSON-able: every quantity's fields, the QLSA and the statement."""
        return {
            "quantities": {k: q.to_dict() for k, q in self.quantities.items()},
            "qlsa": self.qlsa,
            "statement": self.statement,
        }

    def table(self) -> str:
        """A Markdown table: quantity, value, unit, label, formula, source and note."""
        from ._table import markdown_table

        rows = [
            [
                q.name,
                _fmt(q),
                q.unit,
                str(q.label),
                q.formula,
                q.citation,
                q.note,
            ]
            for q in self.quantities.values()
        ]
        return markdown_table(
            ["quantity", "value", "unit", "label", "formula", "source", "note"], rows
        )

    def summary(self) -> str:
        """One line: queries × rounds × samples, Toffolis, physical qubits, seconds (typical
        samples; "n/a" where unavailable)."""
        q, name = self.quantities, self.qlsa.removeprefix("queries ")
        return (
            f"T = {_fmt(q['T'])}, κ = {_fmt(q['kappa'])} (c = {_fmt(q['y0_scale'])}), "
            f"P = {_fmt(q['target_probability'])}: {_fmt(q[self.qlsa])} queries ({name})"
            f" × {_fmt(q['rounds'])} rounds × {_fmt(q['samples_typical'])} samples = "
            f"{_fmt(q['total_queries_typical'])} queries; {_fmt(q['total_toffolis_typical'])} "
            f"Toffolis; {_fmt(q['physical_qubits'])} physical qubits; "
            f"{_fmt(q['seconds_typical'])} s (classical {_fmt(q['classical_seconds_sparse'])} s)"
        )


def _fmt(q: Quantity) -> str:
    if not q.available:
        return "n/a"
    v = q.value
    if math.isinf(v):
        return "none" if v > 0 else "-inf"
    if float(v).is_integer() and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.3g}"


def _weakest(labels) -> Provenance:
    return min(labels, key=_ORDER.index)


class Builder:
    """Collects quantities; `derive` propagates labels and unavailability."""

    def __init__(self):
        self.q: dict[str, Quantity] = {}

    def add(self, q: Quantity) -> Quantity:
        self.q[q.name] = q
        return q

    def leaf(self, name, value, label, formula, *, missing="", **kw) -> Quantity:
        return self.add(given(name, value, label, formula, missing=missing, **kw))

    def derive(self, name, fn, inputs, formula, *, label=None, **kw) -> Quantity:
        """`fn(*values)`, labelled the weakest of `label` and the inputs' labels (targets
        aside), or unavailable naming the first missing input."""
        deps = tuple(q.name for q in inputs)
        for q in inputs:
            if not q.available:
                # the first missing leaf and why: deeper "needs" chains are not repeated
                note = q.note if q.note.startswith("needs `") else f"needs `{q.name}`: {q.note}"
                return self.add(
                    Quantity(
                        name,
                        math.nan,
                        Provenance.UNAVAILABLE,
                        formula,
                        note=note,
                        depends_on=deps,
                        **{k: v for k, v in kw.items() if k != "note"},
                    )
                )
        labels = [q.label for q in inputs if q.name not in _TARGETS] + [label or Provenance.EXACT]
        final = _weakest(labels)
        value = float(fn(*(q.value for q in inputs)))
        return self.add(Quantity(name, value, final, formula, depends_on=deps, **kw))
