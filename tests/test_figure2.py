"""The `figure2` experiment at its `ci` preset, through the public experiment API: the three
panels, the JSON record, E_paper recomputed with numpy from the stored SLQ quadrature, the
accuracies and the download schedule."""

import json
import os

import numpy as np
import pytest

from qsgd_jax.experiments import REGISTRY, ExperimentError, resolve_config, run_experiment


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("figure2") / "figure2"
    res = run_experiment("figure2", "ci", out=out, progress=lambda m: None)
    return res, json.loads(res.json.read_text())


def _paper_proxy(nodes, weights, eta, a_c, num_steps):
    """E_paper(t) of `docs/math/propagation.md` from a quadrature, written out with numpy."""
    lam, w = np.ravel(nodes), np.ravel(weights) / np.sum(weights)
    a = -eta * lam
    keep = np.abs(a) >= a_c
    t = np.arange(num_steps + 1)
    if not keep.any():  # no mode with |eta lambda| >= a_c: the proxy is undefined
        return np.full(t.shape, np.nan)
    return np.array([np.sum(w[keep] * np.abs(1 + a[keep]) ** k) for k in t]) / np.sum(w[keep])


def test_outputs_exist(ci_run):
    res, record = ci_run
    assert record["experiment"] == "figure2" and record["preset"] == "ci"
    assert [p.name for p in res.figures] == ["figure2.png"]
    assert res.figures[0].stat().st_size > 20000  # three filled panels, not an empty canvas
    report = res.report.read_text()
    assert report.startswith("# figure2:")
    for feature in ("E_paper first below 1", "crosses back", "accuracy dip", "spectral support"):
        assert feature in report
    assert "](figure2.png)" in report
    assert sorted(os.listdir(res.folder.parent)) == ["figure2"]


