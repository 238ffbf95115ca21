"""qsgd_jax: a differentiable JAX simulator of quantum algorithms for (stochastic) gradient descent.

The public API is re-exported here; modules whose names start with an underscore are private.
"""

from importlib.metadata import PackageNotFoundError, version as _version

from ._errors import MemoryLimitError as MemoryLimitError

try:
    __version__ = _version("qsgd_jax")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
