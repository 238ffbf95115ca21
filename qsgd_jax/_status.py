"""Status codes carried by result objects, with the sentence a user should read."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int

from ._errors import is_concrete


class RESULTS(eqx.Enumeration):
    """Outcome of a run. `RESULTS[r]` gives the message of a concrete status `r`."""

    successful = "The run completed with finite values."
    nonfinite = (
        "The run produced non-finite values (NaN or inf): the dynamics diverged. This happens "
        "when the map is not dissipative (eta * lambda outside (0, 2) for some Hessian "
        "eigenvalue) or the truncated Carleman system is unstable; lower the learning rate, the "
        "window length or the Carleman order, and check `dissipation(...)`."
    )


class NonFiniteError(RuntimeError):
    """A run produced NaN or inf values (raised by `raise_if_failed` with the first step)."""


def finite_status(*arrays) -> RESULTS:
    """`RESULTS.successful` if every array is finite, else `RESULTS.nonfinite` (traceable)."""
    ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in arrays]))
    return RESULTS.where(ok, RESULTS.successful, RESULTS.nonfinite)


def first_nonfinite_step(*arrays) -> Int[Array, ""]:
    """The first index along axis 0 (the step $t$) where any array has a NaN or inf; -1 if none.

    Every array has the steps on its leading axis (the same length); traceable, so jitted and
    vmapped runs carry the step alongside their `RESULTS` status.
    """
    bad = jnp.stack(
        [jnp.any(~jnp.isfinite(a.reshape(a.shape[0], -1)), axis=1) for a in arrays]
    ).any(axis=0)
    return jnp.where(jnp.any(bad), jnp.argmax(bad), -1).astype(jnp.int32)


def raise_if_failed(status: RESULTS, what: str, step=None) -> None:
    """Raise `NonFiniteError` (a `RuntimeError`) with the message of the first failed entry of a
    (batched) status.

    `step` (same batch shape as `status`, -1 where finite) is the first non-finite step of each
    run, from `first_nonfinite_step`; the message names the first failed run's step.
    """
    codes = np.ravel(np.asarray(status._value))
    failed = codes != RESULTS.successful._value
    if failed.any():
        first = int(codes[failed][0])
        message = RESULTS[RESULTS.nonfinite] if first == RESULTS.nonfinite._value else ""
        where = ""
        if step is not None:
            steps = np.ravel(np.broadcast_to(np.asarray(step), np.shape(codes)))
            if steps[failed][0] >= 0:
                where = f" The first non-finite value is at step t = {int(steps[failed][0])}."
        raise NonFiniteError(
            f"{what} failed in {int(failed.sum())} of {codes.size} runs.{where} {message}"
        )


def throw_if_failed(result, *, throw: bool) -> None:
    """Raise (`result.raise_if_failed()`) for a concrete result when `throw`; a traced result
    (under `jit`/`vmap`) is returned as is and carries its status, the caller checks it."""
    if throw and is_concrete(result.status._value):
        result.raise_if_failed()
