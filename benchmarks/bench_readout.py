"""Tomography simulator throughput: exact measurement statistics for s = 1e3, 1e5, 1e7.

Baseline in the same process: numpy's `Generator.multinomial` drawing the same two rounds
(basis counts over s outcomes, interference counts over 2s outcomes) key by key.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from _harness import machine, peak_rss_mib, table, timeit

from qsgd_jax.readout import tomography

KEYS = 64


def _numpy_rounds(rng, psi, shots):
    p = psi**2
    counts = rng.multinomial(shots, p)
    r = np.sqrt(counts / shots)
    probs = np.stack([(psi + r) ** 2, (psi - r) ** 2], axis=1).ravel() / 4
    inter = rng.multinomial(shots, probs / probs.sum()).reshape(-1, 2)
    return np.where(inter[:, 0] >= inter[:, 1], r, -r)


def run(quick: bool) -> str:
    sizes = [10**3, 10**4] if quick else [10**3, 10**5, 10**7]
    rows = []
    for s in sizes:
        psi = jax.random.normal(jax.random.key(0), (s,), jnp.float32)
        psi = psi / jnp.linalg.norm(psi)
        shots = 100 * s  # a typical l2 error of ~0.05
        # s = 1e7: 8 keys, 2 at a time (`lax.map`, memory); 64 keys would take ~10 min here
        n_keys = KEYS if s <= 10**5 else 8
        keys = jax.random.split(jax.random.key(1), n_keys)
        chunk = n_keys if s <= 10**5 else 2
        fn = jax.jit(
            lambda ks, psi=psi, shots=shots, chunk=chunk: jax.lax.map(
                lambda k: tomography(k, psi, shots), ks, batch_size=chunk
            )
        )
        t0 = time.perf_counter()
        jax.block_until_ready(fn(keys))
        first = time.perf_counter() - t0
        if s >= 10**7:  # the first call already warmed up; time one more
            t0 = time.perf_counter()
            jax.block_until_ready(fn(keys))
            t = time.perf_counter() - t0
        else:
            t = timeit(lambda fn=fn, keys=keys: fn(keys), repeat=3)
        n_np = n_keys if s <= 10**5 else 2
        rng, pn = np.random.default_rng(0), np.asarray(psi, np.float64)
        t1 = time.perf_counter()
        for _ in range(n_np):
            _numpy_rounds(rng, pn, shots)
        t_np = (time.perf_counter() - t1) / n_np * n_keys
        samples = 2 * shots * n_keys  # two rounds of `shots` each, per key
        rows.append(
            [
                f"{s:.0e}",
                f"{shots:.0e}",
                first,
                t,
                samples / t,
                samples / t_np,
                t_np / t,
                peak_rss_mib(),
            ]
        )
    note = (
        "s = 1e7 runs 8 keys (not 64: that would take about 10 minutes on this machine) in "
        "chunks of 2 (`lax.map`, batch_size=2) to bound memory; its numpy baseline is timed on "
        "2 keys and scaled to 8."
        if not quick
        else "Quick mode: s = 1e3 and 1e4 only."
    )
    return "\n\n".join(
        [
            "## Read-out: tomography simulator throughput",
            "Command: `python benchmarks/run_all.py` (this section: `bench_readout.run`).",
            "Real-amplitude vector-state tomography (basis round + interference round, "
            "exact multinomial statistics by binomial splitting), mapped over 64 keys (8 at "
            "s = 1e7), float32, shots = 100 s per round. Samples = 2 x shots x keys. "
            "Ratio = numpy time / JAX time (> 1: JAX faster). " + note,
            table(
                [
                    "s",
                    "shots/round",
                    "first call s",
                    "time s (all keys)",
                    "samples/s JAX",
                    "samples/s numpy",
                    "ratio",
                    "peak RSS MiB",
                ],
                rows,
            ),
            machine(),
        ]
    )


if __name__ == "__main__":
    print(run(quick=True))
