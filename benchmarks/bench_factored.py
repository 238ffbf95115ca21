"""Benchmark: one factored order-2 Carleman step in units of Hessian-vector products.

One step of `FactoredState` at factor width r needs 2r + 1 HVPs (F1 on y1 and on every column of
A and B) and r third-order directional derivatives T(a_i, b_i, .) (jvps of an HVP). Measured in
the same process, on the same model, batch and active set: the time of one HVP, of one
third-order derivative, and of the whole step; the step's cost in HVP units, and its ratio to
what the formula needs ((2r + 1) + r x (third-order / HVP)); memory: the stored factors and
XLA's temporary buffers of the compiled step against what a dense order-2 state would need.

Run: `python benchmarks/bench_factored.py [--quick]` (quick: digits CNN and ResNet-8 only).
"""

from __future__ import annotations

import sys

import equinox as eqx
import jax
import jax.numpy as jnp
from _harness import block, machine, peak_rss_mib, table, timeit

import qsgd_jax as qj


def _measure(model, batch_size: int, steps: int, label: str, repeat: int) -> list:
    params = model.init(jax.random.key(0))
    mask = qj.ml.prune_mask(params, 0.9)
    x = jax.random.normal(jax.random.key(1), (batch_size, *model.input_shape), model.dtype)
    batch = qj.ml.Batch(x, jnp.zeros((batch_size,), jnp.int32))
    active = qj.ml.active_set(qj.ml.apply_mask(params, mask), mask)
    s = active.size
    field = qj.LossField(model.loss_fn, active, batch, 2)
    poly = qj.PolynomialMap(field, jnp.asarray(0.1, model.dtype))
    state = qj.FactoredState()
    y = state.zero(s, 2, steps, model.dtype)
    r = y.a.shape[1]
    k1, k2, k3 = jax.random.split(jax.random.key(2), 3)
    scale = 1e-3
    y = eqx.tree_at(
        lambda y: (y.y1, y.a, y.b),
        y,
        (
            scale * jax.random.normal(k1, (s,), model.dtype),
            scale * jax.random.normal(k2, (s, r), model.dtype),
            scale * jax.random.normal(k3, (s, r), model.dtype),
        ),
    )
    order = jnp.asarray(2, jnp.int32)
    # The field and map are passed as arguments (pytrees), not closed over as constants.
    hvp = jax.jit(lambda f, v: f.linear(v))
    third = jax.jit(lambda f, a, b: f.quadratic_pairs(a, b))
    step = jax.jit(
        lambda p, y: state.step(qj.Discrete(), qj.CarlemanOperator(p, order, 2), y, None)[0]
    )
    # The step's full width: the slot of the new columns is the last one.
    y = eqx.tree_at(lambda y: y.steps, y, jnp.asarray(steps - 1, jnp.int32))
    t_hvp = timeit(lambda: hvp(field, y.y1), repeat=repeat)
    t_3rd = timeit(lambda: third(field, y.a[:, :1], y.b[:, :1]), repeat=repeat)
    t_step = timeit(lambda: step(poly, y), repeat=repeat)
    block(step(poly, y))
    mem = step.lower(poly, y).compile().memory_analysis()
    temp = getattr(mem, "temp_size_in_bytes", float("nan"))
    needed = (2 * r + 1) + r * t_3rd / t_hvp
    itemsize = jnp.dtype(model.dtype).itemsize
    factors = state.state_bytes(s, 2, steps, itemsize)
    dense = (1 + s + s * s) * itemsize
    return [
        label,
        f"{model.num_params():,}",
        f"{s:,}",
        batch_size,
        r,
        f"{t_hvp * 1e3:.3g}",
        f"{t_3rd / t_hvp:.2f}",
        f"{t_step / t_hvp:.1f}",
        f"{needed:.1f}",
        f"{t_step / (t_hvp * needed):.2f}",
        f"{factors / 2**20:.3g}",
        f"{temp / 2**20:.3g}",
        f"{dense / 2**30:.3g}",
    ]


def run(quick: bool) -> str:
    digits = qj.ml.load_digits()
    configs = [
        (qj.ml.make_cnn(digits.input_shape, 10), 64, 4, "digits CNN"),
        (qj.ml.make_resnet(8, 1, 10), 8, 4, "ResNet-8 (32x32x3)"),
    ]
    if not quick:
        configs.append((qj.ml.named_resnet("resnet32-4-c100"), 2, 2, "ResNet-32-4 (7.45M)"))
    rows = [_measure(m, b, t, label, 3 if quick else 5) for m, b, t, label in configs]
    header = [
        "model",
        "params",
        "active s",
        "batch",
        "width r",
        "HVP ms",
        "3rd-order / HVP",
        "step / HVP",
        "formula needs (HVP units)",
        "step / formula",
        "factors MiB",
        "XLA temp MiB",
        "dense y2 GiB",
    ]
    return (
        "## Factored order-2 Carleman step vs Hessian-vector products\n\n"
        f"Command: `python benchmarks/bench_factored.py{' --quick' if quick else ''}`. "
        f"{machine()}\n\n"
        "One step of the factored state at width r (the width after T = r / 2 steps) needs "
        "2r + 1 HVPs and r third-order directional derivatives; 'step / formula' is the measured "
        "step time over that count in measured HVP units (goal <= 1.5). The factors are the "
        "stored state; a dense order-2 state would need (1 + s + s^2) entries. Peak RSS of the "
        f"process: {peak_rss_mib():.0f} MiB.\n\n" + table(header, rows)
    )


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
