"""Hessian-vector products on a mask's active set and stochastic Lanczos quadrature (SLQ).

The Hessian is that of the mean loss over a stack of batches,
$H = \\frac1B \\sum_b \\nabla^2 L(\\bar\\theta; \\text{batch}_b)$, at the masked point
$\\bar\\theta = m \\odot \\theta$; products are forward-over-reverse (`jvp` of `grad`), never a
stored matrix. Three views of the same operator:

- `"active"`: $P H P^\\top$ on $\\mathbb R^s$ ($P$ selects the active coordinates) — the
  spectrum the dissipation condition is about (`docs/math/propagation.md`);
- `"masked"`: $\\operatorname{diag}(m) H \\operatorname{diag}(m)$ on $\\mathbb R^n$ — the same
  eigenvalues plus an exact spike of $n - s$ zeros from the pruned directions;
- `"dense"`: $H$ on $\\mathbb R^n$, ignoring the mask.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PRNGKeyArray, PyTree, Scalar

from ._errors import (
    check_finite,
    check_finite_tree,
    check_int_range,
    check_nonempty,
    check_positive,
    check_real_float,
    is_concrete,
)
from ._lanczos import (
    _choose_reortho,
    _gauss_quadrature,
    _lanczos_init,
    _lanczos_result,
    _lanczos_step,
    lanczos_tridiag,
)
from ._progress import progress_counter
from ._prune import check_mask

VIEWS = ("active", "masked", "dense")
_UNROLL_BATCHES = 8


def stack_batches(batches) -> PyTree:
    """A list/tuple of batch pytrees → one pytree with a leading batch-index axis.

    **Arguments:**

    - `batches`: a list or tuple of batch pytrees of one structure, or an already stacked pytree
      (returned as it is).

    **Returns:** the stacked pytree.
    """
    if isinstance(batches, list | tuple):
        if not batches:
            raise ValueError("`batches` is empty; pass at least one batch.")
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *batches)
    return batches


def hessian_operator(
    loss_fn: Callable[[PyTree, PyTree], Scalar],
    params: PyTree,
    batches,
    mask: PyTree | None = None,
    *,
    view: str = "active",
) -> tuple[Callable[[Float[Array, " d"]], Float[Array, " d"]], int]:
    """Matrix-free Hessian of the batch-mean loss, in one of the three views (module docstring).

    **Arguments:**
    - `loss_fn`: pure `loss_fn(params, batch) -> scalar`.
    - `params`: the expansion point $\\theta$ (the mask is applied to it first).
    - `batches`: a list of batches, or a batch pytree whose leaves have a leading batch-index
      axis; the Hessian is the mean over them (unrolled for up to 8 batches, a `lax.scan`
      beyond, so memory stays that of one batch).
    - `mask`: bool pytree (`True` = active); required for views `"active"` and `"masked"`.
    - `view`: `"active"`, `"masked"` or `"dense"`.

    **Returns:** `(matvec, dim)`: a function on flat vectors of length `dim` ($s$ or $n$).
    """
    batches, m_flat, idx = _prepare(params, batches, mask, view)
    return _operator(loss_fn, params, batches, m_flat, idx, view)


def _prepare(params, batches, mask, view):
    """Validate, stack the batches and locate the active set (concrete: `s` is a shape)."""
    if view not in VIEWS:
        raise ValueError(f"`view` must be one of {VIEWS}, got {view!r}.")
    if view != "dense" and mask is None:
        raise ValueError(f"`view={view!r}` needs a `mask`; pass one or use `view='dense'`.")
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        check_real_float(f"params{jax.tree_util.keystr(path)}", jnp.result_type(leaf))
    batches = stack_batches(batches)
    nb = {jnp.shape(x)[0] for x in jax.tree_util.tree_leaves(batches)}
    if len(nb) != 1:
        raise ValueError(f"`batches` leaves disagree on the leading (batch-index) axis: {nb}.")
    check_nonempty(
        "batches",
        next(iter(nb)),
        "batches (its leaves' leading batch-index axis has length 0)",
        "There is no data to take the Hessian of; pass at least one batch.",
    )
    if mask is None:
        return batches, None, None
    check_mask(params, mask)
    if not is_concrete(mask):
        if view == "active":
            raise ValueError("`view='active'` needs a concrete `mask` (s is an array shape).")
        return batches, ravel_pytree(mask)[0].astype(bool), None
    # numpy (same leaf order as ravel_pytree): inside a trace, jnp would stage the mask.
    m_np = np.concatenate([np.ravel(np.asarray(m)) for m in jax.tree_util.tree_leaves(mask)])
    idx = jnp.asarray(np.flatnonzero(m_np), jnp.int32) if view == "active" else None
    return batches, jnp.asarray(m_np, bool), idx


def _operator(loss_fn, params, batches, m_flat, idx, view):
    """The matvec of a view; traceable in `params`, `batches`, `m_flat` and `idx`."""
    flat0, unravel = ravel_pytree(params)
    n, dtype = flat0.shape[0], flat0.dtype
    zero = jnp.zeros((), dtype)
    if m_flat is not None:
        flat0 = jnp.where(m_flat, flat0, zero)
    params = unravel(flat0)
    num_b = jax.tree_util.tree_leaves(batches)[0].shape[0]
    grad = jax.grad(loss_fn)

    def hvp(v):
        tangent = unravel(v)

        def body(acc, batch):
            _, hv = jax.jvp(lambda p: grad(p, batch), (params,), (tangent,))
            return acc + ravel_pytree(hv)[0], None

        # Straight-line code for a few batches: XLA:CPU runs convolutions inside a while loop
        # an order of magnitude slower; many batches use a scan (memory of one batch).
        unroll = num_b <= _UNROLL_BATCHES
        if num_b == 1:
            return body(jnp.zeros((n,), dtype), jax.tree_util.tree_map(lambda x: x[0], batches))[0]
        acc, _ = jax.lax.scan(body, jnp.zeros((n,), dtype), batches, unroll=unroll)
        return acc / jnp.asarray(num_b, dtype)

    if view == "dense":
        return hvp, n
    if view == "masked":
        return (lambda v: jnp.where(m_flat, hvp(jnp.where(m_flat, v, zero)), zero)), n
    return (lambda v: hvp(jnp.zeros((n,), dtype).at[idx].set(v))[idx]), int(idx.shape[0])


class SpectralDensity(eqx.Module):
    """SLQ estimate of a symmetric operator's spectral density, with dissipation metrics.

    **Fields:**
    - `nodes`, `weights`: Gauss quadrature of each probe, shape `(probes, steps)`; weights sum to
      1 over everything, so $\\int f\\,d\\rho \\approx \\sum_{p,k} w_{pk} f(\\theta_{pk})$.
    - `grid`, `density`: the Gaussian-broadened density on an even grid, the average over the
      $P$ probes of each probe's density,
      $\\rho_\\sigma(\\lambda) = \\frac1P \\sum_p \\sum_k \\tau_{pk}^2
      \\mathcal N(\\lambda; \\theta_{pk}, \\sigma^2) = \\sum_{p,k} w_{pk}
      \\mathcal N(\\lambda; \\theta_{pk}, \\sigma^2)$ (see `broaden_density` for $\\sigma$).
    - `sigma`: the broadening width.
    - `lambda_min`, `lambda_max`: extreme Ritz values (over all probes).
    - `positive_fraction`: spectral mass at $\\lambda > 0$; `negative_mass`: mass at
      $\\lambda < 0$; `negative_ratio`: $\\int_{\\lambda<0}|\\lambda|\\rho / \\int|\\lambda|\\rho$.
    - `dim`, `num_steps`, `reortho`, `view`: the operator's dimension, the Lanczos depth, the
      re-orthogonalization used ("full" or "none") and the Hessian view (static).
    """

    nodes: Float[Array, "p k"]
    weights: Float[Array, "p k"]
    grid: Float[Array, " g"]
    density: Float[Array, " g"]
    sigma: Float[Array, ""]
    lambda_min: Float[Array, ""]
    lambda_max: Float[Array, ""]
    positive_fraction: Float[Array, ""]
    negative_mass: Float[Array, ""]
    negative_ratio: Float[Array, ""]
    dim: int = eqx.field(static=True)
    num_steps: int = eqx.field(static=True)
    reortho: str = eqx.field(static=True)
    view: str = eqx.field(static=True, default="operator")


KAPPA = 1.25
"""Default resolution parameter $\\kappa$ of the Gaussian broadening (`broadening_sigma`).

