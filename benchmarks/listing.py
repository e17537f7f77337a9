"""Listing suite: one page at 50,000 jobs against one page at 1,000, on every store.

SPEC section 7: one page costs the same whatever the namespace holds, for
every status filter. Each store gets two namespaces, 1,000 and 50,000 jobs
(5,000 with ``--quick``), built through the tracker with an injected clock;
for each filter (none, running, completed, stalled) the first page and a page
from the middle of that filter's listing (by cursor) are timed in turn, and
the row gives the rate at the large namespace over the rate at the small one
(target >= 0.33: a page at 50,000 jobs costs at most 3x one at 1,000).

Every namespace holds the same mix, in blocks of start order, newest first:

* the newest quarter: completed (quick jobs, finished minutes ago);
* the next quarter: running, updated minutes ago (fresh);
* the oldest half: completed and stalled running (last updated hours ago,
  past ``stall_after``), alternately.

So half the jobs are completed and half running, a quarter stalled, and each
filter has full pages at both sizes (a guard checks it). A listing that
filtered the whole namespace instead of reading a per-status index would skip
a number of jobs that grows with the namespace before some page of every
filter: the fresh block before the first completed page after the newest
quarter (the completed middle page), the newest quarter before the first
running page, half the namespace before the first stalled one.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable

from jobtrack import FileStore, JobStatus, JobTracker, MemoryStore, Page, Update
from jobtrack.clock import utc_now

from .common import Row, paired
from .redis_suite import throwaway_redis

SMALL = 1_000
PAGE = 100
STALL_AFTER = dt.timedelta(hours=1)
TICK = dt.timedelta(milliseconds=10)  # between two starts: 100 jobs a second, a busy namespace
STATUSES: tuple[str | None, ...] = (None, "running", "completed", "stalled")


def listing_suite(quick: bool) -> list[Row]:
    """list() pages, for every status filter, on memory, file and Redis at two namespace sizes."""
    large = 5_000 if quick else 50_000
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="jobtrack-list-") as root, throwaway_redis() as url:
        for kind, make in (
            ("memory", MemoryStore),
            ("file", lambda: FileStore(root)),
            ("redis", lambda: url),
        ):
            clock = _Clock()
            if kind == "file":
                _fill_files(root, clock, large)
            tracker = JobTracker(make(), clock=clock, stall_after=STALL_AFTER)
            if kind != "file":
                _fill(tracker, clock, large)
            rows += _measure(kind, tracker, large, quick)
            tracker.close()
    return rows


class _Clock:
    """A settable clock for the tracker: jobs are made stalled without waiting."""

    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> dt.datetime:
        return self.now


def _fill(tracker: JobTracker, clock: _Clock, large: int) -> None:
    """Build both namespaces (:func:`_build`); then the clock reads the time it started at."""
    now = clock.now
    for ns, size in (("small", SMALL), ("large", large)):
        _build(tracker, clock, now, ns, size)
    clock.now = now


def _fill_files(root: str, clock: _Clock, large: int) -> None:
    """Build the file store's namespaces in *root*: through the tracker, on tmpfs, then copied.

    Each job started commits to its namespace's ``.index.sqlite``, and SQLite
    syncs every commit to disk (``fsync=False`` or not): about 10 ms a job on
    a VM disk, some 10 minutes for 51,000, against 0.5 ms on tmpfs. The copy
    holds exactly the files the store wrote (documents, lock files, index);
    the pages are then read from *root*, on disk, where the suite always read
    them. (Each page opens the index, which creates and removes its ``-wal``
    and ``-shm`` files: on some disks that costs from 0.3 to 1.5 ms depending
    on the directory, copied or not, so the file rows carry that noise.)
    """
    shm = "/dev/shm"
    if not os.path.isdir(shm):  # not Linux: build in place, slowly
        tracker = JobTracker(FileStore(root), clock=clock, stall_after=STALL_AFTER)
        _fill(tracker, clock, large)
        tracker.close()
        return
    with tempfile.TemporaryDirectory(prefix="jobtrack-list-", dir=shm) as staging:
        tracker = JobTracker(FileStore(staging), clock=clock, stall_after=STALL_AFTER)
        _fill(tracker, clock, large)
        tracker.close()
        shutil.copytree(staging, root, dirs_exist_ok=True)
    os.sync()  # no writeback of the copy while the pages are timed


def _measure(kind: str, tracker: JobTracker, large: int, quick: bool) -> list[Row]:
    """The rows of one store, whose tracker holds both namespaces."""
    sizes = (("small", SMALL), ("large", large))
    n, rounds = (20, 2) if quick else ((60, 5) if kind == "file" else (200, 5))
    rows = []
    for status in STATUSES:
        middle = {
            ns: _cursor_at(tracker, ns, status, _count(status, size) // 2) for ns, size in sizes
        }
        for label, cursors in (("first page", dict.fromkeys(middle)), ("middle page", middle)):
            large_page, small_page = (
                _page(tracker, ns, status, cursors[ns]) for ns in ("large", "small")
            )
            for ns, page in (("large", large_page), ("small", small_page)):
                got = len(page().items)  # a fair comparison: full pages at both sizes
                if got != PAGE:
                    raise RuntimeError(f"{kind} {status} {label} at {ns}: {got} jobs, not {PAGE}")
            ours, base = paired(large_page, small_page, n, rounds, block=10)
            rows.append(
                Row("listing", f"{kind} {status or 'all'} {label}", ours, base,
                    f"same page at {SMALL:,} jobs", 0.33,
                    note=f"{PAGE} of {_count(status, large):,} listed, {large:,} jobs")
            )  # fmt: skip
    return rows


def _page(
    tracker: JobTracker, ns: str, status: str | None, cursor: str | None
) -> Callable[[], Page[JobStatus]]:
    """One page of *ns*'s listing of *status*, from *cursor*."""
    return lambda: tracker.list(ns, status=status, limit=PAGE, cursor=cursor)


