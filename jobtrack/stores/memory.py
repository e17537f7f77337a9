"""MemoryStore: jobs in a dict, for the threads of one process."""

from __future__ import annotations

import bisect
import builtins
import datetime as _dt
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from ..clock import to_ms
from ..errors import ConfigurationError, JobExists, JobNotFound, JobtrackError
from ..model import ErrorCount, FailedItem, JobStatus
from ..rules import Delta, ItemChange, add_count, apply, apply_item, error_group, errors_counted
from .protocol import Features, ListKey
from .registry import StoreURL

__all__ = ["JobItems", "MemoryStore"]

T = TypeVar("T")


class MemoryStore:
    """Jobs held in memory, guarded by one lock.

    Shared by the threads of one process; lost when the process exits. Each
    update runs :func:`jobtrack.rules.apply` under the lock.
    """

    features = Features(blocking=False, items=True)
    """Never waits on I/O: async trackers call it directly on the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, dict[str, JobStatus]] = {}
        self._index: dict[str, list[ListKey]] = {}  # each namespace's keys, sorted
        self._items: dict[tuple[str, str], JobItems] = {}  # jobs with items or errors

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

    def create(self, job: JobStatus) -> None:
        """Insert *job*; raise ``JobExists`` if its id is taken in its namespace."""
        with self._lock:
            jobs = self._jobs.setdefault(job.namespace_name, {})
            if job.job_id in jobs:
                raise JobExists(job.namespace_name, job.job_id)
            jobs[job.job_id] = job
            self._items.pop((job.namespace_name, job.job_id), None)
            key = (to_ms(job.started_at), job.job_id)
            bisect.insort(self._index.setdefault(job.namespace_name, []), key)

    def update(self, namespace: str, job_id: str, delta: Delta, now: _dt.datetime) -> JobStatus:
        """Apply *delta* under the store's lock."""
        with self._lock:
            jobs = self._jobs.get(namespace)
            job = jobs.get(job_id) if jobs is not None else None
            if job is None or jobs is None:
                raise JobNotFound(namespace, job_id)
            new = jobs[job_id] = self._apply(job, delta, now)
            return new

    def _apply(self, job: JobStatus, delta: Delta, now: _dt.datetime) -> JobStatus:
        """Apply *delta* (with the store's lock held): the job, its items and error counts."""
        if delta.item is None:
            new = apply(job, delta, now)
            if delta.error is not None:
                counts = self._job_items(job)
                counts.count(delta.error, errors_counted(job, delta, new), new.updated_at)
            return new
        items = self._items.get((job.namespace_name, job.job_id))
        state, error = (0, None) if items is None else items.states.get(delta.item, (0, None))
        change = apply_item(job, state, error, delta, now)
        if change is None:
            return job
        if items is None:
            items = self._job_items(job)
        items.change(delta.item, change, delta.error)
        return change.job

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
                jobs = self._jobs.get(namespace)
                job = jobs.get(job_id) if jobs is not None else None
                if job is None or jobs is None:
                    results.append(JobNotFound(namespace, job_id))
                    continue
                try:
                    new = jobs[job_id] = self._apply(job, delta, now)
                except JobtrackError as exc:
                    results.append(exc)
                else:
                    results.append(new)
        return results

    def get(self, namespace: str, job_id: str) -> JobStatus | None:
        """The job, or None."""
        jobs = self._jobs.get(namespace)
        return jobs.get(job_id) if jobs is not None else None

    def delete(self, namespace: str, job_id: str) -> bool:
        """Remove the job; True if it existed."""
        with self._lock:
            jobs = self._jobs.get(namespace)
            job = jobs.pop(job_id, None) if jobs is not None else None
            if job is None:
                return False
            self._items.pop((namespace, job_id), None)
            keys = self._index[namespace]
            del keys[bisect.bisect_left(keys, (to_ms(job.started_at), job_id))]
            return True

    def list(self, namespace: str, limit: int, before: ListKey | None) -> list[JobStatus]:
        """Up to *limit* jobs, newest first, below *before*: a slice of the sorted index."""
        with self._lock:
            keys = self._index.get(namespace, [])
            end = len(keys) if before is None else bisect.bisect_left(keys, before)
            jobs = self._jobs[namespace] if keys else {}
            return [jobs[job_id] for _, job_id in reversed(keys[max(0, end - limit) : end])]

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
        self.listed: dict[str, tuple[int, FailedItem]] = {}  # failed item -> (position, entry)
        self.order: list[tuple[int, str]] = []  # (position, item), growing; stale entries skipped
        self.position = 0
        self.counts: dict[str | None, tuple[int, _dt.datetime, _dt.datetime]] = {}

    def change(self, item: str, change: ItemChange, error: str | None) -> None:
        """Store what :func:`apply_item` decided for *item*."""
        self.states[item] = (change.state, change.error)
        at = change.job.updated_at
        if change.listed:
            self.position += 1
            self.listed[item] = (self.position, FailedItem(item, change.error, at))
            self.order.append((self.position, item))
        elif change.listed is False:
            del self.listed[item]
        if len(self.order) > 2 * len(self.listed) + 64:  # drop stale entries, O(1) amortized
            self.order = [(pos, it) for pos, it in self.order if self._listed_at(it) == pos]
        if change.counted and error is not None:
            self.count(error, change.counted, at)

    def _listed_at(self, item: str) -> int | None:
        entry = self.listed.get(item)
        return None if entry is None else entry[0]

    def count(self, message: str | None, n: int, at: _dt.datetime) -> None:
        """Count *n* failures under *message* (see :func:`jobtrack.rules.error_group`)."""
        if message is None or n == 0:
            return
        group = error_group(
            message, message in self.counts, len(self.counts) - (None in self.counts)
        )
        count, first, _ = self.counts.get(group, (0, at, at))
        self.counts[group] = (add_count(count, n), first, at)

    def page(self, limit: int, after: int | None) -> builtins.list[tuple[int, FailedItem]]:
        """Up to *limit* listed failed items after position *after*."""
        start = 0 if after is None else bisect.bisect_right(self.order, (after, "\U0010ffff"))
        page = []
        for pos, item in self.order[start:]:
            if self._listed_at(item) == pos:
                page.append(self.listed[item])
                if len(page) == limit:
                    break
        return page

    def groups(self) -> builtins.list[ErrorCount]:
        """The error groups, unsorted."""
        return [ErrorCount(m, c, first, last) for m, (c, first, last) in self.counts.items()]
