"""Global magnitude pruning with a traced sparsity, and the element-wise masked optax transform."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from qsgd_jax.ml import (
    apply_mask,
    check_mask,
    count_active,
    keep_pruned_zero,
    magnitude_keep,
    prune_mask,
    sparsity_of,
)


def _params(key):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    return {
        "conv": {"kernel": jax.random.normal(k1, (3, 3, 2, 4)), "bias": jnp.ones(4)},
        "dense": {"kernel": jax.random.normal(k2, (8, 5)), "bias": jnp.ones(5)},
        "norm": {"scale": jax.random.normal(k3, (4,))},
        "head": {"kernel": jax.random.normal(k4, (5, 3)), "bias": jnp.zeros(3)},
    }


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_exact_global_sparsity_and_untouched_leaves(getkey, sparsity):
    params = _params(getkey())
    mask = prune_mask(params, sparsity)
    prunable = np.concatenate(
        [np.ravel(params["conv"]["kernel"]), np.ravel(params["dense"]["kernel"])]
    )
    kept = np.concatenate([np.ravel(mask["conv"]["kernel"]), np.ravel(mask["dense"]["kernel"])])
    n = prunable.size
    assert abs((n - kept.sum()) - sparsity * n) <= 1
    # Global magnitude rule, checked against numpy: every kept |w| >= every pruned |w|.
    if 0 < kept.sum() < n:
        assert np.abs(prunable[kept]).min() >= np.abs(prunable[~kept]).max()
    for leaf in ("bias",):
        assert bool(jnp.all(mask["conv"][leaf])) and bool(jnp.all(mask["dense"][leaf]))
    assert bool(jnp.all(mask["norm"]["scale"])) and bool(jnp.all(mask["head"]["kernel"]))
    assert float(sparsity_of(mask, params)) == pytest.approx(sparsity, abs=1.0 / n)
    pruned = apply_mask(params, mask)
    assert int(count_active(mask)) == sum(int(jnp.sum(m)) for m in jax.tree_util.tree_leaves(mask))
    assert int(jnp.sum(jnp.abs(pruned["dense"]["kernel"]) > 0)) == int(
        mask["dense"]["kernel"].sum()
    )


def _numpy_keep(theta, sparsity):
    # the documented rule: k = round(sparsity * n) smallest |theta_i| pruned (numpy's round,
    # halves to even), earlier index first among ties; n - k kept
    theta = np.asarray(theta)
    k = int(np.round(sparsity * theta.size))
    keep = np.ones(theta.size, bool)
    keep[np.argsort(np.abs(theta), kind="stable")[:k]] = False
    return keep


@pytest.mark.parametrize(
    "theta, sparsity",
    [((0.3, -0.1, 0.2), 0.5), ((0.3, -0.1, 0.2, 0.5, -0.4), 0.5), ((1.0, -1.0, 2.0, 0.5), 0.3)],
)
def test_one_rule_for_flat_vectors_and_pytrees(theta, sparsity):
    ref = _numpy_keep(theta, sparsity)
    if theta == (0.3, -0.1, 0.2):
        assert ref.tolist() == [True, False, False]  # k = round(1.5) = 2 pruned, 1 kept
    flat = np.asarray(magnitude_keep(jnp.asarray(theta), sparsity))
    params = {"a": {"kernel": jnp.asarray(theta).reshape(1, -1)}}
    tree = np.asarray(prune_mask(params, sparsity)["a"]["kernel"]).ravel()
    np.testing.assert_array_equal(flat, ref)
    np.testing.assert_array_equal(tree, ref)


def test_ties_still_give_exact_count():
    params = {"a": {"kernel": jnp.zeros((10, 10))}, "head": {"kernel": jnp.ones((2, 2))}}
    mask = prune_mask(params, 0.37)
    assert int(jnp.sum(~mask["a"]["kernel"])) == 37


def test_vmap_over_sparsity_traces_once(getkey):
    params = _params(getkey())

    @jax.jit
    @chex.assert_max_traces(n=1)
    def sweep(s):
        return jax.vmap(lambda x: prune_mask(params, x))(s)

    masks = sweep(jnp.array([0.2, 0.5, 0.8]))
    sweep(jnp.array([0.3, 0.6, 0.9]))  # new values, no retrace
    for i, s in enumerate([0.2, 0.5, 0.8]):
        single = prune_mask(params, s)
        chex.assert_trees_all_equal(jax.tree_util.tree_map(lambda m, i=i: m[i], masks), single)


def test_masked_transform_keeps_zeros_through_100_sgd_steps(getkey):
    params = _params(getkey())
    mask = prune_mask(params, 0.7)
    x = jax.random.normal(getkey(), (16, 8))

    def loss(p):
        h = jnp.tanh(x @ p["dense"]["kernel"] + p["dense"]["bias"][None])
        return jnp.mean((h @ p["head"]["kernel"]) ** 2) + jnp.sum(p["conv"]["kernel"] ** 2)

    # Momentum and weight decay would revive pruned weights without the mask.
    opt = optax.chain(
        optax.add_decayed_weights(1e-2), optax.sgd(0.1, momentum=0.9), keep_pruned_zero(mask)
    )
    p = params  # deliberately NOT zeroed first: the transform must zero pruned weights itself
    state = opt.init(p)

    @jax.jit
    def step(p, state):
        g = jax.grad(loss)(p)
        u, state = opt.update(g, state, p)
        return optax.apply_updates(p, u), state

    @jax.jit
    def pruned_abs_max(p):
        leaves = jax.tree_util.tree_leaves(
            jax.tree_util.tree_map(lambda pl, ml: jnp.max(jnp.where(ml, 0.0, jnp.abs(pl))), p, mask)
        )
        return jnp.max(jnp.stack(leaves))

    for _ in range(100):
        p, state = step(p, state)
        assert float(pruned_abs_max(p)) == 0.0
    # Active weights did train.
    active = mask["dense"]["kernel"]
    assert not np.allclose(p["dense"]["kernel"][active], params["dense"]["kernel"][active])
    # Plain masked SGD without the transform does revive them (the test can fail).
    plain = optax.chain(optax.add_decayed_weights(1e-2), optax.sgd(0.1, momentum=0.9))
    q = apply_mask(params, mask)
    u, _ = plain.update(jax.grad(loss)(q), plain.init(q), q)
    assert bool(jnp.any(jnp.where(mask["dense"]["kernel"], 0.0, u["dense"]["kernel"]) != 0))


def test_bad_input(getkey):
    params = _params(getkey())
    for s in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"`sparsity` must be a number in \[0, 1\)"):
            prune_mask(params, s)
    with pytest.raises(ValueError, match="selects no leaf"):
        prune_mask(params, 0.5, include=lambda path, leaf: False)
    nothing = jax.tree_util.tree_map(lambda p: jnp.zeros(p.shape, bool), params)
    with pytest.raises(ValueError, match="prunes every parameter"):
        check_mask(params, nothing)
    with pytest.raises(ValueError, match="prunes every parameter"):
        keep_pruned_zero(nothing).init(params)
    wrong = prune_mask(params, 0.5)
    wrong["dense"]["kernel"] = jnp.ones((8, 4), bool)
    with pytest.raises(ValueError, match=r"dense.*kernel.*\(8, 5\)"):
        check_mask(params, wrong)
    with pytest.raises(ValueError, match="structure"):
        check_mask(params, {"conv": wrong["conv"]})
