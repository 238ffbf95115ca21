"""Test configuration: strict JAX promotion rules, float64, two CPU devices, PRNG keys.

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

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_enable_x64", True)


@pytest.fixture
def getkey():
    """Hand out fresh, deterministic PRNG keys: `getkey()` returns the next one."""
    key = jax.random.key(0)

    def _getkey():
        nonlocal key
        key, sub = jax.random.split(key)
        return sub

    return _getkey
