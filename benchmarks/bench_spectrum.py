"""Hessian-vector product cost vs a gradient, and the SLQ spectrum of a pruned CIFAR ResNet.

Baseline measured in the same process: one jitted gradient of the same loss on the same batch
(flattened, as the HVP's output is). Target: HVP time / gradient time <= 2.5.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
from _harness import block, machine, peak_rss_mib, table, timeit
from jax.flatten_util import ravel_pytree

from qsgd_jax._data import Batch
from qsgd_jax._models import make_resnet, named_resnet
from qsgd_jax._prune import prune_mask
from qsgd_jax._spectrum import _operator, _prepare, hessian_spectrum

SPARSITY = 0.9


def _setup(model, batch_size, key):
    kp, kx, ky = jax.random.split(key, 3)
    params = model.init(kp)
    x = jax.random.normal(kx, (1, batch_size, *model.input_shape), jnp.float32)
    y = jax.random.randint(ky, (1, batch_size), 0, max(model.num_classes, 1)).astype(jnp.int32)
    return params, Batch(x, y)


def _ratio_row(name, model, batch_size, repeat, key):
    params, batches = _setup(model, batch_size, key)
    mask = prune_mask(params, SPARSITY)
    one = Batch(batches.x[0], batches.y[0])

    @jax.jit
    def grad(params, batch):
        return ravel_pytree(jax.grad(model.loss_fn)(params, batch))[0]

    batches_, m_flat, idx = _prepare(params, batches, mask, "active")

    @jax.jit
    def hvp(params, batches, m_flat, idx, v):
        # Parameters, mask and active indices are arguments, not closed-over constants.
        mv, _ = _operator(model.loss_fn, params, batches, m_flat, idx, "active")
        return mv(v)

    v = jax.random.normal(key, idx.shape, jnp.float32)
    t0 = time.perf_counter()
    block(grad(params, one))
    c_grad = time.perf_counter() - t0
    t0 = time.perf_counter()
    block(hvp(params, batches_, m_flat, idx, v))
    c_hvp = time.perf_counter() - t0
    tg = timeit(lambda: grad(params, one), repeat=repeat)
    th = timeit(lambda: hvp(params, batches_, m_flat, idx, v), repeat=repeat)
    n = model.num_params()
    return [name, f"{n:,}", f"{int(idx.shape[0]):,}", batch_size, tg, th, th / tg,
            c_grad, c_hvp, peak_rss_mib()]  # fmt: skip


def _slq_row(name, model, batch_size, num_steps, key):
    params, batches = _setup(model, batch_size, key)
    mask = prune_mask(params, SPARSITY)
    t0 = time.perf_counter()
    sd = hessian_spectrum(model.loss_fn, params, batches, key, mask, view="active",
                          num_steps=num_steps, num_probes=1)  # fmt: skip
    block(sd)
    wall = time.perf_counter() - t0
    return [name, f"{sd.dim:,}", batch_size, num_steps, 1, sd.reortho, wall,
            float(sd.lambda_min), float(sd.lambda_max), float(sd.positive_fraction),
            peak_rss_mib()]  # fmt: skip


def run(quick: bool) -> str:
    """Measure and return the Markdown section."""
    key = jax.random.key(0)
    ratio_rows, slq_rows = [], []
    if quick:
        ratio_rows.append(_ratio_row("ResNet-8-1 (c10)", make_resnet(8, 1, 10), 8, 3, key))
        slq_rows.append(_slq_row("ResNet-8-1 (c10)", make_resnet(8, 1, 10), 8, 16, key))
    else:
        ratio_rows.append(_ratio_row("ResNet-8-1 (c10)", make_resnet(8, 1, 10), 8, 5, key))
        ratio_rows.append(_ratio_row("ResNet-32-4 (c100)", named_resnet("resnet32-4-c100"), 8,
                                     3, key))  # fmt: skip
        slq_rows.append(_slq_row("ResNet-32-4 (c100)", named_resnet("resnet32-4-c100"), 8, 16,
                                 key))  # fmt: skip
        big = named_resnet("resnet32-15-c100")
        ratio_rows.append(_ratio_row("ResNet-32-15 (c100)", big, 2, 1, key))
        slq_rows.append(_slq_row("ResNet-32-15 (c100)", big, 2, 4, key))
    lines = [
        "## Hessian-vector products and SLQ spectrum (`bench_spectrum`)",
        "",
        "Command: `python benchmarks/run_all.py`" + (" (quick)" if quick else ""),
        "",
        machine(),
        "",
        f"HVP of the batch-mean cross-entropy restricted to the active set of a {SPARSITY:.0%} "
        "global-magnitude mask (forward-over-reverse, BatchNorm in train mode), against a "
        "jitted gradient of the same loss on the same batch (baseline, same process); float32, "
        "random CIFAR-shaped inputs, best of several runs after compilation. Target ratio <= 2.5.",
        "",
        table(
            [
                "model",
                "params n",
                "active s",
                "batch",
                "grad s",
                "HVP s",
                "HVP/grad",
                "compile+1st grad s",
                "compile+1st HVP s",
                "peak RSS MiB",
            ],
            ratio_rows,
        ),  # fmt: skip
        "",
        "SLQ spectrum (active view, one Rademacher probe): wall time includes compilation; "
        "re-orthogonalization chosen by the memory check.",
        "",
        table(
            [
                "model",
                "active s",
                "batch",
                "Lanczos steps",
                "probes",
                "reortho",
                "wall s",
                "lambda_min",
                "lambda_max",
                "positive mass",
                "peak RSS MiB",
            ],
            slq_rows,
        ),  # fmt: skip
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(run(quick="--quick" in sys.argv))
