"""Hessian spectra (Lanczos, stochastic Lanczos quadrature) and the error-propagation curve E(t)
with the paper's proxy.

Every name is re-exported from a private module: `import qsgd_jax as qj`, then
`qj.spectrum.NAME`.
"""

from ._lanczos import (
    lanczos_memory_bytes as lanczos_memory_bytes,
    lanczos_tridiag as lanczos_tridiag,
)
from ._propagation import (
    PaperProxy as PaperProxy,
    PropagationCurve as PropagationCurve,
    error_propagation as error_propagation,
    paper_error_proxy as paper_error_proxy,
    paper_proxy_from_spectrum as paper_proxy_from_spectrum,
    propagation_from_spectrum as propagation_from_spectrum,
)
from ._spectrum import (
    SpectralDensity as SpectralDensity,
    broaden_density as broaden_density,
    broadening_sigma as broadening_sigma,
    hessian_operator as hessian_operator,
    hessian_spectrum as hessian_spectrum,
    slq_spectrum as slq_spectrum,
    stack_batches as stack_batches,
)
