"""The command line: demo, list, run (one / all), help and bad input."""

import json

import pytest

from qsgd_jax._cli import main
from qsgd_jax.experiments import PRESETS, REGISTRY, Experiment, Output


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


def test_help_and_list(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "qsgd-jax run hybrid --preset cpu" in text and "results/<name>" in text
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    for name in REGISTRY:
        assert f"\n{name}" in "\n" + text
    assert "sparse_steps = 8 / 60" in text  # ci / cpu values of a setting


@pytest.fixture
def fakes(monkeypatch):
    import qsgd_jax.experiments as ex

    def make(name):
        def run(config, progress):
            import matplotlib.pyplot as plt

            if config["k"] < 0:
                raise ValueError("k must be positive")
            fig, ax = plt.subplots()
            ax.plot([0, config["k"]])
            return Output({"k": config["k"]}, {"p": fig}, "body", f"| {name} |\n|---|")

        return Experiment(name, f"fake {name}", "-", {p: {"k": 1} for p in PRESETS}, run)

    for n in ("f1", "f2"):
        monkeypatch.setitem(REGISTRY, n, make(n))
    monkeypatch.setattr(ex, "ORDER", ("f1", "f2"))


def test_run_one_and_all(fakes, tmp_path, capsys):
    assert main(["run", "f1", "--set", "k=4", "--out", str(tmp_path / "one")]) == 0
    assert json.loads((tmp_path / "one" / "results.json").read_text())["results"] == {"k": 4}
    out = capsys.readouterr().out
    assert "| f1 |" in out and "report.md" in out
    assert main(["run", "all", "--preset", "cpu", "--out", str(tmp_path / "all")]) == 0
    for n in ("f1", "f2"):
        assert (tmp_path / "all" / n / "p.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "nope"], "unknown experiment 'nope'"),
        (["run", "f1", "--preset", "huge"], "unknown preset 'huge'"),
        (["run", "f1", "--set", "q=1"], "has no setting 'q'"),
        (["run", "f1", "--set", "k=one"], "expected an integer"),
        (["run", "all", "--set", "k=2"], "--set applies to one experiment"),
    ],
)
def test_bad_input_is_a_clear_error(fakes, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        main([*args, "--out", str(tmp_path / "x")])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_library_value_error_is_reported_and_nothing_written(fakes, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["run", "f1", "--set", "k=-1", "--out", str(tmp_path / "x")])
    assert "f1 stopped, nothing was written: k must be positive" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not list(tmp_path.iterdir())


def test_unwritable_out_is_a_clear_error(fakes, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit):
        main(["run", "f1", "--out", str(tmp_path / "file" / "sub")])
    assert "cannot write the output folder" in capsys.readouterr().err
