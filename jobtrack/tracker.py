"""JobTracker: the public, synchronous face of jobtrack."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from .errors import JobtrackError
from .model import JobStatus, Page, Update
from .operations import Step, TrackerBase

__all__ = ["JobTracker"]


class JobTracker(TrackerBase):
    """Track upload jobs in *store* (a store object or a URL for :func:`open_store`).

    Every call validates its arguments before the store sees them, takes "now"
    from *clock* (default: the system clock in UTC, which freezegun moves), and
    is safe from many threads; processes and hosts may share a job as far as
    the store's scope allows. Mutating calls return the resulting status.
    The operations themselves live in :mod:`jobtrack.operations`, shared with
    :class:`AsyncJobTracker`; this class only calls the store.
    """

    def _run(self, step: Step) -> Any:
        done, result = step.follow(getattr(self.store, step.method)(*step.args))
        return result if done else self._run(result)

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
    ) -> JobStatus:
        """Add the deltas as one atomic update and refresh ``updated_at``.

        *error* (allowed only with ``failed >= 1``) becomes ``last_error``,
        truncated to 1,000 characters. No deltas at all is a heartbeat. The
        update that brings ``successful + failed`` to ``total`` completes the job.

        :raises JobNotFound, JobFinished: for an unknown or completed job.
        :raises InvalidUpdate: for a bad delta, or one that would break an
            invariant; nothing of it is applied.
        """
        return self._run(self._record(namespace, job_id, processed, successful, failed, error))

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

    def list(self, namespace: str, *, limit: int = 100, cursor: str | None = None) -> Page:
        """One page of the namespace's jobs, newest first (by ``started_at``, then id).

        Pass ``page.next_cursor`` back as *cursor* for the next page; it is None
        on the last one.
        """
        return self._run(self._list(namespace, limit, cursor))

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
