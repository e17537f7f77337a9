"""What the SQL stores do, written once for every engine and runner ("sans I/O").

Each operation is a generator: it yields ``(statement name, parameters)``
and is sent back the rows the statement returned, until it returns its
result. A runner (SQLite's, psycopg's sync or async one) executes the
statements; the operation never touches a connection. The statement
``begin`` opens a transaction that the operation ends with ``commit``; a
runner rolls back whatever an operation leaves open (an error raised).

Updates of counters alone take one statement (``add``: the rules of
:func:`jobtrack.rules.apply` in SQL). Every other update (items, errors,
aborts, ``extend``, ``reap``'s conditional abort) goes through the engine's
``apply``: on SQLite, :func:`apply_locked` — the rules in Python inside one
``BEGIN IMMEDIATE`` transaction, with no round trip to wait on; on
PostgreSQL, one call of the server-side function ``jobtrack_apply``.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import logging
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from ...clock import from_ms, to_ms
from ...errors import JobExists, JobNotFound, StoreCorrupt
from ...model import ErrorCount, FailedItem, JobStatus, NamespaceCounts
from ...rules import RATE_TAU_MS, Delta, apply, apply_item, error_group, errors_counted
from ..protocol import BEAT_MS, STALLED, ListKey, stalled_before
from .schema import LAST_MS, decode_job

__all__ = [
    "Op",
    "Query",
    "StoreMethods",
    "apply_locked",
    "create",
    "delete",
    "errors",
    "failed_items",
    "get",
    "list_jobs",
    "namespaces",
    "purge",
    "update",
]

logger = logging.getLogger("jobtrack.stores.sql")

Query = tuple[str, dict[str, Any]]
Rows = builtins.list[tuple[Any, ...]]
R = TypeVar("R")
Op = Generator[Query, Rows, R]
Apply = Callable[[str, str, Delta, _dt.datetime], Op[JobStatus]]

PURGE_BATCH = 500
"""Jobs a purge removes per statement (and transaction)."""

_TOP = (2**62, "")  # above every listing key
_TAU = float(RATE_TAU_MS)  # a double parameter: PostgreSQL's arithmetic on it stays double


def _beat(ms: int) -> int:
    return ms - ms % BEAT_MS


def job_row(job: JobStatus) -> dict[str, Any]:
    """The parameters of ``create`` for *job*."""
    updated = to_ms(job.updated_at)
    return {
        "namespace": job.namespace_name,
        "job_id": job.job_id,
        "total": job.total,
        "processed": job.processed,
        "successful": job.successful,
        "failed": job.failed,
        "last_error": job.last_error,
        "started_ms": to_ms(job.started_at),
        "updated_ms": updated,
        "finished_ms": None if job.finished_at is None else to_ms(job.finished_at),
        "expires_ms": None if job.expires_at is None else to_ms(job.expires_at),
        "rate": job.rate,
        "rate_at": job.rate_at,
        "rate_done": job.rate_done,
        "beat_ms": _beat(updated),
    }


def create(job: JobStatus, forgotten_before: _dt.datetime | None = None) -> Op[None]:
    """Insert *job* unless its id is taken in its namespace (``JobExists``).

    A job of that id expired at or before *forgotten_before* is forgotten: it
    goes first (with its items and error groups), in the same transaction.
    """
    row = job_row(job)
    if (yield "create", row):
        return
    if forgotten_before is None:
        raise JobExists(job.namespace_name, job.job_id)
    yield "begin", {}  # the id is taken: by a forgotten job?
    yield "forget", {"ns": job.namespace_name, "id": job.job_id, "before": to_ms(forgotten_before)}
    if not (yield "create", row):
        raise JobExists(job.namespace_name, job.job_id)
    yield "commit", {}


def get(namespace: str, job_id: str) -> Op[JobStatus | None]:
    """The job, or None."""
    rows = yield "get", {"ns": namespace, "id": job_id}
    return decode_job(rows[0]) if rows else None


def delete(namespace: str, job_id: str) -> Op[bool]:
    """Remove the job with its items and error groups (one statement: they cascade)."""
    return bool((yield "delete", {"ns": namespace, "id": job_id}))


def update(
    namespace: str, job_id: str, delta: Delta, now: _dt.datetime, apply_: Apply
) -> Op[JobStatus]:
    """Apply *delta*: counters alone in one ``add`` statement, anything else through *apply_*.

    When ``add`` matches no row (the update completes the job or moves its
    beat), ``add_all`` makes it; when that matches none either, the job is read
    and :func:`jobtrack.rules.apply` says why (``JobNotFound``, ``JobFinished``,
    ``InvalidUpdate``); if the rules would accept it after all (the job changed
    in between), ``add`` is tried again.
    """
    if (
        delta.error is not None
        or delta.item is not None
        or delta.abort
        or delta.more
        or delta.if_updated is not None
    ):
        return (yield from apply_(namespace, job_id, delta, now))
    ms = to_ms(now)
    retain = None if delta.retain is None else delta.retain[0]
    params = {
        "ns": namespace,
        "id": job_id,
        "processed": delta.processed,
        "successful": delta.successful,
        "failed": delta.failed,
        "done": delta.successful + delta.failed,
        "now": ms,
        "tau": _TAU,
        "beat": _beat(ms),
        "retain": retain,
        "last_ms": LAST_MS,
    }
    while True:
        rows = yield "add", params
        if not rows:
            rows = yield "add_all", params
        if rows:
            return decode_job(rows[0])
        rows = yield "get", params
        if not rows:
            raise JobNotFound(namespace, job_id)
        apply(decode_job(rows[0]), delta, now)  # raises what the rules say


def apply_locked(namespace: str, job_id: str, delta: Delta, now: _dt.datetime) -> Op[JobStatus]:
    """Any update, by :mod:`jobtrack.rules` in Python, inside one write transaction.

    For engines where a transaction costs no round trips (SQLite): the job
    is read and written under the database's write lock, with its item and
    error groups.
    """
    key = {"ns": namespace, "id": job_id, "item": delta.item}
    yield "begin", {}
    rows = yield "get_for_update", key
    if not rows:
        raise JobNotFound(namespace, job_id)
    *columns, listed, state, error = rows[0]
    job = decode_job(tuple(columns))
    if delta.item is None:
        new = apply(job, delta, now)
        if delta.error is not None:
            yield from _count(key, delta.error, errors_counted(job, delta, new), new.updated_at)
    else:
        change = apply_item(job, state or 0, error, delta, now)
        if change is None:  # a redelivery: nothing changes
            yield "commit", {}
            return job
        new = change.job
        at = to_ms(new.updated_at)
        if change.listed:
            listed += 1
        yield (
            "put_item",
            {
                **key,
                "state": change.state,
                "error": change.error,
                "position": listed if change.listed else None,
                "failed_ms": at if change.listed else None,
                "keep": change.listed is None,
            },
        )
        if change.counted and delta.error is not None:
            yield from _count(key, delta.error, change.counted, new.updated_at)
    params = job_row(new)
    params["listed"] = listed
    moved = new.is_finished or params["beat_ms"] != _beat(to_ms(job.updated_at))
    yield "put_all" if moved else "put", params
    yield "commit", {}
    return new


def _count(key: dict[str, Any], message: str, n: int, at: _dt.datetime) -> Op[None]:
    """Count *n* failures under *message* (see :func:`jobtrack.rules.error_group`)."""
    if n == 0:
        return
    rows = yield "error_group", {**key, "message": message}
    if rows:
        grp: int | None = rows[0][0]
    else:
        groups = (yield "error_groups", key)[0][0]
        grp = None if error_group(message, False, groups) is None else groups + 1
    yield (
        "count_error",
        {
            **key,
            "grp": 0 if grp is None else grp,
            "message": None if grp is None else message,
            "n": n,
            "at": to_ms(at),
        },
    )


def list_jobs(
    namespace: str, status: str | None, limit: int, before: ListKey | None, cutoff: int | None
) -> Op[builtins.list[JobStatus]]:
    """A page of the namespace's jobs (of *status*), newest first, below *before*.

    A corrupt row is skipped with a logged warning.
    """
    if status == STALLED:
        assert cutoff is not None
        before = stalled_before(before, cutoff)
        name = "stalled"
    else:
        name = f"list_{status or 'all'}"
    ms, key = before or _TOP
    rows = yield name, {"ns": namespace, "ms": ms, "key": key, "cutoff": cutoff, "limit": limit}
    jobs = []
    for row in rows:
        try:
            jobs.append(decode_job(row))
        except StoreCorrupt as exc:
            logger.warning("listing %r: skipped a job: %s", namespace, exc)
    return jobs


def failed_items(
    namespace: str, job_id: str, limit: int, after: int | None
) -> Op[builtins.list[tuple[int, FailedItem]] | None]:
    """A page of the job's failed items after position *after*; None if there is no job."""
    params = {"ns": namespace, "id": job_id, "after": -1 if after is None else after}
    rows = yield "failed_items", {**params, "limit": limit}
    if not rows:
        return None
    return [
        (position, FailedItem(item, error, from_ms(ms)))
        for position, item, error, ms in rows
        if position is not None
    ]


