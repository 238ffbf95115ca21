"""qsgd_jax: a differentiable JAX simulator of quantum algorithms for (stochastic) gradient descent.

The public API is re-exported here; modules whose names start with an underscore are private.
"""

from importlib.metadata import PackageNotFoundError, version as _version

from ._errors import MemoryLimitError as MemoryLimitError

try:
    __version__ = _version("qsgd_jax")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

from ._carleman import (
    CarlemanOperator as CarlemanOperator,
    carleman as carleman,
    carleman_bytes as carleman_bytes,
    carleman_dim as carleman_dim,
)
from ._dissipation import Dissipation as Dissipation, dissipation as dissipation
from ._evolve import (
    CarlemanError as CarlemanError,
    Trajectory as Trajectory,
    carleman_error as carleman_error,
    evolve as evolve,
    gd_trajectory as gd_trajectory,
)
from ._field import AbstractField as AbstractField, DenseField as DenseField
from ._loss_model import (
    ActiveSet as ActiveSet,
    LossField as LossField,
    active_set as active_set,
    taylor_field as taylor_field,
)
from ._polynomial import (
    PolynomialMap as PolynomialMap,
    field_map as field_map,
    gd_map as gd_map,
    polynomial_map as polynomial_map,
)
from ._status import RESULTS as RESULTS
from ._sweep import (
    Grid as Grid,
    SweepResult as SweepResult,
    grid as grid,
    points as points,
    sweep as sweep,
)
from ._sweep_targets import (
    magnitude_keep as magnitude_keep,
    masked_field as masked_field,
    toy_window_error as toy_window_error,
)
from ._toy import CubicLoss as CubicLoss, random_cubic_loss as random_cubic_loss
