"""Shared benchmark utilities: timing, memory, machine description, Markdown output.

Every `benchmarks/bench_*.py` module defines `run(quick: bool) -> str`, which measures a
method against a baseline *in the same process* and returns a Markdown section (heading
`## ...`, the command, a table with ratios, memory). `python benchmarks/run_all.py` runs them
all and rewrites BENCHMARKS.md; figures go to the ignored folder `benchmarks/out/`.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import jax

from qsgd_jax.experiments._framework import markdown_table as table  # noqa: F401 (re-export)

OUT = Path(__file__).resolve().parent / "out"


def block(x):
    """Wait for every array in a pytree (JAX dispatch is asynchronous)."""
    return jax.tree_util.tree_map(
        lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, x
    )


def timeit(fn: Callable[[], object], *, repeat: int = 5, number: int = 1) -> float:
    """Best-of-`repeat` wall time of `number` calls of `fn`, in seconds per call.

    `fn` is called once first so compilation is not timed.
    """
    block(fn())
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            out = fn()
        block(out)
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux `ru_maxrss` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    """One Markdown paragraph describing the machine and library versions."""
    try:
        with open("/proc/meminfo") as f:
            mem_kib = int(f.readline().split()[1])
        mem = f"{mem_kib / 2**20:.1f} GiB RAM"
    except OSError:
        mem = "RAM unknown"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = ", ".join(
        f"{p} {metadata.version(p)}"
        for p in ("jax", "jaxlib", "numpy", "scipy", "equinox", "optax")
    )
    dev = ", ".join(sorted({d.device_kind for d in jax.devices()}))
    return (
        f"Machine: {os.cpu_count()} cores ({cpu}), {mem}, JAX devices: {dev}; "
        f"Python {platform.python_version()}; {versions}."
    )
