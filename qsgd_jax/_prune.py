"""Global magnitude pruning with a traced sparsity, and an optax transform that keeps zeros zero.

Masks are pytrees of bools with the structure of the parameters (`True` = active). Leaves that
are not prunable (biases, norms, the output layer by default) get all-`True` masks.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Bool, Float, PyTree, Scalar

from ._errors import InvalidArgumentError, check_number, error_if_invalid, in_interval, is_concrete

Mask = PyTree[Bool[Array, "..."]]


def _path_names(path) -> tuple[str, ...]:
    out = []
    for k in path:
        name = getattr(k, "key", getattr(k, "name", getattr(k, "idx", None)))
        out.append(str(name))
    return tuple(out)


def default_prunable(path: tuple[str, ...], leaf, *, exclude: tuple[str, ...] = ("head",)) -> bool:
    """Default leaf selection: conv and dense kernels (`kernel`, ≥ 2-D), not the output layer.

    The models of this library name their output layer `head`; pass another `exclude` (or your
    own predicate to `prune_mask`) for other parameter trees.

    **Arguments:**

    - `path`: the leaf's key names from the root.
    - `leaf`: the parameter array.
    - `exclude`: names of sub-trees never pruned.

    **Returns:** whether the leaf is prunable.
    """
    return bool(
        path
        and path[-1] == "kernel"
        and jnp.ndim(leaf) >= 2
        and not any(p in exclude for p in path[:-1])
    )


def prunable_leaves(
    params: PyTree, include: Callable[[tuple[str, ...], object], bool] = default_prunable
) -> PyTree[bool]:
    """Which leaves pruning may touch: a pytree of Python bools (`include(path_names, leaf)`).

    **Arguments:**

    - `params`: the parameter pytree.
    - `include`: the predicate `(path_names, leaf) -> bool`.

    **Returns:** a pytree of bools with the structure of `params`.
    """
    return jax.tree_util.tree_map_with_path(lambda p, x: include(_path_names(p), x), params)


_SPARSITY_RULE = "must be a number in [0, 1) (fraction of prunable weights set to zero)"


def _check_sparsity(sparsity) -> None:
    """The door check of `sparsity`: a real scalar, and in [0, 1) when concrete."""
    check_number("sparsity", sparsity, low=0, high=1, high_open=True, rule=_SPARSITY_RULE)


def _checked_keep(keep: Bool[Array, " n"], sparsity) -> Bool[Array, " n"]:
    """`keep`, with the run-time check of a traced `sparsity` threaded on it."""
    if is_concrete(sparsity):
        return keep  # checked at the door
    ok = in_interval(jnp.asarray(sparsity), 0, 1, high_open=True)
    return error_if_invalid(keep, ok, "sparsity", _SPARSITY_RULE, sparsity)


def _magnitude_keep(theta: Float[Array, " n"], sparsity) -> Bool[Array, " n"]:
    """`magnitude_keep` without its checks, for library code that checked `sparsity` already
    (a sweep's grid, a concrete configuration): no run-time check in its programs."""
    n = theta.shape[0]
    order = jnp.argsort(jnp.abs(theta), stable=True)
    rank = jnp.zeros((n,), jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
    return rank >= jnp.round(jnp.asarray(sparsity) * n).astype(jnp.int32)


def magnitude_keep(theta: Float[Array, " n"], sparsity: ArrayLike) -> Bool[Array, " n"]:
    """The library's one magnitude-pruning rule, on a flat vector.

    With $n$ entries, the

    $$k = \\operatorname{round}(\\text{sparsity} \\cdot n)$$

    entries of smallest $|\\theta_i|$ are pruned (nearest integer, halves to even as
    `jnp.round`; ties in $|\\theta_i|$ broken by position, the earlier one pruned first) and
    the $n - k$ others are kept. For example $\\theta = (0.3, -0.1, 0.2)$ at sparsity 0.5:
    $k = \\operatorname{round}(1.5) = 2$ pruned, only $0.3$ kept. Rounding rather than flooring
    keeps $k$ exact where $\\text{sparsity} \\cdot n$ misses an integer by a rounding error
    ($0.29 \\cdot 100 = 28.999\\ldots$). The magnitudes are ranked once (an `argsort`); the
    sparsity only enters through the traced cut $k$, so `vmap`/`jit` over it compile once.

    **Arguments:**

    - `theta`: the flat vector of candidate entries.
    - `sparsity`: fraction in [0, 1) to prune, a real scalar; may be traced (a traced value
      outside [0, 1) raises when the program runs, naming it).

    **Returns:** a bool vector, `True` = kept.
    """
    _check_sparsity(sparsity)
    return _checked_keep(_magnitude_keep(theta, sparsity), sparsity)


def prune_mask(
    params: PyTree[Float[Array, "..."]],
    sparsity: ArrayLike,
    include: Callable[[tuple[str, ...], object], bool] = default_prunable,
) -> Mask:
    """One-shot global magnitude (L1) pruning mask.

    The rule of `magnitude_keep` on the $N$ entries of the selected leaves taken together:
    $k = \\operatorname{round}(\\text{sparsity} \\cdot N)$ of smallest $|\\theta_i|$ pruned, $N - k$
    kept, exactly.

    **Arguments:**

    - `params`: parameter pytree.
    - `sparsity`: fraction in [0, 1) of the selected entries to prune, a real scalar; may be
      traced (a traced value outside [0, 1) raises when the program runs, naming it; with
      `vmap` over a grid, every value of the grid is checked).
    - `include`: predicate `(path_names, leaf) -> bool` selecting the prunable leaves (default:
      `default_prunable`).

    **Returns:** a mask pytree of bools, `True` = active, same structure and shapes as `params`.
    """
    _check_sparsity(sparsity)
    sel = prunable_leaves(params, include)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    flags = jax.tree_util.tree_leaves(sel)
    chosen = [x for x, f in zip(leaves, flags, strict=True) if f]
    if not chosen:
        raise InvalidArgumentError("`include` selects no leaf of `params`; nothing can be pruned.")
    keep = _checked_keep(
        _magnitude_keep(jnp.concatenate([jnp.ravel(x) for x in chosen]), sparsity), sparsity
    )
    out, start = [], 0
    for x, f in zip(leaves, flags, strict=True):
        if f:
            out.append(keep[start : start + x.size].reshape(x.shape))
            start += x.size
        else:
            out.append(jnp.ones(jnp.shape(x), bool))
    return jax.tree_util.tree_unflatten(treedef, out)


def _structure_mismatch(params: PyTree, mask: PyTree) -> str | None:
    """Why `mask` does not have the tree structure of `params` (`None` if it does).

    Names the leaf paths present in one tree and missing in the other (e.g. a mask dict with
    other keys), so the message says what to change instead of printing two tree definitions.
    """
    pd, md = jax.tree_util.tree_structure(params), jax.tree_util.tree_structure(mask)
    if pd == md:
        return None
    pp = {jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_leaves_with_path(params)}
    mp = {jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_leaves_with_path(mask)}
    parts = []
    if pp - mp:
        parts.append(f"missing from the mask: {sorted(pp - mp)}")
    if mp - pp:
        parts.append(f"in the mask but not in `params`: {sorted(mp - pp)}")
    detail = "; ".join(parts) if parts else f"mask {md} vs params {pd}"
    return (
        f"`mask` structure does not match `params` (it needs one bool leaf per parameter "
        f"leaf, with the same keys): {detail}."
    )


def check_mask(params: PyTree, mask: Mask) -> None:
    """Raise `ValueError` unless `mask` is a bool pytree matching `params` with an active entry.

    Checks the tree structure (same keys / leaf paths), then every leaf's shape and dtype, then
    (on concrete masks) that at least one entry is active.

    **Arguments:**

    - `params`: the parameter pytree.
    - `mask`: the candidate mask.

    **Returns:** `None`; raises `ValueError` naming the offending leaf otherwise.
    """
    check_mask_leaves(params, mask)
    # numpy, not jnp: inside a jit trace jnp would stage even concrete inputs.
    if (
        is_concrete(mask)
        and sum(int(np.sum(np.asarray(m))) for m in jax.tree_util.tree_leaves(mask)) == 0
    ):
        raise InvalidArgumentError(
            "`mask` prunes every parameter (0 active entries); keep at least one."
        )


def check_mask_leaves(params: PyTree, mask: PyTree) -> None:
    """Raise `ValueError` unless `mask` has the tree structure of `params` and, leaf by leaf,
    its shape with dtype bool (the part of `check_mask` that does not look at values).

    **Arguments:**

    - `params`: the parameter pytree.
    - `mask`: the candidate mask.

    **Returns:** `None`; raises `ValueError` naming the offending leaf otherwise.
    """
    why = _structure_mismatch(params, mask)
    if why is not None:
        raise InvalidArgumentError(why)
    for (path, p), m in zip(
        jax.tree_util.tree_leaves_with_path(params), jax.tree_util.tree_leaves(mask), strict=True
    ):
        if jnp.shape(p) != jnp.shape(m) or jnp.asarray(m).dtype != jnp.bool_:
            raise InvalidArgumentError(
                f"`mask` leaf {jax.tree_util.keystr(path)} must be bool of shape {jnp.shape(p)} "
                f"(the shape of the parameter), got {jnp.asarray(m).dtype} of shape "
                f"{jnp.shape(m)}."
            )


def count_active(mask: Mask) -> int | Array:
    """Number of active (`True`) entries $s$ of a mask.

    **Arguments:**

    - `mask`: a bool pytree.

    **Returns:** $s$ (an int32 array, traceable).
    """
    return sum(jnp.sum(m, dtype=jnp.int32) for m in jax.tree_util.tree_leaves(mask))


def apply_mask(params: PyTree, mask: Mask) -> PyTree:
    """$m \\odot \\theta$: pruned entries set to exactly zero.

    **Arguments:**

    - `params`: the parameter pytree.
    - `mask`: a bool pytree of the same structure (`True` = active).

    **Returns:** the masked parameters.
    """
    return jax.tree_util.tree_map(lambda p, m: jnp.where(m, p, jnp.zeros_like(p)), params, mask)


def sparsity_of(mask: Mask, params: PyTree, include=default_prunable) -> Scalar:
    """Fraction of pruned entries among the prunable leaves.

    **Arguments:**

    - `mask`: a bool pytree.
    - `params`: the parameters (select the prunable leaves).
    - `include`: the predicate selecting prunable leaves (as for `prune_mask`).

    **Returns:** the pruned fraction in [0, 1].
    """
    flags = jax.tree_util.tree_leaves(prunable_leaves(params, include))
    ms = [m for m, f in zip(jax.tree_util.tree_leaves(mask), flags, strict=True) if f]
    total = sum(m.size for m in ms)
    return 1.0 - sum(jnp.sum(m, dtype=jnp.int32) for m in ms) / total


def keep_pruned_zero(mask: Mask) -> optax.GradientTransformation:
    """Optax transform keeping pruned weights exactly zero, element-wise.

    Chain it last (`optax.chain(optax.sgd(...), keep_pruned_zero(mask))`). Active entries pass
    through unchanged; at pruned entries the update is $-\\theta_i$ when `params` are given
    (so $\\theta_i + u_i = 0$ exactly, even if the weight was not zero before) and $0$
    otherwise. Unlike `optax.masked`, which selects whole leaves, this acts per element.

    **Arguments:**
    - `mask`: bool pytree with the structure of the parameters (`True` = active).

    **Returns:** an `optax.GradientTransformation` with empty state.
    """

    def init_fn(params):
        check_mask(params, mask)
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        if params is None:
            new = jax.tree_util.tree_map(
                lambda u, m: jnp.where(m, u, jnp.zeros_like(u)), updates, mask
            )
        else:
            new = jax.tree_util.tree_map(lambda u, m, p: jnp.where(m, u, -p), updates, mask, params)
        return new, state

    return optax.GradientTransformation(init_fn, update_fn)


def sparse_scratch(
    mask: Mask,
    init_params: PyTree[Float[Array, "..."]],
    *,
    params: PyTree[Float[Array, "..."]] | None = None,
    include: Callable[[tuple[str, ...], object], bool] = default_prunable,
) -> PyTree:
    """The "sparse scratch" start: a mask found on trained weights, applied to fresh weights.

    The two ways to continue after one-shot pruning (the article) share the mask $m$ and differ in
    the values of the kept weights: *sparse fine-tuning* keeps the trained ones,
    $m \\odot \\theta_{\\text{trained}}$ (`apply_mask(params, mask)`); *sparse scratch*
    re-initializes them, $m \\odot \\theta_{\\text{init}}$, so only the sparsity pattern of the
    trained model is kept (the lottery-ticket comparison).

    **Arguments:**
    - `mask`: bool pytree (`True` = kept), e.g. `prune_mask(params, 0.9)` of trained weights.
    - `init_params`: freshly initialized parameters with the same structure and shapes (e.g.
      `model.init(new_key)`); their kept entries become the new weights.
    - `params`: optional trained parameters. When given, only the prunable leaves (those
      `include` selects) are re-initialized; the others (biases, norms, the output layer by
      default) keep their trained values. When omitted, every kept entry is re-initialized (the
      whole network restarts, as when a model is rebuilt and the mask applied).
    - `include`: predicate selecting the prunable leaves (as for `prune_mask`); used only with
      `params`.

    **Returns:** the parameters to continue sparse training from: pruned entries exactly 0,
    kept entries from `init_params` (or from `params` on leaves that are not prunable).
    """
    check_mask(init_params, mask)
    if params is not None:
        check_mask(params, mask)
        for (path, a), b in zip(
            jax.tree_util.tree_leaves_with_path(init_params),
            jax.tree_util.tree_leaves(params),
            strict=True,
        ):
            if jnp.result_type(a) != jnp.result_type(b):
                raise InvalidArgumentError(
                    f"`init_params` leaf {jax.tree_util.keystr(path)} has dtype "
                    f"{jnp.result_type(a)} but `params` has {jnp.result_type(b)}; initialize "
                    "the fresh weights with the trained weights' dtype."
                )
        flags = prunable_leaves(params, include)
        init_params = jax.tree_util.tree_map(
            lambda fresh, trained, f: fresh if f else trained, init_params, params, flags
        )
    return apply_mask(init_params, mask)
