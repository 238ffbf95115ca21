"""Masked Hessian-vector products and stochastic Lanczos quadrature against exact spectra."""

import jax
import jax.numpy as jnp
import matfree.decomp
import numpy as np
import pytest

import qsgd_jax as qj
from qsgd_jax import MemoryLimitError
from qsgd_jax.ml import Batch, apply_mask, make_mlp, prune_mask
from qsgd_jax.spectrum import (
    hessian_operator,
    hessian_spectrum,
    lanczos_tridiag,
    slq_spectrum,
    stack_batches,
)


def _known(kind, n=300, seed=0):
    rng = np.random.default_rng(seed)
    ev = np.concatenate([rng.uniform(-0.5, -0.05, 20), rng.uniform(0.1, 3.0, n - 20)])
    if kind == "diagonal":
        a = jnp.asarray(ev)
        return ev, (lambda v: a * v)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = jnp.asarray((q * ev) @ q.T)
    return ev, (lambda v: a @ v)


@pytest.mark.parametrize("kind", ["diagonal", "orthogonal"])
@pytest.mark.parametrize("reortho", ["full", "none"])
def test_slq_on_known_spectra(getkey, kind, reortho):
    ev, mv = _known(kind)
    sd = slq_spectrum(
        mv,
        ev.size,
        getkey(),
        num_steps=60,
        num_probes=8,
        reortho=reortho,
        dtype=jnp.float64,
        grid_size=1024,
    )
    assert sd.reortho == reortho and sd.dim == ev.size
    assert float(jnp.trapezoid(sd.density, sd.grid)) == pytest.approx(1.0, abs=1e-6)
    assert float(jnp.sum(sd.weights)) == pytest.approx(1.0, abs=1e-12)
    assert float(sd.lambda_min) == pytest.approx(ev.min(), rel=0.01)
    assert float(sd.lambda_max) == pytest.approx(ev.max(), rel=0.01)
    assert float(sd.positive_fraction) == pytest.approx(np.mean(ev > 0), abs=0.05)
    assert float(sd.negative_mass) == pytest.approx(np.mean(ev < 0), abs=0.05)
    ratio = np.sum(np.abs(ev[ev < 0])) / np.sum(np.abs(ev))
    assert float(sd.negative_ratio) == pytest.approx(ratio, abs=0.02)


