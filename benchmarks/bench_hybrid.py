"""Benchmark: one simulated quantum step (degree 1, HVP-based) vs one optax SGD step; pipeline."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import optax
from _harness import peak_rss_mib, table, timeit

from qsgd_jax._data import load_digits
from qsgd_jax._hybrid import HybridConfig, hybrid_run, model_evaluate
from qsgd_jax._loss_model import LossField, active_set
from qsgd_jax._models import make_mlp, make_resnet
from qsgd_jax._polynomial import PolynomialMap
from qsgd_jax._prune import prune_mask
from qsgd_jax._window import WindowConfig


def _step_ratio(model, batch_size: int, label: str):
    params = model.init(jax.random.key(0))
    mask = prune_mask(params, 0.9)
    x = jax.random.normal(jax.random.key(1), (batch_size, *model.input_shape), model.dtype)
    y = jnp.zeros((batch_size,), jnp.int32)
    from qsgd_jax._data import Batch

    batch = Batch(x, y)
    active = active_set(params, mask)
    opt = optax.sgd(0.1)
    state = opt.init(params)

    @jax.jit
    def sgd_step(p, s, b):
        g = jax.grad(model.loss_fn)(p, b)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    @jax.jit
    def quantum_step(base, u, b):  # y1 <- y1 + eta (f0 + f1 y1): gradient + one HVP
        act = type(active)(base, active.index, active.unravel)
        poly = PolynomialMap(LossField(model.loss_fn, act, b, 1), jnp.asarray(0.1, u.dtype))
        return poly(u)

    u = jnp.zeros((active.size,), model.dtype)
    t_sgd = timeit(lambda: sgd_step(params, state, batch), repeat=3)
    t_q = timeit(lambda: quantum_step(active.base, u, batch), repeat=3)
    return [label, model.num_params(), active.size, batch_size, t_sgd, t_q, t_q / t_sgd]


def run(quick: bool) -> str:
    rows = []
    if quick:
        rows.append(_step_ratio(make_resnet(8, 1, 10), 8, "ResNet-8-1 (quick stand-in)"))
    else:
        rows.append(_step_ratio(make_resnet(32, 4, 100), 8, "ResNet-32-4, CIFAR-100 head"))
    data = load_digits()
    model = make_mlp(data.input_shape, 10, hidden=(32,))
    cfg = HybridConfig(
        window=WindowConfig(0.1, 5, readout="sample", shots=10**5, history=not quick),
        pretrain_steps=100 if quick else 300,
        sparse_steps=20 if quick else 60,
        num_windows=2 if quick else 6,
        classical_between=2,
    )
    t0 = time.perf_counter()
    res = hybrid_run(
        model.loss_fn,
        model.init(jax.random.key(0)),
        data.x_train,
        data.y_train,
        cfg,
        jax.random.key(1),
        evaluate=model_evaluate(model, data),
    )
    wall = time.perf_counter() - t0
    s = res.summary()
    pipe = [
        [
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
    ]
    return "\n\n".join(
        [
            "## Hybrid: simulated quantum step vs optax SGD step; digits pipeline",
            "Command: `python benchmarks/run_all.py hybrid`" + (" --quick" if quick else ""),
            "One simulated quantum step = the degree-1 window step $y_1 + \\eta(f_0 + f_1 y_1)$ on "
            "the 90 %-pruned active set (one gradient + one Hessian-vector product, fresh Taylor "
            "model per batch), jitted; baseline: one jitted `optax.sgd` step on the same model and "
            "batch (random inputs). Target ratio <= 2.5.",
            table(
                [
                    "model",
                    "params",
                    "active s",
                    "batch",
                    "SGD step (s)",
                    "quantum step (s)",
                    "ratio",
                ],
                rows,
            ),
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
            f"Peak RSS: {peak_rss_mib():.0f} MiB. The ≈103M config (ResNet-32-15) was not measured "
            "on this 2-core machine (a single step takes minutes).",
        ]
    )
