"""Memory and SQLite store suites: each operation against a bare loop of its medium."""

from __future__ import annotations

import functools
import itertools
import json
import os
import random
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

try:
    import fcntl
except ImportError:  # Windows: the 0.2 file store's bare loop has no flock there
    fcntl = None  # type: ignore[assignment]

from jobtrack import MAX_COUNT, ConfigurationError, JobTracker, MemoryStore, SQLiteStore
from jobtrack.metrics import Metrics

from .common import Row, paired, skipped

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
    try:
        metered = JobTracker(MemoryStore(), metrics=Metrics())
    except ConfigurationError:  # without the metrics extra
        rows.append(skipped("memory", "record, with metrics", "no prometheus_client"))
        return rows
    mid = metered.start("bench", MAX_COUNT).job_id
    ours, base = paired(
        lambda: metered.record("bench", mid, processed=1, successful=1),
        lambda: tracker.record("bench", jid, processed=1, successful=1),
        n,
        rounds,
    )
    rows.append(Row("memory", "record, with metrics", ours, base, "record without metrics"))
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


PRAGMAS = (
    "auto_vacuum",
    "journal_mode",
    "synchronous",
    "foreign_keys",
    "busy_timeout",
    "cache_size",
    "temp_store",
    "mmap_size",
    "locking_mode",
    "wal_autocheckpoint",
)
"""What a bare loop copies from the store's own connections (``auto_vacuum`` first: it must
precede the first table, ``journal_mode`` before the rest)."""


def store_pragmas(store: SQLiteStore) -> dict[str, object]:
    """The pragmas in force on one of *store*'s pooled connections (as its updates see them)."""
    conn = store._acquire()
    try:
        return {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in PRAGMAS}
    finally:
        store._release(conn)


def shown_pragmas(pragmas: dict[str, object]) -> str:
    """The pragmas that differ between stores or from SQLite's defaults, for a note."""
    sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(int(str(pragmas["synchronous"])))
    return (
        f"{str(pragmas['journal_mode']).upper()}, synchronous={sync}, "
        f"foreign_keys={pragmas['foreign_keys']}, busy_timeout={pragmas['busy_timeout']} ms"
    )


class BareSQLite:
    """The bare baseline of the SQLite medium: one autocommit statement a call.

    A database of its own at *path* (a table ``bare (id INTEGER PRIMARY KEY,
    n INTEGER)`` of *rows* rows), on a connection with the *pragmas* read from
    a store's connection (:func:`store_pragmas`), so that both commit alike.
    """

    UPDATE = "UPDATE bare SET n = n + 1 WHERE id = ? RETURNING n"
    SELECT = "SELECT n FROM bare WHERE id = ?"

    def __init__(self, path: str, pragmas: dict[str, object], rows: int = 1) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for name in PRAGMAS:
            value = pragmas[name]
            self.conn.execute(f"PRAGMA {name} = {value}").fetchall()
        got = {name: self.conn.execute(f"PRAGMA {name}").fetchone()[0] for name in PRAGMAS}
        if got != pragmas:
            raise RuntimeError(f"bare SQLite connection: pragmas {got}, not the store's {pragmas}")
        self.conn.execute("CREATE TABLE bare (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT INTO bare VALUES (?, 0)", ((i,) for i in range(rows)))
        self.conn.execute("COMMIT")
        self.rows = rows

    def record(self, row: int = 0) -> object:
        """``UPDATE ... RETURNING`` of one row, committed."""
        return self.conn.execute(self.UPDATE, (row,)).fetchone()

    def get(self, row: int = 0) -> object:
        """A primary-key ``SELECT`` of one row."""
        return self.conn.execute(self.SELECT, (row,)).fetchone()

    def close(self) -> None:
        self.conn.close()


