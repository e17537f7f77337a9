"""AsyncJobTracker: the awaitable face of jobtrack, over the same stores."""

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
from .errors import JobNotFound, JobtrackError
from .model import JobStatus, Page, Update
from .names import validate_name
from .rules import new_job
from .stores.aio import AsyncStore, async_store_for
from .stores.protocol import Store
from .tracker import JobTracker, resolve_store

__all__ = ["AsyncJobTracker"]


class AsyncJobTracker:
    """The same methods and semantics as :class:`JobTracker`, awaitable.

    *store* is a store object or URL, exactly as for :class:`JobTracker`. The
    memory store is called directly, Redis through ``redis.asyncio`` with the
    same Lua scripts, and the file store (or any other) in a worker thread, so
    the event loop never blocks. Argument checks and job rules are shared with
    the sync tracker.
    """

    def __init__(self, store: Store | str, *, clock: Clock | None = None) -> None:
        self.store: Store = resolve_store(store)
        self._now = make_now(clock)
        self._async: AsyncStore = async_store_for(self.store)

    @classmethod
    def from_tracker(cls, tracker: JobTracker) -> AsyncJobTracker:
        """An async tracker over the same store and clock as a sync *tracker*."""
        new = cls.__new__(cls)
        new.store = tracker.store
        new._now = tracker._now
        new._async = async_store_for(tracker.store)
        return new

    def __repr__(self) -> str:
        return f"AsyncJobTracker({self.store!r})"

    async def start(self, namespace: str, total: int, *, job_id: str | None = None) -> JobStatus:
        """Create a running job; see :meth:`JobTracker.start`."""
        ns, count, jid = check_start(namespace, total, job_id)
        job = new_job(ns, jid, count, self._now())
        await self._async.create(job)
        return job

    async def record(
        self,
        namespace: str,
        job_id: str,
        *,
        processed: int = 0,
        successful: int = 0,
        failed: int = 0,
        error: str | None = None,
    ) -> JobStatus:
        """Add the deltas as one atomic update; see :meth:`JobTracker.record`."""
        ns, jid, delta = check_record(namespace, job_id, processed, successful, failed, error)
        return await self._async.update(ns, jid, delta, self._now())

    async def record_many(
        self, updates: Iterable[Update]
    ) -> builtins.list[JobStatus | JobtrackError]:
        """Apply many updates; see :meth:`JobTracker.record_many`."""
        checked = check_updates(updates)
        return await self._async.update_many(checked, self._now())

    async def heartbeat(self, namespace: str, job_id: str) -> JobStatus:
        """Refresh ``updated_at`` only."""
        return await self.record(namespace, job_id)

    async def abort(self, namespace: str, job_id: str, error: str) -> JobStatus:
        """Fail every remaining item with *error*; see :meth:`JobTracker.abort`."""
        ns, jid, delta = check_abort(namespace, job_id, error)
        return await self._async.update(ns, jid, delta, self._now())

    async def get(self, namespace: str, job_id: str) -> JobStatus:
        """The job's status; ``JobNotFound`` if *namespace* has no such job."""
        ns = validate_name(namespace, "namespace")
        jid = validate_name(job_id, "job id")
        job = await self._async.get(ns, jid)
        if job is None:
            raise JobNotFound(ns, jid)
        return job

    async def delete(self, namespace: str, job_id: str) -> bool:
        """Remove a job; True if it existed."""
        ns = validate_name(namespace, "namespace")
        jid = validate_name(job_id, "job id")
        return await self._async.delete(ns, jid)

    async def list(self, namespace: str, *, limit: int = 100, cursor: str | None = None) -> Page:
        """One page of jobs, newest first; see :meth:`JobTracker.list`."""
        ns = validate_name(namespace, "namespace")
        size = check_limit(limit)
        before = decode_cursor(cursor)
        jobs = await self._async.list(ns, size + 1, before)
        if len(jobs) > size:
            return Page(tuple(jobs[:size]), encode_cursor(jobs[size - 1]))
        return Page(tuple(jobs), None)

    async def aclose(self) -> None:
        """Close the async connections and the store."""
        await self._async.aclose()
        self.store.close()

    async def __aenter__(self) -> AsyncJobTracker:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
