"""Worker processes of the contract's multi-process and ``kill -9`` checks.

``python -m jobtrack.testing.worker STORE_URL NS JOB_ID COUNT [items]`` records
COUNT one-item updates (with ``items``: of the items ``i0``, ``i1``...),
printing a line after each acknowledged one. A third-party
store must be openable by URL in a fresh process: register it through the
``jobtrack.stores`` entry point group.
"""

from __future__ import annotations

import random
import sys

from jobtrack import JobFinished, JobNotFound, JobTracker, Status
from jobtrack.clock import from_ms

__all__ = ["hammer", "hammer_at", "main", "redeliver", "write_while_reaped"]


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


def hammer_at(url: str, namespace: str, job_id: str, count: int, at_ms: int) -> None:
    """Record *count* one-item updates, all at the instant *at_ms* (a frozen clock)."""
    at = from_ms(at_ms)
    with JobTracker(url, clock=lambda: at) as tracker:
        for _ in range(count):
            tracker.record(namespace, job_id, processed=1, successful=1)


def redeliver(url: str, namespace: str, job_id: str, count: int, seed: int) -> list[str]:
    """Deliver the items ``i0`` .. ``i<count-1>`` in an order of *seed*.

    Every fourth fails first and is retried at once; those come first, so the
    job cannot complete while one of them is failed (a failure counts towards
    completion). Returns the distinct ``finished_at`` this process saw.
    """
    rng = random.Random(seed)
    retried = [i for i in range(count) if i % 4 == 0]
    others = [i for i in range(count) if i % 4]
    rng.shuffle(retried)
    rng.shuffle(others)
    order = retried + others
    finished = set()
    with JobTracker(url) as tracker:
        for i in order:
            if i % 4 == 0:
                tracker.record(namespace, job_id, item=f"i{i}", failed=1, error="transient")
            status = tracker.record(namespace, job_id, item=f"i{i}", processed=1, successful=1)
            if status.finished_at is not None:
                finished.add(status.finished_at.isoformat())
    return sorted(finished)


def write_while_reaped(
    url: str, namespace: str, job_ids: list[str], count: int, seed: int
) -> list[tuple[str, int]]:
    """Record *count* one-item updates on random jobs while another process reaps them.

    Returns ``(job id, updated_at ms)`` of each acknowledged update; a job
    reaped meanwhile refuses the rest (``JobFinished``), and once purged too
    (``JobNotFound``).
    """
    rng = random.Random(seed)
    acked = []
    with JobTracker(url) as tracker:
        for _ in range(count):
            job_id = rng.choice(job_ids)
            try:
                status = tracker.record(namespace, job_id, processed=1, successful=1)
            except (JobFinished, JobNotFound):
                continue
            acked.append((job_id, int(status.updated_at.timestamp() * 1000)))
    return acked


def main(argv: list[str]) -> None:
    """Record updates one by one, printing the count acknowledged so far."""
    url, namespace, job_id, count = argv[0], argv[1], argv[2], int(argv[3])
    items = argv[4:] == ["items"]
    with JobTracker(url) as tracker:
        for i in range(count):
            if items:
                tracker.record(namespace, job_id, item=f"i{i}", processed=1, successful=1)
            else:
                tracker.record(namespace, job_id, processed=1, successful=1)
            sys.stdout.write(f"{i + 1}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
