"""Sweep targets: functions of one traced configuration, vmapped and sharded by `qsgd_jax.sweep`.

Every name is re-exported from a private module: `import qsgd_jax as qj`, then
`qj.targets.NAME`.
"""

from ._pruned_window import pruned_window_error as pruned_window_error
from ._sweep import (
    Grid as Grid,
    check_range as check_range,
    points as points,
    sweep_target as sweep_target,
)
from ._sweep_targets import (
    history_kappa as history_kappa,
    masked_field as masked_field,
    model_window_error as model_window_error,
    readout_error as readout_error,
    top_magnitude_index as top_magnitude_index,
    toy_window_error as toy_window_error,
)
