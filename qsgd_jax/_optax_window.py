"""An optax-facing quantum window: drop it into an existing training loop in place of `sgd`.

The transform buffers the mini-batch of every call. For $T_q - 1$ calls it returns zero
updates (the parameters sit in the quantum computer); at the $T_q$-th call it runs
`quantum_window` from the parameters of the window start over the $T_q$ buffered batches and
returns $\\hat\\theta - \\theta$, so after every $T_q$ steps the parameters are the downloaded
$\\hat\\theta$. The incoming gradients are ignored: the window takes its own derivatives of the
loss.

Like optax's line searches, the transform receives the objective at update time:
`update(updates, state, params, value_fn=loss_fn, batch=batch)`, where
`loss_fn(params, batch) -> scalar` is pure. Its learning rate $\\eta$ is a hyperparameter in the
optax sense, so `optax.inject_hyperparams` can schedule it (or pass a schedule directly, which
does the same): window $k$ runs with the learning rate of its first step, `schedule(k T_q)`.

Example (a plain optax loop with a learning-rate schedule; see the documentation's how-to):

```python
schedule = optax.exponential_decay(0.1, transition_steps=10, decay_rate=0.5)
opt = optax.inject_hyperparams(qj.quantum_window_optimizer)(
    learning_rate=schedule, config=qj.WindowConfig(0.1, 5, diagnostics=False),
    mask=mask, example_batch=first_batch, key=jax.random.key(0))
state = opt.init(params)

@jax.jit
def step(params, state, batch):
    updates, state = opt.update(zeros, state, params, value_fn=model.loss_fn, batch=batch)
    return optax.apply_updates(params, updates), state
```

A window that diverges is not applied: its update is zero and `state.diverged_step` holds the
step of the blow-up ($-1$ when every window so far stayed bounded).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, PRNGKeyArray, PyTree

from ._errors import check_positive
from ._window import WindowConfig, quantum_window, window_index


class QuantumWindowState(NamedTuple):
    """The transform's state.

    **Fields:** `count` (calls into the current window), `start` (parameters at its start),
    `buffer` (its batches, leading axis $T_q$), `eta` (the learning rate at its start), `key`,
    `windows` (windows run) and `diverged_step` (of the last diverged window, $-1$ if none)."""

    count: Array
    start: PyTree
    buffer: PyTree
    eta: Array
    key: Array
    windows: Array
    diverged_step: Array


def quantum_window_optimizer(
    learning_rate: float | Array | Callable[[Array], Array],
    config: Any,
    mask: PyTree,
    example_batch: PyTree,
    key: PRNGKeyArray,
) -> optax.GradientTransformationExtraArgs:
    """A `GradientTransformationExtraArgs` that trains by one quantum window every $T_q$ steps.

    **Arguments:**

    - `learning_rate`: $\\eta > 0$, or an optax schedule `step -> eta` (the transform is then
      wrapped in `optax.inject_hyperparams`, and `state.hyperparams["learning_rate"]` is the
      current value). Window $k$ uses the value at its first step. It replaces `config.eta`.
    - `config`: the `WindowConfig` ($T_q$, method, read-out, ...; `batching` must be "sgd").
    - `mask`: concrete bool pytree of the active set (pruned entries stay 0).
    - `example_batch`: a batch with the shapes of those passed to `update` (sizes the buffer).
    - `key`: PRNG key; window $k$ reads out with `fold_in(key, k)`.

    **Returns:** the transform. Call `update(updates, state, params, value_fn=loss_fn,
    batch=batch)` with the pure `loss_fn(params, batch) -> scalar` and the step's batch;
    `updates` (e.g. the gradients) are ignored and may be zeros.
    """
    if callable(learning_rate):
        return optax.inject_hyperparams(quantum_window_optimizer)(
            learning_rate=learning_rate,
            config=config,
            mask=mask,
            example_batch=example_batch,
            key=key,
        )
    if not isinstance(config, WindowConfig):
        raise TypeError(f"`config` must be a `WindowConfig`, got {type(config).__name__}.")
    check_positive("learning_rate", learning_rate)
    if config.full_batch:
        raise ValueError(
            f"`config.batching` must be 'sgd', got {config.batching!r}: the transform sees one "
            "batch per call."
        )
    T = config.num_steps

    def init_fn(params):
        window_index(params, mask)  # validates the mask against the parameters
        buffer = jax.tree_util.tree_map(
            lambda b: jnp.zeros((T, *jnp.shape(b)), jnp.asarray(b).dtype), example_batch
        )
        zero = jnp.zeros((), jnp.int32)
        eta = jnp.asarray(learning_rate, config.eta.dtype)
        return QuantumWindowState(zero, params, buffer, eta, key, zero, zero - 1)

    def update_fn(updates, state, params=None, *, value_fn=None, batch=None, **extra_args):
        del updates, extra_args
        if params is None or batch is None or value_fn is None:
            raise ValueError(
                "`update` needs `params`, the loss as `value_fn=` (pure `value_fn(params, "
                "batch) -> scalar`) and the step's `batch=`."
            )
        first = state.count == 0
        start = jax.tree_util.tree_map(lambda s, p: jnp.where(first, p, s), state.start, params)
        eta = jnp.where(first, jnp.asarray(learning_rate, state.eta.dtype), state.eta)
        buffer = jax.tree_util.tree_map(
            lambda buf, b: buf.at[state.count].set(b), state.buffer, batch
        )

        def run(_):
            k = jax.random.fold_in(state.key, state.windows)
            cfg = eqx.tree_at(lambda c: c.eta, config, eta)
            p_hat, rep = quantum_window(value_fn, start, mask, buffer, cfg, k, throw=False)
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
            eta=eta,
            key=state.key,
            windows=state.windows + last.astype(jnp.int32),
            diverged_step=diverged.astype(jnp.int32),
        )
        return delta, new

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["QuantumWindowState", "quantum_window_optimizer"]
