"""The two continuations after pruning: sparse fine-tuning (`apply_mask` of the trained weights)
and sparse scratch (`sparse_scratch`: the same mask on fresh weights), checked entry by entry
against numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsgd_jax as qj


def _params(key, scale=1.0):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "dense": {"kernel": scale * jax.random.normal(k1, (6, 5)), "bias": jnp.full((5,), scale)},
        "norm": {"scale": scale * jax.random.normal(k2, (5,))},
        "head": {"kernel": scale * jax.random.normal(k3, (5, 3)), "bias": jnp.zeros(3)},
    }


def _np(tree):
    return jax.tree_util.tree_map(np.asarray, tree)


def test_scratch_keeps_mask_and_takes_fresh_values(getkey):
    trained, fresh = _params(getkey(), 3.0), _params(getkey())
    mask = qj.ml.prune_mask(trained, 0.7)
    out = qj.ml.sparse_scratch(mask, fresh)
    for o, f, m in zip(
        jax.tree_util.tree_leaves(_np(out)),
        jax.tree_util.tree_leaves(_np(fresh)),
        jax.tree_util.tree_leaves(_np(mask)),
        strict=True,
    ):
        np.testing.assert_array_equal(o, np.where(m, f, 0.0))
    # the pattern is that of the trained weights' magnitudes: 70 % of the 30 dense-kernel
    # entries are pruned, namely the 21 smallest |trained| ones
    k = np.abs(np.asarray(trained["dense"]["kernel"])).ravel()
    kept = np.asarray(out["dense"]["kernel"]).ravel() != 0
    assert kept.sum() == 9 and np.all(k[kept].min() > k[~kept].max())
    assert int(qj.ml.count_active(mask)) == 9 + 5 + 5 + 15 + 3


def test_scratch_with_trained_params_reinitializes_only_prunable_leaves(getkey):
    trained, fresh = _params(getkey(), 3.0), _params(getkey())
    mask = qj.ml.prune_mask(trained, 0.5)
    out = _np(qj.ml.sparse_scratch(mask, fresh, params=trained))
    m = np.asarray(mask["dense"]["kernel"])
    np.testing.assert_array_equal(
        out["dense"]["kernel"], np.where(m, np.asarray(fresh["dense"]["kernel"]), 0.0)
    )
    # biases, norms and the output layer are not pruned and keep their trained values
    for path in (("dense", "bias"), ("norm", "scale"), ("head", "kernel"), ("head", "bias")):
        np.testing.assert_array_equal(out[path[0]][path[1]], np.asarray(trained[path[0]][path[1]]))


def test_finetune_and_scratch_differ_only_in_kept_values(getkey):
    trained, fresh = _params(getkey(), 3.0), _params(getkey())
    mask = qj.ml.prune_mask(trained, 0.8)
    ft, sc = qj.ml.apply_mask(trained, mask), qj.ml.sparse_scratch(mask, fresh)
    for a, b in zip(jax.tree_util.tree_leaves(ft), jax.tree_util.tree_leaves(sc), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        np.testing.assert_array_equal(a == 0, b == 0)  # same support (fresh values are nonzero
        # almost surely; the zero head bias is zero in both)


def test_scratch_under_jit(getkey):
    trained, fresh = _params(getkey(), 3.0), _params(getkey())
    mask = qj.ml.prune_mask(trained, 0.6)
    eager = qj.ml.sparse_scratch(mask, fresh, params=trained)
    jitted = jax.jit(lambda m, f, p: qj.ml.sparse_scratch(m, f, params=p))(mask, fresh, trained)
    for a, b in zip(
        jax.tree_util.tree_leaves(eager), jax.tree_util.tree_leaves(jitted), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_scratch_bad_input(getkey):
    trained, fresh = _params(getkey(), 3.0), _params(getkey())
    mask = qj.ml.prune_mask(trained, 0.5)
    wrong = dict(fresh)
    wrong["dense"] = {"kernel": jnp.ones((5, 6)), "bias": fresh["dense"]["bias"]}
    with pytest.raises(ValueError, match="shape"):
        qj.ml.sparse_scratch(mask, wrong)
    missing = {k: v for k, v in fresh.items() if k != "norm"}
    with pytest.raises(ValueError, match="structure"):
        qj.ml.sparse_scratch(mask, missing)
    f32 = jax.tree_util.tree_map(lambda x: x.astype(jnp.float32), fresh)
    with pytest.raises(ValueError, match="dtype"):
        qj.ml.sparse_scratch(mask, f32, params=trained)