def test_downloads_and_schedule(ci_run):
    _, record = ci_run
    cfg, r = record["config"], record["results"]
    steps, window = cfg["steps"], cfg["window"]
    assert r["num_windows"] == steps // window == r["num_downloads"]
    assert [w["download"] for w in r["windows"]] == [
        window * (k + 1) for k in range(steps // window)
    ]
    assert [w["upload"] for w in r["proxy"]] == [window * k for k in range(steps // window)]
    assert [s["step"] for s in r["spectra"]] == list(range(0, steps + 1, cfg["spectrum_every"]))
    assert r["accuracy"]["step"] == list(range(0, steps + 1, cfg["eval_every"]))
    assert 0 < r["active_params"] < r["num_params"]


def test_proxy_matches_numpy_from_stored_quadrature(ci_run):
    _, record = ci_run
    cfg, r = record["config"], record["results"]
    spectra = {s["step"]: s for s in r["spectra"]}
    assert all(p["kept_mass"] > 0 for p in r["proxy"])  # the ci spectrum reaches a_c
    for p in r["proxy"]:
        s = spectra[p["spectrum_step"]]
        length = len(p["value"]) - 1
        assert length == cfg["window"]
        want = _paper_proxy(s["nodes"], s["weights"], cfg["eta"], cfg["a_c"], length)
        np.testing.assert_allclose(p["value"], want, rtol=1e-4)
        below = np.flatnonzero((want < 1) & (np.arange(length + 1) >= 1))
        assert p["first_below"] == (below[0] if below.size else None)
        assert p["minimum"] == pytest.approx(want.min(), rel=1e-4)
        # the spectrum's kept mass is what the proxy normalizes by
        lam, w = np.ravel(s["nodes"]), np.ravel(s["weights"])
        kept = w[np.abs(cfg["eta"] * lam) >= cfg["a_c"]].sum() / w.sum()
        assert p["kept_mass"] == pytest.approx(kept, rel=1e-4)
        # E(t) over all modes, also from the quadrature
        e_all = [np.sum(w * np.abs(1 - cfg["eta"] * lam) ** k) / w.sum() for k in range(length + 1)]
        np.testing.assert_allclose(p["e_total"], e_all, rtol=1e-4)


def test_spectra_and_accuracies_are_sane(ci_run):
    _, record = ci_run
    r = record["results"]
    for s in r["spectra"]:
        assert s["lambda_min"] <= s["lambda_max"]
        assert np.isclose(np.sum(s["weights"]), 1.0, rtol=1e-4)
        assert s["lambda_min"] == pytest.approx(np.min(s["nodes"]), rel=1e-6)
        assert np.all(np.asarray(s["density"]) >= 0)
    accs = r["accuracy"]["train"] + r["accuracy"]["test"] + r["baseline"]["train"]
    assert all(0.0 <= a <= 1.0 for a in accs)
    # the ci model learns: dense pre-training beats chance (10 classes) clearly
    assert r["accuracy_dense"]["test"] > 0.5
    for w in r["windows"]:
        assert not w["diverged"]
        assert 0 < w["relative_readout_error"] < 0.5  # finite shots: a real, small read-out error
        for side in ("accuracy_before_readout", "accuracy_after_readout"):
            assert 0.0 <= w[side]["train"] <= 1.0
    # the accuracy stored at a download is the one after the read-out
    at = dict(zip(r["accuracy"]["step"], r["accuracy"]["train"], strict=True))
    for w in r["windows"]:
        assert at[w["download"]] == pytest.approx(w["accuracy_after_readout"]["train"])


def test_bad_settings_are_refused_before_running(tmp_path):
    exp = REGISTRY["figure2"]
    with pytest.raises(ExperimentError, match="multiple of window"):
        run_experiment("figure2", "ci", ["steps=7"], out=tmp_path / "x", progress=lambda m: None)
    with pytest.raises(ExperimentError, match="qram_steps"):
        run_experiment(
            "figure2",
            "ci",
            ["qram=true", "qram_steps=4"],
            out=tmp_path / "y",
            progress=lambda m: None,
        )
    with pytest.raises(ExperimentError, match="finetune, scratch"):
        resolve_config(exp, "ci", ["mode=lottery"])
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_qram_variant_and_sparse_scratch(tmp_path):
    """QRAM: classical steps after each download, then the upload; scratch: fresh kept weights."""
    sets = [
        "qram=true",
        "qram_steps=1",
        "mode=scratch",
        "baseline=false",
        "pretrain_steps=20",
        "lanczos_steps=4",
        "spectrum_every=4",
        "eval_every=1",
    ]
    res = run_experiment("figure2", "ci", sets, out=tmp_path / "q", progress=lambda m: None)
    record = json.loads(res.json.read_text())
    cfg, r = record["config"], record["results"]
    w, n = cfg["window"], cfg["steps"] // cfg["window"]
    assert [x["upload"] for x in r["windows"]] == [0] + [k * w + 1 for k in range(1, n)]
    assert [x["classical_steps_before"] for x in r["windows"]] == [0] + [1] * (n - 1)
    assert [len(p["value"]) - 1 for p in r["proxy"]] == [w] + [w - 1] * (n - 1)
    assert [x["download"] for x in r["windows"]] == [w * (k + 1) for k in range(n)]
    assert r["num_downloads"] == n
    # the upload spectra are stored, so E_paper can be checked against them
    spectra = {s["step"]: s for s in r["spectra"]}
    for p in r["proxy"]:
        s = spectra[p["spectrum_step"]]
        want = _paper_proxy(s["nodes"], s["weights"], cfg["eta"], cfg["a_c"], len(p["value"]) - 1)
        np.testing.assert_allclose(p["value"], want, rtol=1e-4)
    # sparse scratch: the trained mask on fresh weights starts near chance (10 classes), far
    # below the dense model the mask came from
    assert r["accuracy_pruned"]["train"] < 0.35 < r["accuracy_dense"]["train"]
