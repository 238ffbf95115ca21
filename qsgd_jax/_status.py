"""The one result enum of the library, and `throw=` implemented once for every result object.

Every result object (`Trajectory`, `CarlemanError`, `ErrorBudget`, `WindowReport`) derives from
`AbstractResult`: it carries a `status` (a `RESULTS` member) and the first failed step. A call
with `throw=True` goes through `apply_throw`: eagerly it raises `NonFiniteError` naming the
step; under `jit`/`vmap`/`grad` it threads `eqx.error_if` on the outputs, so the same call
raises at run time, as lineax's `linear_solve(..., throw=True)` does. With `throw=False` the
result is returned and the caller reads `status`.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int

from ._errors import is_concrete


class RESULTS(eqx.Enumeration):
    """Outcome of a run, carried as `status` by every result object.

    **Members:** `successful`, `nonfinite` (a NaN or inf), `non_dissipative` (a window's
    Carleman state blew up), `error_growth` (a window drifted from exact GD),
    `invalid_argument` (a traced argument, such as $\\eta$ under `vmap`, was out of range).
    `RESULTS[r]` gives the message of a concrete status `r`.
    """

    successful = (
        "The window stayed bounded: the run completed with finite values (and a quantum window "
        "stayed close to exact GD), so its output is a result."
    )
    nonfinite = (
        "The run produced non-finite values (NaN or inf): the dynamics diverged. This happens "
        "when the map is not dissipative (eta * lambda outside (0, 2) for some Hessian "
        "eigenvalue) or the truncated Carleman system is unstable; lower the learning rate, the "
        "window length or the Carleman order, and check `dissipation(...)`."
    )
    non_dissipative = (
        "The window is not dissipative: the norm of the Carleman state blew up (non-finite, or "
        "above `divergence_factor` x max(||theta_bar||, 1)); its output is NaN, not a result. "
        "Lower the learning rate (dissipation needs 0 < eta*lambda < 2 for every Hessian "
        "eigenvalue of the active set) or shorten the window."
    )
    error_growth = (
        "The window diverged from exact GD: its error ||y1(t) - u_GD(t)|| grew above "
        "`max_relative_error` x ||u_GD(t)||, so the simulated quantum run no longer follows the "
        "training dynamics (typically rho(F1) > 1: some eta*lambda outside (0, 2)); its output "
        "is NaN, not a result. Lower the learning rate or shorten the window."
    )
    invalid_argument = (
        "An argument was invalid when the run executed: a value that was traced (under jit, "
        "vmap, grad or a sweep), so that it could not be refused before the run, was out of "
        "range. The learning rate eta must be a finite number > 0 (a negative eta runs "
        "gradient ascent), the number of shots a finite integer >= 1 (any real >= 1 for the "
        "Gaussian surrogate), the Carleman order N an integer in [1, max_order] and a "
        "truncated-Taylor order K an integer in [0, max_terms]. The "
        "outputs of this run are not a result. Pass valid values (a concrete value is "
        "refused at once, with the argument's name), or check the grid given to `sweep`."
    )


class NonFiniteError(RuntimeError):
    """A run failed (NaN, inf or divergence); raised by `raise_if_failed` with the first step.

    **Arguments:** the message.
    """


class AbstractResult(eqx.Module):
    """A result object carrying a `RESULTS` status and the first failed step.

    **Fields:** `status` (declared by each subclass).

    Subclasses declare a `status: RESULTS` field (not declared here, so that it keeps its
    place among the subclass's fields), name the run in `what` and return the failed step (-1
    where the run is fine) from `failed_step`.
    """

    what: ClassVar[str] = "The run"

    def failed_step(self) -> Int[Array, "..."]:
        """The first failed step $t$ of each (batched) run, -1 where it succeeded."""
        return self.nonfinite_step

    def _headline(self, failed: int, total: int, step: int) -> str:
        where = f" The first non-finite value is at step t = {step}." if step >= 0 else ""
        return f"{self.what} failed in {failed} of {total} runs.{where}"

    def failure_message(self) -> str | None:
        """What failed in a (batched) concrete result: the headline with the first failed step
        and the status's message, or `None` when every run succeeded.

        **Returns:** the message or `None`.
        """
        codes = np.ravel(np.asarray(self.status._value))
        failed = codes != RESULTS.successful._value
        if not failed.any():
            return None
        message = RESULTS._index_to_message[int(codes[failed][0])]
        steps = np.ravel(np.broadcast_to(np.asarray(self.failed_step()), codes.shape))
        head = self._headline(int(failed.sum()), codes.size, int(steps[failed][0]))
        return f"{head} {message}"

    def raise_if_failed(self):
        """Raise `NonFiniteError` (a `RuntimeError`) with `failure_message()`.

        **Returns:** `self` when every run succeeded.
        """
        message = self.failure_message()
        if message is not None:
            raise NonFiniteError(message)
        return self


def apply_throw(result: AbstractResult, throw: bool, extra=None):
    """Apply a `throw=` flag to a result, the same way eagerly and under transformations.

    **Arguments:**

    - `result`: the result object.
    - `throw`: whether a failed run raises.
    - `extra`: optional outputs returned beside the result (e.g. the window's parameters); a
      traced check is threaded on them too, so using only them still checks.

    **Returns:** `result` (or `(result, extra)` when `extra` is given), unchanged when
    `throw=False`. A concrete failed result raises `NonFiniteError` naming the step; a traced
    one raises at run time (`eqx.error_if` with the status's message).
    """
    out = result if extra is None else (result, extra)
    if not throw:
        return out
    if is_concrete(result.status._value):
        result.raise_if_failed()
        return out
    failed = jnp.any(result.status._value != RESULTS.successful._value)
    return result.status.error_if(out, failed)


def argument_status(ok, status: RESULTS = RESULTS.successful) -> RESULTS:
    """`status` where the traced argument check `ok` holds, else `RESULTS.invalid_argument`.

    The status-side counterpart of `error_if_invalid`: a result object whose arguments may be
    traced ORs their validity into its status (e.g. `WindowConfig.arguments_ok()`), so that
    `throw=False` reports an invalid value and `throw=True` raises, through `apply_throw`, with
    no host callback in a program that did not ask for one.

    **Arguments:**

    - `ok`: bool (traceable), `True` where every checked argument is valid.
    - `status`: the status the run would have otherwise.

    **Returns:** a `RESULTS` member (an invalid argument takes precedence).
    """
    return RESULTS.where(jnp.asarray(ok), status, RESULTS.invalid_argument)


def finite_status(*arrays) -> RESULTS:
    """`RESULTS.successful` if every array is finite, else `RESULTS.nonfinite` (traceable).

    **Arguments:** `*arrays`: the arrays to check.

    **Returns:** a `RESULTS` member.
    """
    ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in arrays]))
    return RESULTS.where(ok, RESULTS.successful, RESULTS.nonfinite)


def first_nonfinite_step(*arrays) -> Int[Array, ""]:
    """The first index along axis 0 (the step $t$) where any array has a NaN or inf.

    **Arguments:** `*arrays`: arrays with the steps on their leading axis (the same length).

    **Returns:** the step, -1 if every entry is finite (traceable, so jitted and vmapped runs
    carry it alongside their `RESULTS` status).
    """
    bad = jnp.stack(
        [jnp.any(~jnp.isfinite(a.reshape(a.shape[0], -1)), axis=1) for a in arrays]
    ).any(axis=0)
    return jnp.where(jnp.any(bad), jnp.argmax(bad), -1).astype(jnp.int32)
