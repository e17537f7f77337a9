"""JobTracker: the public, synchronous face of jobtrack."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from types import TracebackType

from .arguments import (
    check_abort,
    check_limit,
    check_record,
    check_start,
    check_updates,
    decode_cursor,
    encode_cursor,
    make_now,
)
from .clock import Clock
from .errors import ConfigurationError, JobNotFound, JobtrackError
from .model import JobStatus, Page, Update
from .names import validate_name
from .rules import new_job
from .stores.protocol import Store
from .stores.urls import open_store

__all__ = ["JobTracker"]


def resolve_store(store: Store | str) -> Store:
    """A store object, opening it first when *store* is a URL."""
    if isinstance(store, str):
        return open_store(store)
    if not isinstance(store, Store):
        raise ConfigurationError(
            f"store must be a store object or a store URL, got {type(store).__name__}"
        )
    return store


class JobTracker:
    """Track upload jobs in *store* (a store object or a URL for :func:`open_store`).

    Every call validates its arguments before the store sees them, takes "now"
    from *clock* (default: the system clock in UTC, which freezegun moves), and
    is safe from many threads; processes and hosts may share a job as far as
    the store's scope allows. Mutating calls return the resulting status.
    """

    def __init__(self, store: Store | str, *, clock: Clock | None = None) -> None:
        self.store: Store = resolve_store(store)
        self._now = make_now(clock)

    def __repr__(self) -> str:
        return f"JobTracker({self.store!r})"

    def start(self, namespace: str, total: int, *, job_id: str | None = None) -> JobStatus:
        """Create a running job of *total* items (``total == 0`` completes at once).

        The id is generated (``job-`` + 32 hex digits) unless given.

        :raises JobExists: if *job_id* exists in *namespace* (never overwritten).
        :raises InvalidName, InvalidUpdate: for a bad name or total.
        """
        ns, count, jid = check_start(namespace, total, job_id)
        job = new_job(ns, jid, count, self._now())
        self.store.create(job)
        return job

    def record(
        self,
        namespace: str,
        job_id: str,
        *,
        processed: int = 0,
        successful: int = 0,
        failed: int = 0,
        error: str | None = None,
    ) -> JobStatus:
        """Add the deltas as one atomic update and refresh ``updated_at``.

        *error* (allowed only with ``failed >= 1``) becomes ``last_error``,
        truncated to 1,000 characters. No deltas at all is a heartbeat. The
        update that brings ``successful + failed`` to ``total`` completes the job.

        :raises JobNotFound, JobFinished: for an unknown or completed job.
        :raises InvalidUpdate: for a bad delta, or one that would break an
            invariant; nothing of it is applied.
        """
        ns, jid, delta = check_record(namespace, job_id, processed, successful, failed, error)
        return self.store.update(ns, jid, delta, self._now())

    def record_many(self, updates: Iterable[Update]) -> builtins.list[JobStatus | JobtrackError]:
        """Apply many updates, in one round trip where the store allows (Redis: a pipeline).

        Every update is checked first: one malformed update rejects the batch
        and nothing is applied. Then each update is atomic on its own; the
        result lists, in order, each new status or the error (``JobNotFound``,
        ``JobFinished``, ``InvalidUpdate``...) that rejected that one update.
        """
        checked = check_updates(updates)
        return self.store.update_many(checked, self._now())

    def heartbeat(self, namespace: str, job_id: str) -> JobStatus:
        """Refresh ``updated_at`` only (the same as ``record`` with no deltas)."""
        return self.record(namespace, job_id)

    def abort(self, namespace: str, job_id: str, error: str) -> JobStatus:
        """Give up: count every remaining item as failed with *error*; completes the job.

        ``processed`` is left as it was.

        :raises JobNotFound, JobFinished: for an unknown or completed job.
        """
        ns, jid, delta = check_abort(namespace, job_id, error)
        return self.store.update(ns, jid, delta, self._now())

    def get(self, namespace: str, job_id: str) -> JobStatus:
        """The job's status.

        :raises JobNotFound: if *namespace* has no such job (whatever other
            namespaces hold).
        """
        ns = validate_name(namespace, "namespace")
        jid = validate_name(job_id, "job id")
        job = self.store.get(ns, jid)
        if job is None:
            raise JobNotFound(ns, jid)
        return job

    def delete(self, namespace: str, job_id: str) -> bool:
        """Remove a job, running or not; True if it existed. Its id may be started again."""
        ns = validate_name(namespace, "namespace")
        jid = validate_name(job_id, "job id")
        return self.store.delete(ns, jid)

    def list(self, namespace: str, *, limit: int = 100, cursor: str | None = None) -> Page:
        """One page of the namespace's jobs, newest first (by ``started_at``, then id).

        Pass ``page.next_cursor`` back as *cursor* for the next page; it is None
        on the last one.
        """
        ns = validate_name(namespace, "namespace")
        size = check_limit(limit)
        before = decode_cursor(cursor)
        jobs: builtins.list[JobStatus] = self.store.list(ns, size + 1, before)
        if len(jobs) > size:
            return Page(tuple(jobs[:size]), encode_cursor(jobs[size - 1]))
        return Page(tuple(jobs), None)

    def close(self) -> None:
        """Close the store (connections, handles)."""
        self.store.close()

    def __enter__(self) -> JobTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
