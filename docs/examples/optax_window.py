"""A quantum window in a plain optax training loop, with a learning-rate schedule."""

import jax
import jax.numpy as jnp
import optax

import qsgd_jax as qj

# A small classification task and a linen MLP (any `loss_fn(params, batch)` works, see the
# "bring your own model" how-to); 80 % of the hidden kernels pruned: s active parameters.
data = qj.ml.teacher_student(jax.random.key(0), num_samples=512, dim=8, hidden=16, num_classes=3)
model = qj.ml.make_mlp((8,), 3, hidden=(16,))
params = model.init(jax.random.key(1))
mask = qj.ml.prune_mask(params, 0.8)
params = qj.ml.apply_mask(params, mask)

T_q = 5  # steps per quantum window
num_steps = 4 * T_q
batches = qj.ml.make_batches(data.x_train, data.y_train, jax.random.key(2), 32, num_steps)

# eta halves every two windows; window k runs with schedule(k * T_q).
schedule = optax.exponential_decay(0.5, transition_steps=2 * T_q, decay_rate=0.5, staircase=True)
config = qj.WindowConfig(0.5, T_q, readout="sample", shots=100_000, diagnostics=False)
first = qj.ml.Batch(batches.x[0], batches.y[0])
opt = optax.inject_hyperparams(qj.quantum_window_optimizer)(
    learning_rate=schedule, config=config, mask=mask, example_batch=first, key=jax.random.key(3)
)
state = opt.init(params)


@jax.jit
def step(params, state, batch):
    # The window differentiates `value_fn` itself; the incoming updates are ignored.
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    updates, state = opt.update(zeros, state, params, value_fn=model.loss_fn, batch=batch)
    return optax.apply_updates(params, updates), state


test = qj.ml.Batch(data.x_test, data.y_test)
losses = [float(model.loss_fn(params, test))]
for t in range(num_steps):
    params, state = step(params, state, qj.ml.Batch(batches.x[t], batches.y[t]))
    if (t + 1) % T_q == 0:  # a window ended: the parameters were downloaded
        losses.append(float(model.loss_fn(params, test)))
        k = t // T_q
        print(f"window {k}: eta {float(schedule(k * T_q)):.3f}, test loss {losses[-1]:.4f}")
