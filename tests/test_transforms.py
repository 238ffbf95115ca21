"""Every evolution method, Carleman state representation and read-out, run through the one
driver inside a quantum window, under jit, vmap, grad and jvp (lineax-style: one list per family
in `helpers.py`, parametrized here).

Oracles: the eager call (jit must reproduce it, vmap each lane of it), and central finite
differences of the eager call for grad (in the learning rate) and jvp (in the upload point).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import EVOLUTION_CASES, READOUTS, family_id, tiny_problem

import qsgd_jax as qj

LOSS, PARAMS, MASK, BATCHES = tiny_problem()
EXACT, KEY = qj.readout.Exact(), jax.random.key(0)
DIRECTION = {"w": jnp.asarray([[0.3, -0.2], [0.1, 0.4], [-0.5, 0.2], [0.0, 0.0]])}


def _window(method, state, readout=EXACT, order=1):
    factored = isinstance(state, qj.FactoredState)

    def run(eta, params=PARAMS, key=KEY):
        cfg = qj.WindowConfig(
            eta,
            3,
            degree=2 if factored else 1,
            order=2 if factored else order,
            method=method,
            state=state,
            readout=readout,
            shots=1e4,
            diagnostics=False,
            history=False,
        )
        p_hat, _ = qj.quantum_window(LOSS, params, MASK, BATCHES, cfg, key, throw=False)
        return jax.flatten_util.ravel_pytree(p_hat)[0]

    return run


def _check_transforms(run, *, differentiable=True):
    """jit∘vmap∘value_and_grad over eta in one program, and a jitted jvp in the upload point,
    against eager calls and central differences of them."""
    etas = [0.05, 0.1]
    lanes = np.stack([np.asarray(run(e)) for e in etas])
    assert np.all(np.isfinite(lanes))
    if not differentiable:
        np.testing.assert_allclose(jax.jit(jax.vmap(run))(jnp.asarray(etas)), lanes, rtol=1e-10)
        return
    total = lambda e: jnp.sum(run(e))  # noqa: E731
    values, grads = jax.jit(jax.vmap(jax.value_and_grad(total)))(jnp.asarray(etas))
    np.testing.assert_allclose(values, lanes.sum(axis=1), rtol=1e-10, atol=1e-13)
    h = 1e-5
    for e, g in zip(etas, grads, strict=True):
        fd = (np.sum(np.asarray(run(e + h))) - np.sum(np.asarray(run(e - h)))) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-8)
    shifted = lambda t: jax.tree_util.tree_map(lambda p, d: p + t * d, PARAMS, DIRECTION)  # noqa: E731
    _, tangent = jax.jit(lambda t: jax.jvp(lambda t: run(0.1, shifted(t)), (t,), (1.0,)))(0.0)
    fd = (np.asarray(run(0.1, shifted(h))) - np.asarray(run(0.1, shifted(-h)))) / (2 * h)
    np.testing.assert_allclose(tangent, fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("case", EVOLUTION_CASES, ids=family_id)
def test_methods_and_states_under_transformations(case):
    # A compressing factored state truncates an SVD, which has no derivative at repeated
    # singular values (documented): jit and vmap only.
    method, state = case
    compresses = isinstance(state, qj.FactoredState) and state.compresses
    _check_transforms(_window(method, state), differentiable=not compresses)


@pytest.mark.parametrize("readout", READOUTS, ids=family_id)
def test_readouts_under_transformations(readout):
    run = _window(qj.Discrete(), qj.DenseState(), readout)
    # Sampled tomography is not differentiable (its shot counts are integers); the surrogate is.
    _check_transforms(run, differentiable=not isinstance(readout, qj.readout.Sampled))
    if readout.uses_shots:  # a different key gives a different read-out, the same key the same
        keys = jax.random.split(jax.random.key(1), 2)
        a, b = (np.asarray(run(0.1, key=k)) for k in keys)
        assert np.any(a != b) and np.array_equal(a, np.asarray(run(0.1, key=keys[0])))
