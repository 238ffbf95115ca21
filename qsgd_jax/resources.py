"""Resource model: QLSA query counts, qubits, samples, classical FLOPs and the memory of dense
objects.

Every name is re-exported from a private module: `import qsgd_jax as qj`, then
`qj.resources.NAME`.
"""

from ._carleman import carleman_bytes as carleman_bytes
from ._dissipation import dissipation_bytes as dissipation_bytes
from ._resources import (
    break_even_n as break_even_n,
    childs_kothari_somma_queries as childs_kothari_somma_queries,
    classical_flops as classical_flops,
    costa_queries as costa_queries,
    hhl_queries as hhl_queries,
    num_qubits as num_qubits,
    resource_table as resource_table,
    sgd_step_time as sgd_step_time,
    table_markdown as table_markdown,
    total_cost as total_cost,
)
