"""AsyncJobTracker: the awaitable face of jobtrack, over the same stores and operations."""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import functools
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any

from .errors import ConfigurationError, JobtrackError
from .metrics import METERED
from .model import ErrorCount, FailedItem, JobStatus, NamespaceCounts, Page, Update
from .operations import Step, TrackerBase, Watching
from .stores import AsyncStore, features_of, forks
from .tracker import JobTracker

__all__ = ["MAX_WAITING_THREADS", "AsyncJobTracker"]

MAX_WAITING_THREADS = 8
"""Threads of a process that wait on a blocking store's push at once (memory, SQLite).

They have a pool of their own, so watches never take the worker threads that
store calls run in; a watch that finds them all taken reads again with the
same back-off as a store without push (at most once a second).
"""


class _Waits:
    """The process's few threads that wait on a blocking store's push."""

    def __init__(self) -> None:
        self.generation = -1

    def submit(self, call: Callable[..., None], *args: Any) -> asyncio.Future[None] | None:
        """Run ``call(*args)`` in one of the threads, awaitable; None if every one is taken."""
        if self.generation != forks.generation:  # new, or a forked child: its own threads
            self.free = threading.BoundedSemaphore(MAX_WAITING_THREADS)
            self.pool = concurrent.futures.ThreadPoolExecutor(
                MAX_WAITING_THREADS, thread_name_prefix="jobtrack-wait"
            )
            self.generation = forks.generation
        if not self.free.acquire(blocking=False):
            return None
        free = self.free
        future = self.pool.submit(call, *args)
        future.add_done_callback(lambda _: free.release())  # when the thread is done with it
        return asyncio.wrap_future(future)


_waits = _Waits()


