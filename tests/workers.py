"""Worker processes for the multi-process and kill -9 tests.

Run as ``python -m tests.workers STORE_URL NS JOB_ID COUNT`` to record COUNT
single-item updates, printing a line after each acknowledged one.
"""

from __future__ import annotations

import os
import sys

from jobtrack import JobTracker, Status


def hammer(url: str, namespace: str, job_id: str, count: int, fail_every: int = 0) -> int:
    """Record *count* one-item updates; return how many of them completed the job."""
    completions = 0
    with JobTracker(url) as tracker:
        for i in range(count):
            failed = fail_every > 0 and i % fail_every == 0
            status = tracker.record(
                namespace,
                job_id,
                processed=1,
                successful=0 if failed else 1,
                failed=1 if failed else 0,
                error="worker item failed" if failed else None,
            )
            completions += status.status is Status.COMPLETED
    return completions


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


def main(argv: list[str]) -> None:
    url, namespace, job_id, count = argv[0], argv[1], argv[2], int(argv[3])
    with JobTracker(url) as tracker:
        for i in range(count):
            tracker.record(namespace, job_id, processed=1, successful=1)
            sys.stdout.write(f"{i + 1}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
