"""Resource model: QLSA counts, samples, rounds and Q/C against hand formulas; labels and
unavailable inputs; the estimate reads its window's kappa and P; physical counts are the qdk
estimator's own; XLA FLOPs and the break-even n; bad input."""

import dataclasses
import json
import math
import sys

import jax
import jax.numpy as jnp
import pytest

import qsgd_jax as qj
from qsgd_jax.readout import ae_error_bound
from qsgd_jax.resources import (
    COSTA_BOUND,
    COSTA_NUMERICAL,
    HHL,
    Assumptions,
    ChildsKothariSomma,
    DiscreteAdiabatic,
    EstimatorNotInstalledError,
    MeasuredInputs,
    PhysicalModel,
    Provenance,
    StepCosts,
    UnavailableError,
    break_even_n,
    classical_flops,
    estimate,
    norm_estimation_queries,
    physical_cost,
    sgd_step_time,
    step_costs,
    tomography_samples,
)

qdk_estimator = pytest.importorskip("qdk.estimator")
NAN = float("nan")


def _inputs(**kw):
    base = dict(
        kappa=40.0,
        sigma_max=2.0,
        sigma_min=0.05,
        target_probability=0.04,
        active_size=30,
        num_params=300,
        num_steps=10,
        idle=0,
        max_order=1,
        step=StepCosts(step_flops=6e4, hvp_flops=1.2e5, batch_size=16, data_size=16 * 5),
    )
    return MeasuredInputs(**{**base, **kw})


# ---- QLSA counts, samples, rounds: hand formulas ------------------------------------------------


def test_qlsa_counts_against_hand_formulas():
    assert HHL().queries(10.0, 0.01) == pytest.approx(100 / 0.01)
    assert HHL(constant=3.0).queries(10.0, 0.01) == pytest.approx(3e4)
    assert ChildsKothariSomma().queries(10.0, 0.01) == pytest.approx(10 * math.log(1000) ** 2)
    assert ChildsKothariSomma(constant=2.0, log_power=1.0).queries(10.0, 0.01) == pytest.approx(
        20 * math.log(1000)
    )
    # Costa et al.: walk 2305 * 10 / 0.25 = 92200; filter 2 * ceil(10 ln(200)/sqrt 2) = 2 * 38
    assert COSTA_BOUND.queries(10.0, 0.01) == pytest.approx((92200 + 76) / (1 - 0.25**2 / 2) ** 2)
    assert COSTA_NUMERICAL.queries(10.0, 0.01) == pytest.approx((73.6 + 76) / 0.96875**2)
    assert COSTA_BOUND.provenance == Provenance.BOUND
    assert COSTA_NUMERICAL.provenance == Provenance.ESTIMATE
    assert HHL().provenance == Provenance.ASSUMPTION


@pytest.mark.parametrize("qlsa", [HHL(), ChildsKothariSomma(), COSTA_BOUND, COSTA_NUMERICAL])
def test_qlsa_monotone_and_bad_input(qlsa):
    ks, es = [1.0, 2.0, 10.0, 1e3], [0.5, 1e-2, 1e-4, 1e-8]
    assert all(
        qlsa.queries(a, 1e-3) < qlsa.queries(b, 1e-3) for a, b in zip(ks, ks[1:], strict=False)
    )
    assert all(
        qlsa.queries(10.0, a) <= qlsa.queries(10.0, b) for a, b in zip(es, es[1:], strict=False)
    )
    for bad_k in (0.5, NAN):
        with pytest.raises(ValueError, match="kappa"):
            qlsa.queries(bad_k, 0.1)
    for bad_e in (0.0, 1.0, 1.5, NAN):
        with pytest.raises(ValueError, match="eps"):
            qlsa.queries(2.0, bad_e)
    with pytest.raises(ValueError, match="walk_error"):
        DiscreteAdiabatic(walk_error=1.0)


def test_sample_bounds_scale_with_s():
    s, eps, delta = 777_105, 0.01, 0.05
    bound, typical = tomography_samples(eps, s, delta)
    assert bound == 2 * math.ceil(25 * s * math.log(6 * s / delta) / eps**2)
    assert typical == 2 * math.ceil((s - 1) / (4 * eps**2))
    # what the old scaling table charged (s samples) is ~4.6e6 times too few at this point
    assert bound / 2 / s == pytest.approx(4.6e6, rel=0.05)
    b2, t2 = tomography_samples(eps, 2 * s, delta)
    assert t2 / typical == pytest.approx(2, rel=1e-5) and 2 < b2 / bound < 2.2
    for bad in (0.0, 1.0, NAN):
        with pytest.raises(ValueError, match="eps"):
            tomography_samples(bad, 10)


