"""The command line: demo, list, run (one / all), help and bad input."""

import json

import pytest

from qsgd_jax.experiments import PRESETS, REGISTRY, Experiment, Output, main


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


@pytest.mark.parametrize(
    "name, setting, message",
    [
        ("sweeps", "etas=-0.1,0.2", "each element of etas must be a finite number in (0, inf)"),
        ("sweeps", "sparsities=1.5", "sparsities must be a finite number in [0, 1)"),
        ("sweeps", "shots=0,100", "each element of shots must be an integer in [1, 1e+15]"),
        ("sweeps", "max_order=0", "max_order must be an integer in [1, 6]"),
        ("hybrid", "shots=inf", "shots must be an integer in [1, 1e+15]"),
        ("hybrid", "shots=nan", "shots must be an integer"),
        ("hybrid", "early_late_starts=0,-4", "-4 is not"),
        ("hybrid", "sparsity=1", "sparsity must be a finite number in [0, 1)"),
        ("hybrid", "hidden=16,0", "each element of hidden must be an integer in [1, inf)"),
        ("carleman", "eta=0", "eta must be a finite number in (0, inf)"),
        ("carleman", "burgers_rtol=2", "burgers_rtol must be a finite number in (0, 1)"),
        ("spectra", "lanczos_steps=1", "lanczos_steps must be an integer in [2, inf)"),
        ("scaling", "T_values=10,-20", "-20 is not"),
    ],
)
def test_out_of_range_settings_are_refused_before_running(tmp_path, capsys, name, setting, message):
    with pytest.raises(SystemExit) as e:
        main(["run", name, "--set", setting, "--out", str(tmp_path / "x")])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_every_numeric_setting_declares_a_range_and_presets_fit():
    from qsgd_jax.experiments._framework import Range, register

    def run(config, progress):  # pragma: no cover - never run
        raise AssertionError

    with pytest.raises(ValueError, match=r"numeric settings \['k'\] need a `Range`"):
        register(Experiment("tmp_a", "-", "-", {p: {"k": 1} for p in PRESETS}, run))
    with pytest.raises(ValueError, match="preset 'ci'.*k must be an integer in \\[2, inf\\)"):
        register(
            Experiment(
                "tmp_b",
                "-",
                "-",
                {p: {"k": 1} for p in PRESETS},
                run,
                ranges={"k": Range(2, integer=True)},
            )
        )
    assert "tmp_a" not in REGISTRY and "tmp_b" not in REGISTRY
    for exp in REGISTRY.values():
        for key, value in exp.presets["ci"].items():
            numeric = (
                not isinstance(value, bool | str)
                and value is not None
                and (not isinstance(value, tuple) or all(isinstance(v, int | float) for v in value))
            )
            assert not numeric or key in exp.ranges, (exp.name, key)


_SLOW = """
import pathlib, sys, time
from qsgd_jax.experiments import PRESETS, REGISTRY, Experiment, run_experiment

def run(config, progress):
    pathlib.Path(sys.argv[2]).write_text("started")
    time.sleep(120)

REGISTRY["slow"] = Experiment("slow", "slow", "-", {p: {"k": 1} for p in PRESETS}, run)
run_experiment("slow", "ci", (), sys.argv[1])
"""


def test_sigterm_during_a_run_leaves_no_temporary_folder(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out, marker, log = tmp_path / "res" / "slow", tmp_path / "started", tmp_path / "log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SLOW, str(out), str(marker)],
            env={**os.environ, "JAX_PLATFORMS": "cpu"},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the slow experiment did not start"
            time.sleep(0.1)
        assert [p.name[:10] for p in out.parent.iterdir()] == [".slow.tmp-"]  # the run's folder
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 128 + signal.SIGTERM
    assert list(out.parent.iterdir()) == []  # neither the result nor a hidden temporary folder


def test_a_diverging_run_is_a_message_naming_the_step(monkeypatch, tmp_path, capsys):
    import jax.numpy as jnp
    import numpy as np

    import qsgd_jax as qj

    def run(config, progress):  # u_t = 1e100^t overflows float64 at t = 4
        poly = qj.polynomial_map(np.zeros(2), 1e100 * np.eye(2), eta=1.0)
        qj.carleman_error(qj.carleman(poly, 1), jnp.ones(2), 6)
        raise AssertionError("not reached")  # pragma: no cover

    monkeypatch.setitem(
        REGISTRY, "boom", Experiment("boom", "-", "-", {p: {} for p in PRESETS}, run)
    )
    with pytest.raises(SystemExit) as e:
        main(["run", "boom", "--out", str(tmp_path / "x")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "boom stopped, nothing was written: Carleman error study failed" in err
    assert "at step t = 4" in err and not list(tmp_path.iterdir())
