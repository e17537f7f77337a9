"""Items suite: what item state costs in space, and that a big job updates as fast as a small one.

For each store (memory, SQLite, Redis): one job is filled with ``large`` items
(40-character names, through ``record_many``), another with 1,000; then new
items are recorded on both, in turn, in small blocks (``ratio``: the big
job's rate over the small one's; 1.0 is constant time per item). Space: the
bytes per successful item of Redis's items hash (``MEMORY USAGE``) and of
the SQLite store's database (its used pages after a checkpoint: items, their
index, error groups), and per failed item.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator

from jobtrack import MAX_COUNT, JobTracker, MemoryStore, RedisStore, SQLiteStore, Update

from .common import Row
from .local import interleaved
from .redis_suite import throwaway_redis

NS = "bench"


def items_suite(quick: bool) -> list[Row]:
    """Per store: bytes per item, and record cost at ``large`` items vs 1,000."""
    large = 100_000 if quick else 1_000_000
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="jobtrack-items-") as root, throwaway_redis() as url:
        stores: dict[str, Callable[[], JobTracker]] = {
            "memory": lambda: JobTracker(MemoryStore()),
            "sqlite": lambda: JobTracker(SQLiteStore(os.path.join(root, "items.sqlite3"))),
            "redis": lambda: JobTracker(RedisStore(url, prefix="bench")),
        }
        for kind, make in stores.items():
            with contextlib.closing(make()) as tracker:
                rows += _measure(kind, tracker, large, quick)
    return rows


def _names(prefix: str) -> Iterator[str]:
    """Distinct 40-character item names."""
    width = 40 - len("s3://bucket/-") - len(prefix)
    return (f"s3://bucket/{prefix}-{i:0{width}d}" for i in itertools.count())


def _fill(tracker: JobTracker, job_id: str, count: int, prefix: str, failed: bool = False) -> None:
    names = _names(prefix)
    for start in range(0, count, 1000):
        batch = [
            Update(NS, job_id, item=next(names), processed=1, successful=int(not failed),
                   failed=int(failed), error="timed out" if failed else None)
            for _ in range(min(1000, count - start))
        ]  # fmt: skip
        tracker.record_many(batch)


def _measure(kind: str, tracker: JobTracker, large: int, quick: bool) -> list[Row]:
    rows = []
    small_job = tracker.start(NS, MAX_COUNT).job_id
    big_job = tracker.start(NS, MAX_COUNT).job_id
    _fill(tracker, small_job, 1_000, "s")
    space = kind in ("redis", "sqlite")
    before = _bytes(tracker, big_job) if space else 0.0
    started = time.perf_counter()
    _fill(tracker, big_job, large, "b")
    fill_s = time.perf_counter() - started
    if space:
        after = _bytes(tracker, big_job)
        per_ok = (after - before) / large
        failed_job = tracker.start(NS, MAX_COUNT).job_id
        if kind == "redis":
            after = 0.0  # the failed job's own keys
        _fill(tracker, failed_job, 10_000, "f", failed=True)
        per_failed = (_bytes(tracker, failed_job) - after) / 10_000
        target = " target <= 80" if kind == "redis" else ""
        rows.append(
            Row("items", f"{kind} bytes per successful item", per_ok, 0,
                f"{large:,} items, 40-char names", note=f"{per_ok:.0f} B;{target}")
        )  # fmt: skip
        rows.append(
            Row("items", f"{kind} bytes per failed item", per_failed, 0,
                "10,000 failed items with an error", note=f"{per_failed:.0f} B (all its keys)")
        )  # fmt: skip
    count, block, rounds = (300, 50, 3) if quick else (2_000, 100, 3)
    if kind == "memory":
        count *= 20
    work = {n: _records(tracker, job) for n, job in ((1_000, small_job), (large, big_job))}
    best = interleaved(work, count, block, rounds)
    rows.append(
        Row("items", f"{kind} record, job of {large:,} items", best[large], best[1_000],
            "same, job of 1,000 items",
            note=f"{1e6 / best[large]:.0f} us/item; filled in {fill_s:.0f} s")
    )  # fmt: skip
    return rows


def _records(tracker: JobTracker, job_id: str) -> Callable[[int], float]:
    names = _names(f"n{job_id[-6:]}")

    def run(n: int) -> float:
        record = tracker.record
        chunk = [next(names) for _ in range(n)]
        start = time.perf_counter()
        for name in chunk:
            record(NS, job_id, item=name, processed=1, successful=1)
        return time.perf_counter() - start

    return run


def _bytes(tracker: JobTracker, job_id: str) -> float:
    """Redis: the job's item keys (MEMORY USAGE); SQLite: the whole database, used pages."""
    store = tracker.store
    if isinstance(store, RedisStore):
        return float(
            sum(store.memory_usage(NS, job_id, what) for what in ("items", "failed", "errors"))
        )
    assert isinstance(store, SQLiteStore)
    with contextlib.closing(sqlite3.connect(store.path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
    return float((pages - free) * size)
