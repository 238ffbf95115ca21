"""Circuit level equals the algebraic level; every constructed operator is unitary."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from qsgd_jax.circuit import (
    MAX_QUBITS,
    block_encoding,
    block_encoding_normalization,
    lcu_circuit,
    prepare_unitary,
    run_lcu,
    taylor_evolve,
)


def _unitary_error(U):
    U = np.asarray(U)
    return np.abs(U.conj().T @ U - np.eye(U.shape[0])).max()


@pytest.mark.parametrize(("d", "K", "alpha_mode"), [(3, 4, "sparsity"), (8, 6, "norm")])
def test_post_selected_state_and_probability_match_algebra(d, K, alpha_mode):
    rng = np.random.default_rng(d + K)
    A = rng.normal(size=(d, d)) / math.sqrt(d)
    y = rng.normal(size=d)
    h = 0.4
    alpha = block_encoding_normalization(jnp.asarray(A), alpha_mode)
    circ = lcu_circuit(jnp.asarray(A), h, K, alpha)
    assert circ.num_qubits == math.ceil(math.log2(d)) + K + math.ceil(math.log2(K + 1))
    out = run_lcu(circ, jnp.asarray(y))
    TK = sum(np.linalg.matrix_power(h * A, k) / math.factorial(k) for k in range(K + 1))
    z = TK @ y
    a = float(alpha)
    s = sum((h * a) ** k / math.factorial(k) for k in range(K + 1))
    np.testing.assert_allclose(np.asarray(out.state), z / np.linalg.norm(z), atol=1e-10)
    np.testing.assert_allclose(float(out.probability), (z @ z) / (s**2 * (y @ y)), atol=1e-10)
    # the algebraic level's report with the matching alpha
    rep = taylor_evolve(
        jnp.asarray(A), jnp.asarray(y), tau=h, num_steps=1, order=K, alpha=alpha, exact_error=False
    ).report
    np.testing.assert_allclose(
        float(out.probability), float(rep.success_probability[0, 0]), atol=1e-10
    )
    np.testing.assert_allclose(float(circ.coefficient_sum), float(rep.coefficient_sum), rtol=1e-12)
    assert abs(float(jnp.linalg.norm(out.final_state)) - 1) < 1e-12
    assert _unitary_error(circ.U) < 1e-12
    assert _unitary_error(circ.V) < 1e-12


def test_every_operator_is_unitary_and_blocks_are_right():
    rng = np.random.default_rng(7)
    A = rng.normal(size=(2, 2))
    alpha = np.linalg.norm(A, 2)  # tight: sqrt(I - B B^dagger) is singular
    U = np.asarray(block_encoding(jnp.asarray(A), alpha))
    assert _unitary_error(U) < 1e-12
    np.testing.assert_allclose(U[:2, :2], A / alpha, atol=1e-13)
    circ = lcu_circuit(jnp.asarray(A), 0.3, 3, 1.5 * alpha)  # 1 + 3 + 2 = 6 qubits
    for which in ("prepare", "select", "W"):
        assert _unitary_error(circ.to_dense(which)) < 1e-12, which
    W = np.asarray(circ.to_dense("W"))
    TK = sum(np.linalg.matrix_power(0.3 * A, k) / math.factorial(k) for k in range(4))
    np.testing.assert_allclose(W[:2, :2], TK / float(circ.coefficient_sum), atol=1e-12)
    V = np.asarray(prepare_unitary(jnp.asarray([0.6, 0.8, 0.0, 0.0])))
    np.testing.assert_allclose(V[:, 0], [0.6, 0.8, 0, 0], atol=1e-15)
    assert _unitary_error(V) < 1e-14


def test_bad_input():
    A = jnp.eye(4) * 0.5
    with pytest.raises(ValueError, match=f"limit of {MAX_QUBITS}"):
        lcu_circuit(A, 0.1, 12)  # 2 + 12 + 4 = 18 qubits
    with pytest.raises(ValueError, match="alpha"):
        block_encoding(A, 0.25)
    with pytest.raises(ValueError, match="non-finite"):
        lcu_circuit(A.at[0, 0].set(jnp.nan), 0.1, 2)
    with pytest.raises(ValueError, match="order"):
        lcu_circuit(A, 0.1, -1)
    with pytest.raises(ValueError, match="square"):
        block_encoding(jnp.ones((2, 3)), 2.0)
