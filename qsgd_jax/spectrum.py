"""Hessian spectra (Lanczos, stochastic Lanczos quadrature, exact `eigh`), the spectral models of
error growth (E(t), E_2(t), the paper's proxy, stability numbers) and the measured growth of
perturbations through true and linearized SGD (G_true, G_lin, finite perturbations).

Every name is re-exported from a private module: `import qsgd_jax as qj`, then
`qj.spectrum.NAME`.
"""

from ._exact_spectrum import (
    ExactSpectrum as ExactSpectrum,
    exact_hessian_spectrum as exact_hessian_spectrum,
    exact_spectrum_bytes as exact_spectrum_bytes,
)
from ._growth import (
    FinitePerturbationGrowth as FinitePerturbationGrowth,
    PerturbationGrowth as PerturbationGrowth,
    finite_perturbation_growth as finite_perturbation_growth,
    perturbation_growth as perturbation_growth,
)
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
from ._spectral_growth import (
    SpectralGrowth as SpectralGrowth,
    spectral_growth as spectral_growth,
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
