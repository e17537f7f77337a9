"""The reader of jobtrack 0.1/0.2 file store directories (jobtrack.stores.sql.legacy).

tests/data/legacy-0.2.tar.gz is a directory the 0.2 file store wrote, and
legacy-0.2.expected.json what the 0.2 tracker reported for each of its jobs
(tests/data/make_legacy.py made both): the reader must give exactly that.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from jobtrack.clock import format_timestamp
from jobtrack.stores.sql.legacy import (
    MAX_DOCUMENT_BYTES,
    LegacyJob,
    is_legacy_directory,
    legacy_files,
    read_legacy_directory,
)

DATA = Path(__file__).parent / "data"
EXPECTED: list[dict[str, Any]] = json.loads(
    (DATA / "legacy-0.2.expected.json").read_text(encoding="utf-8")
)["jobs"]
LOGGER = "jobtrack.stores.sql"


def unpack(dest: Path) -> Path:
    """The tarball's directory, unpacked under *dest* (regular files and directories only)."""
    with tarfile.open(DATA / "legacy-0.2.tar.gz") as tar:
        for member in tar.getmembers():
            target = dest.joinpath(*member.name.split("/"))
            assert ".." not in member.name.split("/")
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                assert member.isfile(), member.name
                source = tar.extractfile(member)
                assert source is not None
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(source.read())
    return dest / "jobs"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return unpack(tmp_path / "unpacked")


def as_expected(job: LegacyJob) -> dict[str, Any]:
    """A job read, in the form of the expected file."""
    status = job.status
    return {
        "namespace": status.namespace_name,
        "job_id": status.job_id,
        "status": status.to_dict(),
        "expires_at": None if status.expires_at is None else format_timestamp(status.expires_at),
        "items": [list(item) for item in job.items],
        "failed_items": [item.to_dict() for item in job.failed],
        "errors": [group.to_dict() for group in job.errors],
    }


def read(root: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (j["namespace"], j["job_id"]): j for j in map(as_expected, read_legacy_directory(str(root)))
    }


def expected(namespace: str, job_id: str) -> dict[str, Any]:
    return next(j for j in EXPECTED if (j["namespace"], j["job_id"]) == (namespace, job_id))


