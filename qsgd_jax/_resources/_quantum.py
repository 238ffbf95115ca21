"""The quantum side of a cost estimate: the history system at the chosen $y_0$ scale, QLSA
queries and rounds, read-out runs, Toffolis, logical qubits, and the physical cost of a run."""

from __future__ import annotations

import math

import numpy as np

from .._misc import ceil_log2
from .._readout import upload_cost
from ._inputs import NO_KAPPA, NO_STEP, Assumptions, MeasuredInputs
from ._physical import estimator, estimator_available, physical_cost
from ._qlsa import QLSAS
from ._quantity import Provenance
from ._result import Builder, qlsa_key
from ._samples import norm_estimation_queries, tomography_samples


def _rounds(P: float) -> float:
    return float(math.ceil(math.pi / (4 * math.sqrt(P))))


def _choose_scale(inp: MeasuredInputs, a: Assumptions) -> int | None:
    """Index of the scale minimizing queries × rounds of `a.qlsa` (`None` if none is usable)."""
    scan = inp.scan
    kappa = _kappa_for(
        a,
        np.asarray(scan.sigma_max),
        np.asarray(scan.sigma_min),
        np.asarray(scan.sparse_normalization),
    )
    P = np.asarray(scan.target_probability, float)
    cost = np.full(P.shape, np.inf)
    for i, (k, p) in enumerate(zip(kappa, P, strict=True)):
        if np.isfinite(k) and np.isfinite(p) and p > 0:
            cost[i] = a.qlsa.queries(max(float(k), 1.0), a.eps) * _rounds(float(p))
    return int(np.argmin(cost)) if np.isfinite(cost).any() else None


def _kappa_for(a: Assumptions, smax, smin, alpha_s):
    """κ of $L/\\alpha$: $\\sigma_{\\max}/\\sigma_{\\min}$ (norm) or $\\alpha_s/\\sigma_{\\min}$."""
    num = np.asarray(alpha_s if a.normalization == "sparse" else smax, float)
    return num / np.asarray(smin, float)


def history(b: Builder, inp: MeasuredInputs, a: Assumptions) -> None:
    """Sizes; $\\kappa_c$, $P_c$, $\\sigma_{\\min}$, both $\\alpha$ and the QLSA's $\\kappa$ at the
    chosen scale $c$ (or $c = 1$ without a scan)."""
    s, n, T, p, d = inp.active_size, inp.num_params, inp.num_steps, inp.idle, inp.carleman_dim
    size = (T + p + 1) * d
    meas = Provenance.MEASURED

    # ---- sizes
    b.leaf("s", s, meas, "active parameters", unit="parameters")
    b.leaf("n", n, meas, "parameters", unit="parameters")
    b.leaf("T", T, meas, "window length", unit="steps")
    b.leaf("p", p, meas, "idle blocks of the history system (0: the article's Eq. 6)")
    b.leaf("history_size", size, Provenance.EXACT, "(T + p + 1) · d, d = Σ_{j≤N} s^j", unit="rows")

    # ---- the history system at the chosen y0 scale
    scope = f"κ and P of the {inp.kappa_scope} history system"
    if inp.scan is not None:
        i = _choose_scale(inp, a)
        scan = inp.scan
        if i is None:
            pick = dict(
                kappa=math.nan, smax=math.nan, smin=math.nan, P=math.nan, alpha=math.nan, c=math.nan
            )
        else:
            pick = dict(
                kappa=float(scan.kappa[i]),
                smax=float(scan.sigma_max[i]),
                smin=float(scan.sigma_min[i]),
                P=float(scan.target_probability[i]),
                alpha=float(scan.sparse_normalization[i]),
                c=float(scan.scales[i]),
            )
        c_note = (
            f"chosen among {scan.scales.shape[0]} scales (method {scan.method}) minimizing "
            f"queries × rounds of {qlsa_key(a.qlsa).removeprefix('queries ')}"
        )
        b.leaf(
            "y0_scale",
            pick["c"],
            meas,
            "argmin_c Q(κ_c, ε) · ⌈π/(4√P_c)⌉",
            note=c_note,
            missing="no scale of the scan has a finite κ and P > 0",
        )
        missing = "the scale scan has no usable scale"
        alpha_missing = "the scan was matrix-free: use `scale_scan(..., method='dense')`"
    else:
        pick = dict(
            kappa=inp.kappa,
            smax=inp.sigma_max,
            smin=inp.sigma_min,
            P=inp.target_probability,
            alpha=math.nan,
            c=1.0,
        )
        b.leaf(
            "y0_scale",
            1.0,
            Provenance.ASSUMPTION,
            "y₀ ≡ c = 1 (the library's convention)",
            note="no scale scan: pass `scan=qsgd_jax.linsys.scale_scan(...)` to choose c",
        )
        missing = NO_KAPPA
        alpha_missing = "needs the assembled history matrix: pass a dense `scale_scan`"
    b.leaf("kappa", pick["kappa"], meas, "σ_max(L_c)/σ_min(L_c)", note=scope, missing=missing)
    b.leaf(
        "target_probability",
        pick["P"],
        meas,
        "Σ_{t≥T} ‖x_{t,1}‖² / ‖x‖² of the solution of L_c x = |0⟩⊗Y_c(0)",
        note=scope,
        missing=missing,
    )
    smin = b.leaf("sigma_min", pick["smin"], meas, "σ_min(L_c)", missing=missing)
    a_norm = b.leaf("alpha_norm", pick["smax"], meas, "α = ‖L_c‖ = σ_max", missing=missing)
    a_sparse = b.leaf(
        "alpha_sparse",
        pick["alpha"],
        meas,
        "α_s = s_row · max|(L_c)_ij|",
        citation="Gilyén, Su, Low, Wiebe, STOC 2019, arXiv:1806.01838, Lemma 48",
        missing=alpha_missing,
    )
    a_used = a_sparse if a.normalization == "sparse" else a_norm
    b.derive(
        "kappa_effective",
        lambda al, sm: max(al / sm, 1.0),
        (a_used, smin),
        "α/σ_min(L_c): κ of the block-encoded L_c/α (at least 1)",
        note=f"normalization: {a.normalization}",
    )
    b.leaf("eps", a.eps, Provenance.ASSUMPTION, "QLSA precision ε")


