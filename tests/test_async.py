"""AsyncJobTracker specifics: how each store's calls are awaited (from its declared
features), concurrency on one loop."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from jobtrack import (
    AsyncJobTracker,
    Features,
    FileStore,
    JobTracker,
    MemoryStore,
    RedisStore,
    Status,
)
from jobtrack.asgi import status_app
from jobtrack.stores.redis import AsyncRedisStore
from tests.asgi_driver import call
from tests.redis_fixtures import Cluster, redis_url


def test_memory_is_called_directly_on_the_loop() -> None:
    seen: list[int] = []

    class Spy(MemoryStore):
        def get(self, namespace: str, job_id: str) -> Any:
            seen.append(threading.get_ident())
            return super().get(namespace, job_id)

    tracker = AsyncJobTracker(Spy())
    assert tracker.store.features.blocking is False and tracker.native is None  # type: ignore[attr-defined]

    async def main() -> int:
        job = await tracker.start("ns", 1)
        await tracker.get("ns", job.job_id)
        return threading.get_ident()

    assert seen == [asyncio.run(main())]


class Plain:
    """A third-party store that declares no features: blocking, no async view."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.threads: set[int] = set()

    def create(self, job: Any) -> None:
        self.threads.add(threading.get_ident())
        self.inner.create(job)

    def update(self, *args: Any) -> Any:
        return self.inner.update(*args)

    def update_many(self, *args: Any) -> Any:
        return self.inner.update_many(*args)

    def get(self, *args: Any) -> Any:
        return self.inner.get(*args)

    def delete(self, *args: Any) -> Any:
        return self.inner.delete(*args)

    def list(self, *args: Any) -> Any:
        return self.inner.list(*args)

    def close(self) -> None:
        pass


def test_a_store_that_declares_nothing_runs_in_a_thread() -> None:
    plain = Plain()
    tracker = AsyncJobTracker(plain)
    assert tracker.native is None and Features().blocking

    async def main() -> Any:
        job = await tracker.start("ns", 1)
        assert threading.get_ident() not in plain.threads
        return await tracker.record("ns", job.job_id, successful=1)

    assert asyncio.run(main()).is_finished
    assert plain.threads


def test_files_run_in_a_worker_thread(tmp_path: Path) -> None:
    seen: list[int] = []

    class Spy(FileStore):
        def get(self, namespace: str, job_id: str) -> Any:
            seen.append(threading.get_ident())
            return super().get(namespace, job_id)

    tracker = AsyncJobTracker(Spy(tmp_path))
    assert tracker.native is None and tracker.store.features.blocking  # type: ignore[attr-defined]

    async def main() -> int:
        job = await tracker.start("ns", 1)
        await tracker.get("ns", job.job_id)
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert seen and loop_thread not in seen


@pytest.mark.redis
def test_redis_is_native(redis_server: Any) -> None:
    store = RedisStore(redis_url(redis_server))
    assert store.features.native_async
    assert isinstance(AsyncJobTracker(store).native, AsyncRedisStore)
    import redis

    client_store = RedisStore(redis.Redis(redis_server.host, redis_server.port))
    assert not client_store.features.native_async  # no URL to build an async client from
    assert AsyncJobTracker(client_store).native is None  # so: a worker thread
    store.close()
    client_store.close()


@pytest.mark.redis
def test_redis_takes_more_concurrent_calls_than_redis_py_8s_default_pool(
    redis_server: Any,
) -> None:
    tasks = 150  # redis-py 8 caps a pool at 100 connections unless told otherwise

    async def main() -> Any:
        tracker = AsyncJobTracker(f"{redis_url(redis_server)}?prefix=many")
        job = await tracker.start("ns", tasks)
        await asyncio.gather(
            *(tracker.record("ns", job.job_id, processed=1, successful=1) for _ in range(tasks))
        )
        final = await tracker.get("ns", job.job_id)
        await tracker.aclose()
        return final

    final = asyncio.run(main())
    assert final.processed == final.successful == tasks and final.is_finished


@pytest.mark.redis
def test_redis_works_from_one_event_loop_after_another(redis_server: Any) -> None:
    # a redis.asyncio client belongs to its loop: each loop gets its own, closed
    # when that loop shuts down (asyncio.run after asyncio.run, a test client
    # running each request in a new loop)
    import redis

    raw = redis.Redis(redis_server.host, redis_server.port)
    connections = len(raw.client_list())
    tracker = AsyncJobTracker(f"{redis_url(redis_server)}?prefix=loops")
    job = asyncio.run(tracker.start("ns", 3))
    assert len(raw.client_list()) == connections  # the first loop's client closed with it
    for _ in range(3):
        assert asyncio.run(tracker.record("ns", job.job_id, processed=1)).processed >= 1
    assert asyncio.run(tracker.get("ns", job.job_id)).processed == 3
    app = status_app(JobTracker(f"{redis_url(redis_server)}?prefix=loops"))
    for _ in range(2):
        response = call(app, "GET", f"/namespaces/ns/upload-jobs/{job.job_id}")  # a new loop each
        assert response.status == 200 and json.loads(response.body)["processed"] == 3

    async def close_in_loop() -> None:
        await tracker.get("ns", job.job_id)
        await tracker.aclose()  # closes this loop's client; asyncio.run has nothing left to do

    asyncio.run(close_in_loop())
    gc.collect()  # a transport left open would warn (an error here) when collected
    assert len(raw.client_list()) == connections
    raw.close()


@pytest.mark.redis
@pytest.mark.cluster
def test_redis_cluster_works_from_one_event_loop_after_another(redis_cluster: Cluster) -> None:
    tracker = AsyncJobTracker(f"{redis_cluster.url}?prefix=loops")
    job = asyncio.run(tracker.start("ns", 3))
    for _ in range(3):
        asyncio.run(tracker.record("ns", job.job_id, processed=1))
    assert asyncio.run(tracker.get("ns", job.job_id)).processed == 3
    app = status_app(JobTracker(f"{redis_cluster.url}?prefix=loops"))
    for _ in range(2):
        response = call(app, "GET", f"/namespaces/ns/upload-jobs/{job.job_id}")  # a new loop each
        assert response.status == 200 and json.loads(response.body)["processed"] == 3
    gc.collect()  # a transport left open would warn (an error here) when collected


def test_from_tracker_shares_store_and_clock(tmp_path: Path) -> None:
    from tests.helpers import T0, ManualClock

    sync = JobTracker(FileStore(tmp_path), clock=ManualClock())
    job = sync.start("ns", 2)

    async def main() -> Any:
        tracker = AsyncJobTracker.from_tracker(sync)
        return await tracker.record("ns", job.job_id, successful=1)

    after = asyncio.run(main())
    assert after.updated_at == T0 and after.successful == 1


def test_many_tasks_on_one_loop_lose_nothing(store_kind: str, store_factory: Any) -> None:
    tasks, per_task = 50, 20

    async def main() -> tuple[Any, int]:
        async with AsyncJobTracker(store_factory()) as tracker:
            job = await tracker.start("ns", tasks * per_task)

            async def work() -> int:
                done = 0
                for _ in range(per_task):
                    status = await tracker.record("ns", job.job_id, processed=1, successful=1)
                    done += status.status is Status.COMPLETED
                return done

            completions = sum(await asyncio.gather(*(work() for _ in range(tasks))))
            return await tracker.get("ns", job.job_id), completions

    final, completions = asyncio.run(main())
    assert (final.processed, final.successful) == (1000, 1000)
    assert final.is_finished and completions == 1
