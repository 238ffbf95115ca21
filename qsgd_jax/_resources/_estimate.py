r"""The end-to-end cost of one quantum window, every number labelled (DESIGN §2, "End-to-end
cost").

$$\text{quantum} = \big[Q_{\mathrm{QLSA}}(\kappa_c, \varepsilon) \times R(P_c)\big] \times
N(\varepsilon_{\mathrm{tomo}}, s) + Q_{\mathrm{QLSA}} \times N_{\mathrm{norm}}
\quad\text{queries}, \qquad R = \lceil \pi/(4\sqrt{P_c})\rceil,$$

times the Toffolis of one query (one coherent HVP on the batch at $b$ bits, an assumption);
the estimator turns one run (queries × rounds × Toffolis per query on the logical qubits) into
physical qubits and seconds; the classical baseline is XLA's FLOP count of the same $T$ SGD
steps (dense) and its masked share (sparse). The closed form

$$\frac{Q}{C} \approx \frac{\kappa_c}{T}\cdot\frac{c_{\mathrm{QLSA}}\ln(1/\varepsilon)}
{\sqrt{P_c}}\cdot\frac{c_{\mathrm{query}}}{B\,c_{\mathrm{flop}}}\cdot
\frac{1}{\varepsilon_{\mathrm{tomo}}^2}$$

is evaluated beside the full ratio.
"""

from __future__ import annotations

import math

from .._errors import InvalidArgumentError
from ._classical import break_even_n
from ._inputs import NO_STEP, Assumptions, MeasuredInputs, measured_inputs
from ._physical import estimator
from ._quantity import Provenance, Quantity
from ._quantum import history, logical, physical as physical_section, queries
from ._result import Builder, CostEstimate, qlsa_key


def estimate(
    source,
    assumptions: Assumptions | None = None,
    *,
    step=None,
    scan=None,
    tolerated_error: float | None = None,
    physical: bool | None = None,
) -> CostEstimate:
    r"""The end-to-end cost of one quantum window (module docstring), every number labelled.

    Nothing unavailable becomes 0: a report made with `history=False` gives an estimate whose
    $\kappa$, $P$ and everything computed from them are `unavailable`, with a note saying how
    to get them; `CostEstimate.value` raises for them.

    **Arguments:**

    - `source`: a `WindowReport` (one window) or `MeasuredInputs`.
    - `assumptions`: the `Assumptions` (default `Assumptions()`).
    - `step`, `scan`, `tolerated_error`: with a report, as `measured_inputs` (give them in the
      `MeasuredInputs` otherwise).
    - `physical`: physical qubits, seconds and joules from the resource estimator: `True`
      (raise `EstimatorNotInstalledError` if `qdk` is missing), `False` (unavailable), `None`
      (default: when installed).

    **Returns:** a `CostEstimate`.
    """
    a = Assumptions() if assumptions is None else assumptions
    if not isinstance(a, Assumptions):
        raise InvalidArgumentError(f"`assumptions` must be an Assumptions, got {a!r}.")
    if isinstance(source, MeasuredInputs):
        if step is not None or scan is not None or tolerated_error is not None:
            raise InvalidArgumentError(
                "`step`, `scan` and `tolerated_error` go into the MeasuredInputs when `source` "
                "is one (they are for a WindowReport source)."
            )
        inp = source
    else:
        inp = measured_inputs(source, step=step, scan=scan, tolerated_error=tolerated_error)
    if physical is True:
        estimator()  # a clear error now, before any work, if it is not installed
    b = Builder()
    history(b, inp, a)
    queries(b, inp, a)
    logical(b, inp, a)
    physical_section(b, a, physical)
    classical(b, inp, a)
    qc, be = comparison(b, inp, a)
    return CostEstimate(
        quantities=b.q, qlsa=qlsa_key(a.qlsa), statement=_statement(qc, be, a.sparsity_exponent)
    )


