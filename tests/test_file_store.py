"""FileStore specifics: many OS processes, kill -9, layout, paths, fsync."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import sqlite3
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobtrack import (
    ConfigurationError,
    FileStore,
    InvalidName,
    JobExists,
    JobNotFound,
    JobStatus,
    JobTracker,
    Status,
    StoreCorrupt,
    StoreUnavailable,
)
from jobtrack.clock import to_ms
from jobtrack.rules import Delta, new_job
from tests.helpers import T0, ManualClock

ROOT = Path(__file__).resolve().parent.parent


def test_layout_is_one_wire_document_per_job(tmp_path: Path) -> None:
    tracker = JobTracker(FileStore(tmp_path))
    job = tracker.start("ns", 3, job_id="j1")
    tracker.record("ns", "j1", processed=1, successful=1)
    doc = json.loads((tmp_path / "ns" / "j1.json").read_text())
    assert doc == tracker.get("ns", "j1").to_dict()
    index = {".index.sqlite", ".index.sqlite-shm", ".index.sqlite-wal"}  # the listing index
    assert {p.name for p in (tmp_path / "ns").iterdir()} - index == {"j1.json", "j1.lock"}
    # with its first error (or item) the job moves to the item database: the document
    # is marked, and keeps the counters it had then until the job completes
    before = tracker.get("ns", "j1").to_dict()
    tracker.record("ns", "j1", processed=1, failed=1, error="e")
    doc = json.loads((tmp_path / "ns" / "j1.json").read_text())
    assert doc.pop("_items") is True
    assert doc == before != tracker.get("ns", "j1").to_dict()
    final = tracker.record("ns", "j1", processed=1, failed=1, item="a")
    assert final.is_finished
    doc = json.loads((tmp_path / "ns" / "j1.json").read_text())
    assert doc.pop("_items") is True and doc.pop("_expires") == to_ms(final.expires_at)  # type: ignore[arg-type]
    assert doc == final.to_dict()
    items = {".items.sqlite", ".items.sqlite-shm", ".items.sqlite-wal"}
    assert {p.name for p in (tmp_path / "ns").iterdir()} - index - items == {"j1.json", "j1.lock"}
    assert tracker.delete("ns", job.job_id)
    assert {p.name for p in (tmp_path / "ns").iterdir()} <= index | items


@pytest.mark.parametrize("name", ["..", "../x", "/etc", "a/../../b", "", "x" * 129])
def test_the_store_itself_refuses_names_outside_its_root(tmp_path: Path, name: str) -> None:
    root = tmp_path / "root"
    store = FileStore(root)
    with pytest.raises(InvalidName):
        store.get(name, "j")
    with pytest.raises(InvalidName):
        store.get("ns", name)
    with pytest.raises(InvalidName):
        store.create(new_job(name, "j", 1, T0))
    with pytest.raises(InvalidName):
        store.update("ns", name, Delta(1), T0)
    with pytest.raises(InvalidName):
        store.delete(name, "j")
    with pytest.raises(InvalidName):
        store.list(name, 10, None)
    assert sorted(os.listdir(tmp_path)) == ["root"]
    assert os.listdir(root) == []


def test_root_must_be_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigurationError, match=r"not a directory|cannot use"):
        FileStore(tmp_path / "file")


GOOD = {
    "job_id": "j1",
    "namespace_name": "ns",
    "status": "running",
    "total": 3,
    "processed": 0,
    "successful": 0,
    "failed": 0,
    "last_error": None,
    "started_at": "2026-05-21T12:00:00.000Z",
    "updated_at": "2026-05-21T12:00:00.000Z",
    "finished_at": None,
}
CORRUPT: dict[str, bytes] = {
    "truncated": b'{"job_id": "j1", "trunc',
    "nan-total": json.dumps(GOOD).replace('"total": 3', '"total": NaN').encode(),
    "string-total": json.dumps({**GOOD, "total": "3"}).encode(),
    "bool-count": json.dumps({**GOOD, "processed": True}).encode(),
    "float-count": json.dumps({**GOOD, "failed": 1.0}).encode(),
    "negative-count": json.dumps({**GOOD, "successful": -1}).encode(),
    "extra-key": json.dumps({**GOOD, "color": "red"}).encode(),
    "missing-key": json.dumps({k: v for k, v in GOOD.items() if k != "total"}).encode(),
    "broken-invariant": json.dumps({**GOOD, "processed": 4}).encode(),
    "deep-nesting": b"[" * 100_000 + b"]" * 100_000,
    "a-list": b"[1, 2, 3]",
    "not-utf8": b"\xff\xfe",
    "too-large": json.dumps({**GOOD, "last_error": "x" * 70_000}).encode(),
}


@pytest.mark.parametrize("text", CORRUPT.values(), ids=CORRUPT.keys())
def test_corrupt_file_is_store_corrupt_and_a_listing_skips_it(
    tmp_path: Path, text: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = JobTracker(FileStore(tmp_path))
    tracker.start("ns", 3, job_id="j1")
    other = tracker.start("ns", 3, job_id="j2")
    (tmp_path / "ns" / "j1.json").write_bytes(text)
    with pytest.raises(StoreCorrupt, match="corrupt job file") as info:
        tracker.get("ns", "j1")
    assert not isinstance(info.value, StoreUnavailable)  # retrying will not help
    with pytest.raises(StoreCorrupt):
        tracker.record("ns", "j1", processed=1)
    assert tracker.list("ns").items == (other,)
    assert "skips a corrupt job" in caplog.text
    (tmp_path / "ns" / "j1.json").write_text(json.dumps(GOOD))  # the good document reads fine
    assert tracker.get("ns", "j1").total == 3


def test_a_job_path_that_is_not_a_regular_file_is_corrupt(tmp_path: Path) -> None:
    tracker = JobTracker(FileStore(tmp_path / "store"))
    tracker.start("ns", 3, job_id="link")
    tracker.start("ns", 3, job_id="fifo")
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({**GOOD, "job_id": "link"}))
    (tmp_path / "store" / "ns" / "link.json").unlink()
    (tmp_path / "store" / "ns" / "link.json").symlink_to(outside)
    (tmp_path / "store" / "ns" / "fifo.json").unlink()
    os.mkfifo(tmp_path / "store" / "ns" / "fifo.json")
    tracker.start("ns", 3, job_id="zero")
    (tmp_path / "store" / "ns" / "zero.json").unlink()
    (tmp_path / "store" / "ns" / "zero.json").symlink_to("/dev/zero")  # was a MemoryError
    for job_id in ("link", "fifo", "zero"):  # never followed, never blocks
        with pytest.raises(StoreCorrupt, match=r"corrupt job file|symlink"):
            tracker.get("ns", job_id)
    assert tracker.list("ns").items == ()


def test_paths_of_the_wrong_kind_are_corrupt_not_unavailable(tmp_path: Path) -> None:
    # a retry cannot help with these: StoreCorrupt (not retryable), never StoreUnavailable
    tracker = JobTracker(FileStore(tmp_path))
    (tmp_path / "ns").write_text("not a directory")
    with pytest.raises(StoreCorrupt, match="is not a namespace directory"):
        tracker.start("ns", 1)
    tracker.start("ok", 1, job_id="j")
    (tmp_path / "ok" / "j.json").unlink()
    (tmp_path / "ok" / "j.json").mkdir()
    with pytest.raises(StoreCorrupt, match=r"j\.json in 'ok' is a directory"):
        tracker.delete("ok", "j")
    assert (tmp_path / "ok" / "j.json").is_dir()  # left for a person to look at


def test_unwritable_store_is_unavailable(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root ignores permissions: sysfs refuses a new directory to all
        root = Path("/sys")
    else:  # pragma: no cover
        tmp_path.chmod(0o500)
        root = tmp_path
    tracker = JobTracker(FileStore(root))
    with pytest.raises(StoreUnavailable, match="file store I/O failed"):
        tracker.start("ns", 3)


def test_lock_left_by_a_killed_create_is_cleaned(tmp_path: Path) -> None:
    (tmp_path / "ns").mkdir()
    (tmp_path / "ns" / "j1.lock").write_text("")
    tracker = JobTracker(FileStore(tmp_path))
    with pytest.raises(LookupError):
        tracker.record("ns", "j1", processed=1)
    assert not (tmp_path / "ns" / "j1.lock").exists()
    assert tracker.start("ns", 1, job_id="j1").total == 1


def test_create_false_refuses_a_missing_directory_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"no file store at .*does not exist"):
        FileStore(tmp_path / "typo", create=False)
    assert list(tmp_path.iterdir()) == []
    made = FileStore(tmp_path / "jobs")  # the default creates it
    JobTracker(made).start("ns", 1, job_id="j")
    assert JobTracker(FileStore(tmp_path / "jobs", create=False)).get("ns", "j").total == 1


@pytest.mark.parametrize("option", ["fsync", "create"])
@pytest.mark.parametrize("value", ["no", 0, None])
def test_options_must_be_bools(tmp_path: Path, option: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=f"{option} must be True or False"):
        FileStore(tmp_path / "jobs", **{option: value})  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_a_lock_on_a_deleted_lock_file_is_taken_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStore(tmp_path)
    JobTracker(store).start("ns", 5, job_id="j")
    lock_path = str(tmp_path / "ns" / "j.lock")
    real_flock = fcntl.flock
    locked: list[int] = []

    def flock(fd: int, operation: int) -> None:
        if not locked:  # while this caller waited, the job was deleted and started again
            os.unlink(lock_path)
            Path(lock_path).touch()
        locked.append(fd)
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    with store._locked("ns", "j"):
        monkeypatch.undo()
        other = os.open(lock_path, os.O_RDWR)
        try:  # the lock taken is on the file now at the path, not on the orphan
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)
    assert len(locked) == 2


def test_fsync_option(tmp_path: Path) -> None:
    store = FileStore(tmp_path, fsync=True)
    tracker = JobTracker(store)
    job = tracker.start("ns", 2)
    assert tracker.record("ns", job.job_id, successful=2).status is Status.COMPLETED
    assert "fsync=True" in repr(store)


class TestHostileFiles:
    """Planted symlinks, FIFOs and deleted lock files (issue 10): never followed, never stuck."""

    def test_a_planted_temp_symlink_is_never_written_through(self, tmp_path: Path) -> None:
        tracker = JobTracker(FileStore(tmp_path / "store"))
        job = tracker.start("ns", 3, job_id="c")
        victim = tmp_path / "victim"
        victim.write_text("precious")
        (tmp_path / "store" / "ns" / "c.tmp").symlink_to(victim)  # the name 0.1 used
        assert tracker.record("ns", "c", processed=1).processed == 1
        assert victim.read_text() == "precious"
        doc = tmp_path / "store" / "ns" / "c.json"
        assert doc.is_file() and not doc.is_symlink()
        assert tracker.get("ns", job.job_id).processed == 1
        assert not list((tmp_path / "store" / "ns").glob("c.*.tmp"))  # nothing left behind

    def test_a_symlinked_lock_file_is_corrupt_and_its_target_untouched(
        self, tmp_path: Path
    ) -> None:
        tracker = JobTracker(FileStore(tmp_path / "store"))
        tracker.start("ns", 3, job_id="c")
        victim = tmp_path / "victim"
        victim.write_text("precious")
        lock = tmp_path / "store" / "ns" / "c.lock"
        lock.unlink()
        lock.symlink_to(victim)
        with pytest.raises(StoreCorrupt, match="symlink"):
            tracker.record("ns", "c", processed=1)
        assert victim.read_text() == "precious"

    def test_a_symlinked_namespace_directory_is_never_entered(self, tmp_path: Path) -> None:
        outside = tmp_path / "outside"
        outside.mkdir()
        (tmp_path / "store").mkdir()
        (tmp_path / "store" / "ns").symlink_to(outside)
        tracker = JobTracker(FileStore(tmp_path / "store"))
        for call in (
            lambda: tracker.start("ns", 1, job_id="x"),
            lambda: tracker.get("ns", "x"),
            lambda: tracker.record("ns", "x", processed=1),
            lambda: tracker.list("ns"),
            lambda: tracker.delete("ns", "x"),
        ):
            with pytest.raises(StoreCorrupt, match="not a namespace directory"):
                call()
        assert list(outside.iterdir()) == []

    def test_a_document_naming_another_job_is_corrupt(self, tmp_path: Path) -> None:
        tracker = JobTracker(FileStore(tmp_path))
        tracker.start("ns", 3, job_id="a")
        tracker.start("ns", 3, job_id="b")
        (tmp_path / "ns" / "b.json").write_bytes((tmp_path / "ns" / "a.json").read_bytes())
        with pytest.raises(StoreCorrupt, match="names another job"):
            tracker.get("ns", "b")
        assert [job.job_id for job in tracker.list("ns").items] == ["a"]

    def test_deleting_lock_files_never_strands_a_job(self, tmp_path: Path) -> None:
        tracker = JobTracker(FileStore(tmp_path))
        for job_id in ("a", "b", "c"):
            tracker.start("ns", 3, job_id=job_id)
        for lock in (tmp_path / "ns").glob("*.lock"):  # a "stale lock" cleanup
            lock.unlink()
        assert tracker.record("ns", "a", processed=1, successful=1).successful == 1
        assert tracker.abort("ns", "b", "gave up").is_finished
        assert tracker.delete("ns", "c") is True
        with pytest.raises(JobExists):
            tracker.start("ns", 3, job_id="a")  # it exists: never overwritten
        assert tracker.start("ns", 2, job_id="c").total == 2  # deleted: started again

    def test_a_full_disk_is_unavailable_and_leaves_no_temp_file(self, tmp_path: Path) -> None:
        if os.geteuid() != 0:  # pragma: no cover - CI runs as root
            pytest.fail("this test mounts a small tmpfs: run it as root")
        mount = tmp_path / "small"
        mount.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
        try:
            tracker = JobTracker(FileStore(mount / "store"))
            job = tracker.start("ns", 10)
            before = tracker.get("ns", job.job_id)
            with contextlib.suppress(OSError), open(mount / "filler", "wb") as filler:
                while True:  # fill the disk
                    filler.write(b"x" * 4096)
                    filler.flush()
            with pytest.raises(StoreUnavailable, match="ENOSPC"):
                tracker.record("ns", job.job_id, processed=1, successful=1)
            with pytest.raises(StoreUnavailable, match=r"ENOSPC|disk is full"):
                tracker.record("ns", job.job_id, failed=1, error="e" * 1000)
            with pytest.raises(StoreUnavailable, match=r"ENOSPC|disk is full"):
                tracker.record("ns", job.job_id, failed=1, item="a" * 500)
            assert tracker.get("ns", job.job_id) == before  # nothing of it applied
            assert not list((mount / "store" / "ns").glob("*.tmp"))
            tracker.close()
        finally:
            subprocess.run(["umount", "--lazy", str(mount)], check=True)  # never left mounted


class TestListingIndex:
    """A page costs the same whatever the namespace holds (issue 10): the .index.sqlite."""

    def test_a_namespace_without_an_index_gets_one_from_its_documents(self, tmp_path: Path) -> None:
        tracker = JobTracker(FileStore(tmp_path), clock=ManualClock())
        for i in range(5):
            tracker.start("ns", 1, job_id=f"j{i}")
        for path in (tmp_path / "ns").glob(".index.sqlite*"):  # as jobtrack 0.1 left it
            path.unlink()
        assert [job.job_id for job in tracker.list("ns", limit=3).items] == ["j4", "j3", "j2"]
        assert (tmp_path / "ns" / ".index.sqlite").is_file()
        tracker.start("ns", 1, job_id="j5")
        assert [job.job_id for job in tracker.list("ns").items] == [
            f"j{i}" for i in range(5, -1, -1)
        ]

    def test_a_document_gone_by_hand_is_skipped_and_its_key_tidied(self, tmp_path: Path) -> None:
        import sqlite3

        tracker = JobTracker(FileStore(tmp_path), clock=ManualClock())
        for i in range(6):
            tracker.start("ns", 1, job_id=f"j{i}")
        for gone in ("j4", "j3", "j1"):
            (tmp_path / "ns" / f"{gone}.json").unlink()
        first = tracker.list("ns", limit=2)
        assert [job.job_id for job in first.items] == ["j5", "j2"]  # never a short page
        assert [job.job_id for job in tracker.list("ns", cursor=first.next_cursor).items] == ["j0"]
        with sqlite3.connect(tmp_path / "ns" / ".index.sqlite") as db:
            assert db.execute("SELECT id FROM jobs ORDER BY id").fetchall() == [
                ("j0",),
                ("j2",),
                ("j5",),
            ]
        assert not (tmp_path / "ns" / "j3.lock").exists()  # tidied under its lock, then removed

    def test_a_symlinked_or_foreign_index_is_corrupt(self, tmp_path: Path) -> None:
        tracker = JobTracker(FileStore(tmp_path))
        tracker.start("ns", 1, job_id="a")
        index = tmp_path / "ns" / ".index.sqlite"
        index.unlink()
        victim = tmp_path / "victim"
        victim.write_text("precious")
        index.symlink_to(victim)
        with pytest.raises(StoreCorrupt, match="not a regular file"):
            tracker.list("ns")
        assert victim.read_text() == "precious"
        for path in (tmp_path / "ns").glob(".index.sqlite*"):  # the whole database replaced
            path.unlink()  # (a file replaced under its old -wal reads through it: SQLite's way)
        index.write_text("not a database")
        with pytest.raises(StoreCorrupt, match="not a database"):
            tracker.list("ns")


def test_a_page_reads_only_its_own_documents(tmp_path: Path) -> None:
    reads: list[str] = []

    class Counting(FileStore):
        def _read(self, dfd: int, namespace: str, job_id: str) -> Any:
            reads.append(job_id)
            return super()._read(dfd, namespace, job_id)

    tracker = JobTracker(Counting(tmp_path), clock=ManualClock())
    for i in range(300):
        tracker.start("ns", 1, job_id=f"j{i:03d}")
    tracker.list("ns")  # the index exists (built, or filled as the jobs started)
    reads.clear()
    page = tracker.list("ns", limit=5)
    assert [job.job_id for job in page.items] == ["j299", "j298", "j297", "j296", "j295"]
    assert len(reads) == 6  # limit + 1 (is there a next page?), not 300
    reads.clear()
    tracker.list("ns", limit=5, cursor=page.next_cursor)
    assert len(reads) == 6


class TestIndexRaces:
    """Found by review: the listing index under concurrency and failures."""

    def test_index_builders_running_at_once_each_see_every_document(self, tmp_path: Path) -> None:
        tracker = JobTracker(FileStore(tmp_path), clock=ManualClock())
        for i in range(3000):
            tracker.start("ns", 1, job_id=f"j{i:04d}")
        for path in (tmp_path / "ns").glob(".index.sqlite*"):
            path.unlink()
        store = FileStore(tmp_path)  # one store, its directory descriptor shared by threads
        counts: list[int] = []
        barrier = threading.Barrier(8)

        def page() -> None:
            barrier.wait()
            counts.append(len(store.list("ns", 1000, None)))

        threads = [threading.Thread(target=page) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert counts == [1000] * 8
        listed = 0
        cursor = None
        while True:
            found = tracker.list("ns", limit=1000, cursor=cursor)
            listed += len(found.items)
            if found.next_cursor is None:
                break
            cursor = found.next_cursor
        assert listed == 3000

    def test_delete_forgets_the_key_before_it_lets_go_of_the_lock(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from jobtrack.stores.file_index import NamespaceIndex

        store = FileStore(tmp_path)
        JobTracker(store).start("ns", 1, job_id="j")
        events: list[str] = []
        real_remove, real_unlink = NamespaceIndex.remove, os.unlink

        def remove(self: NamespaceIndex, job_id: str, ms: int | None) -> None:
            events.append("forget key")
            real_remove(self, job_id, ms)

        def unlink(path: Any, *, dir_fd: int | None = None) -> None:
            events.append(f"unlink {path}")
            real_unlink(path, dir_fd=dir_fd)

        monkeypatch.setattr(NamespaceIndex, "remove", remove)
        monkeypatch.setattr(os, "unlink", unlink)
        assert store.delete("ns", "j")
        # a create of the same id waits for the lock, so it can never lose its new key
        assert events == ["unlink j.json", "forget key", "unlink j.lock"]

    def test_a_create_that_failed_then_a_retry_lists_the_job_once(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        clock = ManualClock()
        tracker = JobTracker(FileStore(tmp_path), clock=clock)
        tracker.start("ns", 1, job_id="other")
        real_write = FileStore._write
        failures = [OSError(errno.ENOSPC, "No space left on device")]

        def write(self: FileStore, dfd: int, job: Any) -> None:
            if failures:
                raise failures.pop()
            real_write(self, dfd, job)

        monkeypatch.setattr(FileStore, "_write", write)
        clock.advance(seconds=1)
        with pytest.raises(StoreUnavailable, match="ENOSPC"):
            tracker.start("ns", 1, job_id="j")
        clock.advance(seconds=1)
        tracker.start("ns", 1, job_id="j")  # the retry, a second later
        assert [job.job_id for job in tracker.list("ns").items] == ["j", "other"]

    def test_close_never_closes_a_directory_another_thread_may_be_using(
        self, tmp_path: Path
    ) -> None:
        import gc

        store = FileStore(tmp_path)
        tracker = JobTracker(store)
        tracker.start("ns", 2, job_id="j")
        kept = {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in store._opened}
        assert kept
        tracker.close()
        for fd in kept:
            os.fstat(fd)  # still open: a call in flight keeps a valid directory
        assert tracker.record("ns", "j", processed=1).processed == 1  # usable after close
        del tracker, store
        gc.collect()
        for fd, target in kept.items():  # closed with the store (its number may be reused)
            assert not os.path.exists(f"/proc/self/fd/{fd}") or (
                os.readlink(f"/proc/self/fd/{fd}") != target
            )


class TestHostileRetest:
    """Found by a hostile re-test: every one fails on the code before its fix."""

    def test_a_directory_or_socket_at_a_job_path_is_corrupt_and_skipped(
        self, tmp_path: Path
    ) -> None:
        import socket as sockets

        tracker = JobTracker(FileStore(tmp_path))
        good = tracker.start("ns", 1, job_id="good")
        (tmp_path / "ns" / "dd.json").mkdir()
        server = sockets.socket(sockets.AF_UNIX)
        server.bind(str(tmp_path / "ns" / "sock.json"))
        try:
            for job_id in ("dd", "sock"):
                with pytest.raises(StoreCorrupt, match="not a regular file"):
                    tracker.get("ns", job_id)
            for path in (tmp_path / "ns").glob(".index.sqlite*"):
                path.unlink()  # the rebuild reads every document: it must skip them
            assert tracker.list("ns").items == (good,)
            assert tracker.start("ns", 1, job_id="new").total == 1
        finally:
            server.close()

    def test_a_stored_lone_surrogate_is_corrupt_not_a_crash(self, tmp_path: Path) -> None:
        tracker = JobTracker(FileStore(tmp_path))
        tracker.start("ns", 2, job_id="sur")
        doc = tracker.get("ns", "sur").to_dict()
        text = json.dumps({**doc, "last_error": "\udcff"})  # valid JSON, not valid UTF-8
        (tmp_path / "ns" / "sur.json").write_text(text)
        with pytest.raises(StoreCorrupt, match="lone surrogate"):
            tracker.get("ns", "sur")
        with pytest.raises(StoreCorrupt, match="lone surrogate"):  # was a raw UnicodeEncodeError
            tracker.record("ns", "sur", processed=1)

    def test_a_namespace_directory_swapped_under_a_long_lived_store_is_followed(
        self, tmp_path: Path
    ) -> None:
        old = JobTracker(FileStore(tmp_path))  # keeps its namespace directory open
        old.start("ns", 300, job_id="j")
        for _ in range(100):
            old.record("ns", "j", processed=1)
        os.rename(tmp_path / "ns", tmp_path / "ns.old")  # an operator's copy-and-swap
        (tmp_path / "ns").mkdir()
        for name in ("j.json", "j.lock"):
            (tmp_path / "ns" / name).write_bytes((tmp_path / "ns.old" / name).read_bytes())
        for _ in range(100):
            old.record("ns", "j", processed=1)
        assert JobTracker(FileStore(tmp_path)).get("ns", "j").processed == 200

    @pytest.mark.parametrize("kind", ["fifo", "directory", "wal-symlink", "journal-symlink"])
    def test_a_planted_index_file_is_corrupt_and_its_target_untouched(
        self, tmp_path: Path, kind: str
    ) -> None:
        tracker = JobTracker(FileStore(tmp_path))
        tracker.start("ns", 1, job_id="a")
        for path in (tmp_path / "ns").glob(".index.sqlite*"):
            path.unlink()
        victim = tmp_path / "victim"
        victim.write_text("precious")
        if kind == "fifo":
            os.mkfifo(tmp_path / "ns" / ".index.sqlite")
        elif kind == "directory":
            (tmp_path / "ns" / ".index.sqlite").mkdir()
        else:
            suffix = kind.removesuffix("-symlink")
            (tmp_path / "ns" / f".index.sqlite-{suffix}").symlink_to(victim)
        with pytest.raises(StoreCorrupt, match="not a regular file"):
            tracker.list("ns")
        assert victim.read_text() == "precious"

    def test_store_paths_with_a_nul_or_undecodable_bytes_are_refused(self, tmp_path: Path) -> None:
        for url in (f"file://{tmp_path}/a%00b", f"file://{tmp_path}/a%ffb"):
            with pytest.raises(ConfigurationError):
                JobTracker(url)
        assert list(tmp_path.iterdir()) == []


class TestItemsDatabase:
    """A job with items or errors lives in the namespace's .items.sqlite (issue 11)."""

    def marked(self, tmp_path: Path) -> tuple[JobTracker, Path]:
        tracker = JobTracker(FileStore(tmp_path), clock=ManualClock())
        tracker.start("ns", 5, job_id="j1")
        tracker.record("ns", "j1", item="a", processed=1, successful=1)
        return tracker, tmp_path / "ns" / "j1.json"

    def test_get_and_list_read_the_live_state(self, tmp_path: Path) -> None:
        tracker, doc = self.marked(tmp_path)
        live = tracker.record("ns", "j1", processed=2, successful=1)  # anonymous, still in the db
        assert json.loads(doc.read_text())["successful"] == 0  # the document keeps its snapshot
        assert tracker.get("ns", "j1") == live
        assert tracker.list("ns").items == (live,)
        assert JobTracker(FileStore(tmp_path)).get("ns", "j1") == live  # another store too

    def test_a_writer_that_died_between_the_mark_and_the_row(self, tmp_path: Path) -> None:
        tracker = JobTracker(FileStore(tmp_path), clock=ManualClock())
        before = tracker.start("ns", 3, job_id="j1")
        doc = tmp_path / "ns" / "j1.json"
        # what a writer killed after step 1 leaves: the mark, no row
        doc.write_text(json.dumps({**before.to_dict(), "_items": True}))
        assert tracker.get("ns", "j1") == before  # the document is still the truth
        after = tracker.record("ns", "j1", item="a", failed=1, error="x")
        assert (after.failed, after.last_error) == (1, "x")
        assert tracker.get("ns", "j1") == after
        assert [f.item for f in tracker.failed_items("ns", "j1").items] == ["a"]

    @pytest.mark.parametrize("value", ["false", "1", '"yes"', "null", "{}"])
    def test_a_mark_that_is_not_true_is_corrupt(self, tmp_path: Path, value: str) -> None:
        tracker, doc = self.marked(tmp_path)
        text = doc.read_text().replace('"_items":true', f'"_items":{value}')
        doc.write_text(text)
        with pytest.raises(StoreCorrupt, match="_items"):
            tracker.get("ns", "j1")

    def test_a_corrupt_row_is_corrupt(self, tmp_path: Path) -> None:
        import sqlite3

        tracker, _ = self.marked(tmp_path)
        with contextlib.closing(sqlite3.connect(tmp_path / "ns" / ".items.sqlite")) as db, db:
            db.execute("UPDATE jobs SET doc = ?", ('{"total": "three"}',))
        calls: tuple[Callable[[], object], ...] = (
            lambda: tracker.get("ns", "j1"),
            lambda: tracker.record("ns", "j1", item="b", successful=1),
            lambda: tracker.record("ns", "j1", processed=1),
        )
        for call in calls:
            with pytest.raises(StoreCorrupt, match=r"items\.sqlite"):
                call()
        assert tracker.list("ns").items == ()  # skipped with a warning

    @pytest.mark.parametrize(
        ("sql", "call"),
        [
            ("UPDATE items SET failed_ms = 'abc'", "failed_items"),
            ("UPDATE items SET failed_ms = 99999999999999999", "failed_items"),
            ("UPDATE errors SET count = 'x'", "errors"),
            ("UPDATE errors SET count = -3", "errors"),
            ("UPDATE jobs SET doc = replace(doc, '\"j1\"', '\"j2\"')", "get"),
            ("UPDATE jobs SET doc = replace(doc, '\"ns\"', '\"other\"')", "get"),
        ],
    )
    def test_corrupt_rows_are_corrupt(self, tmp_path: Path, sql: str, call: str) -> None:
        import sqlite3

        tracker, _ = self.marked(tmp_path)
        tracker.record("ns", "j1", item="b", failed=1, error="x")
        with contextlib.closing(sqlite3.connect(tmp_path / "ns" / ".items.sqlite")) as db, db:
            db.execute(sql)
        with pytest.raises(StoreCorrupt, match=r"items\.sqlite"):
            getattr(tracker, call)("ns", "j1")

    def test_a_hostile_items_database_stops_no_delete_or_start(self, tmp_path: Path) -> None:
        self.marked(tmp_path)
        (tmp_path / "ns" / ".items.sqlite").write_bytes(b"garbage" * 1000)
        for suffix in ("-wal", "-shm"):
            (tmp_path / "ns" / f".items.sqlite{suffix}").unlink(missing_ok=True)
        fresh = JobTracker(FileStore(tmp_path))  # no connection kept from before
        assert fresh.delete("ns", "j1")
        assert not (tmp_path / "ns" / "j1.lock").exists()
        assert not fresh.delete("ns", "j1")
        assert fresh.start("ns", 1, job_id="j1").total == 1  # plain jobs still start
        assert fresh.record("ns", "j1", successful=1).is_finished

    def test_close_lets_go_of_the_item_databases(self, tmp_path: Path) -> None:
        store = FileStore(tmp_path)
        tracker = JobTracker(store)
        before = len(os.listdir("/proc/self/fd"))
        tracker.start("ns", 5, job_id="j1")
        tracker.record("ns", "j1", item="a", successful=1)
        opened = len(os.listdir("/proc/self/fd"))
        store.close()
        assert len(os.listdir("/proc/self/fd")) <= opened - 3  # the database, -wal, -shm
        assert len(os.listdir("/proc/self/fd")) <= before + 1  # at most the kept directory
        assert tracker.record("ns", "j1", item="b", successful=1).successful == 2  # reopens

    @pytest.mark.parametrize("kind", ["symlink", "fifo", "garbage", "directory"])
    def test_a_hostile_items_database(self, tmp_path: Path, kind: str) -> None:
        tracker = JobTracker(FileStore(tmp_path))
        tracker.start("ns", 5, job_id="j1")
        path = tmp_path / "ns" / ".items.sqlite"
        target = tmp_path / "elsewhere.sqlite"
        if kind == "symlink":
            path.symlink_to(target)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "garbage":
            path.write_bytes(b"not a database at all" * 100)
        else:
            path.mkdir()
        with pytest.raises(StoreCorrupt):
            tracker.record("ns", "j1", item="a", successful=1)
        assert not target.exists()
        assert tracker.get("ns", "j1").successful == 0  # nothing applied, still readable
        assert tracker.record("ns", "j1", successful=1).successful == 1  # plain updates work

    def test_reading_items_of_unknown_jobs_leaves_no_file(self, tmp_path: Path) -> None:
        tracker, _ = self.marked(tmp_path)
        before = sorted(p.name for p in (tmp_path / "ns").iterdir())
        for i in range(5):
            with pytest.raises(JobNotFound):
                tracker.errors("ns", f"ghost{i}")
            with pytest.raises(JobNotFound):
                tracker.failed_items("ns", f"ghost{i}")
        assert sorted(p.name for p in (tmp_path / "ns").iterdir()) == before

    def test_delete_and_start_again_forget_the_items(self, tmp_path: Path) -> None:
        import sqlite3

        tracker, _ = self.marked(tmp_path)
        tracker.record("ns", "j1", item="b", failed=1, error="x")
        assert tracker.delete("ns", "j1")
        with contextlib.closing(sqlite3.connect(tmp_path / "ns" / ".items.sqlite")) as db:
            counts = [
                db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("jobs", "items", "errors")
            ]
        assert counts == [0, 0, 0]
        tracker.start("ns", 5, job_id="j1")
        assert tracker.record("ns", "j1", item="a", successful=1).successful == 1

    def test_a_row_left_by_a_deleter_that_died_is_forgotten_by_start(self, tmp_path: Path) -> None:
        tracker, doc = self.marked(tmp_path)
        doc.unlink()  # a deleter killed after unlinking the document, before the rows
        tracker.start("ns", 5, job_id="j1")
        assert tracker.get("ns", "j1").successful == 0
        assert tracker.record("ns", "j1", item="a", successful=1).successful == 1  # counts again

    def test_with_fsync(self, tmp_path: Path) -> None:
        tracker = JobTracker(FileStore(tmp_path, fsync=True))
        tracker.start("ns", 2, job_id="j1")
        tracker.record("ns", "j1", item="a", successful=1)
        done = tracker.record("ns", "j1", item="b", failed=1, error="x")
        assert done.is_finished
        assert json.loads((tmp_path / "ns" / "j1.json").read_text())["status"] == "completed"

    def test_each_thread_keeps_one_connection(self, tmp_path: Path) -> None:
        tracker = JobTracker(FileStore(tmp_path))
        tracker.start("ns", 10_000, job_id="j1")
        before = len(os.listdir("/proc/self/fd"))
        for i in range(200):
            tracker.record("ns", "j1", item=f"i{i}", successful=1)
        assert len(os.listdir("/proc/self/fd")) - before <= 4  # db, -wal, -shm (+ dir)