def test_norm_estimation_is_the_smallest_register_meeting_the_bound():
    for a, e in ((0.04, 0.01), (0.5, 0.1), (1e-3, 0.05)):
        m, runs = norm_estimation_queries(a, e)
        assert runs == 2 * (m - 1) + 1
        assert float(ae_error_bound(a, m)) <= 2 * a * e * (1 + 1e-9)
        assert float(ae_error_bound(a, m - 1)) > 2 * a * e


def test_rounds_queries_and_closed_form_ratio_against_hand_formulas():
    inp = _inputs()
    est = estimate(inp, Assumptions(eps=1e-3, eps_tomo=0.05), physical=False)
    P, kappa, T, s, n = 0.04, 40.0, 10, 30, 300
    rounds = math.ceil(math.pi / (4 * math.sqrt(P)))
    q = COSTA_NUMERICAL.queries(kappa, 1e-3)
    assert est.value("rounds") == rounds == 4
    assert est.value("queries Costa (estimate)") == pytest.approx(q)
    assert est.value("queries_per_sample") == pytest.approx(q * rounds)
    bound, typical = tomography_samples(0.05, s, 0.05)
    runs = norm_estimation_queries(P, 0.05)[1]
    assert est.value("total_queries_bound") == pytest.approx(bound * q * rounds + runs * q)
    assert est.value("total_queries_typical") == pytest.approx(typical * q * rounds + runs * q)
    tpq = 1.2e5 * (16**2 + 16) / 2
    assert est.value("toffolis_per_query") == pytest.approx(tpq)
    c_flop = 6e4 * T * s / n / (T * 16 * s)
    closed = (kappa / T) * (q / math.log(1e3) / kappa) * math.log(1e3) / math.sqrt(P)
    closed *= tpq / (16 * c_flop) / 0.05**2
    assert est.value("ratio_closed_form") == pytest.approx(closed)
    assert est.value("classical_flops_sparse") == pytest.approx(6e4 * T * s / n)
    assert est.value("logical_qubits") == pytest.approx(
        math.ceil(math.log2(11))
        + math.ceil(math.log2(31))
        + (math.ceil(math.log2(11 * 31)) + 16 + 1)
        + 4
        + 48
        + 300
        + 16 * 5 * 10
    )


# ---- labels, unavailable inputs, the window's own kappa and P ----------------------------------


def test_every_quantity_is_labelled_and_json_able():
    est = estimate(_inputs(), physical=False)
    assert est.quantities and all(
        isinstance(q.label, Provenance) and q.formula for q in est.quantities.values()
    )
    labels = {q.label for q in est.quantities.values()}
    assert {
        Provenance.MEASURED,
        Provenance.EXACT,
        Provenance.BOUND,
        Provenance.ESTIMATE,
        Provenance.ASSUMPTION,
    } <= labels
    assert est["samples_bound"].label == Provenance.BOUND
    assert est["samples_typical"].label == Provenance.ESTIMATE
    assert est["kappa"].label == Provenance.MEASURED
    json.dumps(est.to_dict())
    assert "| samples_bound |" in est.table() and "Costa (estimate)" in est.summary()


def test_unavailable_inputs_are_unavailable_not_zero():
    est = estimate(
        _inputs(kappa=NAN, sigma_max=NAN, sigma_min=NAN, target_probability=NAN, step=None),
        physical=False,
    )
    for name in (
        "kappa",
        "rounds",
        "queries Costa (estimate)",
        "total_queries_bound",
        "toffolis_per_query",
        "classical_flops_dense",
        "physical_qubits",
        "seconds_typical",
        "ratio_closed_form",
    ):
        q = est[name]
        assert q.label == Provenance.UNAVAILABLE and math.isnan(q.value) and q.value != 0
        assert est.to_dict()["quantities"][name]["value"] is None
    assert "history=False" in est["kappa"].note
    with pytest.raises(UnavailableError, match="history=True"):
        est.value("total_queries_typical")
    with pytest.raises(UnavailableError, match="step_costs"):
        est.value("classical_flops_dense")
    assert est["qubits_history"].available and est["samples_bound"].available
    assert "n/a" in est.summary()


