"""Progress bars: on stderr when enabled, silent (and the items unchanged) when not."""

import pytest

import qsgd_jax as qj
import qsgd_jax.experiments  # noqa: F401 (qj.experiments: progress_counter, PROGRESS_ENV_VAR)


def test_enabled_bar_writes_to_stderr_only(capsys):
    items = list(qj.experiments.progress(iter([1, 2, 3]), enabled=True, desc="windows", total=3))
    out = capsys.readouterr()
    assert items == [1, 2, 3]
    assert out.out == ""
    assert "windows" in out.err and "3/3" in out.err


def test_disabled_is_silent_and_the_default(capsys, monkeypatch):
    monkeypatch.delenv(qj.experiments.PROGRESS_ENV_VAR, raising=False)
    it = iter(range(4))
    assert qj.experiments.progress(it) is it  # nothing wrapped
    assert list(qj.experiments.progress(range(4), enabled=None, desc="x")) == [0, 1, 2, 3]
    with qj.experiments.progress_counter(total=10) as bar:
        bar.update(10)
    assert capsys.readouterr().err == ""


def test_environment_variable_switches_bars_on(capsys, monkeypatch):
    monkeypatch.setenv(qj.experiments.PROGRESS_ENV_VAR, "1")
    with qj.experiments.progress_counter(total=8, enabled=None, desc="sparse steps") as bar:
        bar.update(5)
        bar.update(3)
    err = capsys.readouterr().err
    assert "sparse steps" in err and "8/8" in err


def test_bad_arguments_are_named():
    # (Under the test suite's runtime type checking the annotation catches it first; both
    # errors name the argument.)
    with pytest.raises(TypeError, match="enabled"):
        qj.experiments.progress([1], enabled="yes")
    with pytest.raises(ValueError, match="`total` must be a non-negative int or None, got -1"):
        qj.experiments.progress_counter(total=-1, enabled=True)
