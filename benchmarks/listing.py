"""Listing suite: one page at 50,000 jobs against one page at 1,000, on every store.

SPEC section 7: one page costs the same whatever the namespace holds, for
every status filter. Each store (memory, SQLite, Redis and PostgreSQL, the
servers throwaway ones of our own; the PostgreSQL rows are skipped with a
note where psycopg or its binaries are missing) gets two namespaces, 1,000
and 50,000 jobs (5,000 with ``--quick``), built through the tracker with an
injected clock: a ``start`` (one transaction) per job, then ``record_many``
to finish some. That takes about 5 s on SQLite and 18 s on PostgreSQL for
51,000 jobs here (printed on stderr): no bulk path is needed. For each
filter (none, running, completed, stalled) the first page and a page from
the middle of that filter's listing (by cursor) are timed in turn, and the
row gives the rate at the large namespace over the rate at the small one
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

import contextlib
import datetime as dt
import os
import sys
import tempfile
import time
from collections.abc import Callable

from jobtrack import JobStatus, JobTracker, MemoryStore, Page, SQLiteStore, Store, Update
from jobtrack.clock import utc_now

from .common import Row, paired, skipped
from .postgres_suite import NoPostgres, store_url, throwaway_postgres
from .redis_suite import throwaway_redis

SMALL = 1_000
PAGE = 100
STALL_AFTER = dt.timedelta(hours=1)
TICK = dt.timedelta(milliseconds=10)  # between two starts: 100 jobs a second, a busy namespace
STATUSES: tuple[str | None, ...] = (None, "running", "completed", "stalled")


def listing_suite(quick: bool) -> list[Row]:
    """list() pages, for every status filter, on memory, SQLite, Redis and PostgreSQL."""
    large = 5_000 if quick else 50_000
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        root = stack.enter_context(tempfile.TemporaryDirectory(prefix="jobtrack-list-"))
        redis_url = stack.enter_context(throwaway_redis())
        stores: list[tuple[str, Callable[[], Store | str]]] = [
            ("memory", MemoryStore),
            ("sqlite", lambda: SQLiteStore(os.path.join(root, "list.sqlite3"))),
            ("redis", lambda: redis_url),
        ]
        try:
            server = stack.enter_context(throwaway_postgres())
        except NoPostgres as exc:
            no_postgres = str(exc)
        else:
            no_postgres = ""
            stores.append(("postgres", lambda: store_url(server)))
        for kind, make in stores:
            clock = _Clock()
            with contextlib.closing(
                JobTracker(make(), clock=clock, stall_after=STALL_AFTER)
            ) as tracker:
                started = time.perf_counter()
                _fill(tracker, clock, large)
                built = time.perf_counter() - started
                print(f"[listing] {kind}: {SMALL + large:,} jobs built in {built:.1f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
                if kind == "sqlite":
                    os.sync()  # no writeback of the fill while the pages are timed
                rows += _measure(kind, tracker, large, quick)
        if no_postgres:
            rows.append(skipped("listing", "postgres (every row)", no_postgres))
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


def _measure(kind: str, tracker: JobTracker, large: int, quick: bool) -> list[Row]:
    """The rows of one store, whose tracker holds both namespaces."""
    sizes = (("small", SMALL), ("large", large))
    n, rounds = (20, 2) if quick else (200, 5)
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