class AsyncJobTracker(TrackerBase):
    """The same methods and semantics as :class:`JobTracker`, awaitable.

    *store* is a store object or URL, exactly as for :class:`JobTracker`, and
    the operations are the same (:mod:`jobtrack.operations`). How a store call
    is awaited follows the store's features: natively when it offers an async
    view (Redis, through ``redis.asyncio``), directly when it never blocks
    (memory), else in a worker thread (files, any other store), so the event
    loop never blocks.
    """

    def _bind(self) -> None:
        features = features_of(self.store)
        self.native: AsyncStore | None = None
        if features.native_async:
            native = self.native = self.store.open_async()  # type: ignore[attr-defined]
            self._call: Callable[[str, tuple[Any, ...]], Awaitable[Any]] = lambda name, args: (
                getattr(native, name)(*args)
            )
        elif features.blocking:
            store = self.store
            self._call = lambda name, args: asyncio.to_thread(getattr(store, name), *args)
        else:
            self._call = self._direct

    async def _direct(self, name: str, args: tuple[Any, ...]) -> Any:
        return getattr(self.store, name)(*args)

    @classmethod
    def from_tracker(cls, tracker: JobTracker) -> AsyncJobTracker:
        """An async tracker over the same store, clock and options as a sync *tracker*."""
        if not isinstance(tracker, JobTracker):
            raise ConfigurationError(f"tracker must be a JobTracker, got {type(tracker).__name__}")
        new = cls.__new__(cls)
        new.__dict__.update(tracker.__dict__)
        new._bind()
        return new

    async def _run(self, step: Step) -> Any:
        while True:
            if self.metrics is None or step.method not in METERED:
                answer = await self._call(step.method, step.args)
            else:
                call = functools.partial(self._call, step.method, step.args)
                answer = await self.metrics.arun(step.method, step.args, call)
            done, result = step.follow(answer)
            if done:
                return result
            step = result

    async def watch(
        self, namespace: str, job_id: str, *, timeout: float | None = None
    ) -> AsyncIterator[JobStatus]:
        """Each newer status until the completed one; see :meth:`JobTracker.watch`.

        A store with push is waited on natively through its async view
        (Redis, PostgreSQL), else in one of :data:`MAX_WAITING_THREADS`
        threads of their own (the memory store's condition, SQLite's change
        check: they would block the loop); the others, and watches that find
        those threads taken, are read again with the same back-off.
        """
        push = features_of(self.store).push
        native = self.native if push else None
        pace = Watching(namespace, job_id, timeout, push)
        while True:
            job = await self.get(pace.namespace, pace.job_id)
            _cancelled_meanwhile()
            if pace.new(job):
                yield job
            if job.is_finished:
                return
            if native is not None:
                await native.wait_change(pace.namespace, pace.job_id, job, pace.pause())
            else:
                pause, waiting = pace.pause(), None
                if push:  # in a thread of its own pool, not a store call's
                    wait = self.store.wait_change  # type: ignore[attr-defined]
                    waiting = _waits.submit(wait, pace.namespace, pace.job_id, job, pause)
                await (asyncio.sleep(pause) if waiting is None else waiting)
            _cancelled_meanwhile()

    async def wait(self, namespace: str, job_id: str, *, timeout: float | None = None) -> JobStatus:
        """The completed status; see :meth:`JobTracker.wait`."""
        last: builtins.list[JobStatus] = []  # watch ends with the completed status
        async for job in self.watch(namespace, job_id, timeout=timeout):
            last[:] = [job]
        return last[0]

    async def start(self, namespace: str, total: int, *, job_id: str | None = None) -> JobStatus:
        """Create a running job; see :meth:`JobTracker.start`."""
        return await self._run(self._start(namespace, total, job_id))

    async def record(
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
        """Add the deltas as one atomic update; see :meth:`JobTracker.record`."""
        return await self._run(
            self._record(namespace, job_id, processed, successful, failed, error, item)
        )

    async def record_many(
        self, updates: Iterable[Update]
    ) -> builtins.list[JobStatus | JobtrackError]:
        """Apply many updates; see :meth:`JobTracker.record_many`."""
        return await self._run(self._record_many(updates))

    async def heartbeat(self, namespace: str, job_id: str) -> JobStatus:
        """Refresh ``updated_at`` only."""
        return await self._run(self._record(namespace, job_id, 0, 0, 0, None))

    async def abort(self, namespace: str, job_id: str, error: str) -> JobStatus:
        """Fail every remaining item with *error*; see :meth:`JobTracker.abort`."""
        return await self._run(self._abort(namespace, job_id, error))

    async def extend(self, namespace: str, job_id: str, more: int) -> JobStatus:
        """Add items to a running job's total; see :meth:`JobTracker.extend`."""
        return await self._run(self._extend(namespace, job_id, more))

    async def reap(self, namespace: str) -> builtins.list[JobStatus]:
        """Abort every stalled running job; see :meth:`JobTracker.reap`."""
        return await self._run(self._reap(namespace))

    async def get(self, namespace: str, job_id: str) -> JobStatus:
        """The job's status; ``JobNotFound`` if *namespace* has no such job."""
        return await self._run(self._get(namespace, job_id))

    async def delete(self, namespace: str, job_id: str) -> bool:
        """Remove a job; True if it existed."""
        return await self._run(self._delete(namespace, job_id))

    async def list(
        self,
        namespace: str,
        *,
        status: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[JobStatus]:
        """One page of jobs, newest first; see :meth:`JobTracker.list`."""
        return await self._run(self._list(namespace, limit, cursor, status))

    async def purge(self) -> int:
        """Reclaim the jobs whose retention has passed; see :meth:`JobTracker.purge`."""
        return await self._run(self._purge())

    async def namespaces(
        self, *, limit: int = 100, cursor: str | None = None
    ) -> Page[NamespaceCounts]:
        """One page of the namespaces that hold jobs; see :meth:`JobTracker.namespaces`."""
        return await self._run(self._namespaces(limit, cursor))

    async def failed_items(
        self, namespace: str, job_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> Page[FailedItem]:
        """One page of failed items; see :meth:`JobTracker.failed_items`."""
        return await self._run(self._failed_items(namespace, job_id, limit, cursor))

    async def errors(self, namespace: str, job_id: str) -> builtins.list[ErrorCount]:
        """The error groups, most frequent first; see :meth:`JobTracker.errors`."""
        return await self._run(self._errors(namespace, job_id))

    async def aclose(self) -> None:
        """Close the async connections and the store."""
        if self.native is not None:
            await self.native.aclose()
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


def _cancelled_meanwhile() -> None:
    """Raise the cancellation of this task that a store client swallowed.

    On Python 3.11 ``asyncio.wait_for`` returns its result when the
    cancellation comes just as the call it wraps completes (fixed in 3.12);
    redis-py's asyncio client wraps each command's write in it. A watch that
    lost its cancellation that way ran on forever, and ``asyncio.run`` hung
    at its end waiting for it (seen on Redis Cluster). The task still counts
    the request (``Task.cancelling()``, 3.11+): honour it.
    """
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    if cancelling is not None and cancelling():
        raise asyncio.CancelledError
