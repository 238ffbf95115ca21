"""Experiment 4, scaling: the history system's condition number kappa vs T (dissipative ~T vs
almost dissipative ~T^2) on a toy, and the end-to-end cost of a quantum window on real models
from measured inputs: kappa_c and P_c of each model's own window (order 1, at the y0 scale c
that minimizes queries x rounds), samples from the tomography bound at the stated eps_tomo,
XLA's FLOPs of one HVP and one SGD step, the qdk resource estimator for physical qubits and
seconds; cost against window length T and against eps_tomo.

The toy's history system is the article's (Eq. 6: T + 1 blocks, no idle padding) unless `idle`
> 0 (p idle copies) or `pad_to_steps` (p = T for every T, the padded variant)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .. import Discrete, carleman, gd_map
from .._data import Dataset, load_digits, make_batches
from .._models import make_mlp, named_resnet
from .._prune import apply_mask, count_active, prune_mask
from .._resources import (
    Assumptions,
    ChildsKothariSomma,
    CostEstimate,
    MeasuredInputs,
    estimate,
    qlsa_key,
    step_costs,
)
from ..linsys import affine_gd_map, history_report, history_system, log_scales, scale_scan
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

CKS = qlsa_key(ChildsKothariSomma())


def _model(name: str):
    if name.startswith("mlp"):  # mlp<width>: a 2-layer MLP on 8x8 digits
        return make_mlp((8, 8, 1), 10, hidden=(int(name[3:]),) * 2)
    return named_resnet(name)


def qlsa_total(est: CostEstimate, key: str, samples: str = "samples_bound") -> float:
    """Queries of a window with the QLSA `key`: $Q R N + Q N_{\\mathrm{norm}}$ (NaN if
    unavailable).

    **Arguments:** `est` (a `CostEstimate`), `key` (e.g. `qlsa_key(ChildsKothariSomma())`),
    `samples` (`"samples_bound"` or `"samples_typical"`).

    **Returns:** the total queries.
    """
    names = (key, "rounds", samples, "norm_runs")
    if not all(est[k].available for k in names):
        return float("nan")
    q, r, n, m = (est.value(k) for k in names)
    return q * r * n + q * m


def _measure(name: str, config: dict, data: dict):
    """A pruned model (at initialization) and a function `T -> MeasuredInputs` of its order-1
    window of `T` SGD steps: the window's history system (the maps the window's own kappa is
    of, `quantum_window`'s order-1 Carleman step) scanned over y0 scales, and XLA's FLOPs."""
    model = _model(name)
    ds: Dataset = data.setdefault(
        model.input_shape, load_digits(resize=model.input_shape != (8, 8, 1))
    )
    params = model.init(jax.random.key(0))
    mask = prune_mask(params, config["sparsity"])
    params = apply_mask(params, mask)
    t_max = max(config["window_steps"], *config["window_T_values"])
    batches = make_batches(ds.x_train, ds.y_train, jax.random.key(1), config["batch_size"], t_max)
    batch0 = jax.tree_util.tree_map(lambda b: b[0], batches)
    step = step_costs(model.loss_fn, params, batch0)
    s, n = int(count_active(mask)), model.num_params()
    eta = jnp.asarray(config["window_eta"], ds.x_train.dtype)
    leaves = jax.tree_util.tree_leaves
    g = jax.jit(
        lambda p, b: jnp.sqrt(
            sum(
                jnp.sum(jnp.where(m, x, 0) ** 2)
                for x, m in zip(leaves(jax.grad(model.loss_fn)(p, b)), leaves(mask), strict=True)
            )
        )
    )(params, batch0)

    def flat_step(t, x):
        batch = jax.tree_util.tree_map(lambda b: b[t - 1], batches)
        poly = gd_map(model.loss_fn, params, batch, eta=eta, mask=mask, degree=1, matrix_free=True)
        return Discrete().flat_step(carleman(poly, 1), x)

    @functools.cache
    def inputs(num_steps: int) -> MeasuredInputs:
        # scales around the size of the trajectory, eta * T * |g|
        center = jnp.maximum(eta * num_steps * g, 1e-6)
        scan = scale_scan(
            flat_step,
            num_steps,
            s + 1,
            log_scales(center, config["scale_decades"], config["num_scales"]),
            target=slice(1, 1 + s),
            num_iters=config["kappa_iters"],
            key=jax.random.key(3),
            dtype=ds.x_train.dtype,
        )
        nan = float("nan")
        return MeasuredInputs(
            kappa=nan,
            sigma_max=nan,
            sigma_min=nan,
            target_probability=nan,
            active_size=s,
            num_params=n,
            num_steps=num_steps,
            idle=0,
            max_order=1,
            scan=scan,
            step=step,
        )

    return model, inputs


def run(config: dict, progress) -> Output:
    """Run the experiment (see the module docstring).

    **Arguments:**

    - `config`: the resolved configuration (`resolve_config`).
    - `progress`: a callback for progress lines.

    **Returns:** the experiment's `Output`.
    """
    from matplotlib.figure import Figure

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
        rng = np.random.default_rng(0)
        q, _ = np.linalg.qr(rng.normal(size=(config["kappa_n"],) * 2))
        h = (q * np.linspace(0.5, 3.0, config["kappa_n"])) @ q.T
        g = rng.normal(size=config["kappa_n"]) / np.sqrt(config["kappa_n"])
        m = affine_gd_map(jnp.asarray(g), jnp.asarray(h), config["eta"])
        y0 = jnp.zeros(config["kappa_n"] + 1).at[0].set(1.0)
        rep_toy = history_report(history_system(m, t_res, p_res), y0)
    kd, ka = np.asarray(ks.kappa_dissipative), np.asarray(ks.kappa_almost)

    base = Assumptions(eps=config["eps"], eps_tomo=config["eps_tomo"])
    rows, res_rows, data, first = [], [], {}, None
    for name in config["models"]:
        progress(f"window of {name}: kappa_c, P_c, FLOPs, physical cost")
        model, inputs = _measure(name, config, data)
        inp = inputs(config["window_steps"])
        est = estimate(inp, base)
        first = first or (inputs, inp)
        res_rows.append(
            {
                "model": name,
                "n": model.num_params(),
                "active": inp.active_size,
                "classical_flops": est.value("classical_flops_dense"),
                "quantum_total_cks": qlsa_total(est, CKS),
                "estimate": est.to_dict(),
            }
        )
        v = {k: est[k] for k in est.quantities}
        rows.append(
            [
                name,
                model.num_params(),
                inp.active_size,
                inp.num_steps,
                f"{v['kappa'].value:.3g} ({v['y0_scale'].value:.2g})",
                f"{v['target_probability'].value:.3g}",
                _cell(v["logical_qubits"]),
                f"{qlsa_total(est, CKS):.3g}",
                _cell(v["total_toffolis_bound"]),
                _cell(v["physical_qubits"]),
                _cell(v["seconds_bound"]),
                _cell(v["classical_flops_dense"]),
                _cell(v["classical_seconds_sparse"]),
                _cell(v["ratio_closed_form"]),
            ]
        )

    progress("cost against window length T and eps_tomo")
    inputs0, inp_eps = first
    vs_T = {
        "T": list(config["window_T_values"]),
        "toffolis_bound": [],
        "toffolis_typical": [],
        "classical_flops_sparse": [],
    }
    for t in config["window_T_values"]:
        e = estimate(inputs0(int(t)), base, physical=False)
        vs_T["toffolis_bound"].append(_num(e["total_toffolis_bound"]))
        vs_T["toffolis_typical"].append(_num(e["total_toffolis_typical"]))
        vs_T["classical_flops_sparse"].append(_num(e["classical_flops_sparse"]))
    vs_eps = {
        "eps_tomo": list(config["eps_tomo_values"]),
        "toffolis_bound": [],
        "toffolis_typical": [],
    }
    for e_t in config["eps_tomo_values"]:
        e = estimate(inp_eps, Assumptions(eps=config["eps"], eps_tomo=e_t), physical=False)
        vs_eps["toffolis_bound"].append(_num(e["total_toffolis_bound"]))
        vs_eps["toffolis_typical"].append(_num(e["total_toffolis_typical"]))

    fig = Figure(figsize=(15, 4), layout="constrained")
    a1, a2, a3 = fig.subplots(1, 3)
    a1.loglog(T, kd, "o-", label=f"dissipative (slope {ks.exponent_dissipative:.2f})")
    a1.loglog(T, ka, "s-", label=f"almost dissipative (slope {ks.exponent_almost:.2f})")
    a1.loglog(T, kd[0] * T / T[0], "k:", lw=1, label="~T")
    a1.loglog(T, ka[0] * (T / T[0]) ** 2, "k--", lw=1, label="~T^2")
    a1.set(xlabel="steps T", ylabel="kappa(L)", title="history-state system (toy)")
    a1.legend(fontsize=8)
    name0 = config["models"][0]
    a2.semilogy(vs_T["T"], vs_T["toffolis_bound"], "o-", label="quantum Toffolis (bound)")
    a2.semilogy(vs_T["T"], vs_T["toffolis_typical"], "s-", label="quantum Toffolis (typical)")
    a2.semilogy(vs_T["T"], vs_T["classical_flops_sparse"], "k^-", label="classical FLOPs (sparse)")
    a2.set(
        xlabel="window length T",
        ylabel="cost of one window",
        title=f"{name0}: cost vs T (eps_tomo = {config['eps_tomo']})",
    )
    a2.legend(fontsize=7)
    a3.loglog(vs_eps["eps_tomo"], vs_eps["toffolis_bound"], "o-", label="bound")
    a3.loglog(vs_eps["eps_tomo"], vs_eps["toffolis_typical"], "s-", label="typical")
    a3.set(
        xlabel="read-out error eps_tomo",
        ylabel="quantum Toffolis",
        title=f"{name0}: cost vs eps_tomo (T = {config['window_steps']})",
    )
    a3.legend(fontsize=7)

    table = markdown_table(
        ["T", "kappa dissipative", "kappa almost dissipative"],
        [[int(t), float(a), float(b)] for t, a, b in zip(T, kd, ka, strict=True)],
    )
    table += (
        f"\n\nFitted exponents: dissipative {ks.exponent_dissipative:.2f}, almost "
        f"dissipative {ks.exponent_almost:.2f}.\n\n"
    )
    table += markdown_table(
        [
            "model",
            "n",
            "active s",
            "T",
            "kappa_c (c)",
            "P_c",
            "logical qubits",
            "quantum total (CKS)",
            "Toffolis (bound)",
            "physical qubits",
            "quantum s (bound)",
            "classical FLOPs (dense)",
            "classical s (sparse)",
            "Q/C closed form",
        ],
        rows,
    )
    report = (
        f"kappa of the history-state system L ({form}; the article's Eq. 6 has no idle "
        f"padding) of the affine GD map of an n = {config['kappa_n']} quadratic (eta = "
        f"{config['eta']}): Hessian eigenvalues in [0.5, 3] (dissipative) vs one flat "
        "direction driven by the gradient (almost dissipative, drift ~ t).\n\n"
        f"Cost per model: each model at initialization, {config['sparsity']:.0%} magnitude-"
        f"pruned, one order-1 quantum window of T = {config['window_steps']} SGD steps "
        f"(eta = {config['window_eta']}, batch {config['batch_size']}, digits data, resized "
        "for the ResNets); kappa_c and P_c are measured on the window's own history system "
        "(its order-1 Carleman maps on those batches) at the y0 scale c minimizing queries x "
        "rounds (scan of "
        f"{config['num_scales']} scales); 'quantum total (CKS)' is CKS queries x rounds x "
        f"the tomography bound's samples at eps_tomo = {config['eps_tomo']} (plus norm "
        f"estimation); eps = {config['eps']} is the QLSA's precision. Every number, its label "
        "(measured / exact / bound / estimate / assumption / unavailable), formula and source "
        "is in results.json.\n\n" + est.statement
    )
    results = {
        "history_at_T": {
            "T": t_res,
            "idle": p_res,
            "form": form,
            "kappa": float(rep_toy.kappa),
            "target_probability": float(rep_toy.target_probability),
        },
        "kappa": {
            "T": T.tolist(),
            "dissipative": kd.tolist(),
            "almost": ka.tolist(),
            "exponent_dissipative": ks.exponent_dissipative,
            "exponent_almost": ks.exponent_almost,
        },
        "resources": res_rows,
        "cost_vs_T": vs_T,
        "cost_vs_eps_tomo": vs_eps,
    }
    return Output(results, {"scaling": fig}, report, table)


def _num(q) -> float:
    return q.value if q.available else float("nan")


def _cell(q) -> str:
    return f"{q.value:.3g}" if q.available else "n/a"


# The ci preset; the cpu and paper presets change some of its values.
_CI = dict(
    T_values=(10, 20, 40),
    kappa_n=6,
    eta=0.1,
    drive=1.0,
    models=("mlp8", "mlp16"),
    sparsity=0.9,
    batch_size=32,
    eps=0.01,
    eps_tomo=0.01,
    eps_tomo_values=(0.1, 0.03, 0.01, 0.003),
    idle=0,
    pad_to_steps=False,
    window_steps=3,
    window_T_values=(2, 3),
    window_eta=0.1,
    kappa_iters=16,
    num_scales=5,
    scale_decades=2.0,
)

register(
    Experiment(
        name="scaling",
        summary="kappa vs T on a toy; the end-to-end cost of a window on real models",
        shows="kappa ~T vs ~T^2; labelled queries, samples, Toffolis, qubits, seconds vs "
        "classical FLOPs; cost vs T and eps_tomo",
        presets={
            "ci": _CI,
            "cpu": dict(
                _CI,
                T_values=(25, 50, 100, 200, 400),
                models=("mlp64", "mlp256", "resnet32-4-c100"),
                batch_size=128,
                window_steps=4,
                window_T_values=(1, 2, 4),
            ),
            "paper": dict(
                _CI,
                T_values=(25, 50, 100, 200, 400, 800),
                models=("resnet32-4-c10", "resnet32-4-c100", "resnet32-8-c100"),
                batch_size=128,
                window_steps=10,
                window_T_values=(2, 5, 10),
                kappa_iters=32,
                num_scales=9,
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
            eps=Range(0, 1, low_open=True, high_open=True, what="the QLSA precision"),
            eps_tomo=Range(0, 1, low_open=True, high_open=True, what="the read-out error"),
            eps_tomo_values=Range(0, 1, low_open=True, high_open=True, what="read-out errors"),
            window_steps=COUNT,
            window_T_values=COUNT,
            window_eta=POSITIVE,
            kappa_iters=COUNT,
            num_scales=COUNT,
            scale_decades=POSITIVE,
        ),
    )
)
