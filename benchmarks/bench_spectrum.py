"""Hessian-vector product cost vs a gradient, and the SLQ spectrum of a pruned CIFAR ResNet.

Baseline measured in the same process: one jitted gradient of the same loss on the same batch
(flattened, as the HVP's output is). Target: HVP time / gradient time <= 2.5.

    python benchmarks/run_all.py spectrum          # HVP/grad ratios, short SLQ runs
    python benchmarks/bench_spectrum.py --103m     # the ~103M model's spectrum (Fig. 3 setup)

`--103m` runs the SLQ spectrum of `resnet32-15-c100` (104,395,540 parameters) right after 90 %
global magnitude pruning, with 64 host-driven Lanczos steps and one probe, and writes its
Markdown section, JSON (nodes, weights, density) and plot to `benchmarks/out/`. Options:
`--steps K`, `--batch B`, `--probes P`, `--reortho auto|full|none`.
"""

from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
from _harness import OUT, block, machine, peak_rss_mib, table, timeit
from jax.flatten_util import ravel_pytree

import qsgd_jax as qj
from qsgd_jax._data import Batch
from qsgd_jax._models import make_resnet, named_resnet
from qsgd_jax._prune import prune_mask
from qsgd_jax._spectrum import _operator, _prepare, hessian_spectrum
from qsgd_jax.spectrum import lanczos_memory_bytes

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
    return [
        name,
        f"{n:,}",
        f"{int(idx.shape[0]):,}",
        batch_size,
        tg,
        th,
        th / tg,
        c_grad,
        c_hvp,
        peak_rss_mib(),
    ]


def _slq_row(name, model, batch_size, num_steps, key):
    params, batches = _setup(model, batch_size, key)
    mask = prune_mask(params, SPARSITY)
    t0 = time.perf_counter()
    sd = hessian_spectrum(
        model.loss_fn, params, batches, key, mask, view="active", num_steps=num_steps, num_probes=1
    )
    block(sd)
    wall = time.perf_counter() - t0
    return [
        name,
        f"{sd.dim:,}",
        batch_size,
        num_steps,
        1,
        sd.reortho,
        wall,
        float(sd.lambda_min),
        float(sd.lambda_max),
        float(sd.positive_fraction),
        peak_rss_mib(),
    ]


def run(quick: bool) -> str:
    """Measure and return the Markdown section."""
    key = jax.random.key(0)
    ratio_rows, slq_rows = [], []
    if quick:
        ratio_rows.append(_ratio_row("ResNet-8-1 (c10)", make_resnet(8, 1, 10), 8, 3, key))
        slq_rows.append(_slq_row("ResNet-8-1 (c10)", make_resnet(8, 1, 10), 8, 16, key))
    else:
        ratio_rows.append(_ratio_row("ResNet-8-1 (c10)", make_resnet(8, 1, 10), 8, 5, key))
        ratio_rows.append(
            _ratio_row("ResNet-32-4 (c100)", named_resnet("resnet32-4-c100"), 8, 3, key)
        )
        slq_rows.append(_slq_row("ResNet-32-4 (c100)", named_resnet("resnet32-4-c100"), 8, 16, key))
        big = named_resnet("resnet32-15-c100")
        ratio_rows.append(_ratio_row("ResNet-32-15 (c100)", big, 2, 1, key))
        # Its 64-step spectrum has its own mode and section (about 15 minutes):
        # `python benchmarks/bench_spectrum.py --103m`.
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
        ),
        "",
        "SLQ spectrum (active view, one Rademacher probe): wall time includes compilation; "
        "re-orthogonalization chosen by the memory check. The ~103M model's 64-step spectrum "
        "is its own section below (`python benchmarks/bench_spectrum.py --103m`).",
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
        ),
        "",
    ]
    return "\n".join(lines)