def queries(b: Builder, inp: MeasuredInputs, a: Assumptions) -> None:
    """Queries of every QLSA, amplification rounds, samples, norm estimation, total queries."""
    keff, eps, P = b.q["kappa_effective"], b.q["eps"], b.q["target_probability"]
    meas = Provenance.MEASURED
    # ---- QLSA queries (every algorithm), rounds
    for qlsa in QLSAS + ((a.qlsa,) if a.qlsa not in QLSAS else ()):
        b.derive(
            qlsa_key(qlsa),
            qlsa.queries,
            (keff, eps),
            qlsa.formula,
            label=qlsa.provenance,
            citation=qlsa.citation,
            unit="queries",
        )
    queries = b.q[qlsa_key(a.qlsa)]
    rounds = b.derive(
        "rounds",
        _rounds,
        (P,),
        "⌈π/(4√P_c)⌉ amplitude-amplification rounds",
        citation="Brassard, Høyer, Mosca, Tapp, arXiv:quant-ph/0005055",
        note="each round applies the solver (and its inverse: the factor 2 is "
        "not charged, as in DESIGN §2)",
    )

    # ---- read-out: tomography samples and norm estimation
    if a.eps_tomo is not None:
        et = b.leaf("eps_tomo", a.eps_tomo, Provenance.ASSUMPTION, "ℓ2 read-out error ε_tomo")
    elif inp.tolerated_error is not None:
        et = b.leaf(
            "eps_tomo",
            inp.tolerated_error,
            meas,
            "ℓ2 read-out error ε_tomo",
            note="the error the window's dynamics tolerate (window validity)",
        )
    else:
        et = b.leaf(
            "eps_tomo",
            1e-2,
            Provenance.ASSUMPTION,
            "ℓ2 read-out error ε_tomo",
            note="default: no tolerated error was measured",
        )
    delta = b.leaf("delta", a.delta, Provenance.ASSUMPTION, "failure probability δ of the bound")
    s_q = b.q["s"]
    sb = b.derive(
        "samples_bound",
        lambda e, s_, dl: tomography_samples(e, int(s_), dl)[0],
        (et, s_q, delta),
        "2 · ⌈25 s ln(6s/δ)/ε_tomo²⌉ (two measurement rounds)",
        label=Provenance.BOUND,
        unit="runs",
        citation="Kerenidis & Prakash, arXiv:1812.00954 (explicit constants: "
        "qsgd_jax.readout.shots_for_error)",
    )
    st = b.derive(
        "samples_typical",
        lambda e, s_: tomography_samples(e, int(s_))[1],
        (et, s_q),
        "2 · ⌈(s − 1)/(4 ε_tomo²)⌉: typical ℓ2 error √((s−1)/(4N))",
        label=Provenance.ESTIMATE,
        unit="runs",
    )
    ne = b.leaf(
        "norm_error",
        a.norm_error if a.norm_error is not None else et.value,
        Provenance.ASSUMPTION,
        "relative error ε_n of ‖y₁‖ (default ε_tomo)",
    )
    norm_runs = b.derive(
        "norm_runs",
        lambda P_, e: norm_estimation_queries(P_, e)[1],
        (P, ne),
        "2(M − 1) + 1, M = ⌈π/z⌉, z = √(a(1−a) + 2aε_n) − √(a(1−a)), a = P_c",
        label=Provenance.BOUND,
        unit="runs",
        citation="Brassard, Høyer, Mosca, Tapp, arXiv:quant-ph/0005055 (bound met w.p. ≥ 8/π²)",
    )
    per_sample = b.derive(
        "queries_per_sample", lambda q_, r: q_ * r, (queries, rounds), "Q · R", unit="queries"
    )
    totals = {}
    for kind, samples in (("bound", sb), ("typical", st)):
        totals[kind] = b.derive(
            f"total_queries_{kind}",
            lambda n_, ps, nr, q_: n_ * ps + nr * q_,
            (samples, per_sample, norm_runs, queries),
            f"N_{kind} · Q · R + N_norm · Q",
            unit="queries",
        )