def _count(status: str | None, size: int) -> int:
    """How many of a namespace of *size* jobs (built by :func:`_build`) a filter lists."""
    if status is None:
        return size
    return size // 4 if status == "stalled" else size // 2


def _build(tracker: JobTracker, clock: _Clock, now: dt.datetime, ns: str, size: int) -> None:
    """Fill *ns* with *size* jobs of the mix in the module docstring (*size* divisible by 4).

    Started in order of their ids (so the newest have the highest), one
    :data:`TICK` apart, by a clock that the caller sets back to *now*: the
    old half, last updated 3 hours before, is stalled then (its completed
    jobs finished then too, so none has expired); the rest is minutes old.
    """
    half, quarter = size // 2, size // 4

    def start(first: int, end: int, ago: dt.timedelta, done: range) -> None:
        for i in range(first, end):
            clock.now = now - ago + (i - first) * TICK
            tracker.start(ns, 1, job_id=f"j{i:06d}")
        finish = [Update(ns, f"j{i:06d}", successful=1) for i in done]
        for chunk in range(0, len(finish), 5_000):
            tracker.record_many(finish[chunk : chunk + 5_000])

    start(0, half, dt.timedelta(hours=3), range(0, half, 2))  # completed / stalled
    start(half, half + quarter, dt.timedelta(minutes=10), range(0))  # fresh
    start(half + quarter, size, dt.timedelta(minutes=5), range(half + quarter, size))  # completed


def _cursor_at(
    tracker: JobTracker, namespace: str, status: str | None, position: int
) -> str | None:
    """The cursor that resumes a listing of *status* after its first *position* jobs."""
    cursor = None
    while position > 0:
        page = tracker.list(namespace, status=status, limit=min(1000, position), cursor=cursor)
        cursor, position = page.next_cursor, position - len(page.items)
    return cursor