Papyan (2020) uses $\\kappa = 3$ ($\\sigma \\approx h/3$) and averages over repeated runs. With
one probe that ripples: Lanczos nodes sit about $\\pi h/2$ apart in the middle of the range,
and on a flat spectrum (4000 eigenvalues on $[0, 1]$, 64 steps) the density swings between
0.39 and 1.65 of its true value. $\\kappa = 1.25$ ($\\sigma \\approx 0.75\\,h$) keeps that
swing within 1 %, at a resolution still set by the node spacing."""
MARGIN = 0.05
"""Relative margin around the Ritz values' range (Papyan 2020, App. D.2)."""


def _check_kappa(kappa) -> None:
    check_positive("kappa", kappa)
    if not float(kappa) > 1:
        raise ValueError(f"`kappa` must be finite and > 1, got {kappa!r}.")


def default_grid_size(num_steps: int) -> int:
    """Density grid points for `num_steps` quadrature nodes: at least 512, and 8 per node
    spacing, so that the Gaussians of width $\\sigma \\approx h/3$ are resolved.

    **Arguments:**

    - `num_steps`: the Lanczos depth (nodes per probe).

    **Returns:** the number of grid points.
    """
    return max(512, 8 * int(num_steps))


def broadening_sigma(lo, hi, num_steps: int, *, kappa: float = KAPPA, margin: float = MARGIN):
    """The Gaussian broadening width chosen from the node spacing (Papyan 2020, Alg. 2; the
    rule of Lin, Saad and Yang 2016 for Lanczos densities).

    With $M$ nodes over the range $[\\lambda_-, \\lambda_+]$ widened by `margin` on each side,
    the mean node spacing is $h = (\\lambda_+ - \\lambda_-)(1 + 2\\,\\text{margin})/(M - 1)$ and

    $$\\sigma = \\frac{h}{\\sqrt{8 \\ln \\kappa}},$$

    i.e. a Gaussian centred on one node has dropped to $1/\\kappa$ of its peak half-way to the
    next node (Papyan's $\\kappa = 3$: about $h/3$; the default `KAPPA` = 1.25: about
    $0.75\\,h$, see there why). Unlike a fixed narrow width this
    follows the quadrature's resolution: deeper Lanczos runs resolve finer detail and get
    narrower Gaussians; short ones are smoothed over their coarser spacing.

    **Arguments:**
    - `lo`, `hi`: the extreme Ritz values (arrays or floats; traceable).
    - `num_steps`: the Lanczos depth $M$ (nodes per probe).
    - `kappa`: $\\kappa > 1$; smaller is broader.
    - `margin`: relative margin added to each side of the range.

    **Returns:** $\\sigma$ (an array of the dtype of `lo`).
    """
    lo, hi = jnp.asarray(lo), jnp.asarray(hi)
    dtype = lo.dtype if jnp.issubdtype(lo.dtype, jnp.floating) else jnp.float32
    lo, hi = lo.astype(dtype), hi.astype(dtype)
    one = jnp.ones((), dtype)
    # A single distinct node (or an exact spike) has zero range: floor it, as 1e-3 of its scale.
    width = jnp.maximum(hi - lo, jnp.maximum(jnp.abs(hi), one) * 1e-3)
    h = width * (1 + 2 * margin) / max(int(num_steps) - 1, 1)
    return h / jnp.asarray(np.sqrt(8 * np.log(kappa)), dtype)


