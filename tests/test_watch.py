"""wait and watch (SPEC section 8) on every store, sync and async, with real threads."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from jobtrack import (
    AsyncJobTracker,
    InvalidArgument,
    JobNotFound,
    JobStatus,
    JobTracker,
    JobtrackError,
    MemoryStore,
    SQLiteStore,
    Store,
    WaitTimeout,
)
from jobtrack.async_tracker import MAX_WAITING_THREADS

from .conftest import STORE_KINDS, StoreFactory

NS = "watched"


@pytest.fixture(params=[*STORE_KINDS, pytest.param("postgres", marks=pytest.mark.postgres)])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every store of the contract, and PostgreSQL (push on each)."""
    return request.param  # type: ignore[no-any-return]


def worker(tracker: JobTracker, job_id: str, items: int, go: threading.Event) -> threading.Thread:
    """A thread that records *items* successes once *go* is set (the watcher is in place)."""

    def run() -> None:
        go.wait(10)
        for n in range(items):
            tracker.record(NS, job_id, item=f"i{n}", processed=1, successful=1)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_watch_yields_newer_statuses_and_ends_with_the_completed_one(
    store_factory: StoreFactory,
) -> None:
    tracker = JobTracker(store_factory())
    job = tracker.start(NS, 20)
    go = threading.Event()
    thread = worker(JobTracker(store_factory()), job.job_id, 20, go)
    seen: list[JobStatus] = []
    for status in tracker.watch(NS, job.job_id, timeout=60):
        seen.append(status)
        go.set()
    thread.join()
    assert seen[0] == job and seen[-1].is_finished and seen[-1].successful == 20
    assert all(a.done <= b.done and a != b for a, b in itertools.pairwise(seen))
    assert sum(s.is_finished for s in seen) == 1


def test_wait_returns_the_completed_status(store_factory: StoreFactory) -> None:
    tracker = JobTracker(store_factory())
    job = tracker.start(NS, 5)
    go = threading.Event()
    go.set()
    thread = worker(JobTracker(store_factory()), job.job_id, 5, go)
    done = tracker.wait(NS, job.job_id, timeout=60)
    thread.join()
    assert done == tracker.get(NS, job.job_id) and done.is_finished


def test_a_completed_job_is_returned_at_once(store: Store) -> None:
    tracker = JobTracker(store)
    job = tracker.start(NS, 0)
    assert list(tracker.watch(NS, job.job_id)) == [job]
    assert tracker.wait(NS, job.job_id, timeout=0) == job


def test_timeout(store: Store) -> None:
    tracker = JobTracker(store)
    job = tracker.start(NS, 3)
    began = time.monotonic()
    with pytest.raises(WaitTimeout) as timed_out:
        tracker.wait(NS, job.job_id, timeout=0.2)
    assert 0.2 <= time.monotonic() - began < 5
    assert isinstance(timed_out.value, TimeoutError) and isinstance(timed_out.value, JobtrackError)
    assert job.job_id in str(timed_out.value)


@pytest.mark.parametrize("timeout", [-1, float("nan"), float("inf"), "1", True])
def test_bad_timeout(store: Store, timeout: object) -> None:
    tracker = JobTracker(store)
    job = tracker.start(NS, 1)
    with pytest.raises(InvalidArgument, match="timeout"):
        tracker.wait(NS, job.job_id, timeout=timeout)  # type: ignore[arg-type]


def test_unknown_or_deleted_job(store: Store) -> None:
    tracker = JobTracker(store)
    with pytest.raises(JobNotFound):
        tracker.wait(NS, "nope", timeout=1)
    job = tracker.start(NS, 2)
    watching = tracker.watch(NS, job.job_id, timeout=30)
    assert next(watching) == job
    tracker.delete(NS, job.job_id)
    with pytest.raises(JobNotFound):
        next(watching)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_push_wakes_a_waiter_at_once(kind: str, tmp_path: Path) -> None:
    store: Any = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "jobs.db")
    writer: Any = store if kind == "memory" else SQLiteStore(tmp_path / "jobs.db")
    tracker = JobTracker(store)
    job = tracker.start(NS, 2)
    woke: list[float] = []

    def wait() -> None:
        began = time.monotonic()
        store.wait_change(NS, job.job_id, job, 30)
        woke.append(time.monotonic() - began)

    thread = threading.Thread(target=wait)
    thread.start()
    JobTracker(writer).record(NS, job.job_id, successful=1)
    thread.join(30)
    assert woke and woke[0] < 5  # not the 30 s timeout: the update woke it


