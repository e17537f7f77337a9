"""The storage protocol every backend implements, and what a store declares beyond it."""

from __future__ import annotations

import builtins
import datetime as _dt
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs

from ..clock import to_ms
from ..errors import JobtrackError
from ..model import ErrorCount, FailedItem, JobStatus
from ..rules import Delta

__all__ = [
    "BEAT_MS",
    "COMPLETED",
    "RUNNING",
    "STALLED",
    "STATUSES",
    "AsyncStore",
    "Features",
    "ItemStore",
    "ListKey",
    "PushStore",
    "StatusStore",
    "Store",
    "beat_key",
    "entry_differs",
    "features_of",
    "has_status",
    "list_key",
    "stalled_before",
]

ListKey = tuple[int, str]
"""Where a listing resumes: ``(started_at in ms since the epoch, job_id)``.

Listings run newest first, ordered by this key descending; a store returns the
jobs whose key is strictly less than the one given. (Listings of stalled jobs
use :func:`beat_key` instead.)
"""

RUNNING, COMPLETED, STALLED = "running", "completed", "stalled"
STATUSES = (RUNNING, COMPLETED, STALLED)
"""The status filters of ``list`` (SPEC section 7), in the order they are documented."""

BEAT_MS = 1000
"""The grain of the stalled index: ``updated_at`` rounded down to the second.

A store moves a running job in its stalled index only when an update takes
``updated_at`` into another second: at most once a second per job, however
often it is recorded.
"""


def list_key(job: JobStatus) -> ListKey:
    """A job's key in a listing: ``(started ms, job id)``."""
    return to_ms(job.started_at), job.job_id


def stalled_before(before: ListKey | None, cutoff: int) -> ListKey:
    """Where a page of the stalled index starts: below *before*, and within *cutoff*'s second.

    Beats are rounded down to the second, so a job updated before *cutoff*
    (ms) has a beat at most the cutoff's second: the page starts just above
    it, and each job is then checked exactly (:func:`has_status`).
    """
    top = (cutoff - cutoff % BEAT_MS + BEAT_MS, "")
    return top if before is None or before > top else before


def has_status(job: JobStatus, status: str, cutoff: int | None) -> bool:
    """Whether *job* is what a listing of *status* wants (stalled: updated before *cutoff* ms)."""
    if status == COMPLETED:
        return job.is_finished
    if job.is_finished:
        return False
    return cutoff is None or to_ms(job.updated_at) < cutoff


def entry_differs(job: JobStatus, status: str | None, key: ListKey) -> bool:
    """Whether the index entry *key* a listing of *status* met is out of date for *job*."""
    if status == STALLED:
        return job.is_finished or beat_key(job) != key
    return status is not None and job.is_finished != (status == COMPLETED)


def beat_key(job: JobStatus) -> ListKey:
    """A running job's key in the stalled index: ``(updated ms rounded down to BEAT_MS, id)``."""
    ms = to_ms(job.updated_at)
    return ms - ms % BEAT_MS, job.job_id


@attrs.frozen
class Features:
    """What a store can do beyond the protocol; callers read this, never its class.

    * ``blocking``: its calls wait on I/O, so async trackers run them in a
      worker thread (False: called directly on the event loop);
    * ``native_async``: it offers ``open_async()``, an :class:`AsyncStore`
      over the same data, used by async trackers instead of a thread;
    * ``processes``: processes (and, for network stores, hosts) may share its
      jobs, by opening its ``url`` (the contract's multi-process checks apply);
    * ``expiry``: it keeps ``expires_at`` (its ``update`` and ``create`` store
      what :data:`Delta.retain <jobtrack.rules.Delta>` gives), reclaims
      expired jobs, by itself or in ``purge(now)``, and lets ``create`` replace
      a forgotten job (SPEC section 6; see :class:`StatusStore`);
    * ``statuses``: it keeps per-status indexes moved atomically with each job,
      and has ``list_status`` (:class:`StatusStore`): a page of running,
      completed or stalled jobs costs the same whatever the namespace holds.
      Trackers filter the whole listing of other stores;
    * ``checks``: it can tell what is wrong with its setup (``check_setup() ->
      str | None``, a warning for the person running it: say, a Redis that
      evicts keys); ``jobtrack serve`` prints it at start;
    * ``push``: it can wait for a job to change (:class:`PushStore`): ``wait``
      and ``watch`` block on it instead of reading the job again and again;
    * ``items``: it keeps item states (SPEC section 5): its ``update`` honours
      ``Delta.item`` through :func:`jobtrack.rules.apply_item`, and it has the
      methods of :class:`ItemStore`. Trackers refuse item calls on other stores.
    """

    blocking: bool = True
    native_async: bool = False
    processes: bool = False
    expiry: bool = False
    checks: bool = False
    push: bool = False
    items: bool = False
    statuses: bool = False


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