def broaden_density(
    density: SpectralDensity,
    *,
    sigma: float | Scalar | None = None,
    kappa: float = KAPPA,
    grid: Float[Array, " g"] | None = None,
    grid_size: int | None = None,
) -> SpectralDensity:
    """The same quadrature, re-broadened: another width, or a given grid (e.g. one grid shared
    by every checkpoint of a training run, for a density-over-steps image).

    **Arguments:**
    - `density`: a `SpectralDensity` (its nodes and weights are kept).
    - `sigma`: the width (default: `broadening_sigma` with `kappa`).
    - `kappa`: Papyan's resolution parameter when `sigma` is not given.
    - `grid`: the evaluation points (default: an even grid over the nodes' range plus margins).
    - `grid_size`: points of the default grid (default `default_grid_size(num_steps)`).

    **Returns:** a new `SpectralDensity` (nodes, weights and metrics unchanged).
    """
    _check_kappa(kappa)
    if sigma is not None:
        check_positive("sigma", sigma)
    size = default_grid_size(density.num_steps) if grid_size is None else grid_size
    check_int_range("grid_size", size, 2)
    if grid is not None:
        check_finite("grid", grid)
    metrics = _density_and_metrics(
        density.nodes,
        density.weights,
        None if sigma is None else jnp.asarray(sigma),
        None if grid is None else jnp.asarray(grid),
        size,
        density.num_steps,
        kappa,
    )
    return SpectralDensity(*metrics, density.dim, density.num_steps, density.reortho, density.view)


