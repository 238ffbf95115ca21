"""Offline data sets, the CIFAR archive reader and the key-driven batch iterator."""

import io
import pickle
import tarfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qsgd_jax.ml import (
    Batch,
    batch_at,
    load_cifar,
    load_digits,
    load_mnist1d,
    make_batches,
    resize_images,
    teacher_student,
)


def test_digits_split_fixed_by_seed():
    a, b, c = load_digits(seed=0), load_digits(seed=0), load_digits(seed=1)
    assert a.x_train.shape == (1438, 8, 8, 1) and a.x_test.shape == (359, 8, 8, 1)
    assert a.x_train.dtype == jnp.float32 and a.y_train.dtype == jnp.int32
    assert float(a.x_train.min()) >= 0.0 and float(a.x_train.max()) <= 1.0
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(np.asarray(a.y_test), np.asarray(c.y_test))
    # The split is a partition of the 1797 images: no test image in the training set.
    tr = {x.tobytes() for x in np.asarray(a.x_train)}
    assert sum(x.tobytes() in tr for x in np.asarray(a.x_test)) < 10  # a few exact duplicates


def test_resize_to_cifar_shape():
    d = load_digits(resize=True)
    assert d.input_shape == (32, 32, 3)
    x = d.x_train[:3]
    # Grey images become identical RGB channels.
    np.testing.assert_array_equal(x[..., 0], x[..., 2])
    with pytest.raises(ValueError, match="NHWC"):
        resize_images(jnp.zeros((2, 8, 8, 2)))


def test_mnist1d_procedural():
    d = load_mnist1d(num_samples=200, seed=3)
    assert d.x_train.shape == (160, 40) and d.x_test.shape == (40, 40)
    assert set(np.unique(np.asarray(d.y_train))) <= set(range(10))
    d2 = load_mnist1d(num_samples=200, seed=3)
    np.testing.assert_array_equal(d.x_train, d2.x_train)


def test_teacher_student(getkey):
    key = getkey()
    d = teacher_student(key, num_samples=100, dim=5, num_classes=3)
    assert d.x_train.shape == (80, 5) and d.num_classes == 3
    assert set(np.unique(np.asarray(d.y_train))) <= {0, 1, 2}
    again = teacher_student(key, num_samples=100, dim=5, num_classes=3)
    np.testing.assert_array_equal(d.x_test, again.x_test)
    r = teacher_student(key, num_samples=50, dim=4, num_classes=0, noise=0.1, dtype=jnp.float64)
    assert r.y_train.shape == (40, 1) and r.y_train.dtype == jnp.float64


def _tiny_cifar(path, num_classes, n=4):
    rng = np.random.default_rng(0)

    def blob(labels_key):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, num_classes, size=n))
        return {b"data": data, labels_key: labels}

    with tarfile.open(path, "w:gz") as tar:

        def add(name, obj):
            raw = pickle.dumps(obj)
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))

        if num_classes == 10:
            batches = [blob(b"labels") for _ in range(6)]
            for i in range(5):
                add(f"cifar-10-batches-py/data_batch_{i + 1}", batches[i])
            add("cifar-10-batches-py/test_batch", batches[5])
            return batches[0], b"labels"
        train, test = blob(b"fine_labels"), blob(b"fine_labels")
        add("cifar-100-python/train", train)
        add("cifar-100-python/test", test)
        return train, b"fine_labels"


@pytest.mark.parametrize("num_classes", [10, 100])
def test_cifar_archive_roundtrip(tmp_path, num_classes):
    first, key = _tiny_cifar(tmp_path / f"cifar-{num_classes}-python.tar.gz", num_classes)
    d = load_cifar(tmp_path, num_classes=num_classes)  # the folder is enough
    n_train = 20 if num_classes == 10 else 4
    assert d.x_train.shape == (n_train, 32, 32, 3) and d.x_test.shape == (4, 32, 32, 3)
    # Row layout of the archive: 1024 red, then green, then blue pixels, row-major.
    raw = first[b"data"][1]
    for c in range(3):
        for h, w in [(0, 0), (5, 7), (31, 31)]:
            assert float(d.x_train[1, h, w, c]) == pytest.approx(raw[c * 1024 + 32 * h + w] / 255)
    np.testing.assert_array_equal(np.asarray(d.y_train[:4]), np.asarray(first[key]))
    assert d.num_classes == num_classes


def test_cifar_missing_archive_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar-100-python\.tar\.gz.*cs\.toronto\.edu"):
        load_cifar(tmp_path, num_classes=100)
    with pytest.raises(ValueError, match="`num_classes` must be 10 or 100"):
        load_cifar(tmp_path, num_classes=7)


def test_batch_iterator_is_a_shuffled_epoch(getkey):
    x = jnp.arange(20.0).reshape(10, 2)
    y = jnp.arange(10, dtype=jnp.int32)
    key = getkey()
    step = jax.jit(batch_at, static_argnums=4)
    seen = np.concatenate([np.asarray(step(x, y, key, s, 3).y) for s in range(3)])
    assert len(set(seen.tolist())) == 9  # 3 disjoint batches of 3 inside epoch 0
    b = step(x, y, key, 1, 3)
    np.testing.assert_array_equal(b.x[:, 0], 2 * b.y)  # inputs and labels stay paired
    np.testing.assert_array_equal(b.y, step(x, y, key, jnp.asarray(1), 3).y)  # same key, same
    assert not np.array_equal(step(x, y, key, 0, 3).y, step(x, y, key, 3, 3).y)  # new epoch
    bs = make_batches(x, y, key, 3, 4)
    assert isinstance(bs, Batch) and bs.x.shape == (4, 3, 2) and bs.y.shape == (4, 3)
    np.testing.assert_array_equal(bs.y[1], b.y)
    with pytest.raises(ValueError, match="batch_size"):
        batch_at(x, y, key, 0, 11)
