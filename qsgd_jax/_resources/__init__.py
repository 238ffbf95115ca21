"""Resource model: labelled end-to-end cost estimates of quantum windows (one concept per module).

`_quantity` (labelled numbers), `_qlsa` (QLSA query counts), `_samples` (read-out runs),
`_classical` (XLA FLOPs, break-even), `_physical` (the qdk resource estimator), `_inputs`
(measured inputs and assumptions), `_estimate` (the estimate), `_table` (tables). The public
names are re-exported by `qsgd_jax.resources`.
"""

from ._classical import (
    StepCosts as StepCosts,
    break_even_n as break_even_n,
    classical_flops as classical_flops,
    sgd_step_time as sgd_step_time,
    step_costs as step_costs,
)
from ._estimate import CostEstimate as CostEstimate, estimate as estimate, qlsa_key as qlsa_key
from ._inputs import (
    Assumptions as Assumptions,
    MeasuredInputs as MeasuredInputs,
    measured_inputs as measured_inputs,
)
from ._physical import (
    EstimatorNotInstalledError as EstimatorNotInstalledError,
    PhysicalCost as PhysicalCost,
    PhysicalModel as PhysicalModel,
    physical_cost as physical_cost,
)
from ._qlsa import (
    COSTA_BOUND as COSTA_BOUND,
    COSTA_NUMERICAL as COSTA_NUMERICAL,
    HHL as HHL,
    AbstractQLSA as AbstractQLSA,
    ChildsKothariSomma as ChildsKothariSomma,
    DiscreteAdiabatic as DiscreteAdiabatic,
)
from ._quantity import (
    Provenance as Provenance,
    Quantity as Quantity,
    UnavailableError as UnavailableError,
)
from ._samples import (
    norm_estimation_queries as norm_estimation_queries,
    tomography_samples as tomography_samples,
)
from ._table import (
    markdown_table as markdown_table,
)
