"""The status of a job and its wire format (SPEC section 1).

:class:`JobStatus` is an immutable value. :meth:`JobStatus.to_dict` gives the
exact wire document, key order included, and :meth:`JobStatus.from_dict` is its
strict inverse. Both go through one cattrs converter, :data:`converter`.
"""

from __future__ import annotations

import datetime as _dt
import enum
import functools
import json
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import attrs
import cattrs
from cattrs.errors import BaseValidationError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .clock import format_timestamp, parse_timestamp
from .errors import InvalidDocument
from .names import is_valid_name

__all__ = [
    "MAX_COUNT",
    "ErrorCount",
    "FailedItem",
    "JobStatus",
    "NamespaceCounts",
    "Page",
    "Progress",
    "Status",
    "Update",
    "converter",
    "parse_json",
]

T = TypeVar("T")


MAX_COUNT = 2**53 - 1
"""The largest total or delta: exact in JSON numbers and Lua doubles alike."""


class Status(str, enum.Enum):
    """The state of a job. ``"failure"`` exists only in HTTP error bodies."""

    RUNNING = "running"
    COMPLETED = "completed"

    def __str__(self) -> str:
        return self.value


@attrs.frozen(slots=False, cache_hash=True)  # a dict class builds twice as fast (made per update)
class JobStatus:
    """Progress of one upload job; the fields are in wire order.

    ``successful + failed`` are the items done; a job completes when they reach
    ``total``. Timestamps are aware UTC datetimes with millisecond precision.
    ``expires_at`` is not part of the wire document: when a completed job
    stops being readable (SPEC section 6), None while running or when kept
    forever. Set by the rules at completion; stores keep it beside the job.
    ``rate``, ``rate_at`` and ``rate_done`` are not sent either, nor compared:
    the job's smoothed rate of items done (per second, as of ``rate_at``, ms
    since the epoch) and the items done it has folded in, kept by the rules
    (:func:`jobtrack.rules.add_rate`) and read through
    :meth:`jobtrack.JobTracker.progress`, which folds in the items done since.
    """

    job_id: str
    namespace_name: str
    status: Status
    total: int
    processed: int
    successful: int
    failed: int
    last_error: str | None
    started_at: _dt.datetime
    updated_at: _dt.datetime
    finished_at: _dt.datetime | None
    expires_at: _dt.datetime | None = None
    rate: float = attrs.field(default=0.0, eq=False, repr=False)
    rate_at: int = attrs.field(default=0, eq=False, repr=False)
    rate_done: int = attrs.field(default=0, eq=False, repr=False)

    @property
    def done(self) -> int:
        """Items finished either way: ``successful + failed``."""
        return self.successful + self.failed

    @property
    def remaining(self) -> int:
        """Items neither persisted nor failed yet: ``total - successful - failed``."""
        return self.total - self.successful - self.failed

    @property
    def percent(self) -> float:
        """Share of items done (successful or failed), 0.0-100.0; 100.0 when ``total`` is 0."""
        if self.total == 0:
            return 100.0
        return 100.0 * (self.successful + self.failed) / self.total

    @property
    def is_finished(self) -> bool:
        """Whether the job has completed (it accepts no further updates)."""
        return self.status is Status.COMPLETED

    def to_dict(self) -> dict[str, Any]:
        """The wire document of SPEC section 1, with its keys in wire order."""
        result: dict[str, Any] = converter.unstructure(self)
        return result

    def to_json(self) -> bytes:
        """The wire document as compact UTF-8 JSON (computed once per status)."""
        return self._json

    @functools.cached_property
    def _json(self) -> bytes:
        # A status never changes, so its document is computed at most once:
        # pollers of an unchanged job get the same bytes back for free.
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobStatus:
        """Parse a wire document strictly; the inverse of :meth:`to_dict`.

        :raises InvalidDocument: on a missing or unknown key, a value of the
            wrong type or form, a bad name, or counters that break the
            invariants of a job.
        """
        if type(data) is not dict and not isinstance(data, Mapping):
            raise InvalidDocument(
                f"a status document must be a JSON object, got {type(data).__name__}"
            )
        job = _well_typed(data)
        if job is None:  # something is off: let cattrs say exactly what
            try:
                job = converter.structure(data, cls)
            except BaseValidationError as exc:
                problems = "; ".join(cattrs.transform_error(exc))
                raise InvalidDocument(f"malformed status document: {problems}") from exc
        problem = _semantic_problem(job)
        if problem:
            raise InvalidDocument(f"malformed status document: {problem}")
        return job


