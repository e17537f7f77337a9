"""The exceptions jobtrack raises.

Every exception derives from :class:`JobtrackError`. Lookup failures are also
:class:`LookupError`, bad arguments are also :class:`ValueError`, so callers can
catch them either way.
"""

from __future__ import annotations

import datetime as _dt

__all__ = [
    "ConfigurationError",
    "InvalidArgument",
    "InvalidDocument",
    "InvalidName",
    "InvalidUpdate",
    "JobChanged",
    "JobExists",
    "JobExpired",
    "JobFinished",
    "JobNotFound",
    "JobtrackError",
    "JobtrackWarning",
    "StoreCorrupt",
    "StoreUnavailable",
    "WaitTimeout",
    "shown",
]


class JobtrackError(Exception):
    """Base class of every error jobtrack raises."""


class _JobError(JobtrackError):
    """An error about one job: it keeps the namespace and job id, and pickles.

    Its message is its class's ``_message``, filled in with its attributes.
    """

    _message = ""

    def __init__(self, namespace: str, job_id: str) -> None:
        self.namespace = namespace
        self.job_id = job_id
        super().__init__(self._message.format_map(vars(self)))

    def __reduce__(self) -> tuple[type[_JobError], tuple[str, str]]:
        # rebuilt from its names (multiprocessing sends errors between processes)
        return type(self), (self.namespace, self.job_id)


class JobNotFound(_JobError, LookupError):
    """No job with that id exists in that namespace."""

    _message = "Upload job {job_id!r} not found in namespace {namespace!r}."


class JobExpired(JobNotFound):
    """The job completed and its retention has passed (SPEC section 6): it is gone for readers.

    A :class:`JobNotFound` (``except JobNotFound`` catches it too) that says
    when: ``expired_at``, an aware UTC datetime. The HTTP route answers 410.
    """

    _message = "Upload job {job_id!r} in namespace {namespace!r} expired at {_stamp}."

    def __init__(self, namespace: str, job_id: str, expired_at: _dt.datetime) -> None:
        self.expired_at = expired_at
        utc = expired_at.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        self._stamp = utc.isoformat(timespec="milliseconds") + "Z"  # as jobtrack.clock writes it
        super().__init__(namespace, job_id)

    def __reduce__(self) -> tuple[type[JobExpired], tuple[str, str, _dt.datetime]]:  # type: ignore[override]
        return type(self), (self.namespace, self.job_id, self.expired_at)


class JobExists(_JobError):
    """A job with that id already exists in that namespace (``start`` never overwrites)."""

    _message = "Upload job {job_id!r} already exists in namespace {namespace!r}."


class JobFinished(_JobError):
    """The job has completed; it accepts no further update, heartbeat or abort."""

    _message = (
        "Upload job {job_id!r} in namespace {namespace!r} has already completed; "
        "it accepts no further updates."
    )


class JobChanged(_JobError):
    """A conditional update found the job changed since it was read, and did nothing.

    ``reap`` aborts a stalled job only if it has not been updated since it
    was seen stalled: a job updated in between is left alone.
    """

    _message = (
        "Upload job {job_id!r} in namespace {namespace!r} was updated meanwhile; "
        "the conditional update did nothing."
    )


class InvalidArgument(JobtrackError, ValueError):
    """An argument of a public call is malformed (base of the more specific errors)."""


class InvalidUpdate(InvalidArgument):
    """A count or error is malformed, or the update would break an invariant of the job.

    Nothing of a rejected update is applied.
    """


class InvalidName(InvalidArgument):
    """A namespace or job id breaks the name rules (1-128 of ``A-Z a-z 0-9 _ -``)."""


class InvalidDocument(InvalidArgument):
    """A status document (wire format) is malformed."""


class StoreUnavailable(JobtrackError):
    """The store cannot be reached or answered unexpectedly; the call may be retried."""


class StoreCorrupt(JobtrackError):
    """The store holds data that is not a valid job (hand-edited, truncated, foreign).

    Unlike :class:`StoreUnavailable`, retrying will not help: the data must be
    repaired or the job deleted. Listings skip such a job with a warning.
    """


class JobtrackWarning(UserWarning):
    """Something works, but not as safely as it should: say, a Redis that evicts keys."""


class WaitTimeout(_JobError, TimeoutError):
    """``wait`` or ``watch`` ran out of time before the job completed (also a ``TimeoutError``)."""

    _message = "Upload job {job_id!r} in namespace {namespace!r} did not complete in time."


class ConfigurationError(JobtrackError):
    """jobtrack is configured wrongly: unknown store URL scheme, missing extra, bad option."""


def shown(value: object, limit: int = 60) -> str:
    """*value* as an error message shows it: its repr, cut to *limit* characters.

    Never fails: an int too long to print, or a repr that raises, is
    described instead (an error message must not raise an error of its own).
    """
    if isinstance(value, int) and value.bit_length() > 128:
        return f"an int of {value.bit_length()} bits"
    try:
        text = repr(value)
    except Exception:  # whatever a foreign object's __repr__ does
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
