"""Benchmark problems and reference solutions: the toy cubic loss, the PNAS forced viscous Burgers
equation, the exact GD iterates and gradient flow of a map.

Every name is re-exported from a private module: `import qsgd_jax as qj`, then
`qj.problems.NAME`.
"""

from ._budget import gradient_flow as gradient_flow
from ._burgers import (
    BurgersProblem as BurgersProblem,
    burgers_carleman as burgers_carleman,
    burgers_errors as burgers_errors,
    burgers_euler as burgers_euler,
    burgers_problem as burgers_problem,
    burgers_r_number as burgers_r_number,
    burgers_reference as burgers_reference,
)
from ._dissipation import unfolding_norm as unfolding_norm
from ._evolve import gd_trajectory as gd_trajectory
from ._toy import (
    CubicLoss as CubicLoss,
    random_cubic_loss as random_cubic_loss,
)
