"""Benchmark: the library's degree-1 window step vs one optax SGD step; the digits pipeline.

The quantum step is the library's own: a fresh matrix-free degree-1 Taylor model of the batch
(`qj.LossField` on the `qj.ml.ActiveSet` of a 90 % global-magnitude mask, as a window builds
it per step) and its GD map `qj.field_map(field, eta)(y1)` $= y_1 + \\eta(f_0 + f_1 y_1)$, jitted.
The two are timed in one process, alternating, and compared by their medians, so a changing
load on a shared machine slows both alike.

    python benchmarks/run_all.py hybrid                       # the BENCHMARKS.md section
    python benchmarks/bench_hybrid.py --model resnet32-15-c100 --batch 2 --reps 5   # one row
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import optax
from _harness import block, peak_rss_mib, table

import qsgd_jax as qj
from qsgd_jax.ml import Batch, load_digits, make_mlp, make_resnet, named_resnet, prune_mask

STEP_HEADER = [
    "model",
    "params",
    "active s",
    "batch",
    "compile+1st SGD (s)",
    "compile+1st quantum (s)",
    "SGD step (s)",
    "quantum step (s)",
    "ratio",
    "peak RSS (MiB)",
]


def step_ratio(model, batch_size: int, label: str, reps: int = 5) -> list:
    """One table row: the library's degree-1 step against a jitted `optax.sgd` step.

    **Arguments:**

    - `model`: a `qj.ml.Model`.
    - `batch_size`: images per batch (random inputs, label 0).
    - `label`: the row's model name.
    - `reps`: alternating timed repetitions of each step after the first (compiling) call.

    **Returns:** the row (see `STEP_HEADER`): medians of the repetitions, their ratio and the
    process's peak RSS so far.
    """
    params = model.init(jax.random.key(0))
    mask = prune_mask(params, 0.9)
    active = qj.ml.active_set(params, mask)
    x = jax.random.normal(jax.random.key(1), (batch_size, *model.input_shape), model.dtype)
    batch = Batch(x, jnp.zeros((batch_size,), jnp.int32))
    opt = optax.sgd(0.1)
    state = opt.init(params)

    @jax.jit
    def sgd_step(p, s, b):
        g = jax.grad(model.loss_fn)(p, b)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    @jax.jit
    def quantum_step(act, y1, b):
        # y1 <- y1 + eta (f0 + f1 y1). The gradient f0 and the HVP f1 y1 are traced as two
        # passes, but the HVP's primal output is that gradient and XLA's common-subexpression
        # elimination leaves one forward-over-reverse pass (as many convolutions as
        # jax.jvp(jax.grad(ell), (0,), (y1,)) returning both).
        return qj.field_map(qj.LossField(model.loss_fn, act, b, 1), 0.1)(y1)

    y1 = 1e-3 * jax.random.normal(jax.random.key(2), (active.size,), model.dtype)
    steps = {
        "sgd": lambda: sgd_step(params, state, batch),
        "quantum": lambda: quantum_step(active, y1, batch),
    }
    first, times = {}, {k: [] for k in steps}
    for k, fn in steps.items():
        t0 = time.perf_counter()
        block(fn())
        first[k] = time.perf_counter() - t0
    for _ in range(reps):
        for k, fn in steps.items():
            t0 = time.perf_counter()
            block(fn())
            times[k].append(time.perf_counter() - t0)
    t_sgd, t_q = (statistics.median(times[k]) for k in ("sgd", "quantum"))
    return [
        label,
        model.num_params(),
        active.size,
        batch_size,
        first["sgd"],
        first["quantum"],
        t_sgd,
        t_q,
        t_q / t_sgd,
        peak_rss_mib(),
    ]


def _pipeline(quick: bool) -> list:
    data = load_digits()
    model = make_mlp(data.input_shape, 10, hidden=(32,))
    cfg = qj.HybridConfig(
        window=qj.WindowConfig(0.1, 5, readout="sample", shots=10**5, history=not quick),
        pretrain_steps=100 if quick else 300,
        sparse_steps=20 if quick else 60,
        num_windows=2 if quick else 6,
        classical_between=2,
    )
    t0 = time.perf_counter()
    res = qj.hybrid_run(
        model.loss_fn,
        model.init(jax.random.key(0)),
        data.x_train,
        data.y_train,
        cfg,
        jax.random.key(1),
        evaluate=qj.ml.model_evaluate(model, data),
    )
    wall = time.perf_counter() - t0
    s = res.summary()
    return [
        model.num_params(),
        cfg.sparse_steps,
        len(s["windows"]),
        wall,
        s["sgd_seconds"],
        s["hybrid_seconds"],
        s["hybrid_seconds"] / s["sgd_seconds"],
        s["final_hybrid"]["accuracy"],
        s["final_sgd"]["accuracy"],
    ]


def run(quick: bool) -> str:
    if quick:
        rows = [step_ratio(make_resnet(8, 1, 10), 8, "ResNet-8-1 (quick stand-in)", reps=3)]
    else:
        rows = [
            step_ratio(named_resnet("resnet32-4-c100"), 8, "ResNet-32-4, CIFAR-100 head"),
            step_ratio(named_resnet("resnet32-15-c100"), 2, "ResNet-32-15, CIFAR-100 head"),
        ]
    pipe = [_pipeline(quick)]
    return "\n\n".join(
        [
            "## Hybrid: simulated quantum step vs optax SGD step; digits pipeline",
            "Command: `python benchmarks/run_all.py hybrid`" + (" --quick" if quick else ""),
            "One simulated quantum step = the library's degree-1 window step "
            "$y_1 + \\eta(f_0 + f_1 y_1)$ (`qj.field_map(qj.LossField(...), eta)`, a fresh "
            "Taylor model per batch: one gradient and one Hessian-vector product) on the "
            "90 %-pruned active set, jitted; baseline: one jitted `optax.sgd` step on the same "
            "model and batch (random inputs). Medians of alternating repetitions in one process. "
            "Goal ratio <= 2.0.",
            table(STEP_HEADER, rows),
            "Whole pipeline (pre-training, pruning, windows with sampled read-out, baseline, "
            "per-step evaluation), digits MLP (hidden 32):",
            table(
                [
                    "params",
                    "sparse steps",
                    "windows",
                    "wall (s)",
                    "SGD phase (s)",
                    "hybrid phase (s)",
                    "hybrid/SGD",
                    "acc hybrid",
                    "acc SGD",
                ],
                pipe,
            ),
            f"Peak RSS: {peak_rss_mib():.0f} MiB.",
        ]
    )


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="One step-ratio row (no pipeline).")
    ap.add_argument("--model", default="resnet32-4-c100", help="a key of qj.ml.RESNET_CONFIGS")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    row = step_ratio(named_resnet(args.model), args.batch, args.model, reps=args.reps)
    print(table(STEP_HEADER, [row]))