def slq_spectrum(
    matvec: Callable[[Float[Array, " d"]], Float[Array, " d"]],
    dim: int,
    key: PRNGKeyArray,
    *,
    num_steps: int = 64,
    num_probes: int = 1,
    reortho: str = "auto",
    dtype=jnp.float32,
    grid_size: int | None = None,
    sigma: float | None = None,
    kappa: float = KAPPA,
    memory_limit: int | None = None,
    view: str = "operator",
) -> SpectralDensity:
    """Stochastic Lanczos quadrature of a symmetric operator's spectral density.

    Each probe $v$ (Rademacher, normalized) gives, from $k$ Lanczos steps, a Gauss rule
    $v^\\top f(A) v \\approx \\sum_j \\tau_j^2 f(\\theta_j)$ (Ritz values $\\theta_j$, first
    components $\\tau_j$ of $T$'s eigenvectors); averaging over probes estimates
    $\\frac1d \\operatorname{tr} f(A) = \\int f\\,d\\rho$. The density is the average of the
    probes' Gaussian-broadened densities; its width follows the node spacing
    (`broadening_sigma`, Papyan's rule), unless `sigma` is given.

    **Arguments:**
    - `matvec`, `dim`: the operator (e.g. from `hessian_operator`) and its dimension.
    - `key`: PRNG key of the probes.
    - `num_steps`: Lanczos depth $k \\le$ `dim` (the paper: 256 for densities, 64 for bounds).
    - `num_probes`: number of random start vectors.
    - `reortho`: `"full"` (store the basis), `"none"` ($O(d)$ memory) or `"auto"`: full when
      $(k+4)\\,d$ floats fit in `memory_limit`, else none. The choice is in the result.
    - `dtype`: float dtype of the probes (that of the operator).
    - `grid_size`: points of the density grid (default `default_grid_size(num_steps)`, at least
      8 per node spacing).
    - `sigma`: a fixed broadening width (default: from the node spacing, `broadening_sigma`).
    - `kappa`: the resolution parameter $\\kappa > 1$ of that rule (default `KAPPA` = 1.25;
      Papyan's is 3; smaller is broader).
    - `memory_limit`: bytes (default: `qsgd_jax._errors.default_memory_limit()`).
    - `view`: label stored in the result.

    **Returns:** a `SpectralDensity`.
    """
    check_int_range("dim", dim, 1)
    check_int_range("num_probes", num_probes, 1)
    check_int_range("num_steps", num_steps, 1)
    grid_size = default_grid_size(num_steps) if grid_size is None else grid_size
    check_int_range("grid_size", grid_size, 2)
    _check_kappa(kappa)
    if num_steps > dim:
        raise ValueError(
            f"`num_steps` (Lanczos depth) must be at most the operator's dimension {dim} "
            f"(the active dimension s for view='active'), got {num_steps}."
        )
    if sigma is not None:
        check_positive("sigma", sigma)
    full = _choose_reortho(reortho, dim, num_steps, jnp.dtype(dtype).itemsize, memory_limit)

    def one(k):
        v = jax.random.rademacher(k, (dim,), dtype)
        return _gauss_quadrature(*lanczos_tridiag(matvec, v, num_steps, reortho=full))

    nodes, weights = jax.lax.map(one, jax.random.split(key, num_probes))
    sig = None if sigma is None else jnp.asarray(sigma, dtype)
    metrics = _density_and_metrics(
        nodes, weights / jnp.asarray(num_probes, dtype), sig, None, grid_size, num_steps, kappa
    )
    return SpectralDensity(*metrics, int(dim), int(num_steps), "full" if full else "none", view)


