"""The exact spectrum of the active-set Hessian: dense `eigh` of the $s \\times s$ matrix.

$H_{\\mathcal A} = P^\\top H P$ (the `"active"` view of `hessian_operator`: the Hessian of the
batch-mean loss at $\\bar\\theta = m \\odot \\theta$, restricted to the $s$ active coordinates)
is assembled column by column from $s$ Hessian-vector products $H_{\\mathcal A} e_i$, vmapped in
chunks, symmetrized and diagonalized. Its eigenvalues with weights $1/s$ are the exact
quadrature of the spectral density, so $E(t)$, $E_2(t)$ and $E_\\text{paper}(t)$ computed from
them carry no SLQ error. The cost is $s$ HVPs and $O(s^2)$ memory: for large $s$ use the SLQ
`hessian_spectrum`.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PyTree, Scalar

from ._errors import InvalidArgumentError, check_finite_tree, check_int_range, check_memory
from ._spectrum import _operator, _prepare, spectral_metrics

MAX_DIM = 5000
"""Default largest active-set size $s$ that `exact_hessian_spectrum` diagonalizes densely."""


class ExactSpectrum(eqx.Module):
    """All eigenvalues of the active-set Hessian, with the dissipation metrics.

    Its `nodes` and `weights` make it a quadrature like a `SpectralDensity`'s, so
    `propagation_from_spectrum`, `paper_proxy_from_spectrum` and `spectral_growth` take it.

    **Fields:**

    - `eigenvalues`: $\\lambda_1 \\le \\dots \\le \\lambda_s$, shape `(s,)`.
    - `lambda_min`, `lambda_max`: the extreme eigenvalues.
    - `positive_fraction`, `negative_mass`: the fractions of eigenvalues $> 0$ and $< 0$;
      `negative_ratio`: $\\sum_{\\lambda<0}|\\lambda| / \\sum|\\lambda|$.
    """

    eigenvalues: Float[Array, " s"]
    lambda_min: Float[Array, ""]
    lambda_max: Float[Array, ""]
    positive_fraction: Float[Array, ""]
    negative_mass: Float[Array, ""]
    negative_ratio: Float[Array, ""]

    @property
    def nodes(self) -> Float[Array, " s"]:
        """The quadrature nodes: the eigenvalues."""
        return self.eigenvalues

    @property
    def weights(self) -> Float[Array, " s"]:
        """The quadrature weights: $1/s$ each."""
        s = self.eigenvalues.shape[-1]
        return jnp.full_like(self.eigenvalues, 1 / s)


def exact_spectrum_bytes(dim: int, itemsize: int = 4) -> int:
    """Estimated peak bytes of `exact_hessian_spectrum` beyond the model's own HVP work.

    The identity of the probes, the assembled matrix, its symmetrized copy and the `eigh`
    workspace: about $4 s^2$ floats.

    **Arguments:**

    - `dim`: the active-set size $s$.
    - `itemsize`: bytes per float.

    **Returns:** the estimate in bytes.
    """
    return int(4 * dim * dim * itemsize)


def exact_hessian_spectrum(
    loss_fn: Callable[[PyTree, PyTree], Scalar],
    params: PyTree,
    batches,
    mask: PyTree | None = None,
    *,
    max_dim: int = MAX_DIM,
    hvp_batch_size: int = 16,
    memory_limit: int | None = None,
) -> ExactSpectrum:
    """Every eigenvalue of the active-set Hessian, by dense `eigh` (module docstring).

    **Arguments:**

    - `loss_fn`: pure `loss_fn(params, batch) -> scalar`.
    - `params`: the expansion point $\\theta$ (the mask is applied to it first); real floats.
    - `batches`: a list of batches, or a batch pytree whose leaves have a leading batch-index
      axis; the Hessian is the mean over them (as for `hessian_operator`).
    - `mask`: bool pytree (`True` = active); `None`: every parameter is active.
    - `max_dim`: the largest $s$ accepted; above it use the SLQ `hessian_spectrum`.
    - `hvp_batch_size`: HVPs vmapped at once (memory of that many HVPs of the model).
    - `memory_limit`: bytes allowed for the $s \\times s$ arrays (`exact_spectrum_bytes`;
      default `qsgd_jax._errors.default_memory_limit()`).

    **Returns:** an `ExactSpectrum`.
    """
    check_finite_tree("params", params)
    check_finite_tree("batches", batches)
    check_int_range("max_dim", max_dim, 1)
    check_int_range("hvp_batch_size", hvp_batch_size, 1)
    view = "dense" if mask is None else "active"
    batches, m_flat, idx = _prepare(params, batches, mask, view)
    flat = ravel_pytree(params)[0]
    dim = flat.shape[0] if idx is None else int(idx.shape[0])
    if dim > max_dim:
        raise InvalidArgumentError(
            f"The active set has s = {dim} coordinates, above `max_dim` = {max_dim} for a dense "
            "eigendecomposition (s Hessian-vector products and s x s matrices); use the SLQ "
            "`qsgd_jax.spectrum.hessian_spectrum` (several probes and batches) instead, or "
            "raise `max_dim`."
        )
    check_memory(
        f"The dense active-set Hessian with s = {dim}",
        exact_spectrum_bytes(dim, flat.dtype.itemsize),
        memory_limit,
    )
    return _exact(loss_fn, params, batches, m_flat, idx, view, min(hvp_batch_size, dim))


@eqx.filter_jit
def _exact(loss_fn, params, batches, m_flat, idx, view, batch_size):
    matvec, dim = _operator(loss_fn, params, batches, m_flat, idx, view)
    dtype = ravel_pytree(params)[0].dtype
    h = jax.lax.map(matvec, jnp.eye(dim, dtype=dtype), batch_size=batch_size)
    ev = jnp.linalg.eigvalsh(0.5 * (h + h.T))
    w = jnp.full_like(ev, 1 / dim)
    return ExactSpectrum(ev, ev[0], ev[-1], *spectral_metrics(ev, w))
