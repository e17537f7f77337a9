"""Work for forked children of the Redis tests (the multi-process and kill -9
workers of every store ship in jobtrack.testing.worker)."""

from __future__ import annotations

import os

from jobtrack import JobTracker


def record_n(tracker: JobTracker, namespace: str, job_id: str, count: int) -> None:
    """In a forked child: record *count* items with the tracker inherited from
    the parent, checking that every reply is its own (counts only go up).
    """
    seen = [tracker.record(namespace, job_id, processed=1).processed for _ in range(count)]
    threads = getattr(tracker.store, "_threads", None)
    if threads is not None and threads._held().conn.pid != os.getpid():
        raise SystemExit("the child used its parent's connection")
    if seen != sorted(seen) or len(set(seen)) != count:
        raise SystemExit(f"replies out of step: {seen[:20]}")
    tracker.close()
