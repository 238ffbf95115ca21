"""The one reading of a `batching` argument: one batch per step ("sgd") or one for all ("full")."""

from __future__ import annotations

import jax
from jaxtyping import PyTree

from ._errors import check_choice

BATCHING = ("sgd", "full")


def is_full_batch(batching: str, name: str = "batching") -> bool:
    """Validate a `batching` argument and read it as a flag.

    **Arguments:** `batching` ("sgd": the batches have a leading step axis, one batch per step;
    "full": one batch for every step, full-batch GD), `name` (the argument, for the error).

    **Returns:** `True` for "full".
    """
    check_choice(name, batching, BATCHING)
    return batching == BATCHING[1]


def step_batch(batches: PyTree, t, full_batch: bool) -> PyTree:
    """The batch of step `t`: the one batch (`full_batch`), or slice `t` of the step axis.

    **Arguments:** `batches`, `t` (the step, traced), `full_batch`.

    **Returns:** the batch.
    """
    return batches if full_batch else jax.tree_util.tree_map(lambda x: x[t], batches)
