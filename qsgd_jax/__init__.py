"""qsgd_jax: a differentiable JAX simulator of quantum algorithms for (stochastic) gradient descent.

The top level reads as the paper's pipeline: the loss's Taylor model and GD map, the Carleman
state and operator, the evolution methods, the quantum window and the hybrid run against optax
SGD, sweeps, and the one result enum. The satellites have namespaces of their own:
`qsgd_jax.readout`, `.linsys`, `.circuit`, `.resources`, `.ml`, `.spectrum`, `.problems`,
`.plot`, `.targets` (sweep targets), and `qsgd_jax.experiments` (the experiment framework, imported
on demand). Modules whose names start with an underscore are private.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError, version as _version

try:
    __version__ = _version("qsgd_jax")
except _PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

from . import (
    circuit as circuit,
    linsys as linsys,
    ml as ml,
    plot as plot,
    problems as problems,
    readout as readout,
    resources as resources,
    spectrum as spectrum,
    targets as targets,
)
from ._budget import (
    ErrorBudget as ErrorBudget,
    error_budget as error_budget,
)
from ._carleman import (
    CarlemanOperator as CarlemanOperator,
    carleman as carleman,
)
from ._dissipation import (
    Dissipation as Dissipation,
    dissipation as dissipation,
)
from ._errors import MemoryLimitError as MemoryLimitError
from ._evolution import (
    AbstractCarlemanState as AbstractCarlemanState,
    AbstractEvolution as AbstractEvolution,
    DenseState as DenseState,
    Discrete as Discrete,
    Euler as Euler,
    Expm as Expm,
    FactoredState as FactoredState,
    TruncatedTaylor as TruncatedTaylor,
)
from ._evolve import (
    CarlemanError as CarlemanError,
    Trajectory as Trajectory,
    carleman_error as carleman_error,
    evolve as evolve,
)
from ._field import (
    AbstractField as AbstractField,
    DenseField as DenseField,
)
from ._hybrid import (
    HybridConfig as HybridConfig,
    HybridResult as HybridResult,
    Observation as Observation,
    WindowEvent as WindowEvent,
    hybrid_run as hybrid_run,
)
from ._loss_model import (
    LossField as LossField,
    taylor_field as taylor_field,
)
from ._optax_window import quantum_window_optimizer as quantum_window_optimizer
from ._polynomial import (
    PolynomialMap as PolynomialMap,
    field_map as field_map,
    gd_map as gd_map,
    polynomial_map as polynomial_map,
)
from ._status import (
    RESULTS as RESULTS,
    NonFiniteError as NonFiniteError,
)
from ._sweep import (
    SweepResult as SweepResult,
    grid as grid,
    sweep as sweep,
)
from ._window import (
    WindowConfig as WindowConfig,
    WindowReport as WindowReport,
    quantum_window as quantum_window,
)
