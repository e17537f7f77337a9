"""Memory and file store suites: each operation against a bare loop of its medium."""

from __future__ import annotations

import fcntl
import functools
import itertools
import json
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from jobtrack import MAX_COUNT, FileStore, JobTracker, MemoryStore

from .common import Row, paired

K = TypeVar("K")


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
                with_items = tracker.start("bench", MAX_COUNT).job_id  # lives in .items.sqlite
                ours, base = paired(_new_items(tracker, with_items), bare.record, count, rounds)
                rows.append(Row("file", "record, new item each", ours, base,
                                "flock + read + temp + rename", 0.75))  # fmt: skip
                get = functools.partial(tracker.get, "bench", with_items)
                ours, base = paired(get, bare.get, n, rounds)
                rows.append(Row("file", "get, job with items", ours, base,
                                "open + read + json.loads"))  # fmt: skip
    return rows


def _new_items(tracker: JobTracker, job_id: str) -> Callable[[], object]:
    """A record of a new 40-character item on each call."""
    items = (f"s3://bucket/doc-{i:025d}" for i in itertools.count())
    return lambda: tracker.record("bench", job_id, processed=1, successful=1, item=next(items))


def flat_suite(quick: bool) -> list[Row]:
    """The cost of one record as the store grows from 1 to 100,000 jobs.

    One store per size, filled first (100,000 file creates take 40-50 s here,
    most of this suite), then flushed to disk (``os.sync``) so the kernel's
    writeback of the fill does not land on whichever size is timed first.
    Workloads per store: records on random jobs (rows ``<kind> record, N jobs``)
    and on the same job every time (``<kind> record one job, N``, which
    isolates the store's size from CPU-cache effects); for files also the bare
    loop of the file suite run in the jobs' directory (``file bare loop, N``),
    since the file system's own speed varies with the directory. All workloads
    are timed in turn in small blocks (so a slow spell hits all alike), keeping
    each one's best round. ``ratio`` is the rate over the same workload's with
    1 job; the largest size's row notes its cost as a multiple of the 1-job cost.
    """
    sizes = (1, 1_000, 10_000) if quick else (1, 1_000, 100_000)
    rows = []
    for kind in ("memory", "file"):
        if kind == "file":
            count, block, rounds = (300, 50, 3) if quick else (1_000, 50, 3)
        else:
            count, block, rounds = (20_000, 1_000, 3) if quick else (50_000, 1_000, 5)
        with tempfile.TemporaryDirectory(prefix="jobtrack-flat-") as root:
            work: dict[tuple[str, int], Callable[[int], float]] = {}
            rng = random.Random(1)
            for size in sizes:
                path = os.path.join(root, str(size))
                tracker = JobTracker(MemoryStore() if kind == "memory" else FileStore(path))
                ids = [
                    tracker.start("bench", MAX_COUNT, job_id=f"j{i}").job_id for i in range(size)
                ]
                work["record", size] = _records(tracker, [rng.choice(ids) for _ in range(count)])
                work["record one job", size] = _records(tracker, [ids[size // 2]] * count)
                if kind == "file":
                    work["bare loop", size] = _bare_records(
                        BareFile(os.path.join(path, "bench"), fsync=False)
                    )
            if kind == "file":
                os.sync()
            best = interleaved(work, count, block, rounds)
            for what in dict.fromkeys(what for what, _ in work):
                base = best[what, sizes[0]]
                for size in sizes:
                    ours = best[what, size]
                    plural = "job" if size == 1 else "jobs"
                    jobs = f"{size:,} {plural}" if what == "record" else f"{size:,}"
                    note = f"{1e6 / ours:.1f} us/update"
                    if size == sizes[-1]:
                        note += f", cost x{base / ours:.2f} of 1 job"
                    rows.append(
                        Row("flat", f"{kind} {what}, {jobs}", ours, base, "same, 1 job", note=note)
                    )
    return rows


def _records(tracker: JobTracker, job_ids: list[str]) -> Callable[[int], float]:
    """A workload: seconds to record one item on each of the next *n* of *job_ids*."""
    position = 0

    def run(n: int) -> float:
        nonlocal position
        chunk = job_ids[position : position + n]
        position = (position + n) % len(job_ids)
        record = tracker.record
        start = time.perf_counter()
        for jid in chunk:
            record("bench", jid, processed=1)
        return time.perf_counter() - start

    return run


def _bare_records(bare: BareFile) -> Callable[[int], float]:
    """A workload: seconds for *n* records of the bare file loop."""

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            bare.record()
        return time.perf_counter() - start

    return run


def interleaved(
    work: dict[K, Callable[[int], float]], count: int, block: int, rounds: int
) -> dict[K, float]:
    """Best rate (ops/s) of each workload over *rounds* of *count* ops, in turn by *block*."""
    best = dict.fromkeys(work, 0.0)
    for _ in range(rounds):
        spent = dict.fromkeys(work, 0.0)
        for _ in range(count // block):
            for key, run in work.items():
                spent[key] += run(block)
        for key, seconds in spent.items():
            best[key] = max(best[key], count // block * block / seconds)
    return best
