"""Read-out: tomography from measurement statistics, the read-out method family, norm estimation,
download and re-upload.

Every name is re-exported from a private module: `import qsgd_jax as qj`, then
`qj.readout.NAME`.
"""

from ._readout import (
    AbstractNormEstimation as AbstractNormEstimation,
    AbstractReadout as AbstractReadout,
    AmplitudeEstimation as AmplitudeEstimation,
    Exact as Exact,
    GaussianSurrogate as GaussianSurrogate,
    KnownNorm as KnownNorm,
    Readout as Readout,
    Sampled as Sampled,
    UploadCost as UploadCost,
    ae_error_bound as ae_error_bound,
    amplitude_estimation as amplitude_estimation,
    amplitude_estimation_probs as amplitude_estimation_probs,
    download as download,
    estimate_norm as estimate_norm,
    interference_rounds as interference_rounds,
    multinomial_counts as multinomial_counts,
    shots_for_error as shots_for_error,
    tomography as tomography,
    tomography_error_bound as tomography_error_bound,
    tomography_mean as tomography_mean,
    tomography_std as tomography_std,
    upload_cost as upload_cost,
)
