"""Resource model: labelled end-to-end cost estimates of quantum windows — QLSA queries,
amplification rounds, tomography samples, Toffolis, logical and physical qubits, seconds and
joules — against the classical FLOPs of the same SGD steps; and the memory of dense objects.

Every name is re-exported from a private module: `import qsgd_jax as qj`, then
`qj.resources.NAME`.
"""

from ._carleman import carleman_bytes as carleman_bytes, carleman_dim as carleman_dim
from ._dissipation import dissipation_bytes as dissipation_bytes
from ._resources import (
    COSTA_BOUND as COSTA_BOUND,
    COSTA_NUMERICAL as COSTA_NUMERICAL,
    HHL as HHL,
    AbstractQLSA as AbstractQLSA,
    Assumptions as Assumptions,
    ChildsKothariSomma as ChildsKothariSomma,
    CostEstimate as CostEstimate,
    DiscreteAdiabatic as DiscreteAdiabatic,
    EstimatorNotInstalledError as EstimatorNotInstalledError,
    MeasuredInputs as MeasuredInputs,
    PhysicalCost as PhysicalCost,
    PhysicalModel as PhysicalModel,
    Provenance as Provenance,
    Quantity as Quantity,
    StepCosts as StepCosts,
    UnavailableError as UnavailableError,
    break_even_n as break_even_n,
    classical_flops as classical_flops,
    estimate as estimate,
    measured_inputs as measured_inputs,
    norm_estimation_queries as norm_estimation_queries,
    physical_cost as physical_cost,
    qlsa_key as qlsa_key,
    sgd_step_time as sgd_step_time,
    step_costs as step_costs,
    tomography_samples as tomography_samples,
)
