"""Memory and file store suites: each operation against a bare loop of its medium."""

from __future__ import annotations

import fcntl
import functools
import json
import os
import random
import tempfile
import threading
import time
from typing import Any

from jobtrack import MAX_COUNT, FileStore, JobTracker, MemoryStore

from .common import Row, paired


def memory_suite(quick: bool) -> list[Row]:
    """MemoryStore record/get against a bare threading.Lock + dict loop."""
    n, rounds = (20_000, 3) if quick else (200_000, 5)
    tracker = JobTracker(MemoryStore())
    job = tracker.start("bench", MAX_COUNT)
    jid = job.job_id

    lock = threading.Lock()
    jobs: dict[tuple[str, str], dict[str, Any]] = {
        ("bench", jid): {"processed": 0, "successful": 0, "failed": 0, "updated_at": 0}
    }
    key = ("bench", jid)

    def bare_record() -> None:
        with lock:
            doc = jobs[key]
            doc["processed"] += 1
            doc["successful"] += 0
            doc["failed"] += 0
            doc["updated_at"] = time.time_ns()

    def bare_get() -> dict[str, Any]:
        with lock:
            return dict(jobs[key])

    rows = []
    ours, base = paired(lambda: tracker.record("bench", jid, processed=1), bare_record, n, rounds)
    rows.append(Row("memory", "record", ours, base, "lock + dict update", 0.10))
    ours, base = paired(lambda: tracker.get("bench", jid), bare_get, n, rounds)
    rows.append(Row("memory", "get", ours, base, "lock + dict copy"))
    return rows


class BareFile:
    """The bare baseline of the file medium: lock, read JSON, write temp, rename."""

    def __init__(self, root: str, fsync: bool) -> None:
        self.path = os.path.join(root, "bare.json")
        self.lock = os.path.join(root, "bare.lock")
        self.tmp = os.path.join(root, "bare.tmp")
        self.fsync = fsync
        with open(self.path, "w") as fh:
            json.dump({"processed": 0, "successful": 0, "failed": 0, "updated_at": 0}, fh)

    def record(self) -> None:
        fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with open(self.path, "rb") as fh:
                doc = json.loads(fh.read())
            doc["processed"] += 1
            doc["updated_at"] = time.time_ns()
            data = json.dumps(doc).encode()
            out = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(out, data)
                if self.fsync:
                    os.fsync(out)
            finally:
                os.close(out)
            os.rename(self.tmp, self.path)
            if self.fsync:
                dfd = os.open(os.path.dirname(self.path), os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        finally:
            os.close(fd)

    def get(self) -> Any:
        with open(self.path, "rb") as fh:
            return json.loads(fh.read())


def file_suite(quick: bool) -> list[Row]:
    """FileStore record/get against a bare lock + read + write temp + rename loop."""
    n, rounds = (1_000, 3) if quick else (5_000, 5)
    rows = []
    for fsync in (False, True):
        with tempfile.TemporaryDirectory(prefix="jobtrack-bench-") as root:
            tracker = JobTracker(FileStore(os.path.join(root, "store"), fsync=fsync))
            jid = tracker.start("bench", MAX_COUNT).job_id
            bare = BareFile(root, fsync)
            count = n if not fsync else max(50, n // 20)
            label = " (fsync)" if fsync else ""
            record = functools.partial(tracker.record, "bench", jid, processed=1)
            ours, base = paired(record, bare.record, count, rounds)
            rows.append(
                Row("file", f"record{label}", ours, base, "flock + read + temp + rename" + label,
                    None if fsync else 0.8)
            )  # fmt: skip
            if not fsync:
                get = functools.partial(tracker.get, "bench", jid)
                ours, base = paired(get, bare.get, n, rounds)
                rows.append(Row("file", "get", ours, base, "open + read + json.loads"))
    return rows


def flat_suite(quick: bool) -> list[Row]:
    """The cost of one record as the store grows from 1 to 100,000 jobs.

    One store per size, filled first; then rounds that measure every size in
    turn (so a slow spell hits all sizes alike), keeping each size's best.
    """
    sizes = (1, 1_000, 10_000) if quick else (1, 1_000, 100_000)
    rows = []
    for kind in ("memory", "file"):
        with tempfile.TemporaryDirectory(prefix="jobtrack-flat-") as root:
            picks: dict[int, tuple[JobTracker, list[str]]] = {}
            rng = random.Random(1)
            for size in sizes:
                store = (
                    MemoryStore() if kind == "memory" else FileStore(os.path.join(root, str(size)))
                )
                tracker = JobTracker(store)
                ids = [
                    tracker.start("bench", MAX_COUNT, job_id=f"j{i}").job_id for i in range(size)
                ]
                count = 1_000 if kind == "file" else 50_000
                picks[size] = (tracker, [rng.choice(ids) for _ in range(count)])
            best = dict.fromkeys(sizes, 0.0)
            for _ in range(3 if quick else 5):
                for size in sizes:
                    best[size] = max(best[size], _rate_over(*picks[size]))
            for size in sizes:
                rows.append(
                    Row(
                        "flat",
                        f"{kind} record, {size:,} jobs",
                        best[size],
                        best[sizes[0]],
                        f"same store kind with {sizes[0]} job",
                        note=f"{1e6 / best[size]:.1f} us/update",
                    )
                )
    return rows


def _rate_over(tracker: JobTracker, job_ids: list[str]) -> float:
    """Updates per second recording one item on each of *job_ids* in turn."""
    record = tracker.record
    start = time.perf_counter()
    for jid in job_ids:
        record("bench", jid, processed=1)
    return len(job_ids) / (time.perf_counter() - start)