_KEYS = tuple(field.name for field in attrs.fields(JobStatus))[:11]  # nor expires_at, rate...
_TYPES = (str, str, str, int, int, int, int)  # of the first seven fields, as JSON gives them
_STATUSES = {"running": Status.RUNNING, "completed": Status.COMPLETED}


def _well_typed(data: Mapping[str, Any]) -> JobStatus | None:
    """The job of a document whose every key and type is right, else None.

    The fast path of :meth:`JobStatus.from_dict` (stores read documents on
    every update); the converter explains whatever this refuses.
    """
    try:
        values = [data[key] for key in _KEYS]
        jid, ns, status, total, processed, successful, failed, error, started, updated, done = (
            values
        )
        if (
            len(data) != len(_KEYS)
            or tuple(map(type, values[:7])) != _TYPES
            or (error is not None and type(error) is not str)
        ):
            return None
        return JobStatus(
            jid,
            ns,
            _STATUSES[status],
            total,
            processed,
            successful,
            failed,
            error,
            parse_timestamp(started),
            parse_timestamp(updated),
            None if done is None else parse_timestamp(done),
        )
    except (KeyError, ValueError):
        return None


def _semantic_problem(job: JobStatus) -> str | None:
    """What makes a well-typed document impossible, or None."""
    if not is_valid_name(job.job_id):
        return f"job_id {job.job_id!r} breaks the name rules"
    if not is_valid_name(job.namespace_name):
        return f"namespace_name {job.namespace_name!r} breaks the name rules"
    if min(job.total, job.processed, job.successful, job.failed) < 0:
        return "counters must be >= 0"
    if job.processed > job.total:
        return "processed exceeds total"
    if job.successful + job.failed > job.total:
        return "successful + failed exceeds total"
    if job.total > MAX_COUNT:  # (and so every counter)
        return f"total exceeds {MAX_COUNT}"
    if job.updated_at < job.started_at:
        return "updated_at precedes started_at"
    completed = job.successful + job.failed == job.total
    if (job.status is Status.COMPLETED) != completed:
        return f"status {job.status.value!r} disagrees with the counters"
    if (job.finished_at is not None) != completed:
        return "finished_at must be set exactly when the job is completed"
    if job.finished_at is not None and job.finished_at != job.updated_at:
        return "finished_at must equal updated_at"
    if job.last_error is not None and job.last_error == "":
        return "last_error must be null or a non-empty string"
    if job.last_error is not None and not job.last_error.isascii():
        try:
            job.last_error.encode()
        except UnicodeEncodeError:
            return "last_error holds a lone surrogate: it cannot be sent as UTF-8"
    return None


@attrs.frozen
class Progress:
    """How a job is getting on (SPEC section 8), from :meth:`jobtrack.JobTracker.progress`.

    ``percent`` is of the items done (0.0-100.0); ``rate_per_s`` the smoothed
    rate of items done per second (an exponentially weighted average with a
    60 s time constant: steady work reads steady, a change of pace shows within
    two minutes, a stalled job decays towards 0); ``eta_at`` when the job
    should complete at that rate (None while the rate is 0 or the job is
    done); ``elapsed_s`` seconds since it started (until it finished);
    ``stalled`` by the tracker's ``stall_after``; ``expires_at`` as on the job.
    """

    percent: float
    rate_per_s: float
    eta_at: _dt.datetime | None
    elapsed_s: float
    stalled: bool
    expires_at: _dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        """The fields as the HTTP route sends them (timestamps in the wire format)."""
        return {
            "percent": self.percent,
            "rate_per_s": self.rate_per_s,
            "eta_at": None if self.eta_at is None else format_timestamp(self.eta_at),
            "elapsed_s": self.elapsed_s,
            "stalled": self.stalled,
            "expires_at": None if self.expires_at is None else format_timestamp(self.expires_at),
        }


