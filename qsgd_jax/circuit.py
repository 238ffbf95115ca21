"""Truncated Taylor / LCU series and tiny circuit-level checks (block encodings, the LCU circuit,
post-selection).

Every name is re-exported from a private module: `import qsgd_jax as qj`, then
`qj.circuit.NAME`.
"""

from ._circuit import (
    MAX_QUBITS as MAX_QUBITS,
    LCUCircuit as LCUCircuit,
    PostSelection as PostSelection,
    block_encoding as block_encoding,
    check_qubits as check_qubits,
    lcu_circuit as lcu_circuit,
    prepare_unitary as prepare_unitary,
    run_lcu as run_lcu,
)
from ._evolution import (
    LCUReport as LCUReport,
    TaylorEvolution as TaylorEvolution,
    taylor_evolve as taylor_evolve,
)
from ._taylor import (
    block_encoding_normalization as block_encoding_normalization,
    lcu_coefficient_sum as lcu_coefficient_sum,
    operator_norm_estimate as operator_norm_estimate,
    required_order as required_order,
    taylor_apply as taylor_apply,
    taylor_coefficients as taylor_coefficients,
    taylor_error_bound as taylor_error_bound,
    taylor_matrix as taylor_matrix,
    taylor_truncation_error as taylor_truncation_error,
)
