"""Experiment 2, dissipation spectra: SLQ Hessian spectral densities of a pruned model (dense,
right after pruning, later in sparse training), dissipation metrics per checkpoint, the
error-propagation curve E(t) with its dissipative / divergent split and the steps t*, t_c, and
the paper's proxy E_paper(t) (cut-off a_c on |eta lambda|) with its band below 1.

Densities are averaged over `num_probes` Rademacher probes and broadened with a width set by
the Lanczos node spacing (`qsgd_jax.spectrum.broadening_sigma`). The `paper` preset is the
article's Fig. 3 setup on one GPU: the ~104M ResNet-32-15 on CIFAR-100 (the user's archive),
pre-trained, 90 % pruned, its spectrum at pruning with 256 Lanczos steps and several probes."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from .._data import load_cifar, load_digits, make_batches
from .._hybrid import HybridConfig, hybrid_run, pretrain
from .._models import make_mlp, make_resnet, named_resnet
from .._plots_spectrum import plot_error_propagation, plot_spectral_densities
from .._propagation import paper_proxy_from_spectrum, propagation_from_spectrum
from .._spectrum import hessian_spectrum
from .._window import WindowConfig
from ._framework import (
    COUNT,
    FRACTION,
    NONNEGATIVE_INT,
    POSITIVE,
    Experiment,
    ExperimentError,
    Output,
    Range,
    markdown_table,
    register,
)


def _setup(config: dict):
    image = not config["model"].startswith("mlp")
    if config["data"] == "digits":
        data = load_digits(resize=image)
    else:
        data = load_cifar(
            config["data"],
            num_classes=100 if config["model"].endswith("c100") else 10,
            max_train=config["max_train"] or None,
        )
    if config["model"] == "mlp":
        return data, make_mlp(data.input_shape, data.num_classes, hidden=(32,))
    if config["model"].startswith("mlp"):  # mlpW: two hidden layers of width W
        width = int(config["model"][3:])
        return data, make_mlp(data.input_shape, data.num_classes, hidden=(width, width))
    if config["model"].startswith("resnet") and config["model"].count("-") == 1:
        depth, width = (int(v) for v in config["model"][6:].split("-"))  # resnetD-W
        return data, make_resnet(depth, width, data.num_classes, input_shape=data.input_shape)
    try:
        return data, named_resnet(config["model"])
    except ValueError as e:
        raise ExperimentError(str(e)) from None


def run(config: dict, progress) -> Output:
    """Run the experiment (see the module docstring).

    **Arguments:**

    - `config`: the resolved configuration (`resolve_config`).
    - `progress`: a callback for progress lines.

    **Returns:** the experiment's `Output`.
    """
    data, model = _setup(config)
    key = jax.random.key(config["seed"])
    k_init, k_pre, k_sparse, k_hess = jax.random.split(key, 4)
    x, y = data.x_train, data.y_train
    bs = config["batch_size"]
    params = model.init(k_init)
    progress(
        f"{model.num_params():,}-parameter {config['model']} on {config['data']}: "
        f"{config['pretrain_steps']} dense pre-training steps"
    )
    cfg = HybridConfig(
        window=WindowConfig(config["eta"], 1),
        pretrain_steps=config["pretrain_steps"],
        pretrain_lr=config["pretrain_lr"],
        batch_size=bs,
    )
    params = pretrain(model.loss_fn, params, x, y, cfg, k_pre)
    batches = make_batches(x, y, k_hess, bs, config["hessian_batches"])

    def spectrum(p, mask, view):
        dim = (
            model.num_params()
            if mask is None
            else int(sum(int(m.sum()) for m in jax.tree_util.tree_leaves(mask)))
        )
        return hessian_spectrum(
            model.loss_fn,
            p,
            batches,
            k_hess,
            mask,
            view=view,
            num_steps=min(config["lanczos_steps"], dim),
            num_probes=config["num_probes"],
        )

    dens, curves, proxies, rows = {}, {}, {}, []

    def record(label, d):
        dens[label] = d
        c = propagation_from_spectrum(d, config["eta"], num_steps=config["propagation_steps"])
        pr = paper_proxy_from_spectrum(
            d, config["eta"], a_c=config["a_c"], num_steps=config["propagation_steps"]
        )
        curves[label], proxies[label] = c, pr
        rows.append(
            [
                label,
                float(d.lambda_min),
                float(d.lambda_max),
                float(d.positive_fraction),
                float(d.negative_ratio),
                float(c.t_star),
                float(c.t_c),
                float(pr.kept_mass),
                float(pr.first_below),
                float(pr.crosses_back),
                float(pr.minimum),
            ]
        )
        progress(
            f"{label}: positive fraction {float(d.positive_fraction):.3f}, "
            f"t* = {float(c.t_star):g}, t_c = {float(c.t_c):g}, E_paper kept mass "
            f"{float(pr.kept_mass):.3g}, below 1 from {float(pr.first_below):g} to "
            f"{float(pr.crosses_back):g}"
        )

    record("dense", spectrum(params, None, "dense"))

    def look(at):
        label = "pruned, step 0" if at.step == 0 else f"sparse step {at.step}"
        record(label, spectrum(at.params, at.mask, "active"))

    sparse = dataclasses.replace(
        cfg,
        pretrain_steps=0,
        sparsity=config["sparsity"],
        sparse_steps=max((0, *config["checkpoints"])),
        num_windows=0,
        baseline=False,
    )
    steps = {0, *config["checkpoints"]}
    hybrid_run(model.loss_fn, params, x, y, sparse, k_sparse, observe=look, observe_steps=steps)

    fig1 = plot_spectral_densities(dens)
    sparse = [k for k in curves if k != "dense"]
    fig2 = plot_error_propagation(
        {k: curves[k] for k in sparse}, proxies={k: proxies[k] for k in sparse}
    )
    fig2.axes[0].set_title(
        f"E(t) and E_paper(t) (a_c = {config['a_c']}), eta = {config['eta']}; shaded: E_paper < 1"
    )
    header = [
        "checkpoint",
        "lambda_min",
        "lambda_max",
        "positive fraction",
        "negative ratio",
        "t*",
        "t_c",
        "E_paper kept mass",
        "E_paper < 1 from",
        "E_paper back at 1",
        "E_paper min",
    ]
    table = markdown_table(header, rows)
    report = (
        f"{config['model']} ({model.num_params():,} parameters) on {config['data']}, dense SGD "
        f"pre-training ({config['pretrain_steps']} steps, lr {config['pretrain_lr']}, momentum "
        f"0.9), one-shot global magnitude pruning at {config['sparsity']:.0%}, then sparse SGD "
        f"at eta = {config['eta']}. Hessian spectra by stochastic Lanczos quadrature "
        f"({config['lanczos_steps']} steps, {config['num_probes']} probe(s), densities averaged "
        "over the probes and broadened with a width from the Lanczos node spacing) over "
        f"{config['hessian_batches']} batches of {bs}; "
        "sparse checkpoints on the active set (pruned directions excluded). E(t) = mean "
        "|1 - eta lambda|^t; t* is where it returns to 1, t_c where the divergent modes "
        "overtake the dissipative ones (inf: not within the horizon of "
        f"{config['propagation_steps']} steps). E_paper(t) is the article's proxy: the same "
        f"mean over the modes with |eta lambda| >= {config['a_c']} only (kept mass N_c; NaN when "
        "none is kept), with the steps where it first drops below 1 and comes back. The "
        "article's Fig. 3 (103M model at pruning) shows a bulk of about [-4.3, 14] with "
        "outliers near -8.6 and 18.9; its Fig. 2 proxy is below 1 from step ~11 to ~57. This "
        "preset's model and data may be smaller (see the settings)."
    )
    results = {
        "num_params": model.num_params(),
        "checkpoints": [dict(zip(header, r, strict=True)) for r in rows],
        "densities": {
            k: {"grid": np.asarray(d.grid).tolist(), "density": np.asarray(d.density).tolist()}
            for k, d in dens.items()
        },
        "propagation": {
            k: {
                "total": np.asarray(c.total).tolist(),
                "dissipative": np.asarray(c.dissipative).tolist(),
                "divergent": np.asarray(c.divergent).tolist(),
            }
            for k, c in curves.items()
        },
        "paper_proxy": {
            k: {
                "a_c": float(p.a_c),
                "kept_mass": float(p.kept_mass),
                "value": np.asarray(p.value).tolist(),
                "first_below": float(p.first_below),
                "crosses_back": float(p.crosses_back),
                "minimum": float(p.minimum),
                "argmin": float(p.argmin),
            }
            for k, p in proxies.items()
        },
        "sigma": {k: float(d.sigma) for k, d in dens.items()},
    }
    return Output(results, {"spectra": fig1, "error_propagation": fig2}, report, table)


# The ci preset; the cpu and paper presets change some of its values.
_CI = dict(
    seed=0,
    model="mlp",
    data="digits",
    max_train=0,
    pretrain_steps=50,
    pretrain_lr=0.1,
    sparsity=0.9,
    eta=0.1,
    batch_size=64,
    hessian_batches=2,
    lanczos_steps=16,
    num_probes=2,
    a_c=0.4,
    checkpoints=(5,),
    propagation_steps=60,
)

register(
    Experiment(
        name="spectra",
        summary="Hessian spectra of a pruned model over training; E(t), t*, t_c per checkpoint",
        shows="SLQ spectral densities (dense, pruned, later); dissipation metrics; E(t), t*, t_c",
        # model: "mlp" (hidden 32), "mlpW" (two layers of width W), "resnetD-W" (CIFAR ResNet on
        # 32x32 inputs; slow on CPU, where XLA runs convolutions inside loops slowly) or a named
        # config such as "resnet32-4-c100"; data: "digits" or the path of a CIFAR archive.
        # paper: the article's Fig. 3 on one GPU: ~104M parameters (ResNet-32-15, CIFAR-100
        # from the user's archive), spectrum at pruning with the paper's depth 256 and several
        # probes.
        presets={
            "ci": _CI,
            "cpu": dict(
                _CI,
                model="mlp64",
                pretrain_steps=300,
                batch_size=128,
                hessian_batches=4,
                lanczos_steps=64,
                num_probes=4,
                checkpoints=(20, 100),
                propagation_steps=200,
            ),
            "paper": dict(
                _CI,
                model="resnet32-15-c100",
                data="cifar-100-python.tar.gz",
                pretrain_steps=20000,
                batch_size=128,
                hessian_batches=8,
                lanczos_steps=256,
                num_probes=4,
                checkpoints=(200, 2000),
                propagation_steps=1000,
            ),
        },
        run=run,
        ranges=dict(
            seed=NONNEGATIVE_INT,
            max_train=Range(0, integer=True, what="0: all"),
            pretrain_steps=NONNEGATIVE_INT,
            pretrain_lr=POSITIVE,
            sparsity=FRACTION,
            eta=POSITIVE,
            batch_size=COUNT,
            hessian_batches=COUNT,
            lanczos_steps=Range(2, integer=True, what="Lanczos steps"),
            num_probes=COUNT,
            a_c=Range(0, what="the cut-off on |eta lambda|"),
            checkpoints=Range(0, integer=True, what="steps after pruning"),
            propagation_steps=COUNT,
        ),
    )
)