@attrs.frozen
class Update:
    """One update for :meth:`JobTracker.record_many`: the arguments of ``record``."""

    namespace: str
    job_id: str
    processed: int = 0
    successful: int = 0
    failed: int = 0
    error: str | None = None
    item: str | None = None


@attrs.frozen
class Page(Generic[T]):
    """One page of a listing: jobs (newest first) or failed items (in the order they failed).

    ``next_cursor`` is None on the last page; pass it back to get the next one.
    """

    items: tuple[T, ...]
    next_cursor: str | None


@attrs.frozen
class FailedItem:
    """An item whose latest outcome is a failure: its error (None if it had none) and when."""

    item: str
    error: str | None
    failed_at: _dt.datetime

    def to_dict(self) -> dict[str, Any]:
        """``{"item", "error", "failed_at"}`` as the HTTP route sends it."""
        return {
            "item": self.item,
            "error": self.error,
            "failed_at": format_timestamp(self.failed_at),
        }


@attrs.frozen
class NamespaceCounts:
    """A namespace and how many of its jobs are running, stalled and completed (SPEC section 7).

    ``running`` counts every running job, the stalled ones included (as
    ``list(status="running")`` lists them); ``stalled`` is the share of those
    not updated for longer than the tracker's ``stall_after``, to the second
    (None for a tracker without one); ``completed`` leaves expired jobs out.
    """

    name: str
    running: int
    stalled: int | None
    completed: int

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "running", "stalled", "completed"}`` as ``GET /namespaces`` sends it."""
        return {
            "name": self.name,
            "running": self.running,
            "stalled": self.stalled,
            "completed": self.completed,
        }


@attrs.frozen
class ErrorCount:
    """The failures of a job that carried one error message, and when the first and last came.

    ``message`` is None for the group of messages beyond the first
    :data:`jobtrack.rules.MAX_ERROR_GROUPS` distinct ones.
    """

    message: str | None
    count: int
    first_at: _dt.datetime
    last_at: _dt.datetime

    def to_dict(self) -> dict[str, Any]:
        """``{"message", "count", "first_at", "last_at"}`` as the HTTP route sends it."""
        return {
            "message": self.message,
            "count": self.count,
            "first_at": format_timestamp(self.first_at),
            "last_at": format_timestamp(self.last_at),
        }


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number of a job")


_STRICT_JSON = json.JSONDecoder(parse_constant=_no_constant)  # one: json.loads makes one a call


def parse_json(data: bytes | str) -> Any:
    """Parse JSON as stores read job documents: UTF-8, no ``NaN`` or ``Infinity``.

    :raises ValueError: if it is not such JSON (nested too deeply included).
    """
    try:
        return _STRICT_JSON.decode(data.decode() if isinstance(data, bytes) else data)
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8: {exc}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _structure_strict_int(value: object, _: type) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _structure_strict_str(value: object, _: type) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_unstructure_hook(_dt.datetime, format_timestamp)
    conv.register_structure_hook(_dt.datetime, lambda value, _: parse_timestamp(value))
    conv.register_structure_hook(int, _structure_strict_int)
    conv.register_structure_hook(str, _structure_strict_str)
    conv.register_unstructure_hook(Status, lambda status: status.value)
    conv.register_structure_hook(Status, lambda value, _: Status(_structure_strict_str(value, _)))
    # the wire document has the first 11 fields only: the others are kept by stores
    kept: dict[str, Any] = {
        name: override(omit=True) for name in ("expires_at", "rate", "rate_at", "rate_done")
    }
    conv.register_unstructure_hook(JobStatus, make_dict_unstructure_fn(JobStatus, conv, **kept))
    conv.register_structure_hook(
        JobStatus,
        make_dict_structure_fn(JobStatus, conv, _cattrs_forbid_extra_keys=True, **kept),
    )
    return conv


converter: cattrs.Converter = _make_converter()
"""The one converter between :class:`JobStatus` and its wire document."""
