"""Experiment 4, scaling: the history system's condition number kappa vs T (dissipative ~T vs
almost dissipative ~T^2), and resource estimates vs model size n against classical FLOPs.

The history system is the article's (Eq. 6: T + 1 blocks, no idle padding) unless `idle` > 0
(p idle copies) or `pad_to_steps` (p = T for every T, the padded variant)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._data import Batch
from .._models import make_mlp, named_resnet
from .._resources import classical_flops, resource_table
from ..linsys import affine_gd_map, history_report, history_system
from ._framework import (
    COUNT,
    FRACTION,
    POSITIVE,
    Experiment,
    Output,
    Range,
    markdown_table,
    register,
)
from ._kappa_scaling import kappa_scaling


def _model(name: str):
    if name.startswith("mlp"):  # mlp<width>: a 2-layer MLP on 8x8 digits
        return make_mlp((8, 8, 1), 10, hidden=(int(name[3:]),) * 2)
    return named_resnet(name)


def _sgd_step_flops(model, batch_size: int) -> float:
    """XLA's FLOP count of one jitted SGD step (shapes only: nothing is allocated)."""
    params = model.param_shapes()
    x = jax.ShapeDtypeStruct((batch_size, *model.input_shape), model.dtype)
    y = jax.ShapeDtypeStruct((batch_size,), jnp.int32)

    def step(p, x, y):
        g = jax.grad(model.loss_fn)(p, Batch(x, y))
        return jax.tree_util.tree_map(lambda a, b: a - 0.1 * b, p, g)

    return classical_flops(step, params, x, y)