class ItemStore(Store, Protocol):
    """**Protocol**: a :class:`Store` that keeps items (``Features(items=True)``).

    Its ``update`` applies a delta with an ``item`` through
    :func:`jobtrack.rules.apply_item` in the same atomic step as the job:
    the item's state, its failed-items entry and the error counts change with
    the counters or not at all. Every failure with an error (anonymous and
    aborts too) is counted as :func:`jobtrack.rules.errors_counted` says.
    """

    def failed_items(
        self, namespace: str, job_id: str, limit: int, after: int | None
    ) -> builtins.list[tuple[int, FailedItem]] | None:
        """Up to *limit* failed items listed after position *after*, in the order they failed.

        Each comes with its position (a number that grows with each listing);
        None if there is no such job.
        """
        ...

    def errors(self, namespace: str, job_id: str) -> builtins.list[ErrorCount] | None:
        """The job's error groups, in any order; None if there is no such job."""
        ...


class StatusStore(Store, Protocol):
    """**Protocol**: what ``Features(statuses=True)`` and ``Features(expiry=True)`` add.

    With ``statuses``: ``list_status``. With ``expiry``: ``purge``, and
    ``create`` takes *forgotten_before*.
    """

    def create(self, job: JobStatus, forgotten_before: _dt.datetime | None = None) -> None:
        """:meth:`Store.create`, where a forgotten job does not count (SPEC section 6).

        A job of that id whose ``expires_at`` is at or before *forgotten_before*
        is forgotten: it is replaced, with its items and error groups, in the
        same atomic step.
        """
        ...

    def list_status(
        self, namespace: str, status: str, limit: int, before: ListKey | None, cutoff: int | None
    ) -> builtins.list[JobStatus]:
        """Up to *limit* jobs of *namespace* whose status is *status*, below *before*.

        ``running`` and ``completed``: ordered as :meth:`Store.list`.
        ``stalled``: running jobs whose ``updated_at`` (ms) is below *cutoff*,
        ordered by :func:`beat_key` descending. Every job returned is read
        afresh and has that status (an index entry is only a hint).
        """
        ...

    def purge(self, expired_before: _dt.datetime) -> int:
        """Remove every job of every namespace whose ``expires_at`` is at or before that time.

        Each removal is atomic, as :meth:`Store.delete`. Returns how many went.
        """
        ...


class PushStore(Store, Protocol):
    """**Protocol**: what ``Features(push=True)`` adds: waiting for a job to change."""

    def wait_change(
        self, namespace: str, job_id: str, seen: JobStatus | None, timeout: float
    ) -> None:
        """Return once the job may differ from *seen*, or after *timeout* seconds.

        A change may be reported that is none (the caller reads the job
        again); every real change is reported. One waiting mechanism serves
        every waiter of the store (SPEC section 8).
        """
        ...


class AsyncStore(Protocol):
    """**Protocol**: the awaitable twin of :class:`Store`, with the same promises.

    Offered by stores with ``Features(native_async=True)`` through
    ``open_async()``; the others are run in a worker thread (or directly, when
    they do not block).
    """

    async def create(self, job: JobStatus, forgotten_before: _dt.datetime | None = None) -> None:
        """See :meth:`Store.create` and :meth:`StatusStore.create`."""
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

    async def failed_items(
        self, namespace: str, job_id: str, limit: int, after: int | None
    ) -> builtins.list[tuple[int, FailedItem]] | None:
        """See :meth:`ItemStore.failed_items`."""
        ...

    async def errors(self, namespace: str, job_id: str) -> builtins.list[ErrorCount] | None:
        """See :meth:`ItemStore.errors`."""
        ...

    async def list_status(
        self, namespace: str, status: str, limit: int, before: ListKey | None, cutoff: int | None
    ) -> builtins.list[JobStatus]:
        """See :meth:`StatusStore.list_status`."""
        ...

    async def purge(self, expired_before: _dt.datetime) -> int:
        """See :meth:`StatusStore.purge`."""
        ...

    async def wait_change(
        self, namespace: str, job_id: str, seen: JobStatus | None, timeout: float
    ) -> None:
        """See :meth:`PushStore.wait_change` (stores with ``Features(push=True)``)."""
        ...

    async def aclose(self) -> None:
        """Release this view's own connections (the sync store is closed separately)."""
        ...


def features_of(store: object) -> Features:
    """The features *store* declares (the defaults when it declares none)."""
    features = getattr(store, "features", None)
    return features if isinstance(features, Features) else DEFAULT_FEATURES