def run_103m(
    *,
    num_steps: int = 64,
    batch_size: int = 1,
    num_probes: int = 1,
    reortho: str = "auto",
    name: str = "resnet32-15-c100",
    seed: int = 0,
) -> str:
    """The SLQ spectrum of the ~103M model right after 90 % pruning (the paper's Fig. 3 setup).

    The model is at its Kaiming initialization (pre-training 10^8 parameters is out of reach on
    2 cores); the loss is the cross-entropy of `batch_size` bundled digits resized to 32x32x3
    (real images, labels 0-9 of the 100-class head), BatchNorm in train mode. Lanczos runs on
    the active set (pruned directions excluded), one jitted, buffer-donating step per HVP
    driven from the host, with progress on stderr. Re-orthogonalization is chosen by the memory
    check: the active dimension is s ~ 10.6M (10 % of n), so a full basis of 64 vectors is
    ~2.9 GB in float32 and fits; at the dense n = 104M it would be ~27 GB and "auto" would run
    without (O(s) memory).
    """
    import sys

    t_start = time.perf_counter()
    key = jax.random.key(seed)
    k_init, k_probe = jax.random.split(key)
    model = named_resnet(name)
    params = model.init(k_init)
    mask = prune_mask(params, SPARSITY)
    data = qj.ml.load_digits(resize=True)
    x = data.x_train[None, :batch_size]
    y = data.y_train[None, :batch_size].astype(jnp.int32)
    s = int(sum(int(m.sum()) for m in jax.tree_util.tree_leaves(mask)))
    n = model.num_params()
    t_setup = time.perf_counter() - t_start
    last = [time.perf_counter()]

    def progress(p, j, total):
        now = time.perf_counter()
        print(
            f"probe {p + 1}/{num_probes} step {j}/{total}: {now - last[0]:.1f} s "
            f"(elapsed {now - t_start:.0f} s, peak RSS {peak_rss_mib():.0f} MiB)",
            file=sys.stderr,
            flush=True,
        )
        last[0] = now

    print(
        f"{name}: n = {n:,}, active s = {s:,}, batch {batch_size}, {num_steps} steps; "
        f"full basis would need {lanczos_memory_bytes(s, num_steps, True) / 2**30:.2f} GiB",
        file=sys.stderr,
        flush=True,
    )
    t0 = time.perf_counter()
    sd = hessian_spectrum(
        model.loss_fn,
        params,
        Batch(x, y),
        k_probe,
        mask,
        view="active",
        num_steps=num_steps,
        num_probes=num_probes,
        reortho=reortho,
        loop="host",
        progress=progress,
    )
    block(sd)
    wall = time.perf_counter() - t0
    total = time.perf_counter() - t_start
    rss = peak_rss_mib()
    OUT.mkdir(exist_ok=True)
    fig = qj.plot.plot_spectral_densities({f"{name}, 90 % pruned, {num_steps} Lanczos steps": sd})
    fig.axes[0].set_title(f"{n / 1e6:.0f}M-parameter ResNet, 90 % pruned: Hessian (active set)")
    fig.savefig(OUT / "spectrum_103m.png", dpi=120)
    record = {
        "model": name,
        "num_params": n,
        "active": s,
        "batch_size": batch_size,
        "num_steps": num_steps,
        "num_probes": num_probes,
        "reortho": sd.reortho,
        "wall_s_slq": wall,
        "wall_s_total": total,
        "setup_s": t_setup,
        "peak_rss_mib": rss,
        "lambda_min": float(sd.lambda_min),
        "lambda_max": float(sd.lambda_max),
        "positive_fraction": float(sd.positive_fraction),
        "negative_mass": float(sd.negative_mass),
        "negative_ratio": float(sd.negative_ratio),
        "sigma": float(sd.sigma),
        "nodes": jnp.ravel(sd.nodes).tolist(),
        "weights": jnp.ravel(sd.weights).tolist(),
    }
    (OUT / "spectrum_103m.json").write_text(json.dumps(record, indent=1))
    nodes = sorted(
        float(v) for v, w in zip(record["nodes"], record["weights"], strict=True) if w > 1e-6
    )
    lines = [
        "## The ~103M model's Hessian spectrum after pruning (`bench_spectrum --103m`)",
        "",
        f"Command: `/usr/bin/time -v python benchmarks/bench_spectrum.py --103m` "
        f"(steps {num_steps}, batch {batch_size}, probes {num_probes}, reortho {reortho})",
        "",
        machine(),
        "",
        f"SLQ of the loss Hessian of `{name}` ({n:,} parameters) on its active set after 90 % "
        f"global magnitude pruning (s = {s:,}), at Kaiming initialization (no pre-training: out "
        f"of reach on 2 cores), cross-entropy of {batch_size} bundled digit image(s) resized to "
        "32x32x3, BatchNorm in train mode, float32; one Rademacher probe, host-driven Lanczos "
        f"steps, re-orthogonalization `{sd.reortho}` (chosen by the memory check: a full basis "
        f"is {lanczos_memory_bytes(s, num_steps, True) / 2**30:.2f} GiB at this s). Wall time "
        "includes compilation; peak memory is the process's maximum RSS. Plot: "
        "`benchmarks/out/spectrum_103m.png` (not committed); nodes and weights: "
        "`benchmarks/out/spectrum_103m.json`.",
        "",
        table(
            [
                "model",
                "params n",
                "active s",
                "batch",
                "Lanczos steps",
                "probes",
                "reortho",
                "SLQ wall s",
                "total wall s",
                "peak RSS MiB",
                "lambda_min",
                "lambda_max",
                "positive mass",
                "negative mass",
                "negative ratio",
                "sigma",
            ],
            [
                [
                    name,
                    f"{n:,}",
                    f"{s:,}",
                    batch_size,
                    num_steps,
                    num_probes,
                    sd.reortho,
                    wall,
                    total,
                    rss,
                    record["lambda_min"],
                    record["lambda_max"],
                    record["positive_fraction"],
                    record["negative_mass"],
                    record["negative_ratio"],
                    record["sigma"],
                ]
            ],
        ),
        "",
        "Ritz values with weight > 1e-6 (smallest five, largest five): "
        + ", ".join(f"{v:.3g}" for v in nodes[:5])
        + " ... "
        + ", ".join(f"{v:.3g}" for v in nodes[-5:])
        + ".",
        "",
    ]
    text = "\n".join(lines)
    (OUT / "spectrum_103m.md").write_text(text)
    return text


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (the run_all section)")
    ap.add_argument("--103m", dest="big", action="store_true", help="the ~103M spectrum")
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--probes", type=int, default=1)
    ap.add_argument("--reortho", default="auto", choices=("auto", "full", "none"))
    ap.add_argument("--model", default="resnet32-15-c100", help="a named ResNet config")
    args = ap.parse_args()
    if args.big:
        print(
            run_103m(
                num_steps=args.steps,
                batch_size=args.batch,
                num_probes=args.probes,
                reortho=args.reortho,
                name=args.model,
            )
        )
    else:
        print(run(quick=args.quick))