def run(config: dict, progress) -> Output:
    """Run the experiment (see the module docstring).

    **Arguments:**

    - `config`: the resolved configuration (`resolve_config`).
    - `progress`: a callback for progress lines.

    **Returns:** the experiment's `Output`.
    """
    import matplotlib.pyplot as plt

    pad = config["pad_to_steps"]
    form = (
        "padded, p = T"
        if pad
        else ("article, p = 0" if config["idle"] == 0 else f"padded, p = {config['idle']}")
    )
    progress(f"kappa vs T for T = {config['T_values']} ({form})")
    with jax.enable_x64(True):
        ks = kappa_scaling(
            config["T_values"],
            n=config["kappa_n"],
            eta=config["eta"],
            drive=config["drive"],
            idle="T" if pad else config["idle"],
        )
        T = np.asarray(ks.T)
        t_res = int(T[-1])
        p_res = t_res if pad else int(config["idle"])
        # kappa and P of one dissipative history system at T = t_res, measured (not assumed)
        rng = np.random.default_rng(0)
        q, _ = np.linalg.qr(rng.normal(size=(config["kappa_n"],) * 2))
        h = (q * np.linspace(0.5, 3.0, config["kappa_n"])) @ q.T
        g = rng.normal(size=config["kappa_n"]) / np.sqrt(config["kappa_n"])
        m = affine_gd_map(jnp.asarray(g), jnp.asarray(h), config["eta"])
        y0 = jnp.zeros(config["kappa_n"] + 1).at[0].set(1.0)
        rep = history_report(history_system(m, t_res, p_res), y0)
        kappa_m, prob = float(rep.kappa), float(rep.target_probability)
    kd, ka = np.asarray(ks.kappa_dissipative), np.asarray(ks.kappa_almost)
    progress(f"measured at T = {t_res}: kappa = {kappa_m:.4g}, P = {prob:.3g}")
    rows, res_rows = [], []
    for name in config["models"]:
        progress(f"resources for {name}")
        model = _model(name)
        n = model.num_params()
        s = max(1, int(round((1 - config["sparsity"]) * n)))
        flops = _sgd_step_flops(model, config["batch_size"]) * t_res
        table = resource_table(
            kappa=kappa_m,
            target_probability=prob,
            eps=config["eps"],
            n=s,
            order=1,
            num_steps=t_res,
            idle=p_res,
            samples=float(s),
            classical_flops_total=flops,
        )
        res_rows.append(
            {"model": name, "n": n, "active": s, "classical_flops": flops, "table": table}
        )
        q = table["qlsa"]
        rows.append(
            [
                name,
                n,
                s,
                table["qubits"],
                q["childs_kothari_somma"]["total"]
                if "childs_kothari_somma" in q
                else next(iter(q.values()))["total"],
                flops,
            ]
        )

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    a1.loglog(T, kd, "o-", label=f"dissipative (slope {ks.exponent_dissipative:.2f})")
    a1.loglog(T, ka, "s-", label=f"almost dissipative (slope {ks.exponent_almost:.2f})")
    a1.loglog(T, kd[0] * T / T[0], "k:", lw=1, label="~T")
    a1.loglog(T, ka[0] * (T / T[0]) ** 2, "k--", lw=1, label="~T^2")
    a1.set(xlabel="steps T", ylabel="kappa(L)", title="history-state system")
    a1.legend(fontsize=8)
    ns = [r["n"] for r in res_rows]
    for name in res_rows[0]["table"]["qlsa"]:
        a2.loglog(
            ns,
            [r["table"]["qlsa"][name]["total"] for r in res_rows],
            "o-",
            label=f"quantum: {name}",
        )
    a2.loglog(ns, [r["classical_flops"] for r in res_rows], "k^-", label="classical FLOPs")
    a2.set(
        xlabel="parameters n", ylabel=f"cost of T = {t_res} steps", title="resources vs model size"
    )
    a2.legend(fontsize=7)
    fig.tight_layout()

    table = markdown_table(
        ["T", "kappa dissipative", "kappa almost dissipative"],
        [[int(t), float(a), float(b)] for t, a, b in zip(T, kd, ka, strict=True)],
    )
    table += (
        f"\n\nFitted exponents: dissipative {ks.exponent_dissipative:.2f}, almost "
        f"dissipative {ks.exponent_almost:.2f}.\n\n"
    )
    table += markdown_table(
        ["model", "n", "active s", "qubits", "quantum total (CKS)", "classical FLOPs"], rows
    )
    report = (
        f"kappa of the history-state system L ({form}; the article's Eq. 6 has no idle "
        f"padding) of the affine GD map of "
        f"an n = {config['kappa_n']} quadratic (eta = {config['eta']}): Hessian eigenvalues in "
        "[0.5, 3] (dissipative) vs one flat direction driven by the gradient (almost "
        "dissipative, drift ~ t). Resources per model: order-1 history system on the active "
        f"set (sparsity {config['sparsity']}), kappa = {kappa_m:.4g} and P = {prob:.3g} "
        f"measured on the dissipative example's history system at T = {t_res} (a model-level "
        "kappa is not computed here), s tomography samples, "
        "against XLA's FLOP count of the same T SGD steps (batch "
        f"{config['batch_size']})."
    )
    results = {
        "history_at_T": {
            "T": t_res,
            "idle": p_res,
            "form": form,
            "kappa": kappa_m,
            "target_probability": prob,
        },
        "kappa": {
            "T": T.tolist(),
            "dissipative": kd.tolist(),
            "almost": ka.tolist(),
            "exponent_dissipative": ks.exponent_dissipative,
            "exponent_almost": ks.exponent_almost,
        },
        "resources": res_rows,
    }
    return Output(results, {"scaling": fig}, report, table)


# The ci preset; the cpu and paper presets change some of its values.
_CI = dict(
    T_values=(10, 20, 40),
    kappa_n=6,
    eta=0.1,
    drive=1.0,
    models=("mlp16", "mlp64"),
    sparsity=0.9,
    batch_size=32,
    eps=0.01,
    idle=0,
    pad_to_steps=False,
)

register(
    Experiment(
        name="scaling",
        summary="kappa vs T (dissipative vs almost dissipative); resources vs model size n",
        shows="kappa ~T vs ~T^2 with fitted exponents; qubits, queries, samples vs classical FLOPs",
        presets={
            "ci": _CI,
            "cpu": dict(
                _CI,
                T_values=(25, 50, 100, 200, 400),
                models=("mlp64", "mlp256", "resnet32-4-c100"),
                batch_size=128,
            ),
            "paper": dict(
                _CI,
                T_values=(25, 50, 100, 200, 400, 800),
                models=("resnet32-4-c10", "resnet32-4-c100", "resnet32-8-c100", "resnet32-15-c100"),
                batch_size=128,
            ),
        },
        run=run,
        ranges=dict(
            T_values=COUNT,
            kappa_n=COUNT,
            eta=POSITIVE,
            drive=Range(0, what="the size of the constant drive"),
            sparsity=FRACTION,
            batch_size=COUNT,
            idle=Range(0, integer=True, what="idle blocks p; 0: the article's system"),
            eps=Range(0, 1, low_open=True, high_open=True, what="the target precision"),
        ),
    )
)
