"""Every page costs O(limit), whatever the data holds (issue 19, SPEC section 9).

One test per pager outside Redis (tests/test_redis_store.py has Redis's): it
counts what a page reads, or, for SQL, checks that the database walks an
index in order and stops at the limit (no sort of the whole table).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sortedcontainers import SortedDict, SortedList

from jobtrack import JobTracker, MemoryStore, SQLiteStore, Update
from jobtrack.stores.sql.sqlite import _SQL
from jobtrack.testing.reference import ManualClock

NS = "pages"


class CountingDict(dict[Any, Any]):
    """A dict that counts the values read from it."""

    reads = 0

    def __getitem__(self, key: Any) -> Any:
        type(self).reads += 1
        return super().__getitem__(key)


class CountingSortedDict(SortedDict):  # type: ignore[type-arg]
    """A sorted dict that counts the values read from it."""

    reads = 0

    def __getitem__(self, key: Any) -> Any:
        type(self).reads += 1
        return super().__getitem__(key)


def test_memory_failed_items_page_reads_its_items_only() -> None:
    store = MemoryStore()
    tracker = JobTracker(store, clock=ManualClock())
    tracker.start(NS, 50_000, job_id="big")
    tracker.record_many(
        [Update(NS, "big", item=f"i{n}", failed=1, error="e") for n in range(20_000)]
    )
    tracker.record_many(  # the first 19,000 succeed on retry: they leave the list
        [Update(NS, "big", item=f"i{n}", successful=1) for n in range(19_000)]
    )
    items = store._items[NS, "big"]
    items.listed = CountingSortedDict(items.listed)
    page = tracker.failed_items(NS, "big", limit=10)
    assert [item.item for item in page.items] == [f"i{n}" for n in range(19_000, 19_010)]
    assert CountingSortedDict.reads <= 10 + 1  # not the 19,000 gone before, nor the 990 after
    CountingSortedDict.reads = 0
    tracker.failed_items(NS, "big", limit=10, cursor=page.next_cursor)
    assert CountingSortedDict.reads <= 10 + 1


@pytest.mark.parametrize("status", [None, "running", "completed", "stalled"])
def test_memory_listing_page_reads_its_jobs_only(status: str | None) -> None:
    store = MemoryStore()
    clock = ManualClock()
    tracker = JobTracker(store, clock=clock, stall_after=dt.timedelta(minutes=1))
    for n in range(3_000):
        tracker.start(NS, 1, job_id=f"j{n:05}")
        if n % 2:
            tracker.record(NS, f"j{n:05}", successful=1)
        clock.advance(milliseconds=3)
    clock.advance(minutes=5)
    store._jobs[NS] = CountingDict(store._jobs[NS])
    CountingDict.reads = 0
    page = tracker.list(NS, status=status, limit=25)
    assert len(page.items) == 25 and page.next_cursor
    assert CountingDict.reads <= 25 + 1
    CountingDict.reads = 0
    tracker.list(NS, status=status, limit=25, cursor=page.next_cursor)
    assert CountingDict.reads <= 25 + 1


class CountingSortedList(SortedList):  # type: ignore[type-arg]
    """A sorted list that counts the values its ranges hand out."""

    reads = 0

    def irange(self, *args: Any, **kwargs: Any) -> Any:
        for value in super().irange(*args, **kwargs):
            type(self).reads += 1
            yield value


def test_memory_namespaces_page_reads_its_names_only() -> None:
    store = MemoryStore()
    tracker = JobTracker(store, clock=ManualClock())
    for n in range(2_000):
        tracker.start(f"ns{n:04}", 1, job_id="j")
    store._names = CountingSortedList(store._names)
    page = tracker.namespaces(limit=10)
    assert [counts.name for counts in page.items] == [f"ns{n:04}" for n in range(10)]
    assert CountingSortedList.reads <= 10 + 1
    CountingSortedList.reads = 0
    page = tracker.namespaces(limit=10, cursor=page.next_cursor)
    assert [counts.name for counts in page.items] == [f"ns{n:04}" for n in range(10, 20)]
    assert CountingSortedList.reads <= 10 + 1  # not the 1,980 names after the page


@pytest.mark.parametrize(
    "name", ["list_all", "list_running", "list_completed", "stalled", "failed_items", "purge"]
)
def test_sqlite_pages_walk_an_index_and_stop_at_the_limit(tmp_path: Path, name: str) -> None:
    store = SQLiteStore(tmp_path / "jobs.db")
    conn = store._acquire()
    params = {
        "ns": NS, "id": "j", "ms": 2**62, "key": "", "cutoff": 10**13, "limit": 10, "after": 0,
        "before": 10**13,
    }  # fmt: skip
    plan = " / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + _SQL[name], params))
    store._release(conn)
    store.close()
    assert "TEMP B-TREE" not in plan  # no sort of what the query found: rows come in order
    assert "SCAN" not in plan.replace("SCAN CONSTANT ROW", "")  # no walk of a whole table
    assert "USING" in plan  # an index (or the primary key) finds the first row
