"""The rules of a job, as pure functions over plain values.

This module is the single statement of SPEC section 3: how a job starts, how
an update is checked and applied, when it completes. It does no I/O and takes
no locks: each store calls :func:`apply` under its own atomicity (a lock, a
file lock), and the Redis store runs ``stores/lua/update.lua``, a port of it
that the shared contract suite proves equivalent.
"""

from __future__ import annotations

import datetime as _dt
from typing import NamedTuple

from .errors import InvalidUpdate, JobFinished
from .model import JobStatus, Status

__all__ = ["MAX_COUNT", "MAX_ERROR_LENGTH", "Delta", "apply", "new_job"]

MAX_ERROR_LENGTH = 1000
"""``last_error`` is truncated to at most this many characters before any store sees it."""

MAX_COUNT = 2**53 - 1
"""The largest total or delta: exact in JSON numbers and Lua doubles alike."""

_RUNNING = Status.RUNNING
_COMPLETED = Status.COMPLETED


class Delta(NamedTuple):  # immutable and quick to build: one is made per update
    """One update to a job: counter increments, an optional error, or an abort.

    Built and validated by the tracker; ``error`` is already truncated. With
    ``abort`` set, the counters are ignored and every remaining item is counted
    as failed with ``error``.
    """

    processed: int = 0
    successful: int = 0
    failed: int = 0
    error: str | None = None
    abort: bool = False


def new_job(namespace: str, job_id: str, total: int, now: _dt.datetime) -> JobStatus:
    """A fresh job: zero counters, ``started_at == updated_at == now``.

    A job with ``total == 0`` is completed at once.
    """
    done = total == 0
    return JobStatus(
        job_id,
        namespace,
        _COMPLETED if done else _RUNNING,
        total,
        0,
        0,
        0,
        None,
        now,
        now,
        now if done else None,
    )


def apply(job: JobStatus, delta: Delta, now: _dt.datetime) -> JobStatus:
    """Apply *delta* to *job* at time *now*; return the new job.

    ``updated_at`` becomes ``max(job.updated_at, now)`` so it never goes back.
    The update that brings ``successful + failed`` to ``total`` completes the
    job, setting ``finished_at = updated_at``.

    :raises JobFinished: if the job has already completed (heartbeats and
        aborts included).
    :raises InvalidUpdate: if the update would break an invariant; nothing of
        it is applied.
    """
    if job.status is _COMPLETED:
        raise JobFinished(job.namespace_name, job.job_id)
    total = job.total
    processed = job.processed
    successful = job.successful
    if delta.abort:
        failed = total - successful
    else:
        processed += delta.processed
        successful += delta.successful
        failed = job.failed + delta.failed
        if processed > total:
            raise InvalidUpdate(
                f"update rejected for job {job.job_id!r} in namespace {job.namespace_name!r}: "
                f"processed would be {processed}, more than total {total}"
            )
        if successful + failed > total:
            raise InvalidUpdate(
                f"update rejected for job {job.job_id!r} in namespace {job.namespace_name!r}: "
                f"successful + failed would be {successful + failed}, more than total {total}"
            )
    updated_at = now if now > job.updated_at else job.updated_at
    done = successful + failed == total
    return JobStatus(
        job.job_id,
        job.namespace_name,
        _COMPLETED if done else _RUNNING,
        total,
        processed,
        successful,
        failed,
        job.last_error if delta.error is None else delta.error,
        job.started_at,
        updated_at,
        updated_at if done else None,
    )
