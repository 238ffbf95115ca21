"""Offline data sets and a jitted, key-driven batch iterator.

Nothing is downloaded at run time: scikit-learn's bundled 8×8 digits, `mnist1d`'s procedural
generator, a synthetic teacher–student set, and CIFAR-10/100 read from the standard
`cifar-10-python.tar.gz` / `cifar-100-python.tar.gz` archives the user already has on disk.
Images are stored NHWC, float32, inputs of 1-D sets as `(N, L)`; labels are int32 class indices
(or float targets for the teacher–student regression set).
"""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, Shaped

from ._errors import (
    InvalidArgumentError,
    check_finite_tree,
    check_int_range,
    check_nonempty,
    check_number,
    error_if_invalid,
    in_interval,
    is_concrete,
)

_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"


class Batch(eqx.Module):
    """One mini-batch of examples: inputs `x` and targets `y`.

    Stacks of batches (a leading batch-index axis on both fields) are what the spectrum code
    takes for "a set of batches".

    **Fields:**

    - `x`: inputs, shape `(b, ...)` (leading axis = examples; images NHWC).
    - `y`: targets with the same leading axis: int32 class labels `(b,)`, or float targets.
    """

    x: Float[Array, "b ..."]
    y: Shaped[Array, "b ..."]


class Dataset(eqx.Module):
    """A data set: a train/test split held in memory as arrays.

    Labels of a classification set are checked at construction (integers in
    `[0, num_classes)`), inputs and regression targets for finiteness.

    **Fields:**

    - `x_train`, `y_train`, `x_test`, `y_test`: arrays; inputs float, labels int32 (classification)
      or float (regression).
    - `num_classes`: number of classes (0 for regression); static.
    - `name`: a short name; static.
    """

    x_train: Float[Array, "n ..."]
    y_train: Shaped[Array, "n ..."]
    x_test: Float[Array, "m ..."]
    y_test: Shaped[Array, "m ..."]
    num_classes: int = eqx.field(static=True)
    name: str = eqx.field(static=True)

    def __check_init__(self):
        for split in ("train", "test"):
            check_finite_tree(f"x_{split}", getattr(self, f"x_{split}"))
            y = getattr(self, f"y_{split}")
            if self.num_classes:
                check_labels(f"y_{split}", y, self.num_classes)
            else:
                check_finite_tree(f"y_{split}", y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input example."""
        return tuple(self.x_train.shape[1:])

    def train_batch(self) -> Batch:
        """The whole training set as one `Batch`."""
        return Batch(self.x_train, self.y_train)

    def test_batch(self) -> Batch:
        """The whole test set as one `Batch`."""
        return Batch(self.x_test, self.y_test)


def check_labels(name: str, y, num_classes: int) -> None:
    """Raise unless concrete class labels are integers in `[0, num_classes)`.

    An out-of-range label makes the cross-entropy NaN (or silently wrong) instead of an error,
    so data sets, batches and the models' losses check them where they are concrete.

    **Arguments:**

    - `name`: the argument's name for the message (`y_train`, `batch.y`).
    - `y`: class labels (any shape).
    - `num_classes`: the number of classes $C$.

    **Raises:** `TypeError` for non-integer labels, `ValueError` for labels out of range.
    """
    if not is_concrete(y):
        return
    arr = np.asarray(y)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise InvalidArgumentError(
                f"`{name}` must hold integer class labels, got dtype {arr.dtype}."
            )
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        bad = np.unique(arr[(arr < 0) | (arr >= num_classes)])
        raise InvalidArgumentError(
            f"`{name}` has labels {bad[:10].tolist()} outside [0, {num_classes}) (the model or "
            f"data set has {num_classes} classes); labels must be class indices "
            f"0..{num_classes - 1}."
        )


def _split(x, y, test_fraction: float, seed: int):
    if not 0.0 < test_fraction < 1.0:
        raise InvalidArgumentError(f"`test_fraction` must lie in (0, 1), got {test_fraction!r}.")
    perm = np.random.default_rng(seed).permutation(len(x))
    n_test = max(1, round(test_fraction * len(x)))
    te, tr = perm[:n_test], perm[n_test:]
    return x[tr], y[tr], x[te], y[te]


def _finish(x_tr, y_tr, x_te, y_te, num_classes, name, dtype, resize) -> Dataset:
    x_tr, x_te = (jnp.asarray(a, dtype=dtype) for a in (x_tr, x_te))
    if resize:
        x_tr, x_te = resize_images(x_tr), resize_images(x_te)
    ydt = jnp.int32 if num_classes else dtype
    return Dataset(
        x_tr, jnp.asarray(y_tr, dtype=ydt), x_te, jnp.asarray(y_te, dtype=ydt), num_classes, name
    )


def resize_images(x: Float[Array, "n h w c"], size: int = 32) -> Float[Array, "n s s 3"]:
    """Resize NHWC images to `size`×`size`×3 (bilinear; grey images are repeated over RGB).

    Lets the CIFAR ResNets run on the small bundled data sets.

    **Arguments:**

    - `x`: images, shape `(n, h, w, c)` with `c` 1 or 3.
    - `size`: output height and width.

    **Returns:** images of shape `(n, size, size, 3)`, same dtype.
    """
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise InvalidArgumentError(
            f"`x` must be NHWC images with 1 or 3 channels, got shape {x.shape}."
        )
    if x.shape[-1] == 1:
        x = jnp.repeat(x, 3, axis=-1)
    return jax.image.resize(x, (x.shape[0], size, size, 3), method="bilinear").astype(x.dtype)


def load_digits(
    *, test_fraction: float = 0.2, seed: int = 0, dtype=jnp.float32, resize: bool = False
) -> Dataset:
    """scikit-learn's bundled 8×8 handwritten digits (1797 images, 10 classes), scaled to [0, 1].

    **Arguments:**

    - `test_fraction`: fraction of examples in the test split.
    - `seed`: fixes the train/test split.
    - `dtype`: float dtype of the inputs.
    - `resize`: if True, images become 32×32×3 (for the CIFAR ResNets).

    **Returns:** a `Dataset` with inputs `(n, 8, 8, 1)` (or `(n, 32, 32, 3)`).
    """
    from sklearn.datasets import load_digits as _sk_digits

    d = _sk_digits()
    x = (d.images / 16.0)[..., None]
    return _finish(*_split(x, d.target, test_fraction, seed), 10, "digits", dtype, resize)


def load_mnist1d(*, num_samples: int = 5000, seed: int = 0, dtype=jnp.float32) -> Dataset:
    """MNIST-1D from its procedural generator (`mnist1d.data.make_dataset`; never downloaded).

    **Arguments:**

    - `num_samples`: total examples generated (80 % train, 20 % test, as in `mnist1d`).
    - `seed`: generator seed (fixes the data and the split).
    - `dtype`: float dtype of the inputs.

    **Returns:** a `Dataset` with inputs `(n, 40)` and 10 classes.

    !!! note
        `mnist1d` seeds NumPy's global random generator as a side effect.
    """
    check_int_range("num_samples", num_samples, 10)
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = int(num_samples)
    args.seed = int(seed)
    d = make_dataset(args)
    return _finish(d["x"], d["y"], d["x_test"], d["y_test"], 10, "mnist1d", dtype, False)


def teacher_student(
    key: PRNGKeyArray,
    *,
    num_samples: int = 2048,
    dim: int = 16,
    hidden: int = 32,
    num_classes: int = 10,
    noise: float = 0.0,
    test_fraction: float = 0.2,
    dtype=jnp.float32,
) -> Dataset:
    """A synthetic teacher–student set: $x \\sim \\mathcal N(0, I)$, targets from a random tanh MLP.

    With `num_classes > 0` the label is the arg-max of the teacher's logits (classification);
    with `num_classes = 0` the target is the teacher's scalar output plus Gaussian noise
    (regression, `y` of shape `(n, 1)`).

    **Arguments:**

    - `key`: PRNG key (teacher weights, inputs, noise and split all derive from it).
    - `num_samples`, `dim`, `hidden`: sizes.
    - `num_classes`: classes, or 0 for regression.
    - `noise`: standard deviation of the regression noise.
    - `test_fraction`: fraction of examples in the test split.
    - `dtype`: float dtype.

    **Returns:** a `Dataset` with inputs `(n, dim)`.
    """
    check_int_range("num_samples", num_samples, 2)
    check_int_range("dim", dim, 1)
    check_int_range("hidden", hidden, 1)
    check_int_range("num_classes", num_classes, 0)
    kx, k1, k2, kn, ks = jax.random.split(key, 5)
    out = max(num_classes, 1)
    x = jax.random.normal(kx, (num_samples, dim), dtype)
    w1 = jax.random.normal(k1, (dim, hidden), dtype) / np.sqrt(dim).astype(dtype)
    w2 = jax.random.normal(k2, (hidden, out), dtype) / np.sqrt(hidden).astype(dtype)
    logits = jnp.tanh(x @ w1) @ w2
    if num_classes:
        y = jnp.argmax(logits, axis=-1)
    else:
        y = logits + noise * jax.random.normal(kn, logits.shape, dtype)
    seed = int(jax.random.randint(ks, (), 0, 2**31 - 1))
    split = _split(np.asarray(x), np.asarray(y), test_fraction, seed)
    return _finish(*split, num_classes, "teacher_student", dtype, False)


def _unpickle(tar: tarfile.TarFile, member: str) -> dict:
    try:
        f = tar.extractfile(member)
    except KeyError:
        f = None
    if f is None:
        raise InvalidArgumentError(
            f"CIFAR archive {tar.name!r} has no member {member!r}; is it corrupt?"
        )
    return pickle.load(f, encoding="bytes")


def load_cifar(
    path: str | Path,
    *,
    num_classes: int = 10,
    dtype=jnp.float32,
    max_train: int | None = None,
    max_test: int | None = None,
) -> Dataset:
    """CIFAR-10 or CIFAR-100 from the local "python version" archive (nothing is downloaded).

    **Arguments:**

    - `path`: the archive file (`cifar-10-python.tar.gz` / `cifar-100-python.tar.gz`) or the
      folder holding it.
    - `num_classes`: 10 or 100 (CIFAR-100 uses its 100 fine labels).
    - `dtype`: float dtype; pixels are scaled to [0, 1].
    - `max_train`, `max_test`: keep only the first examples of each split.

    **Returns:** a `Dataset` with inputs `(n, 32, 32, 3)`.
    """
    if num_classes not in (10, 100):
        raise InvalidArgumentError(
            f"`num_classes` must be 10 or 100 for CIFAR, got {num_classes!r}."
        )
    fname = f"cifar-{num_classes}-python.tar.gz"
    p = Path(path)
    if p.is_dir():
        p = p / fname
    if not p.is_file():
        raise FileNotFoundError(
            f"CIFAR-{num_classes} archive not found: expected the file {fname!r} at {str(p)!r}. "
            f"Download it once by hand from {_CIFAR_URL} (the 'CIFAR-{num_classes} python "
            "version') and pass its path, or the folder that holds it, as `path`; qsgd_jax "
            "never downloads data."
        )
    with tarfile.open(p, "r:gz") as tar:
        if num_classes == 10:
            root = "cifar-10-batches-py"
            train = [_unpickle(tar, f"{root}/data_batch_{i}") for i in range(1, 6)]
            test = [_unpickle(tar, f"{root}/test_batch")]
            key = b"labels"
        else:
            root = "cifar-100-python"
            train = [_unpickle(tar, f"{root}/train")]
            test = [_unpickle(tar, f"{root}/test")]
            key = b"fine_labels"

    def stack(parts, limit):
        x = np.concatenate([np.asarray(d[b"data"], np.uint8) for d in parts])
        y = np.concatenate([np.asarray(d[key], np.int64) for d in parts])
        x = x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1) / 255.0
        return (x, y) if limit is None else (x[:limit], y[:limit])

    name = f"cifar{num_classes}"
    return _finish(
        *stack(train, max_train), *stack(test, max_test), num_classes, name, dtype, False
    )


def check_data(x, y, batch_size) -> int:
    """The door checks of a batched pass over `(x, y)`: a shared, non-empty example axis and a
    `batch_size` in [1, len(x)]. Every entry point that batches a data set calls it first, so an
    empty data set is named as such (not as an empty range of batch sizes).

    **Arguments:** `x`, `y` (inputs and targets), `batch_size` (examples per batch).

    **Returns:** the number of examples $n$.
    """
    if jnp.ndim(x) == 0 or jnp.ndim(y) == 0:
        raise InvalidArgumentError(
            f"`x` and `y` must have a leading example axis, got shapes {jnp.shape(x)} and "
            f"{jnp.shape(y)}."
        )
    n = x.shape[0]
    if y.shape[0] != n:
        raise InvalidArgumentError(
            f"`x` and `y` must have the same length, got {n} and {y.shape[0]}."
        )
    check_nonempty(
        "x",
        n,
        "examples",
        "A pass over the data needs at least `batch_size` examples: check "
        "the data set (its split or the filter that produced it).",
    )
    check_number(
        "batch_size",
        batch_size,
        low=1,
        high=n,
        integer=True,
        rule=f"must be an integer in [1, len(x) = {n}]",
    )
    return n


_STEP_RULE = "must be an integer >= 0 (the global step index)"


def batch_at(
    x: Shaped[Array, "n ..."],
    y: Shaped[Array, "n ..."],
    key: PRNGKeyArray,
    step: ArrayLike,
    batch_size: int,
) -> Batch:
    """The mini-batch of step `step` of an epoch-wise shuffled pass over `(x, y)`.

    Epoch $e = \\lfloor \\text{step} / \\text{steps per epoch} \\rfloor$ uses the permutation
    drawn from `fold_in(key, e)`; the remainder of each epoch is dropped. Pure and jittable, with
    `step` traced, so it runs inside `lax.scan` over training steps; same key, same batches.

    **Arguments:**

    - `x`, `y`: inputs and targets with a shared leading axis (at least one example).
    - `key`: PRNG key of the whole pass.
    - `step`: global step index, an integer >= 0 (traced or Python int; a traced negative
      step raises when the program runs, naming it).
    - `batch_size`: examples per batch (static), at most `len(x)`.

    **Returns:** a `Batch` with leading axis `batch_size`.
    """
    check_data(x, y, batch_size)
    check_number("step", step, low=0, integer=True, rule=_STEP_RULE)
    batch = _batch_at(x, y, key, step, batch_size)
    if is_concrete(step):
        return batch
    ok = in_interval(jnp.asarray(step), 0, integer=True)
    return error_if_invalid(batch, ok, "step", _STEP_RULE, step)


def _batch_at(x, y, key, step, batch_size: int) -> Batch:
    """`batch_at` without its checks, for library loops whose steps are known to be valid
    (`make_batches`, the hybrid run): no run-time check in their programs."""
    n = x.shape[0]
    per_epoch = n // batch_size
    step = jnp.asarray(step)
    perm = jax.random.permutation(jax.random.fold_in(key, step // per_epoch), n)
    idx = jax.lax.dynamic_slice_in_dim(perm, (step % per_epoch) * batch_size, batch_size)
    return Batch(x[idx], y[idx])


def make_batches(
    x: Shaped[Array, "n ..."],
    y: Shaped[Array, "n ..."],
    key: PRNGKeyArray,
    batch_size: int,
    num_batches: int,
) -> Batch:
    """A stack of `num_batches` consecutive mini-batches from `batch_at`, jitted.

    **Arguments:**

    - `x`, `y`: inputs and targets with a shared leading axis (at least one example).
    - `key`: PRNG key of the whole pass.
    - `batch_size`: examples per batch (static), at most `len(x)`.
    - `num_batches`: how many batches: steps $0, \\dots,$ `num_batches` $- 1$ of `batch_at`.

    **Returns:** a `Batch` whose fields have leading axes `(num_batches, batch_size)`.
    """
    check_data(x, y, batch_size)
    check_int_range("num_batches", num_batches, 1)
    return _make_batches(x, y, key, int(batch_size), int(num_batches))


@eqx.filter_jit
def _make_batches(x, y, key, batch_size, num_batches):
    return jax.vmap(lambda s: _batch_at(x, y, key, s, batch_size))(jnp.arange(num_batches))
