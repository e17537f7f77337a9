"""MemoryStore: jobs in a dict, for the threads of one process."""

from __future__ import annotations

import builtins
import datetime as _dt
import heapq
import itertools
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from sortedcontainers import SortedDict, SortedList

from ..clock import to_ms
from ..errors import ConfigurationError, JobExists, JobNotFound, JobtrackError
from ..model import ErrorCount, FailedItem, JobStatus, NamespaceCounts
from ..rules import Delta, ItemChange, add_count, apply, apply_item, error_group, errors_counted
from .protocol import (
    COMPLETED,
    RUNNING,
    STALLED,
    Features,
    ListKey,
    beat_key,
    list_key,
    stalled_before,
)
from .registry import StoreURL

__all__ = ["JobItems", "MemoryStore"]

T = TypeVar("T")
EXPIRING = "expiring"  # the per-namespace index of the completed jobs that expire


class MemoryStore:
    """Jobs held in memory, guarded by one lock.

    Shared by the threads of one process; lost when the process exits. Each
    update runs :func:`jobtrack.rules.apply` under the lock.
    """

    features = Features(
        blocking=False, items=True, expiry=True, statuses=True, push=True, namespaces=True
    )
    """Never waits on I/O: async trackers call it directly on the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # every waiter of every job
        self._waiting = 0  # how many wait on it: an update with none notifies nobody
        self._jobs: dict[str, dict[str, JobStatus]] = {}
        # sorted keys: (ns, None) every job's, (ns, RUNNING) / (ns, COMPLETED) by status,
        # (ns, STALLED) every running job's beat_key (SortedList: a move is O(log n)),
        # (ns, EXPIRING) the completed jobs that expire, as (expires ms, id)
        self._index: dict[tuple[str, str | None], SortedList[ListKey]] = {}
        self._names: SortedList[str] = SortedList()  # the namespaces that hold jobs
        self._items: dict[tuple[str, str], JobItems] = {}  # jobs with items or errors
        self._expiring: list[tuple[int, str, str]] = []  # heap: (expires ms, ns, id)

    def __repr__(self) -> str:
        return "MemoryStore()"

    @classmethod
    def from_url(cls, url: StoreURL) -> MemoryStore:
        """The factory of ``memory://`` (which takes nothing after the scheme)."""
        if url.netloc or url.path or url.query:
            raise ConfigurationError(
                f"a memory store URL takes nothing after 'memory://': {url.url!r}"
            )
        return cls()

    def create(self, job: JobStatus, forgotten_before: _dt.datetime | None = None) -> None:
        """Insert *job*; ``JobExists`` if a job not forgotten has its id in its namespace."""
        with self._lock:
            jobs = self._namespace(job.namespace_name)
            old = jobs.get(job.job_id)
            if old is not None:
                expires, before = old.expires_at, forgotten_before  # forgotten: expired by then
                if before is None or expires is None or expires > before:
                    raise JobExists(job.namespace_name, job.job_id)
                self._remove(old)
                jobs = self._namespace(job.namespace_name)
            jobs[job.job_id] = job
            self._items.pop((job.namespace_name, job.job_id), None)
            ns, key = job.namespace_name, list_key(job)
            self._keys(ns, None).add(key)
            if job.is_finished:
                self._completed(job, key, None)
            else:
                self._keys(ns, RUNNING).add(key)
                self._keys(ns, STALLED).add(beat_key(job))

    def _namespace(self, namespace: str) -> dict[str, JobStatus]:
        """The jobs of *namespace*, made (and named) on its first job."""
        jobs = self._jobs.get(namespace)
        if jobs is None:
            jobs = self._jobs[namespace] = {}
            self._names.add(namespace)
        return jobs

    def update(self, namespace: str, job_id: str, delta: Delta, now: _dt.datetime) -> JobStatus:
        """Apply *delta* under the store's lock."""
        with self._lock:
            return self._apply(namespace, job_id, delta, now)

    def _apply(self, namespace: str, job_id: str, delta: Delta, now: _dt.datetime) -> JobStatus:
        """Apply *delta* (with the store's lock held): the job, its items, error counts, indexes."""
        jobs = self._jobs.get(namespace)
        job = jobs.get(job_id) if jobs is not None else None
        if jobs is None or job is None:
            raise JobNotFound(namespace, job_id)
        if delta.item is None:
            new = apply(job, delta, now)
            if delta.error is not None:
                counts = self._job_items(job)
                counts.count(delta.error, errors_counted(job, delta, new), new.updated_at)
        else:  # an item
            items = self._items.get((job.namespace_name, job.job_id))
            state, error = (0, None) if items is None else items.states.get(delta.item, (0, None))
            change = apply_item(job, state, error, delta, now)
            if change is None:
                return job
            if items is None:
                items = self._job_items(job)
            items.change(delta.item, change, delta.error)
            new = change.job
        jobs[job_id] = new
        if self._waiting:
            self._changed.notify_all()
        if new.is_finished:  # it completes now (a completed job raised JobFinished)
            self._unindex(job, RUNNING)
            self._completed(new, list_key(new), delta.retain)
        elif new.updated_at != job.updated_at and (old_beat := beat_key(job)) != (
            new_beat := beat_key(new)
        ):  # another second
            beats = self._index[job.namespace_name, STALLED]
            beats.remove(old_beat)
            beats.add(new_beat)
        return new

    def _completed(self, job: JobStatus, key: ListKey, retain: tuple[int, int] | None) -> None:
        """Index a job that has completed; reclaim a few jobs expired long enough (lazily)."""
        self._keys(job.namespace_name, COMPLETED).add(key)
        if job.expires_at is None:
            return
        ms = to_ms(job.expires_at)
        self._keys(job.namespace_name, EXPIRING).add((ms, job.job_id))
        heapq.heappush(self._expiring, (ms, job.namespace_name, job.job_id))
        if retain is not None:  # two per completion: the heap never grows for long
            self._reclaim(to_ms(job.updated_at) - retain[1], 2)

    def _reclaim(self, expired_before: int, most: int) -> int:
        """Remove up to *most* jobs whose ``expires_at`` is at or before *expired_before* (ms)."""
        gone = 0
        heap = self._expiring
        while heap and heap[0][0] <= expired_before and gone < most:
            ms, ns, job_id = heapq.heappop(heap)
            job = self._jobs.get(ns, {}).get(job_id)
            if job is not None and job.expires_at is not None and to_ms(job.expires_at) == ms:
                self._remove(job)
                gone += 1
        return gone

    def _keys(self, namespace: str, status: str | None) -> SortedList[ListKey]:
        """The index of *status* in *namespace* (made on first use)."""
        keys = self._index.get((namespace, status))
        if keys is None:
            keys = self._index[namespace, status] = SortedList()
        return keys

    def _unindex(self, job: JobStatus, status: str) -> None:
        """Take a job out of the *status* index (running: the stalled index too)."""
        ns = job.namespace_name
        self._index[ns, status].remove(list_key(job))
        if status == RUNNING:
            self._index[ns, STALLED].remove(beat_key(job))

    def _remove(self, job: JobStatus) -> None:
        """Forget *job*: its document, items and index entries (with the lock held)."""
        ns = job.namespace_name
        del self._jobs[ns][job.job_id]
        self._items.pop((ns, job.job_id), None)
        keys = self._index[ns, None]
        keys.remove(list_key(job))
        self._unindex(job, COMPLETED if job.is_finished else RUNNING)
        if job.expires_at is not None:
            self._index[ns, EXPIRING].remove((to_ms(job.expires_at), job.job_id))
        if not keys:  # the namespace is empty: nothing of it stays
            del self._jobs[ns]
            self._names.remove(ns)
            for name in (None, RUNNING, COMPLETED, STALLED, EXPIRING):
                self._index.pop((ns, name), None)

    def wait_change(
        self, namespace: str, job_id: str, seen: JobStatus | None, timeout: float
    ) -> None:
        """Return once the job is not *seen* any more (updated, gone), or after *timeout* s."""
        with self._changed:
            self._waiting += 1
            try:
                self._changed.wait_for(lambda: self.get(namespace, job_id) != seen, timeout)
            finally:
                self._waiting -= 1

    def purge(self, expired_before: _dt.datetime) -> int:
        """Remove every job expired at or before *expired_before*."""
        with self._lock:
            return self._reclaim(to_ms(expired_before), len(self._expiring))

    def _job_items(self, job: JobStatus) -> JobItems:
        """The job's items, made on its first item or error."""
        key = (job.namespace_name, job.job_id)
        items = self._items.get(key)
        if items is None:
            items = self._items[key] = JobItems()
        return items

    def update_many(
        self, updates: Sequence[tuple[str, str, Delta]], now: _dt.datetime
    ) -> list[JobStatus | JobtrackError]:
        """Apply each update under one hold of the lock; report each result."""
        results: list[JobStatus | JobtrackError] = []
        with self._lock:
            for namespace, job_id, delta in updates:
                try:
                    results.append(self._apply(namespace, job_id, delta, now))
                except JobtrackError as exc:
                    results.append(exc)
        return results

    def get(self, namespace: str, job_id: str) -> JobStatus | None:
        """The job, or None."""
        jobs = self._jobs.get(namespace)
        return jobs.get(job_id) if jobs is not None else None

    def delete(self, namespace: str, job_id: str) -> bool:
        """Remove the job; True if it existed."""
        with self._lock:
            job = self.get(namespace, job_id)
            if job is None:
                return False
            self._remove(job)
            self._changed.notify_all()
            return True

    def list(self, namespace: str, limit: int, before: ListKey | None) -> list[JobStatus]:
        """Up to *limit* jobs, newest first, below *before*: a slice of the sorted index."""
        return self.list_status(namespace, None, limit, before, None)

    def list_status(
        self,
        namespace: str,
        status: str | None,
        limit: int,
        before: ListKey | None,
        cutoff: int | None,
    ) -> builtins.list[JobStatus]:
        """A slice of the namespace's index (of *status*; stalled: running jobs by beat)."""
        with self._lock:
            keys = self._index.get((namespace, status))
            if not keys:
                return []
            if cutoff is not None:  # stalled: beats up to the cutoff's, then each job checked
                before = stalled_before(before, cutoff)
            jobs = self._jobs[namespace]
            found: builtins.list[JobStatus] = []
            for _, job_id in keys.irange(maximum=before, inclusive=(True, False), reverse=True):
                job = jobs[job_id]
                if cutoff is None or to_ms(job.updated_at) < cutoff:
                    found.append(job)
                    if len(found) == limit:
                        break
            return found

    def namespaces(
        self, limit: int, after: str | None, now: int, beat: int | None
    ) -> builtins.list[NamespaceCounts]:
        """A slice of the sorted names; each count a length or a bisection of an index."""
        with self._lock:
            names = self._names.irange(minimum=after, inclusive=(False, False))
            return [self._counts(ns, now, beat) for ns in itertools.islice(names, limit)]

    def _counts(self, ns: str, now: int, beat: int | None) -> NamespaceCounts:
        """The counts of a namespace that holds jobs: O(log n), read without making an index."""
        empty: SortedList[ListKey] = SortedList()
        running, completed, beats, expiring = (
            self._index.get((ns, name), empty) for name in (RUNNING, COMPLETED, STALLED, EXPIRING)
        )
        stalled = None if beat is None else beats.bisect_left((beat, ""))
        expired = expiring.bisect_left((now + 1, ""))
        return NamespaceCounts(ns, len(running), stalled, len(completed) - expired)

    def failed_items(
        self, namespace: str, job_id: str, limit: int, after: int | None
    ) -> builtins.list[tuple[int, FailedItem]] | None:
        """A page of the job's failed items, by the position they were listed at."""
        return self._read_items(namespace, job_id, lambda items: items.page(limit, after))

    def errors(self, namespace: str, job_id: str) -> builtins.list[ErrorCount] | None:
        """The job's error groups."""
        return self._read_items(namespace, job_id, JobItems.groups)

    def _read_items(
        self, namespace: str, job_id: str, read: Callable[[JobItems], builtins.list[T]]
    ) -> builtins.list[T] | None:
        """*read* the job's items under the lock; None if there is no such job."""
        with self._lock:
            if self.get(namespace, job_id) is None:
                return None
            items = self._items.get((namespace, job_id))
            return [] if items is None else read(items)

    def close(self) -> None:
        """Nothing to release; the jobs stay readable."""


