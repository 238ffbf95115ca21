r"""The history-state linear system a QLSA solves: its blocks, condition number $\kappa$, target
probability and amplification rounds, and their dependence on the scale $c$ of $y_0$.

Every name is re-exported from a private module: `import qsgd_jax as qj`, then `qj.linsys.NAME`.
"""

from ._condition import (
    ConditionEstimate as ConditionEstimate,
    HistoryReport as HistoryReport,
    affine_gd_map as affine_gd_map,
    amplification_rounds as amplification_rounds,
    condition_number as condition_number,
    history_report as history_report,
    target_probability as target_probability,
)
from ._history import (
    HistorySystem as HistorySystem,
    StepMaps as StepMaps,
    TaylorHistorySystem as TaylorHistorySystem,
    history_system as history_system,
    taylor_history_system as taylor_history_system,
)
from ._history_scale import (
    ScaleScan as ScaleScan,
    log_scales as log_scales,
    scale_scan as scale_scan,
    scaled_step as scaled_step,
)
