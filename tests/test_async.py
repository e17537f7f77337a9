"""AsyncJobTracker specifics: which async view each store gets, concurrency on one loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from jobtrack import AsyncJobTracker, FileStore, JobTracker, MemoryStore, RedisStore, Status
from jobtrack.stores.aio import DirectAsyncStore, ThreadAsyncStore, async_store_for
from jobtrack.stores.redis_async import AsyncRedisStore
from tests.redis_fixtures import redis_url


def test_memory_is_called_directly() -> None:
    assert isinstance(async_store_for(MemoryStore()), DirectAsyncStore)
    assert not isinstance(async_store_for(MemoryStore()), ThreadAsyncStore)


def test_files_run_in_a_worker_thread(tmp_path: Path) -> None:
    seen: list[int] = []

    class Spy(FileStore):
        def get(self, namespace: str, job_id: str) -> Any:
            seen.append(threading.get_ident())
            return super().get(namespace, job_id)

    tracker = AsyncJobTracker(Spy(tmp_path))
    assert isinstance(tracker._async, ThreadAsyncStore)

    async def main() -> int:
        job = await tracker.start("ns", 1)
        await tracker.get("ns", job.job_id)
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert seen and loop_thread not in seen


@pytest.mark.redis
def test_redis_is_native(redis_server: Any) -> None:
    store = RedisStore(redis_url(redis_server))
    assert isinstance(async_store_for(store), AsyncRedisStore)
    import redis

    client_store = RedisStore(redis.Redis(redis_server.host, redis_server.port))
    assert isinstance(async_store_for(client_store), ThreadAsyncStore)  # no URL: a thread
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