@pytest.fixture(scope="module")
def windows():
    """Two 3-step windows of a 4-parameter least-squares problem, differing in eta."""
    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (3, 16, 4))
    y = x @ jax.random.normal(kw, (4,)) + 0.1
    params = {"w": jnp.zeros(4), "b": jnp.zeros(())}
    mask = {"w": jnp.ones(4, bool), "b": jnp.ones((), bool)}

    def loss(p, batch):
        xb, yb = batch
        return jnp.mean((xb @ p["w"] + p["b"] - yb) ** 2)

    reps = []
    for eta in (0.05, 0.3):
        cfg = qj.WindowConfig(eta, 3, kappa_iters=8)
        reps.append(qj.quantum_window(loss, params, mask, (x, y), cfg, jax.random.key(1))[1])
    step = step_costs(loss, params, (x[0], y[0]))
    return reps, step


def test_estimate_uses_the_kappa_and_p_of_its_window(windows):
    reps, step = windows
    ests = [estimate(r, step=step, physical=False) for r in reps]
    for r, e in zip(reps, ests, strict=True):
        assert e.value("kappa") == pytest.approx(float(r.kappa))
        assert e.value("target_probability") == pytest.approx(float(r.target_probability))
        assert e.value("T") == 3 and e.value("s") == 5
    assert ests[0].value("kappa") != pytest.approx(ests[1].value("kappa"))
    assert ests[0].value("target_probability") != pytest.approx(ests[1].value("target_probability"))
    # a report made without the history system (history=False leaves NaN): unavailable
    nan = jnp.asarray(NAN)
    no_history = dataclasses.replace(reps[0], kappa=nan, target_probability=nan, scale_scan=None)
    est = estimate(no_history, step=step, physical=False)
    assert not est["kappa"].available and not est["total_toffolis_bound"].available
    batched = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), reps[0], reps[1])
    with pytest.raises(ValueError, match="one window"):
        estimate(batched)


def test_scaling_table_cks_column_is_the_cks_count():
    from qsgd_jax.experiments.scaling import CKS, qlsa_total

    est = estimate(_inputs(), physical=False)
    q = ChildsKothariSomma().queries(40.0, 1e-2)
    expected = q * est.value("rounds") * est.value("samples_bound") + q * est.value("norm_runs")
    assert CKS == "queries CKS (assumption)"
    assert qlsa_total(est, CKS) == pytest.approx(expected)


# ---- physical counts: the estimator's own ------------------------------------------------------


def test_physical_counts_are_a_direct_call_of_the_estimator():
    est = estimate(_inputs(), Assumptions(eps_tomo=0.3), physical=True)
    counts = {
        "numQubits": int(est.value("logical_qubits")),
        "cczCount": math.ceil(est.value("toffolis_per_run")),
    }
    assert counts["cczCount"] < 10**12  # one chunk
    params = {
        "qubitParams": {"name": "qubit_gate_ns_e3"},
        "qecScheme": {"name": "surface_code"},
        "errorBudget": 1e-3,
    }
    direct = qdk_estimator.LogicalCounts(counts).estimate(params)
    assert est.value("physical_qubits") == direct["physicalCounts"]["physicalQubits"]
    assert est.value("code_distance") == direct["logicalQubit"]["codeDistance"]
    assert est.value("seconds_per_run") == pytest.approx(direct["physicalCounts"]["runtime"] * 1e-9)
    ratio = est.value("total_toffolis_typical") / est.value("toffolis_per_run")
    assert est.value("seconds_typical") == pytest.approx(est.value("seconds_per_run") * ratio)
    assert est.value("joules_typical") == pytest.approx(est.value("seconds_typical") * 25e3)
    assert est["physical_qubits"].label == Provenance.ASSUMPTION  # per-query model upstream


