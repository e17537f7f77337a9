"""Listing suite: one page at 50,000 jobs against one page at 1,000, on every store.

SPEC section 7: one page costs the same whatever the namespace holds. Each
store gets two namespaces, 1,000 and 50,000 jobs (5,000 with ``--quick``);
the first page and a page from the middle (by cursor) are timed in turn, and
the row gives the rate at the large namespace over the rate at the small one
(target >= 0.33: a page at 50,000 jobs costs at most 3x one at 1,000).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable

from jobtrack import FileStore, JobTracker, MemoryStore, Update

from .common import Row, paired
from .redis_suite import throwaway_redis

SMALL = 1_000
PAGE = 20


def listing_suite(quick: bool) -> list[Row]:
    """list() pages on memory, file and Redis at two namespace sizes."""
    large = 5_000 if quick else 50_000
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="jobtrack-list-") as root, throwaway_redis() as url:
        for kind, make in (
            ("memory", MemoryStore),
            ("file", lambda: FileStore(root)),
            ("redis", lambda: url),
        ):
            rows += _measure(kind, JobTracker(make()), large, quick)
    return rows


def _measure(kind: str, tracker: JobTracker, large: int, quick: bool) -> list[Row]:
    for ns, size in (("small", SMALL), ("large", large)):
        for i in range(size):
            tracker.start(ns, 1, job_id=f"j{i:06d}")
        # a few of them done, so a page holds both kinds
        tracker.record_many([Update(ns, f"j{i:06d}", successful=1) for i in range(0, size, 7)])
    middle = {
        ns: _cursor_at(tracker, ns, size // 2) for ns, size in (("small", SMALL), ("large", large))
    }
    n, rounds = (50, 3) if quick else (200, 5)
    rows = []
    for label, page in (
        ("first page", lambda ns: lambda: tracker.list(ns, limit=PAGE)),
        ("middle page", lambda ns: lambda: tracker.list(ns, limit=PAGE, cursor=middle[ns])),
    ):
        make: Callable[[str], Callable[[], object]] = page
        ours, base = paired(make("large"), make("small"), n, rounds, block=10)
        rows.append(
            Row("listing", f"{kind} {label} ({PAGE} jobs)", ours, base,
                f"same page at {SMALL:,} jobs", 0.33, note=f"{large:,} jobs")
        )  # fmt: skip
    tracker.close()
    return rows


def _cursor_at(tracker: JobTracker, namespace: str, position: int) -> str | None:
    """The cursor that resumes a listing after its first *position* jobs."""
    cursor = None
    while position > 0:
        page = tracker.list(namespace, limit=min(1000, position), cursor=cursor)
        cursor, position = page.next_cursor, position - len(page.items)
    return cursor
