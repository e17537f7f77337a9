"""FileStore specifics: many OS processes, kill -9, layout, paths, fsync."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from jobtrack import (
    ConfigurationError,
    FileStore,
    InvalidName,
    JobTracker,
    Status,
    StoreCorrupt,
    StoreUnavailable,
)
from jobtrack.rules import Delta, new_job
from tests.helpers import T0

ROOT = Path(__file__).resolve().parent.parent


def test_layout_is_one_wire_document_per_job(tmp_path: Path) -> None:
    tracker = JobTracker(FileStore(tmp_path))
    job = tracker.start("ns", 3, job_id="j1")
    tracker.record("ns", "j1", processed=1, failed=1, error="e")
    doc = json.loads((tmp_path / "ns" / "j1.json").read_text())
    assert doc == tracker.get("ns", "j1").to_dict()
    assert sorted(p.name for p in (tmp_path / "ns").iterdir()) == ["j1.json", "j1.lock"]
    assert tracker.delete("ns", job.job_id)
    assert list((tmp_path / "ns").iterdir()) == []


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
    for job_id in ("link", "fifo"):  # never followed, never blocks
        with pytest.raises(StoreCorrupt, match="corrupt job file"):
            tracker.get("ns", job_id)
    assert tracker.list("ns").items == ()


def test_unwritable_store_is_unavailable(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root ignores permissions; a file where the namespace directory should be does it
        (tmp_path / "ns").write_text("in the way")
    else:  # pragma: no cover
        tmp_path.chmod(0o500)
    tracker = JobTracker(FileStore(tmp_path))
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
    fd = store._lock(lock_path, create=False)
    assert fd is not None
    try:
        # the lock taken is on the file now at the path, not on the orphan
        assert os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        assert len(locked) == 2
    finally:
        os.close(fd)


def test_fsync_option(tmp_path: Path) -> None:
    store = FileStore(tmp_path, fsync=True)
    tracker = JobTracker(store)
    job = tracker.start("ns", 2)
    assert tracker.record("ns", job.job_id, successful=2).status is Status.COMPLETED
    assert "fsync=True" in repr(store)
