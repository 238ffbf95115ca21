"""An optax-facing quantum window: drop it into an existing training loop in place of `sgd`.

The transform buffers the mini-batch of every call. For $T_q - 1$ calls it returns zero
updates (the parameters sit in the quantum computer); at the $T_q$-th call it runs
`quantum_window` from the parameters of the window start over the $T_q$ buffered batches and
returns $\\hat\\theta - \\theta$, so after every $T_q$ steps the parameters are the downloaded
$\\hat\\theta$. The incoming gradients are ignored: the window takes its own from `loss_fn`.

Example:

```python
import optax, jax
from qsgd_jax._optax_window import quantum_window_optimizer
from qsgd_jax._window import WindowConfig

opt = quantum_window_optimizer(model.loss_fn, mask, WindowConfig(0.1, 5, readout="sample",
                               shots=10_000, diagnostics=False), example_batch, jax.random.key(0))
state = opt.init(params)

@jax.jit
def step(params, state, batch):
    grads = jax.grad(model.loss_fn)(params, batch)      # unused by the window, kept for optax
    updates, state = opt.update(grads, state, params, batch=batch)
    return optax.apply_updates(params, updates), state
```

A window that diverges is not applied: its update is zero and `state.diverged_step` holds the
step of the blow-up ($-1$ when every window so far stayed bounded).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, PRNGKeyArray, PyTree

from ._window import WindowConfig, quantum_window, window_index


class QuantumWindowState(NamedTuple):
    """State: `count` (calls into the current window), `start` (parameters at its start),
    `buffer` (its batches, leading axis $T_q$), `key`, `windows` (windows run) and
    `diverged_step` (of the last diverged window, $-1$ if none)."""

    count: Array
    start: PyTree
    buffer: PyTree
    key: Array
    windows: Array
    diverged_step: Array


def quantum_window_optimizer(
    loss_fn: Callable[[PyTree, Any], Array],
    mask: PyTree,
    config: WindowConfig,
    example_batch: PyTree,
    key: PRNGKeyArray,
) -> optax.GradientTransformationExtraArgs:
    """A `GradientTransformationExtraArgs` that trains by one quantum window every $T_q$ steps.

    **Arguments:**

    - `loss_fn`: pure `loss_fn(params, batch) -> scalar`.
    - `mask`: concrete bool pytree of the active set (pruned entries stay 0).
    - `config`: the `WindowConfig` ($\\eta$, $T_q$, form, read-out; `batching` must be "sgd").
    - `example_batch`: a batch with the shapes of those passed to `update` (sizes the buffer).
    - `key`: PRNG key; window $k$ reads out with `fold_in(key, k)`.

    **Returns:** the transform; call `update(grads, state, params, batch=batch)`.
    """
    if config.batching != "sgd":
        raise ValueError("`config.batching` must be 'sgd': the transform sees one batch a call.")
    T = config.num_steps

    def init_fn(params):
        window_index(params, mask)  # validates the mask against the parameters
        buffer = jax.tree_util.tree_map(
            lambda b: jnp.zeros((T, *jnp.shape(b)), jnp.asarray(b).dtype), example_batch
        )
        zero = jnp.zeros((), jnp.int32)
        return QuantumWindowState(zero, params, buffer, key, zero, zero - 1)

    def update_fn(updates, state, params=None, *, batch=None, **extra_args):
        del updates, extra_args
        if params is None or batch is None:
            raise ValueError("`update` needs `params` and the step's `batch=`.")
        start = jax.tree_util.tree_map(
            lambda s, p: jnp.where(state.count == 0, p, s), state.start, params
        )
        buffer = jax.tree_util.tree_map(
            lambda buf, b: buf.at[state.count].set(b), state.buffer, batch
        )

        def run(_):
            k = jax.random.fold_in(state.key, state.windows)
            p_hat, rep = quantum_window(loss_fn, start, mask, buffer, config, k)
            ok = rep.diverged_step < 0
            delta = jax.tree_util.tree_map(
                lambda a, p: jnp.where(ok, a - p, jnp.zeros_like(p)), p_hat, params
            )
            return delta, jnp.where(ok, state.diverged_step, rep.diverged_step)

        def wait(_):
            return jax.tree_util.tree_map(jnp.zeros_like, params), state.diverged_step

        last = state.count == T - 1
        delta, diverged = jax.lax.cond(last, run, wait, None)
        new = QuantumWindowState(
            count=jnp.where(last, 0, state.count + 1).astype(jnp.int32),
            start=start,
            buffer=buffer,
            key=state.key,
            windows=state.windows + last.astype(jnp.int32),
            diverged_step=diverged.astype(jnp.int32),
        )
        return delta, new

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["QuantumWindowState", "quantum_window_optimizer"]
