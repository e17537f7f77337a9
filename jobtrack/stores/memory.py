"""MemoryStore: jobs in a dict, for the threads of one process."""

from __future__ import annotations

import bisect
import datetime as _dt
import threading
from collections.abc import Sequence

from ..clock import to_ms
from ..errors import ConfigurationError, JobExists, JobNotFound, JobtrackError
from ..model import JobStatus
from ..rules import Delta, apply
from .protocol import Features, ListKey
from .registry import StoreURL

__all__ = ["MemoryStore"]


class MemoryStore:
    """Jobs held in memory, guarded by one lock.

    Shared by the threads of one process; lost when the process exits. Each
    update runs :func:`jobtrack.rules.apply` under the lock.
    """

    features = Features(blocking=False)
    """Never waits on I/O: async trackers call it directly on the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, dict[str, JobStatus]] = {}
        self._index: dict[str, list[ListKey]] = {}  # each namespace's keys, sorted

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
            key = (to_ms(job.started_at), job.job_id)
            bisect.insort(self._index.setdefault(job.namespace_name, []), key)

    def update(self, namespace: str, job_id: str, delta: Delta, now: _dt.datetime) -> JobStatus:
        """Apply *delta* under the store's lock."""
        with self._lock:
            jobs = self._jobs.get(namespace)
            job = jobs.get(job_id) if jobs is not None else None
            if job is None or jobs is None:
                raise JobNotFound(namespace, job_id)
            new = jobs[job_id] = apply(job, delta, now)
            return new

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
                    new = jobs[job_id] = apply(job, delta, now)
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

    def close(self) -> None:
        """Nothing to release; the jobs stay readable."""