def logical(b: Builder, inp: MeasuredInputs, a: Assumptions) -> None:
    """Toffolis per query, per run and in total; logical qubits; the re-upload."""
    s, n, T, p, d = inp.active_size, inp.num_params, inp.num_steps, inp.idle, inp.carleman_dim
    size, meas = (T + p + 1) * d, Provenance.MEASURED
    per_sample = b.q["queries_per_sample"]
    totals = {k: b.q[f"total_queries_{k}"] for k in ("bound", "typical")}
    # ---- queries → Toffolis (the per-query model is an assumption)
    bits = b.leaf("bits", a.bits, Provenance.ASSUMPTION, "fixed-point width b", unit="bits")
    tpf_value = (
        a.toffolis_per_flop if a.toffolis_per_flop is not None else ((a.bits**2 + a.bits) / 2)
    )
    tpf = b.leaf(
        "toffolis_per_flop",
        tpf_value,
        Provenance.ASSUMPTION,
        "(b² + b)/2: mean of a multiplication (≈ b²) and an addition (≈ b)"
        if a.toffolis_per_flop is None
        else "user value",
        citation="Gidney, Quantum 2, 74 (2018), arXiv:1709.06648 (addition); "
        "schoolbook multiplication",
        unit="Toffolis",
    )
    step = inp.step
    hvp = b.leaf(
        "hvp_flops",
        None if step is None else step.hvp_flops,
        meas,
        "XLA cost analysis of one HVP on the batch",
        unit="FLOPs",
        missing=NO_STEP,
    )
    tpq = b.derive(
        "toffolis_per_query",
        lambda h, t: h * t,
        (hvp, tpf),
        "FLOPs(HVP on the batch) · Toffolis per FLOP",
        label=Provenance.ASSUMPTION,
        unit="Toffolis",
        note="a query to the block encoding of a per-batch Hessian costs at least "
        "one coherent evaluation of the network on the batch",
    )
    b.derive(
        "toffolis_per_run",
        lambda ps, t: ps * t,
        (per_sample, tpq),
        "Q · R · Toffolis per query",
        unit="Toffolis",
    )
    {
        kind: b.derive(
            f"total_toffolis_{kind}",
            lambda qq, t: qq * t,
            (totals[kind], tpq),
            "total queries · Toffolis per query",
            unit="Toffolis",
        )
        for kind in totals
    }

    # ---- logical qubits
    up = upload_cost(s, n, gate_const=a.upload_gates_per_entry, qubit_const=a.qram_qubits_per_entry)
    parts = [
        b.leaf(
            "qubits_history",
            ceil_log2(T + p + 1),
            Provenance.EXACT,
            "⌈log₂(T + p + 1)⌉",
            unit="qubits",
        ),
        b.leaf("qubits_carleman", ceil_log2(d), Provenance.EXACT, "⌈log₂ d⌉", unit="qubits"),
        b.derive(
            "qubits_block_encoding",
            lambda bb: ceil_log2(size) + bb + 1,
            (bits,),
            "⌈log₂ D⌉ + b + 1 (column index, entry register, flag)",
            label=Provenance.EXACT,
            citation="sparse access: Gilyén, Su, Low, Wiebe, arXiv:1806.01838, Lemma 48",
            unit="qubits",
        ),
        b.leaf(
            "qubits_qlsa",
            a.qlsa_ancillas,
            Provenance.ASSUMPTION,
            "the QLSA's own ancillas",
            unit="qubits",
        ),
        b.leaf(
            "qubits_workspace",
            a.workspace_qubits if a.workspace_qubits is not None else 3 * a.bits,
            Provenance.ASSUMPTION,
            "3b: one b-bit multiply-add in flight" if a.workspace_qubits is None else "user value",
            unit="qubits",
            note="the network's intermediate values are not modelled",
        ),
        b.leaf(
            "qubits_qram_upload",
            up.qram_qubits,
            Provenance.ASSUMPTION,
            "c_q · n (bucket brigade)",
            citation="Giovannetti, Lloyd, Maccone, PRL 100, 160501 (2008)",
            unit="qubits",
        ),
        b.leaf(
            "qubits_qram_data",
            None if step is None else math.ceil(a.qram_qubits_per_entry * step.data_size * T),
            Provenance.ASSUMPTION,
            "c_q · T · (entries of one batch): coherent access to the window's T batches",
            unit="qubits",
            missing=NO_STEP,
        ),
    ]
    b.derive(
        "logical_qubits",
        lambda *xs: sum(xs),
        parts,
        "history + Carleman + block encoding + QLSA + workspace + QRAM",
        unit="qubits",
    )
    b.leaf(
        "upload_gates",
        up.sparse_gates,
        Provenance.ASSUMPTION,
        "c_g · s (once per window)",
        citation="Gleinig & Hoefler, DAC 2021, arXiv:2108.06150",
        unit="gates",
        note=f"or QRAM reads of depth ⌈log₂ n⌉ = {up.qram_depth}; not added to the Toffolis",
    )


