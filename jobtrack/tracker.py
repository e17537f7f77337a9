"""JobTracker: the public, synchronous face of jobtrack."""

from __future__ import annotations

import builtins
import collections
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

from .errors import JobtrackError
from .model import ErrorCount, FailedItem, JobStatus, Page, Update
from .operations import Step, TrackerBase, Watching
from .stores import features_of

__all__ = ["JobTracker"]


class JobTracker(TrackerBase):
    """Track upload jobs in *store* (a store object or a URL for :func:`open_store`).

    Every call validates its arguments before the store sees them, takes "now"
    from *clock* (default: the system clock in UTC, which freezegun moves), and
    is safe from many threads; processes and hosts may share a job as far as
    the store's scope allows. With *stall_after* (a timedelta), a running job
    not updated for longer is stalled (:meth:`is_stalled`, :meth:`reap`).
    A completed job expires *retain* after it finished (None: never): then
    :meth:`get` raises :class:`JobExpired` and listings leave it out; after
    *remember_expired* more it is unknown, and its space is reclaimed (by the
    store itself, or by :meth:`purge`). All by the tracker's clock.
    Mutating calls return the resulting status.
    The operations themselves live in :mod:`jobtrack.operations`, shared with
    :class:`AsyncJobTracker`; this class only calls the store.
    """

    def _run(self, step: Step) -> Any:
        while True:  # a loop, not recursion: a listing may take many steps
            done, result = step.follow(getattr(self.store, step.method)(*step.args))
            if done:
                return result
            step = result

    def watch(
        self, namespace: str, job_id: str, *, timeout: float | None = None
    ) -> Iterator[JobStatus]:
        """Yield the job's status, then each newer one; end after the completed one.

        Pushed by stores that can (``Features.push``: memory, SQLite, Redis, PostgreSQL), else
        read again after 50 ms, backing off to a second while nothing changes.

        :raises JobNotFound: (``JobExpired`` too) when the job is or goes missing.
        :raises WaitTimeout: (a ``TimeoutError``) after *timeout* seconds.
        """
        store = self.store
        pace = Watching(namespace, job_id, timeout, features_of(store).push)
        while True:
            job = self.get(pace.namespace, pace.job_id)
            if pace.new(job):
                yield job
            if job.is_finished:
                return
            if pace.push:
                store.wait_change(pace.namespace, pace.job_id, job, pace.pause())  # type: ignore[attr-defined]
            else:
                time.sleep(pace.pause())

    def wait(self, namespace: str, job_id: str, *, timeout: float | None = None) -> JobStatus:
        """The job's completed status, once it completes (see :meth:`watch`).

        :raises WaitTimeout: (a ``TimeoutError``) after *timeout* seconds.
        """
        return collections.deque(self.watch(namespace, job_id, timeout=timeout), maxlen=1).pop()

    def start(self, namespace: str, total: int, *, job_id: str | None = None) -> JobStatus:
        """Create a running job of *total* items (``total == 0`` completes at once).

        The id is generated (``job-`` + 32 hex digits) unless given.

        :raises JobExists: if *job_id* exists in *namespace* (never overwritten).
        :raises InvalidName, InvalidUpdate: for a bad name or total.
        """
        return self._run(self._start(namespace, total, job_id))

    def record(
        self,
        namespace: str,
        job_id: str,
        *,
        processed: int = 0,
        successful: int = 0,
        failed: int = 0,
        error: str | None = None,
        item: str | None = None,
    ) -> JobStatus:
        """Add the deltas as one atomic update and refresh ``updated_at``.

        *error* (allowed only with ``failed >= 1``) becomes ``last_error``,
        truncated to 1,000 characters. No deltas at all is a heartbeat. The
        update that brings ``successful + failed`` to ``total`` completes the job.

        With *item* (1-512 characters, no control characters) the update is
        about that one item and is idempotent (SPEC section 5): each delta is
        0 or 1; a redelivery changes nothing and returns the current status
        (on a completed job too); a retry that succeeds after a failure moves
        the count from ``failed`` to ``successful``; a successful item stays
        so. Retrying a call that raised ``StoreUnavailable`` is then safe.

        :raises JobNotFound, JobFinished: for an unknown or completed job.
        :raises InvalidUpdate: for a bad delta or item, or one that would break
            an invariant; nothing of it is applied.
        """
        return self._run(
            self._record(namespace, job_id, processed, successful, failed, error, item)
        )

    def record_many(self, updates: Iterable[Update]) -> builtins.list[JobStatus | JobtrackError]:
        """Apply many updates, in one round trip where the store allows (Redis: a pipeline).

        Every update is checked first: one malformed update rejects the batch
        and nothing is applied. Then each update is atomic on its own; the
        result lists, in order, each new status or the error (``JobNotFound``,
        ``JobFinished``, ``InvalidUpdate``...) that rejected that one update.
        """
        return self._run(self._record_many(updates))

    def heartbeat(self, namespace: str, job_id: str) -> JobStatus:
        """Refresh ``updated_at`` only (the same as ``record`` with no deltas)."""
        return self._run(self._record(namespace, job_id, 0, 0, 0, None))

    def abort(self, namespace: str, job_id: str, error: str) -> JobStatus:
        """Give up: count every remaining item as failed with *error*; completes the job.

        ``processed`` is left as it was.

        :raises JobNotFound, JobFinished: for an unknown or completed job.
        """
        return self._run(self._abort(namespace, job_id, error))

    def extend(self, namespace: str, job_id: str, more: int) -> JobStatus:
        """Add *more* (>= 1) items to a running job's total (SPEC section 6).

        For streams whose length is learnt on the way; refreshes ``updated_at``.

        :raises JobNotFound, JobFinished: for an unknown or completed job.
        :raises InvalidUpdate: for a bad *more*, or a total beyond 2**53 - 1.
        """
        return self._run(self._extend(namespace, job_id, more))

    def reap(self, namespace: str) -> builtins.list[JobStatus]:
        """Abort every stalled running job of *namespace*; return them (SPEC section 6).

        Stalled: not updated for longer than the tracker's ``stall_after``. Each
        is aborted with ``last_error`` "stalled: no update since <updated_at>",
        in one atomic step with the check: a job updated in between is left
        alone. (It reads the namespace's jobs page by page.)

        :raises ConfigurationError: if the tracker has no ``stall_after``.
        """
        return self._run(self._reap(namespace))

    def get(self, namespace: str, job_id: str) -> JobStatus:
        """The job's status.

        :raises JobNotFound: if *namespace* has no such job (whatever other
            namespaces hold).
        :raises StoreCorrupt: if the store holds something that is not a job there.
        """
        return self._run(self._get(namespace, job_id))

    def delete(self, namespace: str, job_id: str) -> bool:
        """Remove a job, running or not; True if it existed. Its id may be started again."""
        return self._run(self._delete(namespace, job_id))

    def list(
        self,
        namespace: str,
        *,
        status: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[JobStatus]:
        """One page of the namespace's jobs, newest first (by ``started_at``, then id).

        *status* keeps only ``"running"``, ``"completed"`` or ``"stalled"`` jobs
        (stalled: running and not updated for longer than ``stall_after``; on
        stores with per-status indexes, ``Features.statuses``, those are ordered
        by their last update, to the second, newest first). Expired
        jobs are never listed. Pass ``page.next_cursor`` back as *cursor* for
        the next page (with the same *status*); it is None on the last one.

        :raises InvalidArgument: for a bad *status*, *limit* or *cursor*.
        :raises ConfigurationError: for ``"stalled"`` without ``stall_after``.
        """
        return self._run(self._list(namespace, limit, cursor, status))

    def purge(self) -> int:
        """Reclaim the space of every job expired longer ago than ``remember_expired``.

        (Its expiry was fixed by the tracker that completed it; the
        ``remember_expired`` is this tracker's: give a sweeping tracker the
        service's setting, or jobs it still answers 410 for become unknown.)

        Stores that reclaim space by themselves (Redis key TTLs, memory) do it
        here at once too; the file store only here (``jobtrack serve`` calls it
        periodically). Returns how many jobs went.

        :raises ConfigurationError: for a store without expiry (``Features.expiry``).
        """
        return self._run(self._purge())

    def failed_items(
        self, namespace: str, job_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> Page[FailedItem]:
        """One page of the job's failed items, in the order they failed (SPEC section 5).

        An item that failed again with another error moves to the end with
        that error; one that later succeeded is not listed. Pass
        ``page.next_cursor`` back as *cursor* for the next page.

        :raises JobNotFound: for an unknown job.
        """
        return self._run(self._failed_items(namespace, job_id, limit, cursor))

    def errors(self, namespace: str, job_id: str) -> builtins.list[ErrorCount]:
        """The job's failures that carried an error, grouped by message, most frequent first.

        ``count`` is the failures with that message (``failed=5`` counts 5,
        ``abort`` the items it fails; a later successful retry does not
        subtract, a redelivery adds nothing). After 100 distinct messages the
        others count in one more group whose ``message`` is None.

        :raises JobNotFound: for an unknown job.
        """
        return self._run(self._errors(namespace, job_id))

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