@eqx.filter_jit
def _density_and_metrics(nodes, weights, sig, grid, grid_size, num_steps, kappa):
    """Broadened density and metrics; `weights` already carry the $1/P$ of the probe average."""
    dtype = nodes.dtype
    lo, hi = jnp.min(nodes), jnp.max(nodes)
    spread = jnp.maximum(hi - lo, jnp.maximum(jnp.abs(hi), jnp.ones((), dtype)) * 1e-3)
    if sig is None:
        sig = broadening_sigma(lo, hi, num_steps, kappa=kappa)
    sig = jnp.asarray(sig, dtype)
    if grid is None:
        # Papyan's margin, and at least 6 sigma so that every Gaussian's mass is on the grid.
        pad = jnp.maximum(MARGIN * spread, 6 * sig)
        grid = jnp.linspace(lo - pad, hi + pad, grid_size, dtype=dtype)
    grid = jnp.asarray(grid, dtype)
    norm = jnp.asarray(np.sqrt(2 * np.pi), dtype) * sig

    # Per probe, then the mean over probes (the weights sum to 1/P per probe): a scan over
    # probes keeps memory at grid x nodes, not grid x probes x nodes.
    def one(acc, nw):
        z = (grid[:, None] - nw[0][None]) / sig
        return acc + jnp.sum(nw[1][None] * jnp.exp(-0.5 * z * z), axis=1) / norm, None

    density, _ = jax.lax.scan(one, jnp.zeros(grid.shape, dtype), (nodes, weights))
    return nodes, weights, grid, density, sig, lo, hi, *spectral_metrics(nodes, weights)


def spectral_metrics(nodes, weights):
    """Spectral mass at $\\lambda > 0$, at $\\lambda < 0$, and the negative share of
    $\\int|\\lambda|\\rho$, of a quadrature whose weights sum to 1 (traceable).

    **Arguments:** `nodes`, `weights`: the quadrature, same shape.

    **Returns:** `(positive_fraction, negative_mass, negative_ratio)`, scalars.
    """
    zero = jnp.zeros((), nodes.dtype)
    pos = jnp.sum(jnp.where(nodes > 0, weights, zero))
    neg = jnp.sum(jnp.where(nodes < 0, weights, zero))
    absmass = jnp.sum(weights * jnp.abs(nodes))
    neg_abs = jnp.sum(jnp.where(nodes < 0, weights * jnp.abs(nodes), zero))
    return pos, neg, neg_abs / jnp.where(absmass > 0, absmass, jnp.ones((), nodes.dtype))