def test_lanczos_matches_matfree_and_handles_breakdown(getkey):
    ev, mv = _known("orthogonal", n=80, seed=1)
    v = jax.random.normal(getkey(), (80,), jnp.float64)
    alphas, betas = lanczos_tridiag(mv, v, 20, reortho=True)
    ref = matfree.decomp.tridiag_sym(20, reortho="full", materialize=False)(mv, v)
    np.testing.assert_allclose(alphas, ref.J_small[0], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(betas, ref.J_small[1], rtol=1e-8, atol=1e-10)
    # Three distinct eigenvalues: the Krylov space is exhausted after 3 steps.
    d = jnp.asarray(np.repeat([-1.0, 1.0, 2.0], 10))
    sd = slq_spectrum(
        lambda x: d * x, 30, getkey(), num_steps=12, num_probes=3, reortho="full", dtype=jnp.float64
    )
    assert float(sd.lambda_min) == pytest.approx(-1.0) and float(sd.lambda_max) == pytest.approx(2)
    big = np.asarray(sd.weights) > 1e-8
    np.testing.assert_allclose(
        np.sort(np.unique(np.round(np.asarray(sd.nodes)[big], 8))), [-1.0, 1.0, 2.0]
    )
    assert float(sd.positive_fraction) == pytest.approx(2 / 3)
    assert np.all(np.isfinite(np.asarray(sd.density)))


_EIGH_TRIDIAGONAL_SCRIPT = """
import jax, numpy as np, scipy.linalg
from jax.sharding import Mesh, NamedSharding, PartitionSpec
jax.config.update("jax_enable_x64", True)
assert len(jax.devices()) == 4
rng = np.random.default_rng(0)
d, e = rng.normal(size=(64, 64)), rng.normal(size=(64, 63))
e[3, 10] = 0.0  # a decoupled block, as after a Lanczos breakdown
top = jax.jit(jax.vmap(lambda a, b: jax.scipy.linalg.eigh_tridiagonal(a, b, eigvals_only=True)[-1]))
sharding = NamedSharding(Mesh(np.array(jax.devices()), ("x",)), PartitionSpec("x"))
for _ in range(5):
    got = np.asarray(top(jax.device_put(d, sharding), jax.device_put(e, sharding)))
ref = np.array([scipy.linalg.eigvalsh_tridiagonal(d[i], e[i])[-1] for i in range(64)])
print(np.max(np.abs(got - ref)))
"""


def test_eigh_tridiagonal_does_not_deadlock_on_forced_cpu_devices():
    # The condition number and the dissipation diagnostics take the largest Ritz value with
    # jax.scipy.linalg.eigh_tridiagonal; sweeps vmap them and shard over devices, where a
    # batched LAPACK eigensolver can deadlock. A subprocess, so that a deadlock is a timeout.
    import os
    import subprocess
    import sys

    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu"
    )
    out = subprocess.run(
        [sys.executable, "-c", _EIGH_TRIDIAGONAL_SCRIPT],
        env=env,
        timeout=120,
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(out.stdout.strip().splitlines()[-1]) < 1e-12


def _small_problem(key):
    k1, k2, k3 = jax.random.split(key, 3)
    model = make_mlp((3,), 3, (4,), dtype=jnp.float64)
    params = model.init(k1)
    x = jax.random.normal(k2, (2, 5, 3), jnp.float64)
    y = jax.random.randint(k3, (2, 5), 0, 3).astype(jnp.int32)
    mask = prune_mask(params, 0.5)
    return model, params, Batch(x, y), mask


def test_masked_hvp_equals_dense_hessian_restricted(getkey):
    model, params, batches, mask = _small_problem(getkey())
    pm = apply_mask(params, mask)
    flat, unravel = jax.flatten_util.ravel_pytree(pm)

    def mean_loss(f):
        p = unravel(f)
        return 0.5 * (
            model.loss_fn(p, Batch(batches.x[0], batches.y[0]))
            + model.loss_fn(p, Batch(batches.x[1], batches.y[1]))
        )

    h = np.asarray(jax.jit(jax.hessian(mean_loss))(flat))
    m = np.asarray(jax.flatten_util.ravel_pytree(mask)[0]).astype(bool)
    idx = np.flatnonzero(m)
    h_act = h[np.ix_(idx, idx)]
    n = flat.size
    wants = {"active": h_act, "masked": h * np.outer(m, m), "dense": h}
    dims = {}

    @jax.jit
    def materialize(params, batches):
        out = {}
        for view in wants:
            mv, dims[view] = hessian_operator(model.loss_fn, params, batches, mask, view=view)
            out[view] = jax.vmap(mv)(jnp.eye(dims[view], dtype=jnp.float64))
        return out

    got = materialize(params, batches)
    for view, want in wants.items():
        assert dims[view] == (idx.size if view == "active" else n)
        np.testing.assert_allclose(got[view], want, rtol=1e-10, atol=1e-12, err_msg=view)
    # A list of batches is the same set of batches.
    stacked = stack_batches([Batch(batches.x[i], batches.y[i]) for i in range(2)])
    np.testing.assert_array_equal(stacked.x, batches.x)

    # Both views of the spectrum: full-depth SLQ reproduces the active eigenvalues exactly, and
    # the masked view adds the pruned directions to the spike at zero.
    lam = np.linalg.eigvalsh(h_act)
    act = hessian_spectrum(
        model.loss_fn,
        params,
        batches,
        getkey(),
        mask,
        view="active",
        num_steps=idx.size,
        num_probes=4,
        reortho="full",
    )
    assert act.view == "active" and act.dim == idx.size
    assert float(act.lambda_min) == pytest.approx(lam.min(), rel=1e-6, abs=1e-9)
    assert float(act.lambda_max) == pytest.approx(lam.max(), rel=1e-6)
    msk = hessian_spectrum(
        model.loss_fn,
        params,
        batches,
        getkey(),
        mask,
        view="masked",
        num_steps=n,
        num_probes=4,
        reortho="full",
    )
    near0 = np.abs(np.asarray(msk.nodes)) < 1e-9
    # Zero mass = (pruned directions + exact zero modes of the active Hessian) / n, up to the
    # Hutchinson error of 4 Rademacher probes.
    null = n - idx.size + int(np.sum(np.abs(lam) < 1e-9))
    assert float(np.sum(np.asarray(msk.weights)[near0])) == pytest.approx(null / n, abs=0.15)


def test_memory_aware_reorthogonalization(getkey):
    ev, mv = _known("diagonal", n=200)
    small = slq_spectrum(mv, 200, getkey(), num_steps=50, dtype=jnp.float64, memory_limit=10_000)
    assert small.reortho == "none"
    big = slq_spectrum(mv, 200, getkey(), num_steps=50, dtype=jnp.float64, memory_limit=10**9)
    assert big.reortho == "full"
    with pytest.raises(MemoryLimitError, match="re-orthogonalization"):
        slq_spectrum(mv, 200, getkey(), num_steps=50, reortho="full", memory_limit=10_000)


def test_slq_under_jit_and_vmap(getkey):
    ev, mv = _known("diagonal", n=100)

    @jax.jit
    def run(keys):
        return jax.vmap(
            lambda k: (
                slq_spectrum(mv, 100, k, num_steps=30, dtype=jnp.float64, reortho="none").lambda_max
            )
        )(keys)

    out = run(jax.random.split(getkey(), 3))
    np.testing.assert_allclose(out, ev.max(), rtol=1e-3)


def test_bad_input(getkey):
    model, params, batches, mask = _small_problem(getkey())
    s = int(sum(int(m.sum()) for m in jax.tree_util.tree_leaves(mask)))
    with pytest.raises(ValueError, match=rf"`num_steps`.*at most.*{s}"):
        hessian_spectrum(model.loss_fn, params, batches, getkey(), mask, num_steps=s + 1)
    with pytest.raises(ValueError, match="`num_probes`"):
        hessian_spectrum(model.loss_fn, params, batches, getkey(), mask, num_steps=2, num_probes=0)
    nothing = jax.tree_util.tree_map(lambda p: jnp.zeros(p.shape, bool), params)
    with pytest.raises(ValueError, match="prunes every parameter"):
        hessian_operator(model.loss_fn, params, batches, nothing)
    with pytest.raises(ValueError, match="`view`"):
        hessian_operator(model.loss_fn, params, batches, mask, view="full")
    with pytest.raises(ValueError, match="needs a `mask`"):
        hessian_operator(model.loss_fn, params, batches, None)
    with pytest.raises(ValueError, match="`reortho`"):
        slq_spectrum(lambda v: v, 10, getkey(), num_steps=3, reortho="partial")
    bad = Batch(batches.x[..., :2], batches.y)
    with pytest.raises(ValueError, match=r"batch\.x"):
        hessian_operator(model.loss_fn, params, bad, mask)[0](jnp.ones(s))


def test_host_and_device_lanczos_loops_agree(getkey):
    model, params, batches, mask = _small_problem(getkey())
    key = getkey()
    kw = dict(num_steps=10, num_probes=2, reortho="none")
    host = hessian_spectrum(model.loss_fn, params, batches, key, mask, loop="host", **kw)
    dev = hessian_spectrum(model.loss_fn, params, batches, key, mask, loop="device", **kw)
    assert host.reortho == dev.reortho == "none"
    np.testing.assert_allclose(host.nodes, dev.nodes, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(host.density, dev.density, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="`loop`"):
        hessian_spectrum(model.loss_fn, params, batches, key, mask, loop="gpu", **kw)


# --- Broadening from the node spacing (Papyan's rule) and the probe average -----------------


def _gauss_density(grid, nodes, weights, sigma):
    """numpy: sum_j w_j N(x; node_j, sigma^2) on a grid."""
    z = (np.asarray(grid)[:, None] - np.ravel(nodes)[None]) / sigma
    return np.exp(-0.5 * z * z) @ np.ravel(weights) / (np.sqrt(2 * np.pi) * sigma)


def test_broadening_width_follows_node_spacing(getkey):
    ev, mv = _known("diagonal")
    sd = qj.spectrum.slq_spectrum(mv, ev.size, getkey(), num_steps=16, kappa=3.0, dtype=jnp.float64)
    h = 1.1 * float(sd.lambda_max - sd.lambda_min) / 15
    assert float(sd.sigma) == pytest.approx(h / np.sqrt(8 * np.log(3.0)), rel=1e-12)
    assert sd.grid.size == 512
    default = qj.spectrum.broaden_density(sd)  # kappa = 1.25
    assert float(default.sigma) == pytest.approx(h / np.sqrt(8 * np.log(1.25)), rel=1e-12)
    assert qj.spectrum.broaden_density(sd, grid_size=1000).grid.size == 1000
    assert float(qj.spectrum.broaden_density(sd, sigma=0.3).sigma) == 0.3
    assert float(qj.spectrum.broadening_sigma(0.0, 1.0, 11, kappa=3.0)) == pytest.approx(
        0.11 / np.sqrt(8 * np.log(3.0))
    )


def test_single_probe_density_of_a_flat_spectrum_is_smooth(getkey):
    # 4000 eigenvalues evenly on [0, 1]: the true density is 1 there. One probe, 64 steps.
    d = jnp.linspace(0.0, 1.0, 4000, dtype=jnp.float64)
    sd = qj.spectrum.slq_spectrum(lambda v: d * v, 4000, getkey(), num_steps=64, dtype=jnp.float64)
    g, rho = np.asarray(sd.grid), np.asarray(sd.density)
    inner = (g > 0.2) & (g < 0.8)
    np.testing.assert_allclose(rho[inner], 1.0, atol=0.02)
    # Papyan's kappa = 3 resolves finer, so one probe ripples over the node spacing.
    sharp = qj.spectrum.broaden_density(sd, kappa=3.0)
    r3 = np.asarray(sharp.density)[inner]
    assert r3.max() - r3.min() > 0.5


def test_density_is_the_probe_average_exact_on_a_diagonal(getkey):
    # Full depth on distinct eigenvalues: each probe's rule is nodes = eigenvalues, weights =
    # 1/n; the averaged density must be the exact broadened spectrum.
    ev = np.sort(_known("diagonal", n=40, seed=4)[0])
    d = jnp.asarray(ev)
    sd = qj.spectrum.slq_spectrum(
        lambda v: d * v, 40, getkey(), num_steps=40, num_probes=3, reortho="full", dtype=jnp.float64
    )
    want = _gauss_density(sd.grid, ev, np.full(40, 1 / 40), float(sd.sigma))
    np.testing.assert_allclose(sd.density, want, rtol=1e-7, atol=1e-9)
    # Each probe carries 1/P of the mass.
    np.testing.assert_allclose(np.sum(np.asarray(sd.weights), axis=1), 1 / 3, rtol=1e-12)
    # Re-broadened on a grid shared with another checkpoint.
    grid = jnp.linspace(-1.0, 4.0, 300, dtype=jnp.float64)
    other = qj.spectrum.broaden_density(sd, sigma=0.05, grid=grid)
    np.testing.assert_allclose(
        other.density, _gauss_density(grid, ev, np.full(40, 1 / 40), 0.05), rtol=1e-7, atol=1e-9
    )
    assert float(other.lambda_max) == float(sd.lambda_max) and other.dim == sd.dim


def test_broadening_bad_input(getkey):
    ev, mv = _known("diagonal", n=50)
    with pytest.raises(ValueError, match="`kappa` must be finite and > 1"):
        qj.spectrum.slq_spectrum(mv, 50, getkey(), num_steps=8, kappa=1.0)
    sd = qj.spectrum.slq_spectrum(mv, 50, getkey(), num_steps=8, dtype=jnp.float64)
    with pytest.raises(ValueError, match="`sigma`"):
        qj.spectrum.broaden_density(sd, sigma=-1.0)
    with pytest.raises(ValueError, match="`grid`"):
        qj.spectrum.broaden_density(sd, grid=jnp.array([0.0, jnp.inf]))


def test_host_loop_reports_progress_per_step(getkey):
    model, params, batches, mask = _small_problem(getkey())
    calls = []
    sd = qj.spectrum.hessian_spectrum(
        model.loss_fn,
        params,
        batches,
        getkey(),
        mask,
        num_steps=3,
        num_probes=2,
        loop="host",
        progress=lambda p, j, total: calls.append((p, j, total)),
    )
    assert calls == [(p, j, 3) for p in range(2) for j in (1, 2, 3)]
    assert sd.nodes.shape == (2, 3)


def test_exact_hessian_spectrum_is_eigh_of_the_active_hessian(getkey):
    model, params, batches, mask = _small_problem(getkey())
    pm = apply_mask(params, mask)
    flat, unravel = jax.flatten_util.ravel_pytree(pm)
    idx = np.flatnonzero(np.asarray(jax.flatten_util.ravel_pytree(mask)[0]))

    def mean_loss(u):
        p = unravel(flat.at[idx].set(u))
        return 0.5 * sum(model.loss_fn(p, Batch(batches.x[i], batches.y[i])) for i in range(2))

    lam = np.linalg.eigvalsh(np.asarray(jax.jit(jax.hessian(mean_loss))(flat[idx])))
    ex = qj.spectrum.exact_hessian_spectrum(model.loss_fn, params, batches, mask, hvp_batch_size=5)
    np.testing.assert_allclose(ex.eigenvalues, lam, rtol=1e-10, atol=1e-12)
    assert float(ex.lambda_min) == pytest.approx(lam[0], rel=1e-10)
    assert float(ex.lambda_max) == pytest.approx(lam[-1], rel=1e-10)
    # The Hessian has exact zero modes, whose computed signs are rounding noise.
    zero = np.mean(np.abs(lam) < 1e-10)
    assert abs(float(ex.positive_fraction) - np.mean(lam > 1e-10)) <= zero
    assert abs(float(ex.negative_mass) - np.mean(lam < -1e-10)) <= zero
    np.testing.assert_allclose(ex.weights, 1 / idx.size)
    # A quadrature like an SLQ density's: the spectral models take it.
    curve = qj.spectrum.propagation_from_spectrum(ex, 0.1, num_steps=5, moment=2)
    want = np.sqrt(np.mean(np.abs(1 - 0.1 * lam)[None] ** (2 * np.arange(6)[:, None]), axis=1))
    np.testing.assert_allclose(curve.total, want, rtol=1e-10)
    s = idx.size
    with pytest.raises(ValueError, match=rf"s = {s} .*`max_dim` = 3.*hessian_spectrum"):
        qj.spectrum.exact_hessian_spectrum(model.loss_fn, params, batches, mask, max_dim=3)
    with pytest.raises(MemoryLimitError, match=rf"dense active-set Hessian with s = {s}"):
        qj.spectrum.exact_hessian_spectrum(model.loss_fn, params, batches, mask, memory_limit=64)


def test_empty_batch_stacks_and_complex_params_are_refused(getkey):
    model, params, batches, mask = _small_problem(getkey())
    empty = Batch(batches.x[:0], batches.y[:0])
    with pytest.raises(ValueError, match=r"`batches` is empty: it holds 0 batches"):
        hessian_spectrum(model.loss_fn, params, empty, getkey(), mask, num_steps=2)
    with pytest.raises(ValueError, match=r"`batches` is empty"):
        qj.spectrum.exact_hessian_spectrum(model.loss_fn, params, empty, mask)
    cplx = jax.tree_util.tree_map(lambda p: p.astype(jnp.complex128), params)
    with pytest.raises(TypeError, match=r"`params\['Dense_0'\]\['bias'\]` has complex dtype"):
        hessian_spectrum(model.loss_fn, cplx, batches, getkey(), mask, num_steps=2)