def test_chunked_runs_match_the_estimator_on_the_whole_run():
    model = PhysicalModel()
    toffolis = 2 * 10**12 + 6
    whole = qdk_estimator.LogicalCounts({"numQubits": 500, "cczCount": toffolis}).estimate(
        model.params(model.error_budget)
    )
    cost = physical_cost(toffolis, 500, model)
    assert cost.chunks == 3
    direct = qdk_estimator.LogicalCounts(cost.counts).estimate(cost.params)
    assert cost.physical_qubits == direct["physicalCounts"]["physicalQubits"]
    assert cost.physical_qubits == whole["physicalCounts"]["physicalQubits"]
    assert cost.code_distance == whole["logicalQubit"]["codeDistance"]
    assert cost.seconds == pytest.approx(whole["physicalCounts"]["runtime"] * 1e-9, rel=1e-6)


def test_missing_estimator_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "qdk", None)
    monkeypatch.setitem(sys.modules, "qdk.estimator", None)
    with pytest.raises(EstimatorNotInstalledError, match=r"pip install qdk"):
        estimate(_inputs(), physical=True)
    est = estimate(_inputs())
    assert not est["physical_qubits"].available
    assert "pip install qdk" in est["physical_qubits"].note
    assert est["total_toffolis_typical"].available


# ---- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(eps=1.5), "eps"),
        (dict(eps=0.0), "eps"),
        (dict(eps_tomo=1.0), "eps_tomo"),
        (dict(delta=NAN), "delta"),
        (dict(flop_rate=-1.0), "flop_rate"),
        (dict(toffolis_per_flop=NAN), "toffolis_per_flop"),
        (dict(qram_qubits_per_entry=-2.0), "qram_qubits_per_entry"),
        (dict(bits=0), "bits"),
        (dict(normalization="frobenius"), "normalization"),
    ],
)
def test_bad_assumptions(kw, match):
    with pytest.raises(ValueError, match=match):
        Assumptions(**kw)


def test_bad_physical_model_and_inputs():
    with pytest.raises(ValueError, match="power_watts"):
        PhysicalModel(power_watts=NAN)
    with pytest.raises(ValueError, match="error_budget"):
        PhysicalModel(error_budget=0.0)
    with pytest.raises(ValueError, match="qubit"):
        PhysicalModel(qubit="transmon")
    with pytest.raises(ValueError, match="num_params"):
        _inputs(num_params=3)
    with pytest.raises(ValueError, match="step"):
        estimate(_inputs(), step=_inputs().step)
    with pytest.raises(ValueError, match="WindowReport"):
        estimate({"kappa": 3.0})


# ---- classical side ----------------------------------------------------------------------------


def test_classical_flops_step_costs_and_sgd_time():
    x = jnp.ones((8, 8))
    assert classical_flops(lambda a: a @ a, x, num_steps=5) == pytest.approx(5 * 2 * 8**3, rel=0.01)

    def loss(p, b):
        return jnp.mean((b[0] @ p - b[1]) ** 2)

    batch = (jnp.ones((16, 4)), jnp.ones(16))
    sc = step_costs(
        loss,
        jax.ShapeDtypeStruct((4,), jnp.float32),
        (jax.ShapeDtypeStruct((16, 4), jnp.float32), jax.ShapeDtypeStruct((16,), jnp.float32)),
    )
    assert sc.batch_size == 16 and sc.data_size == 16 * 5
    hvp = lambda p, v, b: jax.jvp(lambda q: jax.grad(loss)(q, b), (p,), (v,))[1]  # noqa: E731
    assert sc.hvp_flops == classical_flops(hvp, jnp.zeros(4), jnp.ones(4), batch) > 0
    assert sc.step_flops > 0
    t = sgd_step_time(loss, jnp.zeros(4), batch, repeat=2)
    assert 0 < t < 1.0


def test_break_even_n():
    # quantum flat in n, classical linear: crossing at n = n0 Q0/C0
    assert break_even_n(1e6, 1e3, 1000, quantum_power=0.0) == pytest.approx(1e6, rel=1e-6)
    be = break_even_n(1e6, 1e3, 1000, quantum_power=0.0, log_power=1.0)
    assert be == pytest.approx(1e6 * math.log2(be) / math.log2(1000), rel=1e-6)
    # samples ∝ s at a fixed sparsity fraction: the quantum cost grows as fast: never
    assert break_even_n(1e6, 1e3, 1000) == math.inf
    assert break_even_n(1.0, 1e9, 1000, quantum_power=0.0) == 2.0
