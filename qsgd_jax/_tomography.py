"""Tomography now lives in the read-out package `qsgd_jax._readout`; re-exported here for the
modules that still import it from this path."""

from ._readout import interference_rounds, shots_for_error, tomography

__all__ = ["interference_rounds", "shots_for_error", "tomography"]