def hessian_spectrum(
    loss_fn: Callable[[PyTree, PyTree], Scalar],
    params: PyTree,
    batches,
    key: PRNGKeyArray,
    mask: PyTree | None = None,
    *,
    view: str = "active",
    num_steps: int = 64,
    num_probes: int = 1,
    reortho: str = "auto",
    grid_size: int | None = None,
    sigma: float | None = None,
    kappa: float = KAPPA,
    memory_limit: int | None = None,
    loop: str = "auto",
    progress: Callable[[int, int, int], None] | None = None,
) -> SpectralDensity:
    """SLQ spectral density of a model's loss Hessian over a set of batches (jitted).

    Combines `hessian_operator` (see its `view`s: `"active"` excludes the pruned directions,
    `"masked"` keeps their spike at zero, `"dense"` ignores the mask) and `slq_spectrum`; the
    arguments are theirs. `loop` drives the Lanczos iteration: `"device"` runs it as one
    jitted `fori_loop`; `"host"` calls one jitted, buffer-donating Lanczos step per iteration from
    Python, which on XLA:CPU is an order of magnitude faster for convolutional models (XLA:CPU
    runs convolutions inside while loops slowly); `"auto"` picks `"host"` on CPU. With several
    probes the density is the probes' average (`slq_spectrum`). `progress(probe, step, total)`,
    if given, is called after each host-driven Lanczos step (for long runs at model scale).

    **Arguments:**

    - `loss_fn`, `params`, `batches`, `mask`, `view`: the Hessian (`hessian_operator`).
    - `key`: PRNG key of the probes.
    - `num_steps`, `num_probes`, `reortho`, `grid_size`, `sigma`, `kappa`, `memory_limit`:
      as for `slq_spectrum`.
    - `loop`: `"auto"`, `"host"` or `"device"` (above).
    - `progress`: optional callback `progress(probe, step, total)`.

    **Returns:** a `SpectralDensity` whose `view`, `reortho`, `dim` say what was computed.
    """
    # A NaN in the data would otherwise surface as a meaningless spectrum.
    check_finite_tree("params", params)
    check_finite_tree("batches", batches)
    batches, m_flat, idx = _prepare(params, batches, mask, view)
    dim = int(idx.shape[0]) if idx is not None else ravel_pytree(params)[0].shape[0]
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    # Validate eagerly, before any compilation.
    check_int_range("num_steps", num_steps, 1)
    check_int_range("num_probes", num_probes, 1)
    grid_size = default_grid_size(num_steps) if grid_size is None else grid_size
    check_int_range("grid_size", grid_size, 2)
    _check_kappa(kappa)
    if sigma is not None:
        check_positive("sigma", sigma)
    if num_steps > dim:
        raise ValueError(
            f"`num_steps` (Lanczos depth) must be at most the {view} dimension {dim}, "
            f"got {num_steps}."
        )
    full = _choose_reortho(reortho, dim, num_steps, jnp.dtype(dtype).itemsize, memory_limit)
    kw = dict(
        num_steps=num_steps,
        num_probes=num_probes,
        reortho="full" if full else "none",
        dtype=dtype,
        grid_size=grid_size,
        sigma=sigma,
        kappa=kappa,
        view=view,
        memory_limit=memory_limit,
    )
    if loop not in ("auto", "host", "device"):
        raise ValueError(f"`loop` must be 'auto', 'host' or 'device', got {loop!r}.")
    if loop == "auto":
        loop = "host" if jax.default_backend() == "cpu" else "device"
    if loop == "device":
        return _hessian_slq(loss_fn, params, batches, m_flat, idx, key, view, kw)

    loss_dyn, loss_static = eqx.partition(loss_fn, eqx.is_array)
    try:
        step, init = _host_programs(loss_static, view, num_steps, full)
    except TypeError:  # a loss whose static part is unhashable: build the programs anew
        step, init = _host_programs.__wrapped__(loss_static, view, num_steps, full)
    nodes, weights = [], []
    # A bar on stderr where $QSGD_JAX_PROGRESS is on (the CLI sets it), besides `progress`.
    bar = progress_counter(total=num_probes * num_steps, enabled=None, desc="Lanczos steps")
    for p, k in enumerate(jax.random.split(key, num_probes)):
        state = init(jax.random.rademacher(k, (dim,), dtype))
        for j in range(num_steps):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*[Dd]onat")
                state = step(
                    state, loss_dyn, params, batches, m_flat, idx, jnp.asarray(j, jnp.int32)
                )
            bar.update(1)
            if progress is not None:
                jax.block_until_ready(state[0])
                progress(p, j + 1, num_steps)
        nd, wt = _quadrature(state)
        nodes.append(nd)
        weights.append(wt)
    bar.close()
    sig = None if sigma is None else jnp.asarray(sigma, dtype)
    weights = jnp.stack(weights) / jnp.asarray(num_probes, dtype)
    metrics = _density_and_metrics(
        jnp.stack(nodes), weights, sig, None, grid_size, num_steps, kappa
    )
    return SpectralDensity(*metrics, dim, num_steps, "full" if full else "none", view)


@functools.lru_cache(maxsize=32)
def _host_programs(loss_static, view: str, num_steps: int, full: bool):
    """The jitted Lanczos step and start of the host loop, built once per static configuration
    (the loss's non-array part, view, depth, re-orthogonalization), so repeated spectra, e.g.
    one every k training steps, do not recompile. The loss's arrays are arguments."""

    def step(state, loss_dyn, params, batches, m_flat, idx, j):
        loss_fn = eqx.combine(loss_dyn, loss_static)
        matvec, _ = _operator(loss_fn, params, batches, m_flat, idx, view)
        return _lanczos_step(matvec, j, state, num_steps, full)

    # `init` is jitted so that every state leaf is its own buffer (donation rejects shared ones).
    return (jax.jit(step, donate_argnums=0), jax.jit(lambda v: _lanczos_init(v, num_steps, full)))


@jax.jit
def _quadrature(state):
    return _gauss_quadrature(*_lanczos_result(state))


@eqx.filter_jit
def _hessian_slq(loss_fn, params, batches, m_flat, idx, key, view, kw):
    # Parameters and batches are jit arguments (not closed-over constants): at 10^8 parameters
    # constants would be copied into the compiled program.
    matvec, dim = _operator(loss_fn, params, batches, m_flat, idx, view)
    return slq_spectrum(matvec, dim, key, **kw)
