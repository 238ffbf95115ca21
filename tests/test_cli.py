"""The README's main job, at a small setting."""

import json

import pytest

from qsgd_jax._cli import main


def test_demo_writes_results_and_errors_fall_with_order(tmp_path, capsys):
    assert main(["demo", "--steps", "12", "--max-order", "3", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "results.json").read_text())
    errs = [result["orders"][k]["max_relative_error"] for k in ("1", "2", "3")]
    assert errs[0] > errs[1] > errs[2] > 0
    assert (tmp_path / "carleman_error.png").stat().st_size > 1000
    assert "| order N |" in (tmp_path / "report.md").read_text()
    assert "dissipative" in capsys.readouterr().out


def test_demo_rejects_non_dissipative_eta(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--eta", "0.9", "--out", str(tmp_path)])
    assert "--eta must lie in" in capsys.readouterr().err
