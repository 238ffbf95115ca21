"""Read-out: a family of methods (exact, sampled tomography, Gaussian surrogate), norm
estimation, and the sparse download / re-upload of a window's output (`docs/math/readout.md`)."""

from ._base import AbstractReadout as AbstractReadout
from ._bounds import (
    interference_rounds as interference_rounds,
    shots_for_error as shots_for_error,
    tomography_error_bound as tomography_error_bound,
)
from ._download import Readout as Readout, download as download
from ._exact import Exact as Exact
from ._gaussian import GaussianSurrogate as GaussianSurrogate
from ._moments import tomography_mean as tomography_mean, tomography_std as tomography_std
from ._multinomial import multinomial_counts as multinomial_counts
from ._norm_estimation import (
    AbstractNormEstimation as AbstractNormEstimation,
    AmplitudeEstimation as AmplitudeEstimation,
    KnownNorm as KnownNorm,
    ae_error_bound as ae_error_bound,
    amplitude_estimation as amplitude_estimation,
    amplitude_estimation_probs as amplitude_estimation_probs,
    as_norm_estimation as as_norm_estimation,
    estimate_norm as estimate_norm,
)
from ._sampled import Sampled as Sampled
from ._shorthand import as_readout as as_readout
from ._tomography import tomography as tomography
from ._upload import UploadCost as UploadCost, upload_cost as upload_cost