class JobItems:
    """One job's items, failed-items list and error counts, as plain Python values."""

    def __init__(self) -> None:
        self.states: dict[str, tuple[int, str | None]] = {}  # item -> (state, error)
        self.listed: SortedDict[int, FailedItem] = SortedDict()  # position -> failed item
        self.positions: dict[str, int] = {}  # failed item -> its position
        self.position = 0
        self.counts: dict[str | None, tuple[int, _dt.datetime, _dt.datetime]] = {}

    def change(self, item: str, change: ItemChange, error: str | None) -> None:
        """Store what :func:`apply_item` decided for *item*."""
        self.states[item] = (change.state, change.error)
        at = change.job.updated_at
        if change.listed is not None:  # (re)listed last, or no longer failed
            old = self.positions.pop(item, None)
            if old is not None:
                del self.listed[old]
        if change.listed:
            self.position += 1
            self.positions[item] = self.position
            self.listed[self.position] = FailedItem(item, change.error, at)
        if change.counted and error is not None:
            self.count(error, change.counted, at)

    def count(self, message: str, n: int, at: _dt.datetime) -> None:
        """Count *n* failures under *message* (see :func:`jobtrack.rules.error_group`)."""
        if n == 0:
            return
        group = error_group(
            message, message in self.counts, len(self.counts) - (None in self.counts)
        )
        count, first, _ = self.counts.get(group, (0, at, at))
        self.counts[group] = (add_count(count, n), first, at)

    def page(self, limit: int, after: int | None) -> builtins.list[tuple[int, FailedItem]]:
        """Up to *limit* listed failed items after position *after*: O(log n + limit)."""
        positions = self.listed.irange(minimum=after, inclusive=(False, True))
        return [(pos, self.listed[pos]) for pos in itertools.islice(positions, limit)]

    def groups(self) -> builtins.list[ErrorCount]:
        """The error groups, unsorted."""
        return [ErrorCount(m, c, first, last) for m, (c, first, last) in self.counts.items()]