def errors(namespace: str, job_id: str) -> Op[builtins.list[ErrorCount] | None]:
    """The job's error groups; None if there is no job."""
    rows = yield "errors", {"ns": namespace, "id": job_id}
    if not rows:
        return None
    return [
        ErrorCount(message, count, from_ms(first), from_ms(last))
        for message, count, first, last in rows
        if count is not None
    ]


def namespaces(
    limit: int, after: str | None, now: int, beat: int | None
) -> Op[builtins.list[NamespaceCounts]]:
    """A page of the namespaces that hold jobs, by name after *after*, with their counts."""
    params = {"after": after or "", "limit": limit, "now": now, "beat": beat or 0}
    rows = yield "namespaces", params
    return [
        NamespaceCounts(ns, running, None if beat is None else stalled, completed)
        for ns, running, stalled, completed in rows
    ]


def purge(expired_before: _dt.datetime) -> Op[int]:
    """Remove every job expired at or before *expired_before*, a batch per statement."""
    params = {"before": to_ms(expired_before), "limit": PURGE_BATCH}
    gone = 0
    while True:
        batch = len((yield "purge", params))
        gone += batch
        if batch < PURGE_BATCH:
            return gone


class StoreMethods:
    """The store protocol's methods that each run one operation: an engine's store inherits them.

    The store gives :meth:`_run` (its runner: the operation's statements on
    one connection) and ``_apply`` (how it makes any update other than
    counters alone: :func:`apply_locked`, or PostgreSQL's ``jobtrack_apply``).
    """

    _apply: staticmethod[[str, str, Delta, _dt.datetime], Op[JobStatus]]

    def _run(self, op: Op[R]) -> R:
        raise NotImplementedError  # (each engine's runner)

    def create(self, job: JobStatus, forgotten_before: _dt.datetime | None = None) -> None:
        """Insert *job*; ``JobExists`` if its id is taken (by a job not forgotten)."""
        self._run(create(job, forgotten_before))

    def update(self, namespace: str, job_id: str, delta: Delta, now: _dt.datetime) -> JobStatus:
        """Apply *delta* in one statement (``add``) or one transaction (``_apply``)."""
        return self._run(update(namespace, job_id, delta, now, self._apply))

    def get(self, namespace: str, job_id: str) -> JobStatus | None:
        """The job, or None (one primary-key ``SELECT``)."""
        return self._run(get(namespace, job_id))

    def delete(self, namespace: str, job_id: str) -> bool:
        """Remove the job, its items and error groups (one statement); True if it existed."""
        return self._run(delete(namespace, job_id))

    def list(self, namespace: str, limit: int, before: ListKey | None) -> builtins.list[JobStatus]:
        """Up to *limit* jobs, newest first, below *before*."""
        return self._run(list_jobs(namespace, None, limit, before, None))

    def list_status(
        self, namespace: str, status: str, limit: int, before: ListKey | None, cutoff: int | None
    ) -> builtins.list[JobStatus]:
        """Up to *limit* jobs of *status* (a partial index each), below *before*."""
        return self._run(list_jobs(namespace, status, limit, before, cutoff))

    def failed_items(
        self, namespace: str, job_id: str, limit: int, after: int | None
    ) -> builtins.list[tuple[int, FailedItem]] | None:
        """A page of the job's failed items."""
        return self._run(failed_items(namespace, job_id, limit, after))

    def namespaces(
        self, limit: int, after: str | None, now: int, beat: int | None
    ) -> builtins.list[NamespaceCounts]:
        """A page of the namespaces, by name, with their counts (one statement)."""
        return self._run(namespaces(limit, after, now, beat))

    def errors(self, namespace: str, job_id: str) -> builtins.list[ErrorCount] | None:
        """The job's error groups."""
        return self._run(errors(namespace, job_id))
