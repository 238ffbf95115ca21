"""Every traced argument is checked or reported; scalars, dtypes and empty data at the door.

One family per section (issue 24): each bad value is tried eagerly (refused before any work,
an `InvalidArgumentError`, which is both a `ValueError` and a `TypeError`) and under `jit`,
`vmap` and `grad` (a run-time error, `jax.errors.JaxRuntimeError`, naming the argument and the
offending value; or a result's status). Valid values go through every transformation with the
eager result. Public API only.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsgd_jax as qj

# What JAX raises when a traced check fails: a `JaxRuntimeError` (a `RuntimeError`), or a
# `ValueError` when the compiled program is called again through JAX's C++ dispatch path.
RunTimeError = (jax.errors.JaxRuntimeError, ValueError)


def _params():
    # 40 prunable weights 1..40 (distinct magnitudes) and a bias that is never pruned
    return {"dense": {"kernel": jnp.arange(1.0, 41.0).reshape(5, 8), "bias": jnp.ones(8)}}


def _kept(mask):
    return qj.ml.count_active(mask["dense"]["kernel"])


# --- sparsity (prune_mask, magnitude_keep) ---------------------------------------------------


@pytest.mark.parametrize("bad", [-0.5, 1.0, 1.5, float("nan")])
def test_sparsity_out_of_range_refused_eagerly(bad):
    with pytest.raises(ValueError, match=rf"`sparsity` must be .*got {bad}"):
        qj.ml.prune_mask(_params(), bad)
    with pytest.raises(ValueError, match=rf"`sparsity` must be .*got {bad}"):
        qj.ml.magnitude_keep(jnp.arange(4.0), bad)


@pytest.mark.parametrize(
    "bad, message",
    [
        (jnp.asarray([0.1, 0.2]), r"`sparsity` must be a scalar .* shape \(2,\): \[0.1, 0.2\]"),
        (0.5 + 0j, r"`sparsity` must be a real number, got \(0.5\+0j\) of complex dtype"),
        (True, r"`sparsity` must be a real number, got the boolean True"),
        ("0.5", r"sparsity"),
    ],
)
def test_sparsity_must_be_one_real_number(bad, message):
    with pytest.raises(TypeError, match=message):  # also a ValueError: one exception type
        qj.ml.prune_mask(_params(), bad)


def test_traced_sparsity_checked_at_run_time():
    params = _params()
    prune = jax.jit(lambda s: qj.ml.prune_mask(params, s))
    assert int(_kept(prune(0.25))) == 30 == int(_kept(qj.ml.prune_mask(params, 0.25)))
    with pytest.raises(RunTimeError, match=r"`sparsity` must be .*\[0, 1\).* got -0\.5 "):
        prune(-0.5)
    grid = jax.vmap(lambda s: _kept(qj.ml.prune_mask(params, s)))
    np.testing.assert_array_equal(grid(jnp.asarray([0.0, 0.5])), [40, 20])
    with pytest.raises(RunTimeError, match=r"`sparsity` .* got 1\.5 "):
        grid(jnp.asarray([0.5, 1.5]))
    keep = jax.jit(qj.ml.magnitude_keep)
    with pytest.raises(RunTimeError, match=r"`sparsity` .* got 1\.0 "):
        keep(jnp.arange(4.0), 1.0)

    def pruned_norm(theta, s):  # grad through the masked weights, sparsity traced
        return jnp.sum(jnp.where(qj.ml.magnitude_keep(theta, s), theta, 0.0) ** 2)

    theta = jnp.asarray([0.3, -0.1, 0.2])
    grad = jax.jit(jax.grad(pruned_norm))  # the sparsity traced by jit, the weights by grad
    np.testing.assert_allclose(grad(theta, 0.5), [0.6, 0.0, 0.0])
    with pytest.raises(RunTimeError, match=r"`sparsity` .* got -0\.5 "):
        grad(theta, -0.5)


# --- Taylor order K (taylor_apply and the series' scalars) ----------------------------------

A = jnp.diag(jnp.asarray([-1.0, -0.5, 0.5]))
Y = jnp.ones(3)


def test_taylor_order_refused_eagerly_with_its_range():
    with pytest.raises(ValueError, match=r"`order` must lie in \[0, inf\], got -1\."):
        qj.circuit.taylor_apply(A, Y, 0.1, -1)  # not "[0, -1]": the range is not derived
    with pytest.raises(ValueError, match=r"`order` must lie in \[0, 3\], got 9\."):
        qj.circuit.taylor_apply(A, Y, 0.1, 9, max_terms=3)
    with pytest.raises(ValueError, match=r"`max_terms` must lie in \[0, inf\], got -2"):
        qj.circuit.taylor_apply(A, Y, 0.1, 0, max_terms=-2)
    with pytest.raises(TypeError, match=r"`order` must be a scalar .* \[1, 2\]"):
        qj.circuit.taylor_apply(A, Y, 0.1, jnp.asarray([1, 2]), max_terms=3)
    with pytest.raises(TypeError, match=r"`order` must be an integer, got 1\.5"):
        qj.circuit.taylor_apply(A, Y, 0.1, 1.5, max_terms=3)
    with pytest.raises(TypeError, match=r"`h` must be a real number, got 0\.1j"):
        qj.circuit.taylor_apply(A, Y, 0.1j, 2)
    with pytest.raises(ValueError, match=r"`order` must lie in \[0, 3\], got 4"):
        qj.circuit.taylor_coefficients(0.5, 4, 3)
    with pytest.raises(ValueError, match=r"`order` must lie in \[0, inf\], got -1"):
        qj.circuit.taylor_matrix(A, 0.1, -1)


@pytest.mark.parametrize("bad", [9, -1])
def test_traced_taylor_order_is_not_clipped(bad):
    apply = jax.jit(lambda K: qj.circuit.taylor_apply(A, Y, 0.1, K, max_terms=3))
    np.testing.assert_allclose(apply(2), qj.circuit.taylor_apply(A, Y, 0.1, 2, max_terms=3))
    with pytest.raises(
        RunTimeError, match=rf"`order` must be an integer in \[0, max_terms = 3\], got {bad} "
    ):
        apply(bad)
    grid = jax.vmap(lambda K: qj.circuit.taylor_apply(A, Y, 0.1, K, max_terms=3))
    with pytest.raises(RunTimeError, match=rf"`order` .* got {bad} "):
        grid(jnp.asarray([1, bad]))

    def first(h, K):
        return qj.circuit.taylor_apply(A, Y, h, K, max_terms=3)[0]

    grad = jax.jit(jax.grad(first))  # K traced by jit, h by grad
    np.testing.assert_allclose(grad(0.1, 3), -1 + 0.1 - 0.01 / 2, rtol=1e-12)
    with pytest.raises(RunTimeError, match=rf"`order` .* got {bad} "):
        grad(0.1, bad)
    # the series' scalars have no result object and no run-time check: NaN, not a cut series
    c = jax.jit(lambda K: qj.circuit.taylor_coefficients(0.5, K, 3))(bad)
    assert np.all(np.isnan(c))


# --- learning rate eta and the map's arrays (polynomial_map, gd_map, field_map) --------------


def test_eta_must_be_one_real_number():
    F0, F1 = np.zeros(2), np.eye(2)
    with pytest.raises(ValueError, match=r"`eta` must be a scalar .* \[0\.1, 0\.2\]"):
        qj.polynomial_map(F0, F1, eta=jnp.asarray([0.1, 0.2]))  # was: Carleman error 0.0
    loss = qj.problems.random_cubic_loss()
    with pytest.raises(TypeError, match=r"`eta` must be a scalar"):
        qj.gd_map(loss, jnp.zeros(4), None, eta=jnp.asarray([0.1, 0.2]))
    with pytest.raises(TypeError, match=r"`eta` must be a real number, got the boolean True"):
        qj.polynomial_map(F0, F1, eta=True)
    with pytest.raises(ValueError, match=r"`eta` must be finite and > 0, got -0\.1\."):
        qj.polynomial_map(F0, F1, eta=-0.1)


def test_traced_eta_checked_at_run_time():
    loss = qj.problems.random_cubic_loss()

    def step(eta):  # one GD step of the Taylor model from u = 1
        return qj.gd_map(loss, jnp.zeros(4), None, eta=eta)(jnp.ones(4))[0]

    np.testing.assert_allclose(jax.jit(step)(0.1), step(0.1), rtol=1e-12)
    with pytest.raises(RunTimeError, match=r"`eta` must be finite and > 0, got -0\.1 "):
        jax.jit(step)(-0.1)  # was: one step of gradient *ascent*
    with pytest.raises(RunTimeError, match=r"`eta` .* got -0\.1 "):
        jax.vmap(step)(jnp.asarray([0.1, -0.1]))
    assert np.isfinite(jax.grad(step)(0.1))
    with pytest.raises(RunTimeError, match=r"`eta` .* got -0\.1 "):
        jax.grad(step)(-0.1)
    F0, F1 = jnp.zeros(2), jnp.eye(2)
    with pytest.raises(RunTimeError, match=r"`eta` .* got 0\.0 "):
        jax.jit(lambda e: qj.polynomial_map(F0, F1, eta=e).F1)(0.0)


def test_nan_in_a_traced_map_is_refused_at_run_time():
    F0, F1 = jnp.zeros(2), jnp.eye(2)
    bad = F1.at[0, 1].set(jnp.nan)
    with pytest.raises(ValueError, match=r"`F1` has 1 non-finite"):
        qj.polynomial_map(F0, bad)

    def apply(F1):
        return qj.polynomial_map(F0, F1, eta=0.1)(jnp.ones(2))

    np.testing.assert_allclose(jax.jit(apply)(F1), [1.0, 1.0])
    message = r"`F1` must be finite, got 1 non-finite .* index \(0, 1\), value nan"
    with pytest.raises(RunTimeError, match=message):
        jax.jit(apply)(bad)  # was: returned the NaN
    with pytest.raises(RunTimeError, match=r"`F1` must be finite, .* index \(0, 1\)"):
        jax.vmap(apply)(jnp.stack([F1, bad]))
    with pytest.raises(RunTimeError, match=r"`F1` must be finite"):
        jax.grad(lambda F: jnp.sum(apply(F)))(bad)


def test_vector_carleman_order_refused_naming_it():
    poly = qj.polynomial_map(jnp.zeros(2), 0.9 * jnp.eye(2), eta=0.1)
    with pytest.raises(ValueError, match=r"`order` must be a scalar .* \[1, 2\]"):
        qj.carleman(poly, order=jnp.asarray([1, 2]))  # was: "Only scalar arrays can be ..."


def test_empty_params_named_not_the_mask():
    with pytest.raises(ValueError, match=r"`params` is empty: it holds 0 entries"):
        qj.gd_map(lambda p, b: jnp.sum(p**2), jnp.zeros(0), None, eta=0.1)


# --- WindowConfig: eta, shots, order ---------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(eta=[0.1, 0.2]), r"`eta` must be a scalar .* \[0\.1, 0\.2\]"),  # was: shape error
        (dict(eta=0.1 + 0.1j), r"`eta` must be a real number, got \(0\.1\+0\.1j\)"),
        (dict(eta=-0.1), r"`eta` must be finite and > 0, got -0\.1"),
        (dict(eta=0.1, order=jnp.asarray([1, 2]), max_order=2), r"`order` must be a scalar"),
        (dict(eta=0.1, readout="sample", shots=2.5), r"`shots` must be an integer, got 2\.5"),
        (dict(eta=0.1, shots=[10, 20]), r"`shots` must be a scalar"),
    ],
)
def test_window_config_refuses_at_the_door(kwargs, message):
    with pytest.raises(ValueError, match=message):
        qj.WindowConfig(num_steps=4, **kwargs)


def test_window_config_reports_traced_arguments():
    def ok(eta, shots=100, order=1):
        cfg = qj.WindowConfig(eta, 4, readout="sample", shots=shots, order=order, max_order=2)
        return cfg.arguments_ok()

    assert bool(ok(0.1))
    assert not bool(jax.jit(ok)(-0.1))
    np.testing.assert_array_equal(jax.vmap(ok)(jnp.asarray([0.1, -0.1])), [True, False])
    np.testing.assert_array_equal(
        jax.vmap(functools.partial(ok, 0.1))(jnp.asarray([100.0, 0.5, 10.5])), [1, 0, 0]
    )
    np.testing.assert_array_equal(
        jax.vmap(lambda N: ok(0.1, order=N))(jnp.asarray([1.0, 1.5, 3.0])), [1, 0, 0]
    )

    def scaled(eta):  # a traced eta keeps its gradient, and its check
        return jnp.where(ok(eta), eta**2, jnp.nan)

    assert float(jax.grad(scaled)(0.1)) == pytest.approx(0.2)
    assert np.isnan(jax.value_and_grad(scaled)(-0.1)[0])
    assert "eta must be a finite number > 0" in qj.RESULTS[qj.RESULTS.invalid_argument]


def test_window_with_traced_negative_eta_reports_invalid_argument():
    loss = qj.problems.random_cubic_loss()
    theta, mask, batch = jnp.zeros(4), jnp.ones(4, bool), jnp.zeros(1)

    def status(eta):
        cfg = qj.WindowConfig(eta, 2, batching="full", diagnostics=False)
        _, report = qj.quantum_window(
            lambda p, b: loss(p, None), theta, mask, batch, cfg, jax.random.key(0), throw=False
        )
        return report.status

    assert jax.jit(status)(-0.1) == qj.RESULTS.invalid_argument
    codes = jax.vmap(status)(jnp.asarray([0.1, -0.1]))._value
    assert list(np.asarray(codes)) == [
        qj.RESULTS.successful._value,
        qj.RESULTS.invalid_argument._value,
    ]
    # with throw=True the same traced value raises when the program runs
    cfg = lambda eta: qj.WindowConfig(eta, 2, batching="full", diagnostics=False)  # noqa: E731
    run = jax.jit(
        lambda eta: qj.quantum_window(
            lambda p, b: loss(p, None), theta, mask, batch, cfg(eta), jax.random.key(0)
        )[0]
    )
    with pytest.raises(Exception, match="invalid"):
        jax.block_until_ready(run(-0.1))


def test_traced_taylor_order_out_of_range_is_reported():
    poly = qj.gd_map(qj.problems.random_cubic_loss(), jnp.zeros(4), None, eta=0.1)
    op = qj.carleman(poly, 1)

    def status(K):
        method = qj.TruncatedTaylor(K, max_terms=3)
        return qj.evolve(op, op.lift(jnp.zeros(4)), 2, method=method).status

    assert jax.jit(status)(2) == qj.RESULTS.successful
    assert jax.jit(status)(9) == qj.RESULTS.invalid_argument


# --- data: empty sets, negative steps --------------------------------------------------------


def test_empty_data_set_is_named_as_such():
    x, y = jnp.zeros((0, 3)), jnp.zeros((0,), jnp.int32)
    with pytest.raises(ValueError, match=r"`x` is empty: it holds 0 examples"):
        qj.ml.batch_at(x, y, jax.random.key(0), 0, 8)  # was: "must lie in [1, 0]"
    with pytest.raises(ValueError, match=r"`x` is empty: it holds 0 examples"):
        qj.ml.make_batches(x, y, jax.random.key(0), 8, 2)
    x, y = jnp.ones((16, 3)), jnp.zeros((16,), jnp.int32)
    with pytest.raises(
        ValueError, match=r"`batch_size` must be an integer in \[1, len\(x\) = 16\]"
    ):
        qj.ml.batch_at(x, y, jax.random.key(0), 0, 32)


def test_negative_step_refused_eagerly_and_at_run_time():
    x, y, key = jnp.arange(16.0)[:, None], jnp.arange(16), jax.random.key(0)
    with pytest.raises(ValueError, match=r"`step` must be an integer >= 0 .*got -1\."):
        qj.ml.batch_at(x, y, key, -1, 8)
    at = jax.jit(lambda s: qj.ml.batch_at(x, y, key, s, 8))
    np.testing.assert_array_equal(at(3).y, qj.ml.batch_at(x, y, key, 3, 8).y)
    with pytest.raises(RunTimeError, match=r"`step` must be an integer >= 0 .*got -1 "):
        at(-1)
    with pytest.raises(RunTimeError, match=r"`step` .* got -1 "):
        jax.vmap(lambda s: qj.ml.batch_at(x, y, key, s, 8).y)(jnp.asarray([0, -1]))
    with pytest.raises(TypeError, match=r"`step` must be a scalar"):
        qj.ml.batch_at(x, y, key, jnp.asarray([0, 1]), 8)


# --- sweep targets report out-of-range traced values -----------------------------------------


def test_direct_traced_call_of_a_sweep_target_reports_nan():
    loss = qj.problems.random_cubic_loss(seed=2, n=3)
    target = functools.partial(
        qj.targets.toy_window_error, loss=loss, theta_bar=jnp.ones(3), steps=2, max_order=1
    )
    out = jax.vmap(lambda e: target({"eta": e, "sparsity": 0.0, "order": 1}))(
        jnp.asarray([0.1, -0.1])
    )
    assert np.isfinite(out["max_error"][0]) and np.isnan(out["max_error"][1])
    with pytest.raises(ValueError, match=r"sweep field `eta` must hold \(0, inf\)"):
        qj.sweep(target, qj.grid(eta=[0.1, -0.1], sparsity=[0.0], order=[1]))
    with pytest.raises(TypeError, match=r"grid axis `eta` must hold numbers"):
        qj.sweep(target, qj.grid(eta=[0.1 + 1j], sparsity=[0.0], order=[1]))
