"""Sweeps over several processes: two CPU processes joined by `jax.distributed` split one grid.

The test launches this file twice as a script (`python test_distributed.py PORT ID OUT`), one
process per `process_id`, on localhost. Each runs the same `qj.sweep` call over the devices of
both processes and writes the result it got; both must equal a numpy oracle and a
single-process sweep of the same grid.
"""

import os
import socket
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsgd_jax as qj

NUM_PROCESSES = 2
DEVICES_PER_PROCESS = 2
TIMEOUT_S = 120
A = [0.5, 1.0, 1.5, 2.0, 2.5]
N = [1, 2, 3]
W = np.linspace(-1.0, 1.0, 3)


def _target(c):
    """A cheap configuration function with a vector output, an int field and a base array."""
    a, n = c["a"], c["n"].astype(c["w"].dtype)
    return {"vec": c["w"] * a + n, "poly": a**2 - n * a}


def _grid():
    return qj.grid(a=A, n=N)


def _base():
    return {"w": jnp.asarray(W), "a": 0.0, "n": 0}


def _oracle():
    a, n = np.meshgrid(A, np.asarray(N, float), indexing="ij")
    return {"vec": a[..., None] * W + n[..., None], "poly": a**2 - n * a}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _worker(port: int, process_id: int, out: str) -> None:
    """One process of the distributed sweep: join, sweep over all processes' devices, save."""
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.distributed.initialize(
        coordinator_address=f"localhost:{port}",
        num_processes=NUM_PROCESSES,
        process_id=process_id,
        initialization_timeout=TIMEOUT_S // 2,
    )
    try:
        # 15 points over 4 devices in chunks of 2 per device: two chunks, one padded point
        res = qj.sweep(_target, _grid(), base=_base(), chunk_size=2)
        np.savez(
            out,
            devices=len(jax.devices()),
            local=len(jax.local_devices()),
            **{k: np.asarray(v) for k, v in res.values.items()},
        )
    finally:
        jax.distributed.shutdown()


@pytest.mark.skipif(
    not hasattr(getattr(jax, "distributed", None), "initialize"),
    reason="jax.distributed is unavailable in this JAX build",
)
def test_two_processes_split_one_grid_and_equal_one_process(tmp_path):
    port = _free_port()
    env = dict(
        os.environ,
        XLA_FLAGS=f"--xla_force_host_platform_device_count={DEVICES_PER_PROCESS}",
        JAX_PLATFORMS="cpu",
    )
    outs = [tmp_path / f"process_{i}.npz" for i in range(NUM_PROCESSES)]
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, str(port), str(i), str(outs[i])],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(NUM_PROCESSES)
    ]
    logs = []
    deadline = time.monotonic() + TIMEOUT_S  # one bound for the whole run, not per process
    try:
        for p in procs:
            logs.append(p.communicate(timeout=max(1.0, deadline - time.monotonic()))[0])
    except subprocess.TimeoutExpired:
        pytest.fail(f"the distributed sweep did not finish within {TIMEOUT_S} s")
    finally:
        for p in procs:  # a process left waiting on its peer must not outlive the test
            if p.poll() is None:
                p.kill()
                p.wait()
    for i, p in enumerate(procs):
        assert p.returncode == 0, f"process {i} failed:\n{logs[i][-4000:]}"

    single = qj.sweep(_target, _grid(), base=_base())
    oracle = _oracle()
    for out in outs:
        got = np.load(out)
        assert int(got["devices"]) == NUM_PROCESSES * DEVICES_PER_PROCESS
        assert int(got["local"]) == DEVICES_PER_PROCESS
        for k, ref in oracle.items():
            assert got[k].shape == ref.shape, k
            np.testing.assert_allclose(got[k], ref, rtol=1e-14, atol=1e-14, err_msg=k)
            np.testing.assert_allclose(got[k], single.values[k], rtol=1e-14, atol=1e-14)


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