def classical(b: Builder, inp: MeasuredInputs, a: Assumptions) -> None:
    r"""Dense and sparse FLOPs of the same $T$ steps, $c_{\mathrm{flop}}$, seconds, joules."""
    s, n, T, step, meas = (
        inp.active_size,
        inp.num_params,
        inp.num_steps,
        inp.step,
        Provenance.MEASURED,
    )
    dense_step = b.leaf(
        "step_flops",
        None if step is None else step.step_flops,
        meas,
        "XLA cost analysis of one dense SGD step",
        unit="FLOPs",
        missing=NO_STEP,
    )
    dense = b.derive(
        "classical_flops_dense", lambda f: f * T, (dense_step,), "T · step FLOPs", unit="FLOPs"
    )
    sparse = b.derive(
        "classical_flops_sparse",
        lambda f: f * s / n,
        (dense,),
        "dense · s/n",
        label=Provenance.ESTIMATE,
        unit="FLOPs",
        note="masked work at the dense step's per-weight reuse (≈ B·s per layer "
        "pass for dense layers; uniform sparsity across layers assumed)",
    )
    batch = b.leaf(
        "batch_size", None if step is None else step.batch_size, meas, "B", missing=NO_STEP
    )
    b.derive(
        "c_flop",
        lambda f, bb: f / (T * bb * s),
        (sparse, batch),
        "sparse FLOPs / (T · B · s)",
        unit="FLOPs",
    )
    rate = b.leaf(
        "flop_rate",
        a.flop_rate,
        Provenance.ASSUMPTION,
        f"sustained FLOP/s: {a.accelerator}",
        unit="FLOP/s",
    )
    watts = b.leaf(
        "accelerator_watts", a.accelerator_watts, Provenance.ASSUMPTION, a.accelerator, unit="W"
    )
    secs = {}
    for kind, flops in (("dense", dense), ("sparse", sparse)):
        secs[kind] = b.derive(
            f"classical_seconds_{kind}",
            lambda f, r: f / r,
            (flops, rate),
            "FLOPs / FLOP rate",
            unit="s",
        )
        b.derive(
            f"classical_joules_{kind}",
            lambda t, w: t * w,
            (secs[kind], watts),
            "seconds · power",
            unit="J",
        )


def comparison(b: Builder, inp: MeasuredInputs, a: Assumptions) -> tuple[Quantity, Quantity]:
    """The closed-form $Q/C$, the full ratios and the break-even $n$."""
    n, T = inp.num_params, inp.num_steps
    keff, queries_, eps, P = (
        b.q[k] for k in ("kappa_effective", qlsa_key(a.qlsa), "eps", "target_probability")
    )
    tpq, batch, c_flop, et = (
        b.q[k] for k in ("toffolis_per_query", "batch_size", "c_flop", "eps_tomo")
    )
    tof = {k: b.q[f"total_toffolis_{k}"] for k in ("bound", "typical")}
    sparse, dense = b.q["classical_flops_sparse"], b.q["classical_flops_dense"]
    qc = b.derive(
        "ratio_closed_form",
        lambda k, q_, e, P_, c_q, bb, cf, et_: (
            (k / T)
            * (q_ / (k * math.log(1 / e)))
            * math.log(1 / e)
            / math.sqrt(P_)
            * c_q
            / (bb * cf)
            / et_**2
        ),
        (keff, queries_, eps, P, tpq, batch, c_flop, et),
        "[κ_c/T] · [c_QLSA ln(1/ε)/√P_c] · [c_query/(B c_flop)] · [1/ε_tomo²], "
        "c_QLSA = Q/(κ_c ln(1/ε))",
        unit="Toffolis per FLOP",
        note="leading order: drops π/4 of the rounds, the samples' constants and norm "
        "estimation; Toffolis against FLOPs",
    )
    b.derive(
        "ratio_toffolis_flops",
        lambda t, f: t / f,
        (tof["typical"], sparse),
        "total Toffolis (typical) / sparse FLOPs",
        unit="Toffolis per FLOP",
    )
    b.derive(
        "ratio_seconds",
        lambda t, f: t / f,
        (b.q["seconds_typical"], b.q["classical_seconds_sparse"]),
        "quantum seconds (typical) / classical seconds (sparse)",
    )
    sigma = a.sparsity_exponent
    be = b.derive(
        "break_even_n",
        lambda t, f: break_even_n(t, f, n, quantum_power=2 * sigma, classical_power=1.0),
        (tof["typical"], dense),
        f"Q ∝ n^{2 * sigma:g} (samples ∝ s, a query = one HVP ∝ s; s ∝ n^{sigma:g}) vs dense C ∝ n",
        unit="parameters",
    )
    return qc, be


def _statement(qc: Quantity, be: Quantity, sigma: float) -> str:
    head = (
        "At a fixed sparsity fraction, samples ∝ s/ε_tomo² and sparse classical FLOPs ∝ B·s·T "
        "cancel s in the closed-form ratio; it is n-independent only if a query costs O(B) "
        "(one Hessian entry). Charged one HVP on the batch (∝ B·s), the quantum cost grows like "
        f"s² ∝ n^{2 * sigma:g} against the dense classical n"
    )
    if not be.available:
        return f"{head}; break-even unavailable ({be.note})."
    where = (
        "never (the quantum cost grows faster)"
        if math.isinf(be.value)
        else (f"from n ≈ {be.value:.3g}")
    )
    ratio = f"{qc.value:.3g}" if qc.available else "n/a"
    return f"{head}: the quantum cost drops below it {where}. Closed-form Q/C = {ratio}."
