"""The SQLite store beyond the contract: its files, hostile input, limits of its medium.

Every failure ends in a clear error — ``StoreCorrupt`` for data that is not
jobtrack's (retrying will not help), ``StoreUnavailable`` for a medium that
cannot serve now — and nothing acknowledged is lost.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobtrack import (
    ConfigurationError,
    FileStore,
    JobTracker,
    SQLiteStore,
    StoreCorrupt,
    StoreUnavailable,
    open_store,
)
from jobtrack.rules import add_rate
from jobtrack.stores.sql.schema import STATEMENTS
from jobtrack.testing.reference import ManualClock
from tests.helpers import rate_waits_a_second

NS = "docs"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "jobs.db"


@pytest.fixture
def tracker(path: Path) -> Iterator[JobTracker]:
    tracker = JobTracker(SQLiteStore(path), clock=ManualClock())
    yield tracker
    tracker.store.close()


def raw(path: Path, sql: str) -> None:
    """Run *sql* on the database by hand, as a person with sqlite3 would."""
    with sqlite3.connect(path) as db:
        db.execute(sql)
    db.close()


def test_urls_open_the_same_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    first = open_store("sqlite:rel.db")
    assert isinstance(first, SQLiteStore) and first.path == str(tmp_path / "rel.db")
    second = open_store(first.url)
    JobTracker(first).start(NS, 1, job_id="a")
    assert JobTracker(second).get(NS, "a").total == 1
    assert open_store(f"sqlite://{tmp_path}/rel.db?durable=true&timeout=2").durable  # type: ignore[attr-defined]
    for store in (first, second):
        store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://host/x.db", "names host"),
        ("sqlite://", "has no path"),
        ("sqlite:x.db?journal=off", "unknown option 'journal'"),
        ("sqlite:x.db?timeout=0", "bad option timeout"),
        ("sqlite:x.db?durable=maybe", "bad option durable"),
    ],
)
def test_bad_urls_are_refused_at_open(
    url: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match=message):
        open_store(url)
    assert list(tmp_path.iterdir()) == []  # nothing made


def test_create_false_refuses_a_missing_database_and_makes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        SQLiteStore(tmp_path / "no" / "jobs.db", create=False)
    with pytest.raises(ConfigurationError, match="does not exist"):
        FileStore(tmp_path / "nodir", create=False)
    assert list(tmp_path.iterdir()) == []


def test_a_directory_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is a directory"):
        SQLiteStore(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigurationError, match="not a directory"):
        FileStore(tmp_path / "file")


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal"])
def test_a_planted_symlink_is_never_followed(path: Path, tmp_path: Path, suffix: str) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"precious")
    if suffix:
        SQLiteStore(path).close()
        for side in ("-wal", "-shm"):
            Path(f"{path}{side}").unlink(missing_ok=True)
    Path(f"{path}{suffix}").symlink_to(target)
    with pytest.raises(StoreCorrupt, match="symlink"):
        SQLiteStore(path)
    assert target.read_bytes() == b"precious"


def test_a_file_that_is_not_a_database_is_corrupt(path: Path) -> None:
    path.write_bytes(b"this is no SQLite database" * 100)
    with pytest.raises(StoreCorrupt, match="not a valid jobtrack database"):
        SQLiteStore(path)
    assert path.read_bytes() == b"this is no SQLite database" * 100


def test_a_database_of_a_newer_jobtrack_is_refused(path: Path) -> None:
    SQLiteStore(path).close()
    raw(path, "UPDATE jobtrack_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(ConfigurationError, match="schema version '99'"):
        SQLiteStore(path)


def test_a_row_broken_by_hand_is_corrupt_and_a_listing_skips_it(
    tracker: JobTracker, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tracker.start(NS, 5, job_id="bad")
    good = tracker.start(NS, 5, job_id="good")
    raw(path, "UPDATE jobtrack_jobs SET processed = 9 WHERE job_id = 'bad'")
    with pytest.raises(StoreCorrupt, match="not a valid job"):
        tracker.get(NS, "bad")
    with pytest.raises(StoreCorrupt):
        tracker.record(NS, "bad", item="x", successful=1)
    with caplog.at_level(logging.WARNING, "jobtrack.stores.sql"):
        assert tracker.list(NS).items == (good,)
    assert "skipped a job" in caplog.text
    raw(path, "UPDATE jobtrack_jobs SET total = 'many' WHERE job_id = 'good'")
    with pytest.raises(StoreCorrupt):
        tracker.get(NS, "good")
    with sqlite3.connect(path) as db:  # nothing of the refused item update was stored
        assert db.execute("SELECT count(*) FROM jobtrack_items").fetchone() == (0,)
    db.close()


def test_a_full_disk_is_unavailable_and_loses_nothing(tracker: JobTracker) -> None:
    store = tracker.store
    assert isinstance(store, SQLiteStore)
    job = tracker.start(NS, 10_000)
    done = tracker.record(NS, job.job_id, item="first", processed=1, successful=1)
    conns = [store._acquire() for _ in range(3)]  # every connection the store will use
    pages = conns[0].execute("PRAGMA page_count").fetchone()[0]
    for conn in conns:
        conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full: no page more
    for conn in conns:
        store._release(conn)
    with pytest.raises(StoreUnavailable, match="full"):
        for i in range(2_000):  # new items need new pages
            done = tracker.record(NS, job.job_id, item=f"s3://b/{i:05}" * 8, successful=1)
    assert tracker.get(NS, job.job_id) == done  # every acknowledged update, nothing more
    for conn in list(store._idle):
        conn.execute("PRAGMA max_page_count = 1073741823")
    tracker.record(NS, job.job_id, item="after", successful=1)


def test_a_read_only_database_is_unavailable(tracker: JobTracker) -> None:
    store = tracker.store
    assert isinstance(store, SQLiteStore)
    job = tracker.start(NS, 3)
    for conn in list(store._idle):
        conn.execute("PRAGMA query_only = ON")  # what a read-only file system answers
    with pytest.raises(StoreUnavailable, match="readonly"):
        tracker.record(NS, job.job_id, successful=1)
    assert tracker.get(NS, job.job_id) == job


def test_an_unwritable_place_is_refused_at_open() -> None:
    with pytest.raises((ConfigurationError, StoreUnavailable)):
        SQLiteStore("/proc/jobtrack-test/jobs.db")


def test_a_writer_that_holds_the_lock_too_long_makes_others_unavailable(path: Path) -> None:
    store = SQLiteStore(path, timeout=0.2)
    tracker = JobTracker(store, clock=ManualClock())
    job = tracker.start(NS, 3)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's long write
    with pytest.raises(StoreUnavailable, match="locked"):
        tracker.record(NS, job.job_id, successful=1)
    assert tracker.get(NS, job.job_id) == job  # readers never wait for writers (WAL)
    other.execute("ROLLBACK")
    other.close()
    assert tracker.record(NS, job.job_id, successful=1).successful == 1
    store.close()


def test_connections_do_not_grow_with_threads_or_namespaces(tracker: JobTracker) -> None:
    store = tracker.store
    assert isinstance(store, SQLiteStore)

    def work(n: int) -> None:
        for i in range(30):
            ns = f"tenant-{n}-{i}"
            job = tracker.start(ns, 1)
            tracker.record(ns, job.job_id, successful=1)
            tracker.list(ns, status="completed")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store._idle) <= 8  # 480 namespaces, 16 threads: a few pooled connections
    store.close()
    assert len(store._idle) == 0


def test_import_and_use_without_fcntl(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['fcntl'] = None; sys.modules['resource'] = None\n"
        "import jobtrack, jobtrack.cli\n"
        f"t = jobtrack.JobTracker('file:{tmp_path.as_posix()}/jobs')\n"
        "j = t.start('ns', 1); print(t.record('ns', j.job_id, successful=1).status)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "completed"


def test_no_linux_only_call_on_the_store_path() -> None:
    root = Path(__file__).parent.parent / "jobtrack"
    for source in root.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert "import fcntl" not in text, source
        assert "/proc/" not in text, source


def test_a_forked_child_opens_its_own_connections(tracker: JobTracker) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    store = tracker.store
    assert isinstance(store, SQLiteStore)
    job = tracker.start(NS, 2)
    parent = set(map(id, store._idle))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: record once, say which connections it used
        try:
            tracker.record(NS, job.job_id, successful=1)
            used = set(map(id, store._idle))
            os.write(write, b"ok" if not used & parent else b"shared")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 10) == b"ok"
    assert tracker.get(NS, job.job_id).successful == 1


def test_the_fast_path_leaves_the_rate_to_the_next_second(path: Path) -> None:
    # the "add" statement writes counters only; "add_all" (once a second) folds the rate
    assert "rate" not in STATEMENTS["add"].partition(" WHERE ")[0]
    clock = ManualClock()
    store = SQLiteStore(path)
    try:
        first, folded = rate_waits_a_second(JobTracker(store, clock=clock), clock)
        # all 5 items as of the update that folds them ("add_all", at :now)
        assert folded.rate == add_rate(first.rate, first.rate_at, 5, folded.rate_at)[0]
    finally:
        store.close()


# What a database keeps of jobtrack's SQL, per SCHEMA_VERSION: the tables and indexes of both
# engines and PostgreSQL's jobtrack_apply. Both are made only with a new database, so a
# database made earlier keeps them as they were: a change to either must bump SCHEMA_VERSION
# (with a migration) and record its fingerprint here.
SCHEMA_FINGERPRINTS = {1: "439e9330b22891c8"}


def test_a_change_to_what_a_database_keeps_bumps_the_schema_version() -> None:
    import hashlib
    import importlib.resources

    from jobtrack.model import MAX_COUNT
    from jobtrack.rules import MAX_ERROR_GROUPS, RATE_TAU_MS
    from jobtrack.stores.protocol import BEAT_MS
    from jobtrack.stores.sql import postgres, sqlite
    from jobtrack.stores.sql.listen import NOTIFY
    from jobtrack.stores.sql.schema import LAST_MS, SCHEMA_VERSION

    apply_sql = importlib.resources.files("jobtrack.stores.sql").joinpath("apply.sql")
    kept = [
        *sqlite.DIALECT.schema(),
        *postgres.DIALECT.schema(),
        apply_sql.read_text("utf-8"),
        repr((MAX_COUNT, MAX_ERROR_GROUPS, RATE_TAU_MS, BEAT_MS, LAST_MS, NOTIFY)),
    ]
    digest = hashlib.sha256("\n\0".join(kept).encode()).hexdigest()[:16]
    assert SCHEMA_FINGERPRINTS.get(SCHEMA_VERSION) == digest, (
        f"the schema or apply.sql changed (fingerprint {digest}): a database made before keeps "
        "the old ones; bump SCHEMA_VERSION, migrate, and record the fingerprint"
    )
