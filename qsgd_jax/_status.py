"""Status codes carried by result objects, with the sentence a user should read."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np


class RESULTS(eqx.Enumeration):
    """Outcome of a run. `RESULTS[r]` gives the message of a concrete status `r`."""

    successful = "The run completed with finite values."
    nonfinite = (
        "The run produced non-finite values (NaN or inf): the dynamics diverged. This happens "
        "when the map is not dissipative (eta * lambda outside (0, 2) for some Hessian "
        "eigenvalue) or the truncated Carleman system is unstable; lower the learning rate, the "
        "window length or the Carleman order, and check `dissipation(...)`."
    )


def finite_status(*arrays) -> RESULTS:
    """`RESULTS.successful` if every array is finite, else `RESULTS.nonfinite` (traceable)."""
    ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in arrays]))
    return RESULTS.where(ok, RESULTS.successful, RESULTS.nonfinite)


def raise_if_failed(status: RESULTS, what: str) -> None:
    """Raise `RuntimeError` with the message of the first failed entry of a (batched) status."""
    codes = np.ravel(np.asarray(status._value))
    failed = codes[codes != RESULTS.successful._value]
    if failed.size:
        message = RESULTS[RESULTS.nonfinite] if failed[0] == RESULTS.nonfinite._value else ""
        raise RuntimeError(f"{what} failed in {failed.size} of {codes.size} runs. {message}")
