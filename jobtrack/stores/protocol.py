"""The storage protocol every backend implements, and what a store declares beyond it."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs

from ..errors import JobtrackError
from ..model import JobStatus
from ..rules import Delta

__all__ = ["AsyncStore", "Features", "ListKey", "Store", "features_of"]

ListKey = tuple[int, str]
"""Where a listing resumes: ``(started_at in ms since the epoch, job_id)``.

Listings run newest first, ordered by this key descending; a store returns the
jobs whose key is strictly less than the one given.
"""


@attrs.frozen
class Features:
    """What a store can do beyond the protocol; callers read this, never its class.

    * ``blocking``: its calls wait on I/O, so async trackers run them in a
      worker thread (False: called directly on the event loop);
    * ``native_async``: it offers ``open_async()``, an :class:`AsyncStore`
      over the same data, used by async trackers instead of a thread;
    * ``processes``: processes (and, for network stores, hosts) may share its
      jobs, by opening its ``url`` (the contract's multi-process checks apply);
    * ``push``: it can notify watchers of changes (planned: SPEC section 8);
    * ``expiry``: it reclaims expired jobs by itself (planned: SPEC section 6).
    """

    blocking: bool = True
    native_async: bool = False
    processes: bool = False
    push: bool = False
    expiry: bool = False


DEFAULT_FEATURES = Features()


@runtime_checkable
class Store(Protocol):
    """**Protocol**: where jobs live, and how an update is made atomic there.

    Stores receive only validated names, validated deltas (errors already
    truncated) and "now" from the tracker's clock; they never read a clock of
    their own. Every method is safe to call from many threads at once; what
    else may share a store is the backend's scope (see the store table).

    A store may also have ``features`` (a :class:`Features`; without it, the
    defaults: blocking, threads of one process), ``url`` (the URL that opens
    the same data elsewhere) and, with ``native_async``, ``open_async()``.
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
        :raises StoreCorrupt: if the stored job is not a valid job.
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
        """The job as last stored (never a partial update), or None.

        :raises StoreCorrupt: if the stored job is not a valid job.
        """
        ...

    def delete(self, namespace: str, job_id: str) -> bool:
        """Remove the job atomically; True if it existed. Its id may be reused."""
        ...

    def list(self, namespace: str, limit: int, before: ListKey | None) -> list[JobStatus]:
        """Up to *limit* jobs of *namespace*, newest first, with keys below *before*.

        The order is ``(started_at, job_id)`` descending. A listing is not a
        snapshot: jobs created or deleted meanwhile may or may not appear. A
        corrupt job is skipped with a logged warning.
        """
        ...

    def close(self) -> None:
        """Release connections and handles. Idempotent."""
        ...


class AsyncStore(Protocol):
    """**Protocol**: the awaitable twin of :class:`Store`, with the same promises.

    Offered by stores with ``Features(native_async=True)`` through
    ``open_async()``; the others are run in a worker thread (or directly, when
    they do not block).
    """

    async def create(self, job: JobStatus) -> None:
        """See :meth:`Store.create`."""
        ...

    async def update(
        self, namespace: str, job_id: str, delta: Delta, now: _dt.datetime
    ) -> JobStatus:
        """See :meth:`Store.update`."""
        ...

    async def update_many(
        self, updates: Sequence[tuple[str, str, Delta]], now: _dt.datetime
    ) -> list[JobStatus | JobtrackError]:
        """See :meth:`Store.update_many`."""
        ...

    async def get(self, namespace: str, job_id: str) -> JobStatus | None:
        """See :meth:`Store.get`."""
        ...

    async def delete(self, namespace: str, job_id: str) -> bool:
        """See :meth:`Store.delete`."""
        ...

    async def list(self, namespace: str, limit: int, before: ListKey | None) -> list[JobStatus]:
        """See :meth:`Store.list`."""
        ...

    async def aclose(self) -> None:
        """Release this view's own connections (the sync store is closed separately)."""
        ...


def features_of(store: object) -> Features:
    """The features *store* declares (the defaults when it declares none)."""
    features = getattr(store, "features", None)
    return features if isinstance(features, Features) else DEFAULT_FEATURES