def test_async_watch_and_wait(store_factory: StoreFactory) -> None:
    sync = JobTracker(store_factory())
    job = sync.start(NS, 10)
    go = threading.Event()
    thread = worker(JobTracker(store_factory()), job.job_id, 10, go)

    async def main() -> list[JobStatus]:
        tracker = AsyncJobTracker(store_factory())
        seen = []
        try:
            async for status in tracker.watch(NS, job.job_id, timeout=60):
                seen.append(status)
                go.set()
            assert await tracker.wait(NS, job.job_id, timeout=1) == seen[-1]
            with pytest.raises(WaitTimeout):
                await tracker.wait(NS, sync.start(NS, 1).job_id, timeout=0.1)
        finally:
            await tracker.aclose()
        return seen

    seen = asyncio.run(main())
    thread.join()
    assert seen[0] == job and seen[-1].is_finished and seen[-1].successful == 10


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_change_made_before_the_wait_returns_at_once(kind: str, tmp_path: Path) -> None:
    store: Any = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "jobs.db")
    writer: Any = store if kind == "memory" else SQLiteStore(tmp_path / "jobs.db")
    job = JobTracker(store).start(NS, 2)
    JobTracker(writer).record(NS, job.job_id, successful=1)  # before the waiter looks
    began = time.monotonic()
    store.wait_change(NS, job.job_id, job, 30)
    assert time.monotonic() - began < 5


def test_async_watches_wait_in_their_own_few_threads(tmp_path: Path) -> None:
    """Watches of a blocking push store (SQLite) never take the store calls' worker threads.

    More jobs are watched than MAX_WAITING_THREADS: every wait runs in the
    waiting pool (bounded), the watches past the bound read again with the
    back-off, and every watch still ends with its completed job.
    """
    store = SQLiteStore(tmp_path / "jobs.db")
    threads: set[str] = set()
    wait_change = store.wait_change

    def counted(*args: Any) -> None:
        threads.add(threading.current_thread().name)
        wait_change(*args)

    store.wait_change = counted  # type: ignore[method-assign,assignment]
    writer = JobTracker(SQLiteStore(tmp_path / "jobs.db"))
    jobs = [writer.start(NS, 1).job_id for _ in range(3 * MAX_WAITING_THREADS)]

    async def main() -> list[JobStatus]:
        tracker = AsyncJobTracker(store)
        watching = asyncio.Event()
        started = 0

        async def follow(job_id: str) -> JobStatus:
            nonlocal started
            last = None
            async for status in tracker.watch(NS, job_id, timeout=60):
                if last is None:
                    started += 1
                    if started == len(jobs):
                        watching.set()
                last = status
            assert last is not None
            return last

        tasks = [asyncio.ensure_future(follow(job_id)) for job_id in jobs]
        await watching.wait()
        for job_id in jobs:
            await asyncio.to_thread(writer.record, NS, job_id, successful=1)
        return await asyncio.gather(*tasks)

    done = asyncio.run(main())
    assert all(status.is_finished for status in done)
    assert threads and all(name.startswith("jobtrack-wait") for name in threads), threads
    assert len(threads) <= MAX_WAITING_THREADS


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.cancelling() is new in Python 3.11")
def test_a_watch_ends_when_a_store_call_swallowed_its_cancellation() -> None:
    """Python 3.11's ``asyncio.wait_for`` (redis-py's asyncio client wraps writes in it)
    returns its result when the cancellation comes as its call completes: the hub's watch
    then ran on, and ``asyncio.run`` hung at its end (Redis Cluster, a CI run of issue 19)."""

    async def main() -> bool:
        tracker = AsyncJobTracker(MemoryStore())
        job = await tracker.start(NS, 3)
        real = tracker.get
        reading = asyncio.Event()
        calls = 0

        async def get(namespace: str, job_id: str) -> Any:
            nonlocal calls
            calls += 1
            if calls == 2:  # the watch's second read is under way: the cancel comes here
                reading.set()
                with contextlib.suppress(asyncio.CancelledError):  # as wait_for may do
                    await asyncio.Event().wait()
            return await real(namespace, job_id)

        tracker.get = get  # type: ignore[method-assign]

        async def follow() -> None:
            async for _ in tracker.watch(NS, job.job_id):
                pass

        task = asyncio.ensure_future(follow())
        await reading.wait()
        task.cancel()
        await asyncio.wait((task,), timeout=10)
        return task.done() and task.cancelled()  # (not done: asyncio.run would then hang)

    assert asyncio.run(main())
