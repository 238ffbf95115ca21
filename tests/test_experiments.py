"""Every experiment at its `ci` preset: JSON, PNG and report, with real properties of the numbers;
the framework's bad-input handling (nothing half-written)."""

import json
import os

import numpy as np
import pytest

from qsgd_jax.experiments import (
    ORDER,
    PRESETS,
    REGISTRY,
    Experiment,
    ExperimentError,
    Output,
    resolve_config,
    run_experiment,
)


def _run(name, tmp_path):
    res = run_experiment(name, "ci", out=tmp_path / name, progress=lambda m: None)
    record = json.loads(res.json.read_text())
    assert record["experiment"] == name and record["preset"] == "ci"
    assert res.figures and all(p.stat().st_size > 5000 for p in res.figures)  # real plots
    report = res.report.read_text()
    assert report.startswith(f"# {name}:") and "| " in report
    assert all(f"]({p.name})" in report for p in res.figures)
    assert sorted(os.listdir(tmp_path)) == [name]  # no temporary folders left behind
    return record["results"]


def test_registry_is_complete():
    names = {"carleman", "carleman_scale", "spectra", "hybrid", "scaling", "sweeps", "figure2"}
    assert set(ORDER) == set(REGISTRY) == names
    for exp in REGISTRY.values():
        assert set(exp.presets) == set(PRESETS) and exp.summary and exp.shows


def test_carleman(tmp_path):
    r = _run("carleman", tmp_path)
    disc = [r["toy"]["forms"]["discrete"][k]["max_relative_error"] for k in "1234"]
    eul = [r["toy"]["forms"]["euler"][k]["max_relative_error"] for k in "1234"]
    assert all(a > 5 * b for a, b in zip(disc, disc[1:], strict=False))  # geometric in N
    assert eul[3] > 10 * disc[3]  # the euler form is floored by its O(eta) time error
    burg = r["burgers"]  # the PNAS problem on t in [0, 0.2]: R as in the article's caption
    assert burg["setup"]["variant"] == "pnas" and burg["error_kind"] == "absolute"
    assert abs(burg["R"] / 43.59 - 1) < 0.01, burg["R"]
    errs = [burg["orders"][k]["max_error"] for k in "1234"]
    assert all(a > b for a, b in zip(errs, errs[1:], strict=False)), errs
    assert burg["monotone_decrease"] and errs[-1] > burg["euler"]["max_error"]
    assert "published" not in burg  # a shorter span than Fig. 1 is not compared with it


def test_sweeps(tmp_path):
    r = _run("sweeps", tmp_path)
    err = np.asarray(r["sweep"]["max_error"])  # (eta, sparsity, N)
    rho = np.asarray(r["sweep"]["rho"])
    assert err.shape == (3, 2, 2)
    diss = rho[..., 0] < 1
    assert np.all(err[..., 1][diss] < err[..., 0][diss])  # order 2 beats order 1 where rho < 1
    ro = r["readout"]["mean_l2_error"]
    assert ro[0] > ro[1] > ro[2]  # read-out error falls with shots, ~ 1/sqrt(N)
    assert 0.3 < ro[2] / r["readout"]["typical"][2] < 3


def test_scaling(tmp_path):
    r = _run("scaling", tmp_path)
    k = r["kappa"]
    assert np.all(np.diff(k["dissipative"]) > 0) and np.all(np.diff(k["almost"]) > 0)
    assert k["exponent_almost"] > k["exponent_dissipative"] > 0.8
    ns = [row["n"] for row in r["resources"]]
    assert ns == sorted(ns) and all(row["classical_flops"] > 0 for row in r["resources"])


def test_spectra(tmp_path):
    r = _run("spectra", tmp_path)
    cps = {c["checkpoint"]: c for c in r["checkpoints"]}
    assert list(cps) == ["dense", "pruned, step 0", "sparse step 5"]
    for c in cps.values():
        assert 0 <= c["positive fraction"] <= 1 and c["lambda_min"] <= c["lambda_max"]
    assert all(len(p["total"]) == 61 for p in r["propagation"].values())
    assert all(abs(p["total"][0] - 1) < 1e-6 for p in r["propagation"].values())  # E(0) = 1


