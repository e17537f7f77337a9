"""file:DIR over a directory of jobtrack 0.1/0.2: every job imported once, as 0.2 reported it."""

from __future__ import annotations

import json
import logging
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from jobtrack import FileStore, JobTracker
from jobtrack.clock import format_timestamp, parse_timestamp
from jobtrack.testing.reference import ManualClock

from .test_legacy import DATA, EXPECTED, unpack

END = parse_timestamp(
    json.loads((DATA / "legacy-0.2.expected.json").read_text(encoding="utf-8"))["clock_at_end"]
)


def reported(tracker: JobTracker, ns: str, job_id: str) -> dict[str, Any]:
    """What *tracker* reports of a job, in the form of the expected file."""
    status = tracker.get(ns, job_id)
    failed = []
    cursor = None
    while True:
        page = tracker.failed_items(ns, job_id, limit=2, cursor=cursor)
        failed += [item.to_dict() for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    return {
        "status": status.to_dict(),
        "expires_at": None if status.expires_at is None else format_timestamp(status.expires_at),
        "failed_items": failed,
        "errors": [group.to_dict() for group in tracker.errors(ns, job_id)],
    }


def test_every_job_is_imported_as_0_2_reported_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = unpack(tmp_path)
    with caplog.at_level(logging.WARNING, "jobtrack.stores.sql"):
        tracker = JobTracker(FileStore(root), clock=ManualClock(END))
    [line] = [r.getMessage() for r in caplog.records]
    assert f"imported {len(EXPECTED)} job(s)" in line
    assert "delete its namespace folders" in line
    for job in EXPECTED:
        got = reported(tracker, job["namespace"], job["job_id"])
        assert got == {key: job[key] for key in got}, job["job_id"]
    tracker.store.close()


def test_the_import_happens_once_and_the_old_files_stay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = unpack(tmp_path)
    before = sorted(
        p.relative_to(root) for p in root.rglob("*") if "jobtrack.sqlite3" not in p.name
    )
    first = JobTracker(FileStore(root), clock=ManualClock(END))
    job = EXPECTED[0]
    first.delete(job["namespace"], job["job_id"])  # a change after the import
    first.store.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, "jobtrack.stores.sql"):
        again = JobTracker(f"file:{root}", clock=ManualClock(END))
    assert caplog.records == []
    assert again.list(job["namespace"]).items  # the others are still there
    with pytest.raises(LookupError):
        again.get(job["namespace"], job["job_id"])  # not imported a second time
    after = sorted(p.relative_to(root) for p in root.rglob("*") if "jobtrack.sqlite3" not in p.name)
    assert after == before
    again.store.close()


def _open_and_count(root: str) -> int:
    store = FileStore(root)
    try:
        conn = store._acquire()
        count = conn.execute("SELECT count(*) FROM jobtrack_jobs").fetchone()[0]
        store._release(conn)
        return int(count)
    finally:
        store.close()


def test_processes_opening_it_at_once_import_it_once(tmp_path: Path) -> None:
    root = unpack(tmp_path)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        counts = pool.map(_open_and_count, [str(root)] * 8)
    assert counts == [len(EXPECTED)] * 8
