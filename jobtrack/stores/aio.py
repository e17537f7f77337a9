"""Async views of the stores, for :class:`jobtrack.AsyncJobTracker`.

* memory: called directly (it never blocks: a dict and a lock held for microseconds);
* Redis: ``redis.asyncio`` natively, with the same Lua scripts;
* files, and any other store: the sync store in a worker thread.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ..errors import JobtrackError
from ..model import JobStatus
from ..rules import Delta
from .memory import MemoryStore
from .protocol import ListKey, Store

__all__ = ["AsyncStore", "DirectAsyncStore", "ThreadAsyncStore", "async_store_for"]


@runtime_checkable
class AsyncStore(Protocol):
    """**Protocol**: the awaitable twin of :class:`jobtrack.stores.Store`, same promises."""

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
        """Release this view's connections (the sync store is closed separately)."""
        ...


class DirectAsyncStore:
    """Calls a non-blocking sync store directly on the event loop."""

    def __init__(self, store: Store) -> None:
        self.sync = store

    async def create(self, job: JobStatus) -> None:
        """Insert the job."""
        self.sync.create(job)

    async def update(
        self, namespace: str, job_id: str, delta: Delta, now: _dt.datetime
    ) -> JobStatus:
        """Apply one update."""
        return self.sync.update(namespace, job_id, delta, now)

    async def update_many(
        self, updates: Sequence[tuple[str, str, Delta]], now: _dt.datetime
    ) -> list[JobStatus | JobtrackError]:
        """Apply many updates."""
        return self.sync.update_many(updates, now)

    async def get(self, namespace: str, job_id: str) -> JobStatus | None:
        """Read a job."""
        return self.sync.get(namespace, job_id)

    async def delete(self, namespace: str, job_id: str) -> bool:
        """Remove a job."""
        return self.sync.delete(namespace, job_id)

    async def list(self, namespace: str, limit: int, before: ListKey | None) -> list[JobStatus]:
        """List jobs."""
        return self.sync.list(namespace, limit, before)

    async def aclose(self) -> None:
        """Nothing of its own to release."""


class ThreadAsyncStore(DirectAsyncStore):
    """Runs a blocking sync store in a worker thread, so the event loop never waits on it."""

    async def create(self, job: JobStatus) -> None:
        """Insert the job (in a thread)."""
        await asyncio.to_thread(self.sync.create, job)

    async def update(
        self, namespace: str, job_id: str, delta: Delta, now: _dt.datetime
    ) -> JobStatus:
        """Apply one update (in a thread)."""
        return await asyncio.to_thread(self.sync.update, namespace, job_id, delta, now)

    async def update_many(
        self, updates: Sequence[tuple[str, str, Delta]], now: _dt.datetime
    ) -> list[JobStatus | JobtrackError]:
        """Apply many updates (in a thread)."""
        return await asyncio.to_thread(self.sync.update_many, updates, now)

    async def get(self, namespace: str, job_id: str) -> JobStatus | None:
        """Read a job (in a thread)."""
        return await asyncio.to_thread(self.sync.get, namespace, job_id)

    async def delete(self, namespace: str, job_id: str) -> bool:
        """Remove a job (in a thread)."""
        return await asyncio.to_thread(self.sync.delete, namespace, job_id)

    async def list(self, namespace: str, limit: int, before: ListKey | None) -> list[JobStatus]:
        """List jobs (in a thread)."""
        return await asyncio.to_thread(self.sync.list, namespace, limit, before)


def async_store_for(store: Store) -> AsyncStore:
    """The async view of *store*: its own if it offers one (``store.asyncio()``)."""
    if isinstance(store, MemoryStore):
        return DirectAsyncStore(store)
    native = getattr(store, "asyncio", None)
    if callable(native):
        view = native()
        if view is not None:
            return view  # type: ignore[no-any-return]
    return ThreadAsyncStore(store)