def sqlite_suite(quick: bool) -> list[Row]:
    """SQLiteStore record/get against bare SQLite statements and the 0.2 file store's loop.

    In one temporary directory: the store's database, a bare database with the
    same pragmas (:class:`BareSQLite`) and the bare ``flock + read + temp file
    + rename`` loop (:class:`BareFile`) that bounded the 0.2 file store; then
    the same with ``durable=True`` (``synchronous=FULL``) on both databases.
    """
    n, rounds = (2_000, 3) if quick else (20_000, 5)
    slow_n = n // 10  # the bare file loop: ~200 us a call
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="jobtrack-bench-sqlite-") as root:
        store = SQLiteStore(os.path.join(root, "store.sqlite3"))
        tracker = JobTracker(store)
        pragmas = store_pragmas(store)
        bare = BareSQLite(os.path.join(root, "bare.sqlite3"), pragmas)
        base_name = "bare UPDATE ... RETURNING, autocommit"
        jid = tracker.start("bench", MAX_COUNT).job_id
        record = functools.partial(tracker.record, "bench", jid, processed=1)
        ours, base = paired(record, bare.record, n, rounds)
        rows.append(Row("sqlite", "record", ours, base, base_name, 0.8,
                        note=f"same pragmas: {shown_pragmas(pragmas)}"))  # fmt: skip
        if fcntl is None:
            rows.append(skipped("sqlite", "record", "flock + read + temp + rename: no fcntl here"))
        else:
            file_loop = BareFile(root, fsync=False)
            ours, base = paired(record, file_loop.record, slow_n, rounds)
            rows.append(Row("sqlite", "record", ours, base, "flock + read + temp + rename "
                            "(bounded the 0.2 file store)", 8.0))  # fmt: skip
        with_items = tracker.start("bench", MAX_COUNT).job_id
        ours, base = paired(_new_items(tracker, with_items), bare.record, n, rounds)
        rows.append(Row("sqlite", "record, new item each", ours, base, base_name, 0.6))
        get = functools.partial(tracker.get, "bench", jid)
        ours, base = paired(get, bare.get, n, rounds)
        rows.append(Row("sqlite", "get", ours, base, "bare primary-key SELECT of one row"))
        tracker.close()
        bare.close()

        store = SQLiteStore(os.path.join(root, "durable.sqlite3"), durable=True)
        tracker = JobTracker(store)
        pragmas = store_pragmas(store)
        bare = BareSQLite(os.path.join(root, "bare-durable.sqlite3"), pragmas)
        jid = tracker.start("bench", MAX_COUNT).job_id
        record = functools.partial(tracker.record, "bench", jid, processed=1)
        ours, base = paired(record, bare.record, max(50, n // 20), rounds)
        rows.append(Row("sqlite", "record, durable", ours, base, base_name,
                        note=f"same pragmas: {shown_pragmas(pragmas)}"))  # fmt: skip
        tracker.close()
        bare.close()
    return rows


def _new_items(tracker: JobTracker, job_id: str) -> Callable[[], object]:
    """A record of a new 40-character item on each call."""
    items = (f"s3://bucket/doc-{i:025d}" for i in itertools.count())
    return lambda: tracker.record("bench", job_id, processed=1, successful=1, item=next(items))


def flat_suite(quick: bool) -> list[Row]:
    """The cost of one record as the store grows from 1 to 100,000 jobs.

    One store per size, filled first through the tracker (100,000 starts, one
    transaction each, take a few seconds on SQLite), then flushed to disk
    (``os.sync``) so the kernel's writeback of the fill does not land on
    whichever size is timed first. Workloads per store: records on random jobs
    (rows ``<kind> record, N jobs``) and on the same job every time (``<kind>
    record one job, N``, which isolates the store's size from CPU-cache
    effects); for SQLite also the bare loop of the sqlite suite on random rows
    of a bare table of as many rows (``sqlite bare loop, N``, same pragmas):
    what the engine's own B-tree and page cache make of the size. All
    workloads are timed in turn in small blocks (so a slow spell hits all
    alike), keeping each one's best round. ``ratio`` is the rate over the same
    workload's with 1 job; the largest size's row notes its cost as a multiple
    of the 1-job and the 1,000-job costs.
    """
    sizes = (1, 1_000, 10_000) if quick else (1, 1_000, 100_000)
    rows = []
    for kind in ("memory", "sqlite"):
        if kind == "sqlite":
            count, block, rounds = (1_000, 100, 3) if quick else (10_000, 250, 3)
        else:
            count, block, rounds = (20_000, 1_000, 3) if quick else (50_000, 1_000, 5)
        with tempfile.TemporaryDirectory(prefix="jobtrack-flat-") as root:
            work: dict[tuple[str, int], Callable[[int], float]] = {}
            closing: list[Callable[[], None]] = []
            rng = random.Random(1)
            for size in sizes:
                path = os.path.join(root, f"{size}.sqlite3")
                tracker = JobTracker(MemoryStore() if kind == "memory" else SQLiteStore(path))
                closing.append(tracker.close)
                ids = [
                    tracker.start("bench", MAX_COUNT, job_id=f"j{i}").job_id for i in range(size)
                ]
                work["record", size] = _records(tracker, [rng.choice(ids) for _ in range(count)])
                work["record one job", size] = _records(tracker, [ids[size // 2]] * count)
                if isinstance(tracker.store, SQLiteStore):
                    bare = BareSQLite(
                        os.path.join(root, f"bare-{size}.sqlite3"),
                        store_pragmas(tracker.store),
                        rows=size,
                    )
                    closing.append(bare.close)
                    work["bare loop", size] = _bare_records(
                        bare, [rng.randrange(size) for _ in range(count)]
                    )
            if kind == "sqlite":
                os.sync()
            best = interleaved(work, count, block, rounds)
            for close in closing:
                close()
            for what in dict.fromkeys(what for what, _ in work):
                base = best[what, sizes[0]]
                for size in sizes:
                    ours = best[what, size]
                    plural = "job" if size == 1 else "jobs"
                    jobs = f"{size:,} {plural}" if what == "record" else f"{size:,}"
                    note = f"{1e6 / ours:.1f} us/update"
                    if size == sizes[-1]:
                        note += (
                            f", cost x{base / ours:.2f} of 1 job, "
                            f"x{best[what, sizes[1]] / ours:.2f} of {sizes[1]:,}"
                        )
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


def _bare_records(bare: BareSQLite, rows: list[int]) -> Callable[[int], float]:
    """A workload: seconds for the bare loop's update of each of the next *n* of *rows*."""
    position = 0

    def run(n: int) -> float:
        nonlocal position
        chunk = rows[position : position + n]
        position = (position + n) % len(rows)
        record = bare.record
        start = time.perf_counter()
        for row in chunk:
            record(row)
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