class TestReviewedListingFaults:
    """Faults a review of the status listings found (each reproduced first)."""

    def test_a_stale_stalled_row_never_makes_a_page_repeat(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from jobtrack.stores import file_index

        clock = ManualClock()
        tracker = JobTracker(FileStore(tmp_path), clock=clock, stall_after=dt.timedelta(seconds=10))
        tracker.start("ns", 10, job_id="K")
        clock.advance(seconds=1)
        tracker.start("ns", 10, job_id="J")
        real = file_index.NamespaceIndex.put

        def failing(self: file_index.NamespaceIndex, job: JobStatus) -> None:
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(file_index.NamespaceIndex, "put", failing)
        clock.advance(seconds=4)
        tracker.record("ns", "J", processed=1)  # its row keeps the beat of its start
        monkeypatch.setattr(file_index.NamespaceIndex, "put", real)
        clock.advance(seconds=95)
        pages, cursor = [], None
        for _ in range(4):
            page = tracker.list("ns", status="stalled", limit=1, cursor=cursor)
            pages.append([job.job_id for job in page.items])
            cursor = page.next_cursor
            if cursor is None:
                break
        assert pages == [["J"], ["K"]]  # was J, J, J...: the cursor sat above the stale row

    def test_a_listing_keeps_its_index_while_reading_other_databases(self, tmp_path: Path) -> None:
        clock = ManualClock()
        tracker = JobTracker(FileStore(tmp_path), clock=clock, stall_after=dt.timedelta(seconds=10))
        tracker.start("ns0", 10, job_id="K")  # ns0's index: the first this thread keeps
        for i in range(1, 8):
            tracker.start(f"ns{i}", 10, job_id="x")  # 7 more: as many as a thread keeps

        def elsewhere() -> None:  # another thread: M in ns0's .items.sqlite, S fresh
            tracker.start("ns0", 10, job_id="M")
            clock.advance(seconds=1)
            tracker.record("ns0", "M", failed=1, error="boom")
            tracker.start("ns0", 10, job_id="S")
            clock.advance(seconds=94, milliseconds=500)
            tracker.record("ns0", "S", processed=1)  # in the cutoff's second, after it

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
        clock.advance(seconds=9, milliseconds=700)
        # S is read and left out, M read (opening ns0's .items.sqlite), and the page
        # goes on: the oldest kept connection, ns0's index in use by this very listing,
        # was closed under it ("Cannot operate on a closed database")
        page = tracker.list("ns0", status="stalled", limit=1)
        assert [job.job_id for job in page.items] == ["M"]

    def test_an_unrepresentable_expiry_is_a_corrupt_document(self, tmp_path: Path) -> None:
        tracker = JobTracker(FileStore(tmp_path))
        tracker.start("ns", 0, job_id="j")
        path = tmp_path / "ns" / "j.json"
        doc = json.loads(path.read_text())
        doc["_expires"] = 10**20
        path.write_text(json.dumps(doc))
        with pytest.raises(StoreCorrupt, match="_expires"):
            tracker.get("ns", "j")
        assert tracker.list("ns").items == ()  # skipped with a warning, not an OverflowError


def test_an_index_of_jobtrack_0_1_is_rebuilt_with_statuses(tmp_path: Path) -> None:
    clock = ManualClock()
    tracker = JobTracker(FileStore(tmp_path), clock=clock)
    for i in range(4):
        tracker.start("ns", 2, job_id=f"j{i}")
        clock.advance(seconds=1)
    tracker.record("ns", "j2", successful=2)
    index = tmp_path / "ns" / ".index.sqlite"
    for path in (tmp_path / "ns").glob(".index.sqlite*"):
        path.unlink()
    with sqlite3.connect(index) as db:  # the layout 0.1 wrote: keys only, user_version 0
        db.executescript(
            "CREATE TABLE jobs (ms INTEGER NOT NULL, id TEXT NOT NULL, PRIMARY KEY (ms, id))"
            " WITHOUT ROWID; CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('built', '1');"
        )
        db.executemany("INSERT INTO jobs VALUES (?, ?)", [(1, "j0"), (2, "j1")])  # partial
    db.close()
    fresh = JobTracker(FileStore(tmp_path), clock=clock)
    assert [j.job_id for j in fresh.list("ns", status="running").items] == ["j3", "j1", "j0"]
    assert [j.job_id for j in fresh.list("ns", status="completed").items] == ["j2"]
    with sqlite3.connect(index) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (2,)
    db.close()


def test_purge_passes_over_what_is_not_a_namespace_and_goes_on_past_a_broken_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root, elsewhere = tmp_path / "jobs", tmp_path / "elsewhere"
    in_2020 = ManualClock(dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
    for where, namespaces in ((root, "amz"), (elsewhere, "o")):
        tracker = JobTracker(FileStore(where), clock=in_2020)
        for ns in namespaces:
            tracker.start(ns, 1, job_id="j")
            tracker.record(ns, "j", successful=1)  # expired years ago
    (root / "README").write_text("jobs of the ingestion pipeline\n")  # a name, not a directory
    (root / "linked").symlink_to(elsewhere / "o")  # never followed
    for index in (root / "m").glob(".index.sqlite*"):
        index.unlink()
    (root / "m" / ".index.sqlite").mkdir()  # a broken namespace: its index cannot be opened
    assert JobTracker(FileStore(root)).purge() == 2
    assert not (root / "a" / "j.json").exists() and not (root / "z" / "j.json").exists()
    assert (root / "m" / "j.json").exists()  # its index is broken: left, with a warning
    assert "purge skips namespace 'm'" in caplog.text
    assert (elsewhere / "o" / "j.json").exists()


@pytest.mark.parametrize(
    ("sql", "then"),
    [
        ("UPDATE items SET state = 'abc'", {"successful": 1, "item": "a"}),
        ("UPDATE items SET state = 99", {"successful": 1, "item": "a"}),
        ("UPDATE jobs SET position = 'abc'", {"failed": 1, "error": "e1", "item": "b"}),
        ("UPDATE items SET error = x'00ff'", {"failed": 1, "error": "e2", "item": "a"}),
    ],
)
def test_item_rows_of_the_wrong_type_are_corrupt_and_change_nothing(
    tmp_path: Path, sql: str, then: dict[str, Any]
) -> None:
    tracker = JobTracker(FileStore(tmp_path))
    tracker.start("ns", 5, job_id="j")
    tracker.record("ns", "j", processed=1, failed=1, error="e1", item="a")
    with contextlib.closing(sqlite3.connect(tmp_path / "ns" / ".items.sqlite")) as db:
        db.execute(sql)
        db.commit()
    before = tracker.get("ns", "j")
    with pytest.raises(StoreCorrupt, match="corrupt item rows of job 'j'"):
        tracker.record("ns", "j", processed=1, **then)
    assert tracker.get("ns", "j") == before