def test_hybrid(tmp_path):
    r = _run("hybrid", tmp_path)
    fixed = r["runs"]["fixed"]
    assert [w["length"] for w in fixed["windows"]] == [3, 3]
    acc_h, acc_s = fixed["final_hybrid"]["accuracy"], fixed["final_sgd"]["accuracy"]
    assert acc_s > 0.5 and abs(acc_h - acc_s) < 0.05
    assert r["early_late"]["start"] == [0.0, 4.0]
    assert all(np.isfinite(r["early_late"]["total_error"]))


# ---- bad input -------------------------------------------------------------------------------


def test_unknown_names_and_overrides():
    exp = REGISTRY["carleman"]
    with pytest.raises(ExperimentError, match="unknown experiment 'nope'.*carleman"):
        run_experiment("nope")
    with pytest.raises(ExperimentError, match="unknown preset 'gpu'"):
        resolve_config(exp, "gpu")
    with pytest.raises(ExperimentError, match="no setting 'stepz'.*steps"):
        resolve_config(exp, "ci", ["stepz=3"])
    with pytest.raises(ExperimentError, match="expected an integer"):
        resolve_config(exp, "ci", ["steps=3.5"])
    with pytest.raises(ExperimentError, match="expected a number"):
        resolve_config(exp, "ci", ["eta=fast"])
    with pytest.raises(ExperimentError, match="expected a boolean"):
        resolve_config(exp, "ci", ["burgers=maybe"])
    with pytest.raises(ExperimentError, match="key=value"):
        resolve_config(exp, "ci", ["steps"])
    with pytest.raises(ExperimentError, match="must be one of exact, sample, gaussian"):
        resolve_config(REGISTRY["hybrid"], "ci", ["readout=guess"])
    cfg = resolve_config(REGISTRY["hybrid"], "ci", ["hidden=8,4", "history=yes", "shots=100"])
    assert cfg["hidden"] == (8, 4) and cfg["history"] is True and cfg["shots"] == 100.0
    assert resolve_config(exp, "ci", {"steps": 7})["steps"] == 7


@pytest.fixture
def fake(monkeypatch):
    """A fast registered experiment whose run fails when `fail` is set."""

    def run(config, progress):
        import matplotlib.pyplot as plt

        progress("working")
        if config["fail"]:
            raise RuntimeError("boom")
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, config["x"]])
        return Output({"x": config["x"]}, {"line": fig}, "body", "| a |\n|---|\n| 1 |")

    preset = {"x": 1.0, "fail": False}
    exp = Experiment("fake", "a fake", "nothing", {p: preset for p in PRESETS}, run)
    monkeypatch.setitem(REGISTRY, "fake", exp)
    return exp


def test_failed_run_leaves_nothing_and_keeps_old_results(fake, tmp_path):
    out = tmp_path / "res"
    run_experiment("fake", out=out, overrides=["x=2"], progress=lambda m: None)
    assert json.loads((out / "results.json").read_text())["results"] == {"x": 2.0}
    with pytest.raises(RuntimeError, match="boom"):
        run_experiment("fake", out=out, overrides=["fail=true"], progress=lambda m: None)
    assert sorted(os.listdir(tmp_path)) == ["res"]  # no temp folder, old results intact
    assert json.loads((out / "results.json").read_text())["results"] == {"x": 2.0}
    run_experiment("fake", out=out, overrides=["x=3"], progress=lambda m: None)  # replaced
    assert json.loads((out / "results.json").read_text())["results"] == {"x": 3.0}
    assert sorted(os.listdir(out)) == ["line.png", "report.md", "results.json"]


def test_unwritable_output_folder(fake, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ExperimentError, match="cannot write the output folder"):
        run_experiment("fake", out=blocker / "sub", progress=lambda m: None)
    with pytest.raises(ExperimentError, match="exists and is not a folder"):
        run_experiment("fake", out=blocker, progress=lambda m: None)
    assert sorted(os.listdir(tmp_path)) == ["file"]
