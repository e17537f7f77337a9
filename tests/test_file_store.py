"""FileStore specifics: many OS processes, kill -9, layout, paths, fsync."""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jobtrack import (
    ConfigurationError,
    FileStore,
    InvalidName,
    JobTracker,
    Status,
    StoreUnavailable,
)
from jobtrack.rules import Delta, new_job
from tests import workers
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


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    tracker = JobTracker(FileStore(tmp_path))
    tracker.start("ns", 3, job_id="j1")
    (tmp_path / "ns" / "j1.json").write_text('{"job_id": "j1", "trunc')
    with pytest.raises(StoreUnavailable, match="corrupt job file"):
        tracker.get("ns", "j1")


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


def test_processes_lose_no_update_and_complete_once(tmp_path: Path) -> None:
    procs, per_proc = 4, 400
    url = f"file://{tmp_path}"
    job = JobTracker(url).start("ns", procs * per_proc)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(procs) as pool:
        completions = pool.starmap(workers.hammer, [(url, "ns", job.job_id, per_proc, 8)] * procs)
    final = JobTracker(url).get("ns", job.job_id)
    assert (final.processed, final.successful, final.failed) == (1600, 1400, 200)
    assert final.status is Status.COMPLETED
    assert final.last_error == "worker item failed"
    assert sum(completions) == 1


@pytest.mark.parametrize("kill_after", [1, 17, 60, 151, 333])
def test_kill_9_keeps_every_acknowledged_update(tmp_path: Path, kill_after: int) -> None:
    url = f"file:{tmp_path}"
    tracker = JobTracker(url)
    job = tracker.start("ns", 100_000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.workers", url, "ns", job.job_id, "100000"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    acked = 0
    for line in proc.stdout:
        acked = int(line)
        if acked >= kill_after:
            break
    os.kill(proc.pid, signal.SIGKILL)
    rest = proc.stdout.read().split()
    proc.wait()
    proc.stdout.close()
    if rest:
        acked = int(rest[-1])
    assert proc.returncode == -signal.SIGKILL
    after = tracker.get("ns", job.job_id)  # parseable
    # every acknowledged update is there; at most one more was in flight
    assert acked <= after.processed <= acked + 1
    assert after.successful == after.processed
    # the dead writer's lock went with it: the job takes updates at once
    assert tracker.record("ns", job.job_id, processed=1, successful=1).processed == (
        after.processed + 1
    )
    for path in (tmp_path / "ns").glob("*.json"):
        json.loads(path.read_text())
