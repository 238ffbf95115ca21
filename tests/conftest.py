"""Test configuration: strict JAX promotion rules, float64, four CPU devices, PRNG keys, a
persistent compilation cache.

Strict dtype promotion and raising rank promotion catch silent up-casts and broadcasting bugs;
float64 is on so that tests can compare errors far below float32 resolution (library code keeps
the dtype of its inputs, and float32 behaviour is tested by passing float32 inputs).
"""

import os

# Four host devices, so sharded code paths run on CPU. Must be set before JAX initializes.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_enable_x64", True)

# Persistent compilation cache: most of the suite's time is XLA compiling the same programs
# on every run. Compiled executables are reused across runs (and across xdist workers) from
# an ignored folder; `JAX_COMPILATION_CACHE_DIR` overrides it, `pytest --cache-clear` does
# not touch it (delete the folder to start afresh). Results do not depend on it. The settings
# go through the environment so that the subprocesses the tests start (notebook kernels, the
# command line) use the same cache. Every program is stored, however quick to compile: the
# suite's eager code compiles hundreds of small programs (tens of ms each) and reading them
# back is several times faster than compiling them again.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    str(Path(__file__).resolve().parent.parent / ".pytest_cache" / "jax-compilation-cache"),
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update(
    "jax_persistent_cache_min_compile_time_secs",
    float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
)
jax.config.update(
    "jax_persistent_cache_min_entry_size_bytes",
    int(os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"]),
)


@pytest.fixture
def getkey():
    """Hand out fresh, deterministic PRNG keys: `getkey()` returns the next one."""
    key = jax.random.key(0)

    def _getkey():
        nonlocal key
        key, sub = jax.random.split(key)
        return sub

    return _getkey


# The files holding the suite's longest tests (end-to-end studies, notebooks, compile-heavy
# jit/vmap checks) run first, so that with `-n 2` (work stealing, see pyproject.toml) the
# last tests to run are short ones and neither worker waits long for the other at the end.
# Work stealing (an idle worker takes queued tests from the other) replaces xdist's default
# `load` split when `-n` is given without `--dist`; set here rather than in `addopts` so that
# `-p no:xdist` keeps working.
_LONG_FIRST = (
    "test_notebooks.py",
    "test_carleman_scale.py",
    "test_experiments.py",
    "test_sweep.py",
    "test_tomography.py",
    "test_factored.py",
    "test_readout_methods.py",
    "test_hybrid.py",
    "test_models.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(_LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept


def pytest_configure(config):
    explicit = any(a.startswith("--dist") for a in config.invocation_params.args)
    if getattr(config.option, "dist", "no") == "load" and not explicit:
        config.option.dist = "worksteal"