def tree(root: Path) -> dict[str, str]:
    """Every path under *root* (symlinks not followed): what it is, and its bytes' digest."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[rel] = "link " + os.readlink(path)
            elif path.is_dir():
                found[rel] = "dir"
            else:
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING
    ]


def symlink(target: Path, link: Path) -> None:
    try:
        link.symlink_to(target)
    except (OSError, NotImplementedError) as exc:  # Windows without the privilege
        pytest.skip(f"cannot make a symlink here: {exc}")


def rewrite(path: Path, change: Any) -> None:
    """Rewrite the JSON document *path* with *change* applied to its dict."""
    document = json.loads(path.read_bytes())
    change(document)
    path.write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")


# -- the directory 0.2 wrote ---------------------------------------------------


def test_reads_every_job_as_0_2_reported_it(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    jobs = [as_expected(job) for job in read_legacy_directory(str(root))]
    assert jobs == EXPECTED  # statuses, expiry, items, failed order, error groups; in order
    assert warnings_of(caplog) == []


def test_the_data_covers_what_it_should() -> None:
    """The expected file holds the cases the importer must get right (a guard on the data)."""
    by_id = {j["job_id"]: j for j in EXPECTED}
    assert {j["namespace"] for j in EXPECTED} == {"alpha", "beta"}
    running = by_id["nightly-crawl"]["status"]
    assert running["status"] == "running" and running["last_error"] and running["failed"] == 2
    assert by_id["daily-export"]["expires_at"] is not None
    assert by_id["kept-forever"]["status"]["status"] == "completed"
    assert by_id["kept-forever"]["expires_at"] is None
    assert by_id["empty-batch"]["status"]["total"] == 0
    assert by_id["aborted-import"]["errors"][0]["count"] == 3
    done = by_id["items-done"]
    assert [f["item"][-5:] for f in done["failed_items"]] == ["c.pdf", "d.pdf", "e.pdf", "f.pdf"]
    assert None in [f["error"] for f in done["failed_items"]]
    groups = by_id["many-errors"]["errors"]
    assert len(groups) == 101 and groups[0] == {**groups[0], "message": None, "count": 4}


def test_a_marked_running_job_is_read_from_its_row_not_its_stale_document(root: Path) -> None:
    """The document of a job with items keeps the counters it had when it moved (0.2)."""
    document = json.loads((root / "beta" / "items-live.json").read_bytes())
    assert document["_items"] is True and document["processed"] == 0  # stale
    assert read(root)[("beta", "items-live")]["status"]["processed"] == 2


def test_reading_writes_nothing(root: Path) -> None:
    before = tree(root)
    for _ in read_legacy_directory(str(root)):
        pass
    assert is_legacy_directory(str(root))
    legacy_files(str(root))
    assert tree(root) == before  # byte for byte, and no -wal / -shm / -journal made


# -- states a crash or a 0.2 process leaves ---------------------------------------


def test_completed_in_the_database_before_the_final_document(root: Path) -> None:
    """Killed between the completing transaction and the final document: the row is the truth."""

    def as_when_marked(document: dict[str, Any]) -> None:
        document.update(
            status="running",
            processed=0,
            successful=0,
            failed=0,
            last_error=None,
            updated_at=document["started_at"],
            finished_at=None,
        )
        del document["_expires"]

    rewrite(root / "beta" / "items-done.json", as_when_marked)
    assert read(root)[("beta", "items-done")] == expected("beta", "items-done")


def test_a_marked_document_without_a_row_is_the_truth(root: Path) -> None:
    """Killed between marking the document and the first transaction."""
    rewrite(root / "alpha" / "stream-ingest.json", lambda d: d.update(_items=True))
    assert read(root)[("alpha", "stream-ingest")] == expected("alpha", "stream-ingest")


def test_rows_under_the_id_of_an_unmarked_document_are_not_its(root: Path) -> None:
    """Rows left by a deleted job of that id (killed before they went) are not read."""
    path = root / "beta" / "items-live.json"
    rewrite(path, lambda d: d.pop("_items"))
    job = read(root)[("beta", "items-live")]
    assert job["status"] == json.loads(path.read_bytes())  # the document, counters 0
    assert job["items"] == job["failed_items"] == job["errors"] == []


def test_rows_of_an_earlier_job_of_that_id_are_not_read(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    path = root / "beta" / "items-live.json"
    later = "2026-05-21T13:00:00.000Z"
    rewrite(path, lambda d: d.update(started_at=later, updated_at=later))
    job = read(root)[("beta", "items-live")]
    assert job["status"]["started_at"] == later and job["status"]["processed"] == 0
    assert job["items"] == []
    assert any("earlier job" in w for w in warnings_of(caplog))


def test_writes_left_in_the_wal_are_read_in_a_copy(root: Path) -> None:
    """A 0.2 process killed with writes in ``-wal``: they count, and nothing here changes."""
    live = expected("beta", "items-live")["status"]
    newer = {**live, "processed": 3, "updated_at": "2026-05-21T12:05:00.000Z"}
    script = (
        "import os, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('UPDATE jobs SET doc = ? WHERE job = ?',\n"
        "           (sys.argv[2].encode(), 'items-live'))\n"
        "os._exit(0)\n"  # killed: the -wal and -shm stay, not checkpointed
    )
    items = root / "beta" / ".items.sqlite"
    subprocess.run([sys.executable, "-c", script, str(items), json.dumps(newer)], check=True)
    assert Path(f"{items}-wal").stat().st_size > 0
    before = tree(root)
    job = read(root)[("beta", "items-live")]
    assert job["status"] == newer
    assert job["failed_items"] == expected("beta", "items-live")["failed_items"]
    assert tree(root) == before


def test_a_0_1_directory(tmp_path: Path) -> None:
    """0.1: plain documents, no items database, no expiry even when completed."""
    document = {
        "job_id": "job-a0e3d54b9d0d4616949474697308a39c",
        "namespace_name": "my-documents",
        "status": "completed",
        "total": 2,
        "processed": 2,
        "successful": 1,
        "failed": 1,
        "last_error": "bad pdf",
        "started_at": "2026-05-21T12:00:00.000Z",
        "updated_at": "2026-05-21T12:00:02.000Z",
        "finished_at": "2026-05-21T12:00:02.000Z",
    }
    namespace = tmp_path / "my-documents"
    namespace.mkdir()
    (namespace / f"{document['job_id']}.json").write_text(json.dumps(document))
    (namespace / f"{document['job_id']}.lock").touch()
    (namespace / f"{document['job_id']}.tmp").write_text("{")  # never renamed: not the job
    assert is_legacy_directory(str(tmp_path))
    [job] = read_legacy_directory(str(tmp_path))
    assert job.status.to_dict() == document
    assert job.status.expires_at is None
    assert (job.items, job.failed, job.errors) == ([], [], [])
    assert legacy_files(str(tmp_path)) == [
        os.path.join("my-documents", f"{document['job_id']}.{ext}")
        for ext in ("json", "lock", "tmp")
    ] + ["my-documents"]


# -- hostile or broken contents ---------------------------------------------------------


def test_a_symlinked_document_is_skipped_not_followed(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    outside = tmp_path / "outside.json"
    shutil.copyfile(root / "alpha" / "daily-export.json", outside)
    (root / "alpha" / "daily-export.json").unlink()
    symlink(outside, root / "alpha" / "daily-export.json")  # a valid document, through a link
    jobs = read(root)
    assert ("alpha", "daily-export") not in jobs
    assert len(jobs) == len(EXPECTED) - 1
    assert [w for w in warnings_of(caplog) if "daily-export.json" in w and "symlink" in w]


def test_a_symlinked_namespace_is_skipped(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    elsewhere = unpack(tmp_path / "elsewhere")
    symlink(elsewhere / "beta", root / "gamma")
    jobs = read(root)
    assert {ns for ns, _ in jobs} == {"alpha", "beta"}
    assert any("gamma" in w and "symlink" in w for w in warnings_of(caplog))
    assert not any(path.startswith("gamma") for path in legacy_files(str(root)))


def test_a_symlinked_items_database_is_never_opened(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Completed jobs come from their documents, without items; running ones cannot come."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    items = root / "beta" / ".items.sqlite"
    target = tmp_path / "target.sqlite"
    items.rename(target)
    symlink(target, items)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    jobs = read(root)
    done = jobs[("beta", "items-done")]
    assert done["status"] == expected("beta", "items-done")["status"]
    assert done["expires_at"] == expected("beta", "items-done")["expires_at"]
    assert done["items"] == done["failed_items"] == done["errors"] == []
    assert ("beta", "items-live") not in jobs and ("beta", "many-errors") not in jobs
    assert jobs[("beta", "kept-forever")] == expected("beta", "kept-forever")
    assert any("symlink" in w and ".items.sqlite" in w for w in warnings_of(caplog))
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target.sqlite", "unpacked"]


def test_a_corrupt_items_database(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    (root / "alpha" / ".items.sqlite").write_bytes(b"not a database" * 512)
    jobs = read(root)
    assert ("alpha", "nightly-crawl") not in jobs  # running: its state is in there
    assert (
        jobs[("alpha", "aborted-import")]["status"] == expected("alpha", "aborted-import")["status"]
    )
    assert jobs[("alpha", "daily-export")] == expected("alpha", "daily-export")
    assert jobs[("beta", "items-live")] == expected("beta", "items-live")
    assert any("nightly-crawl" in w for w in warnings_of(caplog))


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("truncated", None),
        ("garbage", b"\x00\x01garbage"),
        ("not UTF-8", b'{"job_id": "\xff"}'),
        ("empty", b""),
        ("a list", b"[]"),
        ("another job", "other"),
        ("a false mark", {"_items": False}),
        ("expiry while running", {"_expires": 1779969615000}),
        ("an unknown key", {"extra": 1}),
        ("NaN", b'{"total": NaN}'),
    ],
)
def test_a_corrupt_document_is_skipped_and_the_others_come(
    root: Path, caplog: pytest.LogCaptureFixture, name: str, content: Any
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    path = root / "alpha" / "stream-ingest.json"  # a running job
    if content is None:
        path.write_bytes(path.read_bytes()[:100])
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "other":
        rewrite(path, lambda d: d.update(job_id="someone-else"))
    else:
        rewrite(path, lambda d: d.update(content))
    jobs = read(root)
    assert ("alpha", "stream-ingest") not in jobs
    assert list(jobs.values()) == [j for j in EXPECTED if j["job_id"] != "stream-ingest"]
    [warning] = warnings_of(caplog)
    assert "stream-ingest.json" in warning and "corrupt" in warning


def test_a_huge_document_is_skipped_unread(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    text = (root / "alpha" / "daily-export.json").read_text().replace("daily-export", "padded")
    (root / "alpha" / "padded.json").write_text(text[:-1] + " " * MAX_DOCUMENT_BYTES + "}")
    jobs = read(root)
    assert ("alpha", "padded") not in jobs and len(jobs) == len(EXPECTED)
    assert any("padded.json" in w and "bytes" in w for w in warnings_of(caplog))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_or_directory_named_as_a_document_is_skipped(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    os.mkfifo(root / "alpha" / "a-fifo.json")
    (root / "alpha" / "a-directory.json").mkdir()
    assert len(read(root)) == len(EXPECTED)  # and no read blocked on the FIFO
    warned = warnings_of(caplog)
    assert any("a-fifo.json" in w and "not a regular file" in w for w in warned)
    assert any("a-directory.json" in w and "not a regular file" in w for w in warned)


def test_names_that_are_no_job_or_namespace_are_left_alone(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    (root / "not.a.namespace").mkdir()
    shutil.copyfile(root / "alpha" / "daily-export.json", root / "not.a.namespace" / "x.json")
    shutil.copyfile(root / "alpha" / "daily-export.json", root / "alpha" / "copy.of.json")
    (root / "README.txt").write_text("jobs")
    assert len(read(root)) == len(EXPECTED)
    assert [w for w in warnings_of(caplog) if "copy.of.json" in w]


# -- is_legacy_directory, legacy_files ---------------------------------------------------


def test_is_legacy_directory(root: Path, tmp_path: Path) -> None:
    assert is_legacy_directory(str(root))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not is_legacy_directory(str(empty))
    assert not is_legacy_directory(str(tmp_path / "missing"))
    unrelated = tmp_path / "unrelated"
    (unrelated / "photos").mkdir(parents=True)
    (unrelated / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    (unrelated / "photos" / "notes.txt").write_text("json")
    (unrelated / "not.a.namespace").mkdir()
    (unrelated / "not.a.namespace" / "job.json").write_text("{}")
    (unrelated / "photos" / ".index.sqlite").write_bytes(b"")  # an index alone holds no job
    (unrelated / "jobs.json").write_text("{}")  # not in a namespace directory
    (unrelated / "jobtrack.sqlite3").write_bytes(b"")
    assert not is_legacy_directory(str(unrelated))
    (unrelated / "photos" / ".items.sqlite").write_bytes(b"")
    assert is_legacy_directory(str(unrelated))


def test_legacy_files_lists_what_is_there_and_deleting_them_empties_the_tree(root: Path) -> None:
    (root / "beta" / "kept-forever.4f2a9c01d3e5b7a8.tmp").write_text("{")
    (root / "beta" / ".items.sqlite-wal").write_bytes(b"")
    (root / "beta" / ".items.sqlite-shm").write_bytes(b"")
    (root / "jobtrack.sqlite3").write_bytes(b"")  # the new store's: not a legacy file
    files = legacy_files(str(root))
    on_disk = {
        os.path.join(ns.name, f.name) for ns in root.iterdir() if ns.is_dir() for f in ns.iterdir()
    }
    assert set(files) == on_disk | {"alpha", "beta"}
    assert files.index("alpha") > max(
        files.index(p) for p in files if p.startswith("alpha" + os.sep)
    )
    assert os.path.join("beta", ".items.sqlite-wal") in files
    for path in files:
        full = root / path
        if full.is_dir():
            full.rmdir()
        else:
            full.unlink()
    assert [p.name for p in root.iterdir()] == ["jobtrack.sqlite3"]


def test_legacy_files_keeps_a_namespace_directory_holding_other_files(root: Path) -> None:
    (root / "alpha" / "mine.txt").write_text("not jobtrack's")
    files = legacy_files(str(root))
    assert "alpha" not in files and "beta" in files
    assert os.path.join("alpha", "daily-export.json") in files
    assert os.path.join("alpha", "mine.txt") not in files
