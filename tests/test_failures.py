"""Failures are read from statuses, never from exception types: an error raised while a window
runs (a failing host callback, an out-of-memory) stops the pipeline with that error instead of
being recorded as a diverged window; a diverged baseline or window is reported where a user
looks (the result, the warnings, the command line's output and exit status)."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsgd_jax as qj
from qsgd_jax.experiments import main, run_experiment


def _data(n=120, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(n, d)))
    y = x @ jnp.asarray(rng.normal(size=(d, 1)))
    params = {"lin": {"kernel": jnp.asarray(rng.normal(size=(d, 1)))}}
    return x, y, params


def _quadratic(params, batch):
    return 0.5 * jnp.mean((batch.x @ params["lin"]["kernel"] - batch.y) ** 2)


def test_a_runtime_failure_inside_a_window_propagates():
    """A host callback that fails on its first call (the window's): XLA reports it as a
    `RuntimeError` subclass, as it does an out-of-memory; the run stops with it."""
    x, y, params = _data()
    calls = []

    def explode(_):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("injected failure inside the window")

    def loss(params, batch):
        jax.debug.callback(explode, params["lin"]["kernel"][0, 0])
        return _quadratic(params, batch)

    cfg = qj.HybridConfig(
        window=qj.WindowConfig(0.1, 3, diagnostics=False),
        pretrain_steps=0,
        sparsity=0.5,
        batch_size=20,
        sparse_steps=6,
        num_windows=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "window flagged, classical steps instead" warning
        with pytest.raises(RuntimeError, match="injected failure") as info:
            qj.hybrid_run(loss, params, x, y, cfg, jax.random.key(0))
    assert not isinstance(info.value, qj.NonFiniteError)


def test_a_failure_inside_a_figure2_window_stops_the_experiment(monkeypatch, tmp_path):
    """The figure2 study composes `hybrid_run`; an error of its window is not laundered."""

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("RESOURCE_EXHAUSTED: injected out of memory")

    # Replace the window the pipeline runs (the only way in: the experiment builds its model).
    monkeypatch.setattr("qsgd_jax._hybrid.quantum_window", out_of_memory)
    with pytest.raises(RuntimeError, match="injected out of memory"):
        run_experiment("figure2", "ci", out=tmp_path / "f2", progress=lambda m: None)
    assert not (tmp_path / "f2").exists()  # nothing written for a failed run


def test_a_diverging_baseline_and_windows_are_reported():
    x, y, params = _data()
    cfg = qj.HybridConfig(
        window=qj.WindowConfig(5.0, 2, history=False),
        pretrain_steps=0,
        sparsity=0.5,
        batch_size=20,
        sparse_steps=8,
        num_windows=1,
    )
    with pytest.warns(RuntimeWarning) as record:
        res = qj.hybrid_run(_quadratic, params, x, y, cfg, jax.random.key(0))
    messages = " ".join(str(w.message) for w in record)
    assert "baseline SGD run diverged" in messages and "hybrid run diverged" in messages
    # The degree-1 window of a quadratic is exact GD: it follows the diverging dynamics (no
    # window flag), and both runs are reported, at the step where the loss blew up.
    assert {d["run"] for d in res.divergences} == {"sgd", "hybrid"}
    assert all(0 < d["step"] <= 8 and "loss" in d["why"] for d in res.divergences)
    assert res.summary()["divergences"] == list(res.divergences)


def test_the_command_line_warns_and_strict_exits_non_zero(tmp_path, capsys):
    sets = ["--set", "eta=50", "--set", "sparse_steps=4", "--set", "pretrain_steps=5"]
    with pytest.warns(RuntimeWarning):
        status = main(["run", "hybrid", "--out", str(tmp_path / "a"), *sets])
    out = capsys.readouterr().out
    assert status == 0 and "warning:" in out and "DIVERGED" in out
    assert "## Warnings" in (tmp_path / "a" / "report.md").read_text()
    with pytest.warns(RuntimeWarning):
        strict = main(["run", "hybrid", "--strict", "--out", str(tmp_path / "b"), *sets])
    assert strict == 3
