"""The storage protocol every backend implements."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ..errors import JobtrackError
from ..model import JobStatus
from ..rules import Delta

__all__ = ["ListKey", "Store"]

ListKey = tuple[int, str]
"""Where a listing resumes: ``(started_at in ms since the epoch, job_id)``.

Listings run newest first, ordered by this key descending; a store returns the
jobs whose key is strictly less than the one given.
"""


@runtime_checkable
class Store(Protocol):
    """**Protocol**: where jobs live, and how an update is made atomic there.

    Stores receive only validated names, validated deltas (errors already
    truncated) and "now" from the tracker's clock; they never read a clock of
    their own. Every method is safe to call from many threads at once; what
    else may share a store is the backend's scope (see the store table).
    """

    def create(self, job: JobStatus) -> None:
        """Insert *job* atomically if no job of its namespace has its id.

        :raises JobExists: if one has; the existing job is left untouched.
        """
        ...

    def update(self, namespace: str, job_id: str, delta: Delta, now: _dt.datetime) -> JobStatus:
        """Apply :func:`jobtrack.rules.apply` to the job as one atomic step.

        No other update to the job is interleaved; when the rules reject the
        update, nothing of it is stored. Returns the job as stored.

        :raises JobNotFound: if there is no such job.
        :raises JobFinished: if the job has completed.
        :raises InvalidUpdate: if an invariant would break.
        """
        ...

    def update_many(
        self, updates: Sequence[tuple[str, str, Delta]], now: _dt.datetime
    ) -> list[JobStatus | JobtrackError]:
        """Apply many updates, each atomic on its own, in as few round trips as the medium allows.

        Returns, in order, each new status or the error (``JobNotFound``,
        ``JobFinished``, ``InvalidUpdate``, ``StoreUnavailable``) that rejected
        that one update; the others are applied regardless.
        """
        ...

    def get(self, namespace: str, job_id: str) -> JobStatus | None:
        """The job as last stored (never a partial update), or None."""
        ...

    def delete(self, namespace: str, job_id: str) -> bool:
        """Remove the job atomically; True if it existed. Its id may be reused."""
        ...

    def list(self, namespace: str, limit: int, before: ListKey | None) -> list[JobStatus]:
        """Up to *limit* jobs of *namespace*, newest first, with keys below *before*.

        The order is ``(started_at, job_id)`` descending. A listing is not a
        snapshot: jobs created or deleted meanwhile may or may not appear.
        """
        ...

    def close(self) -> None:
        """Release connections and handles. Idempotent."""
        ...
