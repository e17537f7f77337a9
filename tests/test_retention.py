"""Retention reclaims space: stores that complete many short jobs return to their starting size.

SPEC section 6 and issue 12: a service running for months must not grow
without bound. Each test completes short jobs under a retention of a minute,
moves the tracker's clock past it, and compares the store's size (measured on
its medium) with its size before.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobtrack import FileStore, JobTracker, MemoryStore, RedisStore, SQLiteStore, Update
from jobtrack.testing.reference import ManualClock

RETAIN: dict[str, Any] = {
    "retain": dt.timedelta(minutes=1),
    "remember_expired": dt.timedelta(minutes=1),
}
NS = "short"


def complete(tracker: JobTracker, first: int, count: int) -> None:
    """Start and complete *count* one-item jobs (ids ``j<first>``...)."""
    for start in range(first, first + count, 1000):
        ids = [f"j{i}" for i in range(start, min(start + 1000, first + count))]
        for job_id in ids:
            tracker.start(NS, 1, job_id=job_id)
        results = tracker.record_many([Update(NS, job_id, successful=1) for job_id in ids])
        assert all(result.is_finished for result in results)  # type: ignore[union-attr]


def test_memory_store_reclaims_lazily_and_by_purge() -> None:
    store = MemoryStore()
    clock = ManualClock()
    tracker = JobTracker(store, clock=clock, **RETAIN)

    def size() -> tuple[int, ...]:
        return (
            sum(len(jobs) for jobs in store._jobs.values()),
            sum(len(keys) for keys in store._index.values()),
            len(store._expiring),
            len(store._items),
        )

    start = size()
    complete(tracker, 0, 100_000)
    # every job in its namespace's index of every job, of completed ones and of expiring ones
    assert size() == (100_000, 300_000, 100_000, 0)
    clock.advance(minutes=2)  # retain + remember_expired: reclaimable now
    complete(tracker, 100_000, 50_000)  # each completion reclaims two: no purge needed
    assert size() == (50_000, 150_000, 50_000, 0)
    clock.advance(minutes=2)
    assert tracker.purge() == 50_000
    assert size() == start
    assert store._index == {} and store._jobs == {}


def _disk(path: Path) -> tuple[int, int, int]:
    """Jobs and item rows in an SQLite store, and its bytes on disk (database and WAL)."""
    with sqlite3.connect(path) as db:
        jobs = db.execute("SELECT count(*) FROM jobtrack_jobs").fetchone()[0]
        items = db.execute("SELECT count(*) FROM jobtrack_items").fetchone()[0]
    db.close()
    wal = Path(f"{path}-wal")
    return jobs, items, path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


@pytest.mark.parametrize("kind", ["sqlite", "file"])
def test_sqlite_store_gives_its_disk_back_after_a_purge(tmp_path: Path, kind: str) -> None:
    clock = ManualClock()
    if kind == "file":
        store: SQLiteStore = FileStore(tmp_path)
        path = tmp_path / "jobtrack.sqlite3"
    else:
        path = tmp_path / "jobs.db"
        store = SQLiteStore(path)
    tracker = JobTracker(store, clock=clock, **RETAIN)
    start = _disk(path)
    complete(tracker, 0, 5_000)
    big = tracker.start(NS, 10_000, job_id="big")  # a job with many items, failed ones too
    tracker.record_many(
        [
            Update(NS, "big", item=f"s3://bucket/{i:06}.pdf", failed=1, error="e")
            for i in range(10_000)
        ]
    )
    assert tracker.get(NS, big.job_id).is_finished
    full = _disk(path)
    assert full[:2] == (5_001, 10_000) and full[2] > start[2] + 1_000_000
    clock.advance(minutes=2, milliseconds=-1)
    assert tracker.purge() == 0  # not yet
    clock.advance(milliseconds=1)
    assert tracker.purge() == 5_001
    jobs, items, size = _disk(path)
    assert (jobs, items) == (0, 0)
    assert size <= start[2] + 64 * 1024  # the pages went back to the file system, the WAL too
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        name
        for name in (path.name, f"{path.name}-wal", f"{path.name}-shm")
        if (tmp_path / name).exists()
    )
    store.close()


@pytest.fixture
def redis_store(redis_server: Any, redis_prefix: str) -> Iterator[RedisStore]:
    from tests.redis_fixtures import redis_url

    store = RedisStore(redis_url(redis_server), prefix=redis_prefix)
    yield store
    store.close()


@pytest.mark.redis
def test_redis_store_returns_to_its_starting_size(redis_store: RedisStore) -> None:
    client = redis_store.client
    clock = ManualClock()
    tracker = JobTracker(redis_store, clock=clock, **RETAIN)

    def size() -> tuple[int, int]:
        """Our keys, and the bytes Redis holds for them (MEMORY USAGE)."""
        keys = list(client.scan_iter(match=f"{redis_store.prefix}:*", count=10_000))
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=0)
        return len(keys), sum(pipe.execute())

    tracker.start(NS, 1, job_id="first")
    assert tracker.delete(NS, "first")  # nothing of the namespace stays after its last job
    start = size()
    start_memory = int(client.info("memory")["used_memory"])
    complete(tracker, 0, 100_000)
    keys, held = size()
    # the jobs, the jobs/done/expiring indexes, the marker, the list of namespaces
    assert keys == start[0] + 100_000 + 5
    assert held > 100_000 * 200
    ttl = client.pttl(f"{redis_store.prefix}:{{{NS}}}:job:j99999")  # the last one completed
    assert 110_000 < ttl <= 120_000  # Redis reclaims by itself: retain + remember_expired
    clock.advance(minutes=2)
    assert tracker.purge() == 100_000
    assert size() == start and start[0] == 0  # nothing at all
    # the server as a whole too, but for the keyspace's hash tables, which Redis shrinks
    # in its background cron (100,000 keys: about 1 MiB of buckets)
    assert int(client.info("memory")["used_memory"]) < start_memory + 2 * 1024 * 1024
