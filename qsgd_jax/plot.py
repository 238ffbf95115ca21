"""Plots of hybrid runs, spectral densities and error-propagation curves (matplotlib; the caller
chooses the backend).

Every name is re-exported from a private module: `import qsgd_jax as qj`, then `qj.plot.NAME`.
"""

from ._hybrid import plot_hybrid as plot_hybrid
from ._plots_spectrum import (
    plot_error_propagation as plot_error_propagation,
    plot_spectral_densities as plot_spectral_densities,
)
