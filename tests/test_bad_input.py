"""Bad input gets a clear error before any work, and nothing non-finite is returned as a number.

Each family is tested at every entry point that takes the same input: data finiteness (params,
batch), labels, mask structure, dtypes, memory of dense diagnostics, non-finite runs (with the
step), sweep grid ranges.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsgd_jax as qj


def _quadratic_loss(params, batch):
    r = batch["x"] @ params["w"] + params["b"] - batch["y"]
    return 0.5 * jnp.mean(r**2) + 0.1 * jnp.sum(params["w"] ** 3)


def _setup(rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    params = {"b": jnp.asarray(0.1), "w": jnp.asarray(rng.standard_normal(3))}
    batch = {
        "x": jnp.asarray(rng.standard_normal((8, 3))),
        "y": jnp.asarray(rng.standard_normal(8)),
    }
    return params, batch


# --- data finiteness -------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["batch", "params"])
@pytest.mark.parametrize(
    "entry",
    [
        lambda p, b: qj.gd_map(_quadratic_loss, p, b, eta=0.1),
        lambda p, b: qj.gd_map(_quadratic_loss, p, b, eta=0.1, matrix_free=True),
        lambda p, b: qj.taylor_field(_quadratic_loss, p, b),
        lambda p, b: qj.taylor_field(_quadratic_loss, p, b, degree=1, matrix_free=True),
    ],
    ids=["gd_map", "gd_map_matrix_free", "taylor_field", "taylor_field_matrix_free"],
)
def test_nan_in_batch_or_params_is_named(entry, where):
    params, batch = _setup()
    if where == "batch":
        batch = {**batch, "x": batch["x"].at[2, 1].set(jnp.nan)}
        expected = r"`batch\['x'\]` has 1 non-finite .* index \(2, 1\)"
    else:
        params = {**params, "w": params["w"].at[1].set(jnp.inf)}
        expected = r"`params\['w'\]` has 1 non-finite .* index \(1,\)"
    with pytest.raises(ValueError, match=expected):
        entry(params, batch)


def test_check_finite_tree_skips_tracers_and_integers():
    qj.ml.check_finite_tree("batch", {"y": jnp.arange(3), "key": jax.random.key(0)})
    # under jit the values are unknown: the check is skipped, never a false alarm
    jax.jit(lambda x: qj.ml.check_finite_tree("x", x) or x)(jnp.ones(2))
    with pytest.raises(ValueError, match="`x` has 2 non-finite"):
        qj.ml.check_finite_tree("x", np.array([np.nan, 1.0, -np.inf]))
    # a concrete constant is still checked inside a trace (on the device, one bool back)
    const = jnp.asarray([1.0, jnp.nan])
    with pytest.raises(ValueError, match=r"`c` has 1 non-finite .* index \(1,\)"):
        jax.jit(lambda x: qj.ml.check_finite_tree("c", const) or x)(jnp.ones(2))


# --- labels ----------------------------------------------------------------------------------


def test_labels_out_of_range_refused_by_dataset_batch_and_loss():
    data = qj.ml.load_digits()
    with pytest.raises(ValueError, match=r"`y_train` has labels \[10\] outside \[0, 10\)"):
        qj.ml.Dataset(data.x_train, data.y_train.at[3].set(10), data.x_test, data.y_test, 10, "d")
    with pytest.raises(ValueError, match=r"`y_test` has labels \[-1\]"):
        qj.ml.Dataset(data.x_train, data.y_train, data.x_test, data.y_test.at[0].set(-1), 10, "d")
    with pytest.raises(ValueError, match="`x_train` has 1 non-finite"):
        qj.ml.Dataset(
            data.x_train.at[0, 0, 0, 0].set(jnp.nan),
            data.y_train,
            data.x_test,
            data.y_test,
            10,
            "d",
        )
    model = qj.ml.make_mlp(data.input_shape, 10, hidden=(4,))
    params = model.init(jax.random.key(0))
    bad = qj.ml.Batch(data.x_train[:4], jnp.asarray([0, 1, 12, 3], jnp.int32))
    with pytest.raises(ValueError, match=r"`batch.y` has labels \[12\] outside \[0, 10\)"):
        model.loss_fn(params, bad)
    with pytest.raises(ValueError, match=r"`batch.y` has labels \[12\]"):
        qj.gd_map(model.loss_fn, params, bad, eta=0.1, degree=1, matrix_free=True)
    with pytest.raises(ValueError, match=r"`labels` has labels \[5\] outside \[0, 5\)"):
        qj.ml.check_labels("labels", np.array([0, 5]), 5)
    # valid labels give a finite loss (and pass every check)
    good = qj.ml.Batch(data.x_train[:4], data.y_train[:4])
    assert np.isfinite(float(model.loss_fn(params, good)))


# --- masks -----------------------------------------------------------------------------------


def _cubic(p, batch):
    return jnp.sum(p["w"] ** 3) + p["b"] ** 2


MASK_ENTRIES = {
    "gd_map": lambda p, m: qj.gd_map(_cubic, p, None, eta=0.1, mask=m),
    "gd_map_matrix_free": lambda p, m: qj.gd_map(
        _cubic, p, None, eta=0.1, mask=m, matrix_free=True
    ),
    "taylor_field": lambda p, m: qj.taylor_field(_cubic, p, None, mask=m, degree=1),
    "active_set": qj.ml.active_set,
    "check_mask": qj.ml.check_mask,
}


@pytest.mark.parametrize("entry", MASK_ENTRIES.values(), ids=MASK_ENTRIES.keys())
def test_mask_shape_and_structure_are_checked(entry):
    params = {"b": jnp.zeros(()), "w": jnp.ones((2, 3))}
    swapped = {"b": jnp.ones((), bool), "w": jnp.ones((3, 2), bool)}  # same size, wrong shape
    with pytest.raises(ValueError, match=r"`mask` leaf \['w'\] must be bool of shape \(2, 3\)"):
        entry(params, swapped)
    other_keys = {"b": jnp.ones((), bool), "v": jnp.ones((2, 3), bool)}
    with pytest.raises(ValueError, match=r"`mask` structure .*missing from the mask: .*'w'"):
        entry(params, other_keys)
    with pytest.raises(ValueError, match=r"in the mask but not in `params`: .*'v'"):
        entry(params, other_keys)


def test_correct_masks_pass_and_int_masks_are_refused():
    params = {"b": jnp.zeros(()), "w": jnp.ones((2, 3))}
    mask = {"b": jnp.zeros((), bool), "w": jnp.array([[True, False, True], [False, True, True]])}
    act = qj.ml.active_set(params, mask)
    np.testing.assert_array_equal(act.index, [1, 3, 5, 6])  # "b" comes first in the flat vector
    poly = qj.gd_map(_cubic, params, None, eta=0.1, mask=mask)
    np.testing.assert_allclose(np.diag(poly.F1), 1 - 0.1 * 6.0 * np.ones(4))  # H = 6 w, w = 1
    with pytest.raises(ValueError, match=r"must be bool .* got int64"):
        qj.ml.active_set(params, {"b": np.ones((), np.int64), "w": np.ones((2, 3), np.int64)})


# --- dtypes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, message", [(jnp.complex128, "complex"), (jnp.float16, "float16")])
def test_complex_and_half_precision_refused_at_every_entry(dtype, message):
    loss = qj.problems.random_cubic_loss()
    theta = jnp.zeros(4, dtype)
    with pytest.raises(TypeError, match=message):
        qj.gd_map(loss, theta, None, eta=0.1)
    with pytest.raises(TypeError, match=message):
        qj.taylor_field(loss, theta, None, matrix_free=True)
    with pytest.raises(TypeError, match=message):
        qj.ml.active_set(theta)
    F0, F1 = np.zeros(3), np.eye(3)
    with pytest.raises(TypeError, match=message):
        qj.polynomial_map(F0.astype(dtype), F1, eta=0.1)
    with pytest.raises(TypeError, match=message):
        qj.polynomial_map(F0, F1.astype(dtype), eta=0.1)
    with pytest.raises(TypeError, match=message):
        qj.polynomial_map(F0, F1, np.zeros((3, 3, 3), dtype), eta=0.1)


def test_complex_learning_rate_refused():
    loss = qj.problems.random_cubic_loss()
    with pytest.raises(TypeError, match="`eta` must be a real number"):
        qj.gd_map(loss, jnp.zeros(4), None, eta=0.1 + 0.1j)
    with pytest.raises(TypeError, match="`eta` must be a real number"):
        qj.polynomial_map(np.zeros(2), np.eye(2), eta=jnp.asarray(0.1 + 0j))


# --- memory of dense materialization and diagnostics -----------------------------------------


def test_matrix_free_degree2_dissipation_and_dense_views_check_memory_first():
    loss = qj.problems.random_cubic_loss(n=6, eigs=np.linspace(0.5, 2.0, 6))
    poly = qj.gd_map(loss, jnp.zeros(6), None, eta=0.1, matrix_free=True)
    need = qj.resources.dissipation_bytes(poly.field)
    assert need >= 8 * 2 * 6**3  # covers the materialized f2 and its slab
    with pytest.raises(qj.MemoryLimitError, match="dissipation diagnostics .* n = 6"):
        qj.dissipation(poly, method="dense", memory_limit=need - 1)
    with pytest.raises(qj.MemoryLimitError, match="matrix-free degree-2 field with s = 6"):
        poly.field.to_dense(memory_limit=1000)
    # within the limit: the same numbers as the dense field (T from the cubic loss)
    d = qj.dissipation(poly, method="dense", memory_limit=need)
    f2 = -0.5 * np.asarray(loss.T).reshape(6, 36)
    np.testing.assert_allclose(float(d.f2_norm), np.linalg.norm(f2, ord=2), rtol=1e-10)


def test_dense_f1_f2_of_matrix_free_map_refused_above_limit(monkeypatch):
    loss = qj.problems.random_cubic_loss()
    poly = qj.gd_map(loss, jnp.zeros(4), None, eta=0.1, matrix_free=True)
    np.testing.assert_allclose(poly.F2, -0.05 * np.asarray(loss.T), atol=1e-13)
    np.testing.assert_allclose(poly.F1, np.eye(4) - 0.1 * np.asarray(loss.H), atol=1e-13)
    monkeypatch.setenv("QSGD_JAX_MEMORY_LIMIT", "100")
    with pytest.raises(qj.MemoryLimitError, match="s = 4"):
        poly.F2  # noqa: B018
    with pytest.raises(qj.MemoryLimitError, match=r"F1 \(4 x 4\)"):
        poly.F1  # noqa: B018


def test_generic_to_dense_has_no_n4_basis_and_matches_dense():
    loss = qj.problems.random_cubic_loss(n=5, eigs=np.linspace(0.5, 2.0, 5))
    field = qj.taylor_field(loss, jnp.zeros(5), None, matrix_free=True)
    dense = qj.AbstractField.to_dense(field)  # the generic materialization
    np.testing.assert_allclose(dense.f2, -0.5 * np.asarray(loss.T), atol=1e-13)
    np.testing.assert_allclose(dense.f1, -np.asarray(loss.H), atol=1e-13)
    with pytest.raises(qj.MemoryLimitError, match="n = 5"):
        qj.AbstractField.to_dense(field, memory_limit=100)


def test_f2_spectral_norm_uses_no_svd_and_equals_numpy():
    rng = np.random.default_rng(0)
    f2 = rng.standard_normal((7, 7, 7))
    np.testing.assert_allclose(
        float(qj.problems.unfolding_norm(jnp.asarray(f2))),
        np.linalg.norm(f2.reshape(7, 49), 2),
        rtol=1e-12,
    )
    jaxpr = str(jax.make_jaxpr(qj.problems.unfolding_norm)(jnp.asarray(f2)))
    assert "svd" not in jaxpr and "eigh" in jaxpr
    # the dissipation report of a dense degree-2 map agrees too
    poly = qj.polynomial_map(np.zeros(7), np.eye(7) * 0.9, 0.1 * f2, eta=0.1)
    np.testing.assert_allclose(
        float(qj.dissipation(poly).f2_norm), np.linalg.norm(f2.reshape(7, 49), 2), rtol=1e-12
    )


# --- non-finite runs report their first step -------------------------------------------------


def _exploding_map(growth=1e100):
    # u_t = growth^t u_0: 1e300 at t = 3 is finite, 1e400 at t = 4 overflows float64
    return qj.polynomial_map(np.zeros(2), np.eye(2) * growth, eta=1.0)


def test_carleman_error_raises_eagerly_with_the_step():
    op = qj.carleman(_exploding_map(), 1)
    with pytest.raises(qj.NonFiniteError, match="at step t = 4"):
        qj.carleman_error(op, jnp.ones(2), 10)
    with pytest.raises(RuntimeError, match="at step t = 4"):  # still a RuntimeError
        qj.carleman_error(op, jnp.ones(2), 10)
    err = qj.carleman_error(op, jnp.ones(2), 10, throw=False)
    assert err.status == qj.RESULTS.nonfinite and int(err.nonfinite_step) == 4
    with pytest.raises(RuntimeError, match="at step t = 4"):
        err.raise_if_failed()
    fine = qj.carleman_error(op, jnp.ones(2), 3)
    assert fine.status == qj.RESULTS.successful and int(fine.nonfinite_step) == -1


def test_carleman_error_under_jit_and_vmap_carries_status_and_step():
    op = qj.carleman(_exploding_map(1e10), 1)  # 1e10^t overflows at t = 31 (1e310)

    def run(u0):
        return qj.carleman_error(op, u0, 40, throw=False)

    err = jax.jit(run)(jnp.ones(2))
    assert err.status == qj.RESULTS.nonfinite and int(err.nonfinite_step) == 31
    # a start of 1e-20 overflows 2 steps later (1e-20 * 1e10^33 = 1e310); a zero start never
    u0s = jnp.asarray([[1.0, 1.0], [1e-20, 1e-20], [0.0, 0.0]])
    batched = jax.jit(jax.vmap(run))(u0s)
    np.testing.assert_array_equal(batched.nonfinite_step, [31, 33, -1])
    with pytest.raises(RuntimeError, match=r"failed in 2 of 3 runs\. .* step t = 31"):
        batched.raise_if_failed()


def test_error_budget_reports_the_first_nonfinite_step():
    poly = qj.polynomial_map(np.zeros(2), np.eye(2) * 1e100, eta=1.0)
    # e^{eta A} with A = (F1 - I)/eta = 1e100: overflows at the first step
    with pytest.raises(qj.NonFiniteError, match="Error budget .* at step t = 1"):
        qj.error_budget(poly, jnp.ones(2), 5, order=1, method=qj.TruncatedTaylor(2))
    b = qj.error_budget(poly, jnp.ones(2), 5, order=1, method=qj.TruncatedTaylor(2), throw=False)
    assert b.status == qj.RESULTS.nonfinite and int(b.nonfinite_step) == 1
    assert np.isfinite(float(b.total[0]))  # t = 0 is the (finite) start


# --- integer arguments must be finite --------------------------------------------------------


def test_infinite_integer_arguments_refused():
    psi = jnp.ones(4) / 2.0
    for bad in (float("inf"), float("nan")):
        with pytest.raises(ValueError, match="`shots` must be a finite integer"):
            qj.readout.tomography(jax.random.key(0), psi, bad)
        with pytest.raises(ValueError, match="`shots` must be a finite integer"):
            qj.readout.download(jax.random.key(0), psi, bad, support=jnp.arange(4), theta_bar=psi)


# --- sweep grids are validated before tracing ------------------------------------------------


def _toy():
    loss = qj.problems.random_cubic_loss(seed=2, n=4)
    return functools.partial(qj.targets.toy_window_error, loss=loss, theta_bar=jnp.ones(4), steps=3)


@pytest.mark.parametrize(
    "axes, message",
    [
        (
            dict(eta=[-0.1, 0.2], sparsity=[0.0], order=[1]),
            r"`eta` must hold \(0, inf\), got \[-0.1\]",
        ),
        (dict(eta=[0.1], sparsity=[1.5], order=[1]), r"`sparsity` must hold \[0, 1\)"),
        (dict(eta=[0.1], sparsity=[0.0], order=[0, 1]), r"`order` must hold integers in \[1, 3\]"),
        (dict(eta=[0.1], sparsity=[0.0], order=[4]), r"integers in \[1, 3\], got \[4\]"),
        (dict(eta=[0.1], sparsity=[0.0]), "needs the configuration field `order`"),
    ],
)
def test_window_target_grid_is_checked_before_tracing(axes, message):
    calls = []
    fn = _toy()
    wrapped = functools.partial(fn)  # nested partials keep the declared check

    def spy(c):  # never traced: the check fails first
        calls.append(1)
        return wrapped(c)

    with pytest.raises(ValueError, match=message):
        qj.sweep(wrapped, qj.grid(**axes))
    with pytest.raises(ValueError, match=message):
        # the target's declared check (its `check_config` attribute), with the partial's keywords
        check = functools.partial(qj.targets.toy_window_error.check_config, **fn.keywords)
        qj.sweep(spy, qj.grid(**axes), check=check)
    assert not calls


def test_readout_and_history_targets_and_base_values_are_checked():
    psi = jnp.ones(4) / 2.0
    fn = functools.partial(qj.targets.readout_error, psi=psi)
    with pytest.raises(ValueError, match=r"`shots` must hold integers in \[1, inf\), got \[0\]"):
        qj.sweep(fn, qj.grid(shots=[0, 100], seed=[0]))
    with pytest.raises(ValueError, match=r"`shots` .* got \[10.5\]"):
        qj.sweep(fn, qj.grid(shots=[10.5], seed=[0]))
    # a fixed field in `base` is checked too
    with pytest.raises(ValueError, match=r"`seed` must hold integers"):
        qj.sweep(fn, qj.grid(shots=[100]), base={"seed": -1, "shots": 1})
    hk = functools.partial(qj.targets.history_kappa, g=jnp.ones(2), H=jnp.eye(2), max_steps=4)
    with pytest.raises(ValueError, match=r"`T` must hold integers in \[0, 4\], got \[5\]"):
        qj.sweep(hk, qj.grid(T=[2, 5], eta=[0.1]))


def test_user_declared_sweep_target_and_explicit_check():
    @qj.targets.sweep_target(
        lambda values, **kw: qj.targets.check_range(values, "lr", low=0, low_open=True)
    )
    def target(c):
        return {"y": c["lr"] * 2}

    np.testing.assert_allclose(qj.sweep(target, qj.grid(lr=[0.5, 1.0])).values["y"], [1.0, 2.0])
    with pytest.raises(ValueError, match="`lr` must hold"):
        qj.sweep(target, qj.grid(lr=[0.0, 1.0]))

    def never(values):
        raise ValueError("custom refusal")

    with pytest.raises(ValueError, match="custom refusal"):
        qj.sweep(lambda c: c["a"], qj.grid(a=[1.0]), check=never)


def test_hessian_spectrum_refuses_nan_data():
    params = {"w": jnp.ones((3,))}
    x = jnp.ones((4, 3)).at[1, 2].set(jnp.nan)

    def loss(p, b):
        return jnp.mean((b @ p["w"]) ** 2)

    with pytest.raises(ValueError, match="batches"):
        qj.spectrum.hessian_spectrum(loss, params, x[None], jax.random.key(0), num_steps=2)
    with pytest.raises(ValueError, match="params"):
        qj.spectrum.hessian_spectrum(
            loss,
            {"w": jnp.full((3,), jnp.inf)},
            jnp.ones((1, 4, 3)),
            jax.random.key(0),
            num_steps=2,
        )


def test_download_checks_norm_scale_before_tomography():
    y1 = jnp.array([0.6, 0.8])
    with pytest.raises(ValueError, match="scale"):
        qj.readout.download(
            jax.random.key(0),
            y1,
            100,
            support=jnp.arange(2),
            theta_bar=jnp.zeros(2),
            norm="amplitude_estimation",
            norm_scale=0.5,
        )