def physical(b: Builder, a: Assumptions, physical: bool | None) -> None:
    """Physical qubits, code distance and seconds of one run (the qdk estimator), seconds and
    joules of the window."""
    per_run, logical = b.q["toffolis_per_run"], b.q["logical_qubits"]
    tof = {k: b.q[f"total_toffolis_{k}"] for k in ("bound", "typical")}
    names = ("physical_qubits", "code_distance", "seconds_per_run")
    if physical is False or (physical is None and not estimator_available()):
        why = (
            "physical=False"
            if physical is False
            else "the resource estimator is not installed: `pip install qdk`"
        )
        for name in names:
            b.leaf(name, None, Provenance.ASSUMPTION, "qdk resource estimator", missing=why)
    elif not (per_run.available and logical.available):
        missing = per_run if not per_run.available else logical
        for name in names:
            b.leaf(
                name,
                None,
                Provenance.ASSUMPTION,
                "qdk resource estimator",
                missing=f"needs `{missing.name}`: {missing.note}",
            )
    else:
        est_mod = estimator()
        try:
            cost = physical_cost(per_run.value, int(logical.value), a.physical)
        except est_mod.EstimatorError as e:
            for name in names:
                b.leaf(
                    name,
                    None,
                    Provenance.ASSUMPTION,
                    "qdk resource estimator",
                    missing=f"the estimator cannot lay the run out: {e}",
                )
        else:
            model = a.physical
            cite = "Microsoft resource estimator (qdk.estimator, PSSPC layout)"
            note = f"{model.qubit}, {model.qec}, error budget {model.error_budget:g} per run" + (
                f", {cost.chunks} chunks" if cost.chunks > 1 else ""
            )
            for name, value, unit in (
                ("physical_qubits", cost.physical_qubits, "qubits"),
                ("code_distance", cost.code_distance, ""),
                ("seconds_per_run", cost.seconds, "s"),
            ):
                b.derive(
                    name,
                    lambda *_, v=value: v,
                    (per_run, logical),
                    "LogicalCounts({numQubits, cczCount}).estimate(params)",
                    label=Provenance.ESTIMATE,
                    citation=cite,
                    unit=unit,
                    note=note,
                )
    power = b.leaf(
        "quantum_watts",
        a.physical.power_watts,
        Provenance.ASSUMPTION,
        "power of the quantum computer while it runs",
        citation="energy = power × time: Tu et al., arXiv:2502.11239",
        unit="W",
    )
    for kind, total in tof.items():
        sec = b.derive(
            f"seconds_{kind}",
            lambda sr, t, r: sr * t / r,
            (b.q["seconds_per_run"], total, per_run),
            "seconds per run · total Toffolis / Toffolis per run",
            unit="s",
        )
        b.derive(f"joules_{kind}", lambda t, w: t * w, (sec, power), "seconds · power", unit="J")
