"""The carleman_scale experiment at its ci preset: order-2 windows on a whole pruned CNN."""

import json

import numpy as np

from qsgd_jax.experiments import run_experiment


def test_carleman_scale_ci(tmp_path):
    run_experiment("carleman_scale", "ci", out=tmp_path / "cs", progress=lambda m: None)
    data = json.loads((tmp_path / "cs" / "results.json").read_text())
    assert (tmp_path / "cs" / "carleman_scale.png").stat().st_size > 0
    windows = data["results"]["windows"]
    assert sorted(int(s) for s in windows) == [0, 6]
    for w in windows.values():
        o1, o2 = w["orders"]["1"], w["orders"]["2"]
        c1, c2 = np.asarray(o1["carleman"]), np.asarray(o2["carleman"])
        assert c1[0] == c2[0] == 0.0 and np.all(np.isfinite(c1)) and np.all(np.isfinite(c2))
        # The first step is exact at every order (the Taylor model matches the gradient at 0).
        assert c1[1] < 1e-5 and c2[1] < 1e-5
        assert c2[-1] < 0.5 * c1[-1]  # order 2 removes most of the linearization error
        assert o2["state_bytes"] < o2["dense_state_bytes"]
        assert 0 <= w["dissipation"]["positive_fraction"] <= 1
    report = (tmp_path / "cs" / "report.md").read_text()
    assert "Carleman err N=2" in report and "a dense y2 would need" in report
