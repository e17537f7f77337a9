"""Run with jobtrack 0.2; kept for the record.

It made tests/data/legacy-0.2.tar.gz and legacy-0.2.expected.json. It drives
the 0.2 file store (``file:DIR``: JSON documents, ``.index.sqlite``,
``.items.sqlite``) through the ``JobTracker`` under a manual clock, so every
timestamp is fixed, and records what that tracker then reports for each job
(``get``, its expiry, every page of ``failed_items``, ``errors``): the truth
an importer of such directories must reproduce. The ``items`` of the expected
file are the item states (bits 1 processed, 2 failed, 4 successful, and the
error while failed) this script gave, written out by hand: the tracker has no
call that reads them. Later jobtrack versions store ``file:`` differently, so
this script refuses to run once no JSON documents come out.

    python tests/data/make_legacy.py     # from the repository's root, with jobtrack 0.2

(Made at commit 3bdf162, the last with the 0.2 file store, exported with
``git archive 3bdf162 jobtrack | tar x -C /tmp/jt02`` and run with
``PYTHONPATH=/tmp/jt02``.)
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import os
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from jobtrack import JobTracker
from jobtrack.clock import format_timestamp
from jobtrack.testing import ManualClock

HERE = Path(__file__).resolve().parent
TARBALL = HERE / "legacy-0.2.tar.gz"
EXPECTED = HERE / "legacy-0.2.expected.json"
T0 = dt.datetime(2026, 5, 21, 12, 0, 0, tzinfo=dt.timezone.utc)
TOP = "jobs"  # the directory inside the tarball (as in $XDG_STATE_HOME/jobtrack/jobs)

# item states the script below leaves, per job: (item, state bits, error while failed)
ITEMS: dict[tuple[str, str], list[tuple[str, int, str | None]]] = {
    ("beta", "items-done"): [
        ("s3://bucket/a.pdf", 5, None),
        ("s3://bucket/b.pdf", 5, None),
        ("s3://bucket/c.pdf", 3, "parse: bad header"),
        ("s3://bucket/d.pdf", 2, "embedder timeout"),
        ("s3://bucket/e.pdf", 2, None),
        ("s3://bucket/f.pdf", 3, "ocr: retry failed"),
        ("s3://bucket/g.pdf", 4, None),
    ],
    ("beta", "items-live"): [
        ("doc-1", 5, None),
        ("doc-2", 2, "network unreachable"),
        ("doc-3", 1, None),
    ],
}


def build(root: str, clock: ManualClock) -> JobTracker:
    """Write the jobs; return the tracker (still open) that wrote them."""
    t = JobTracker("file:" + root, clock=clock)
    forever = JobTracker(t.store, clock=clock, retain=None)

    def tick(seconds: float = 1.5) -> None:
        clock.advance(seconds=seconds)

    # alpha: plain and anonymous jobs
    t.start("alpha", 10, job_id="nightly-crawl")  # running, anonymous counters, last_error
    tick()
    t.record("alpha", "nightly-crawl", processed=4, successful=3)
    tick()
    t.record("alpha", "nightly-crawl", processed=1, failed=1, error="embedder timeout")
    tick()
    t.record("alpha", "nightly-crawl", processed=2, successful=2)
    tick()
    t.record("alpha", "nightly-crawl", failed=1, error="embedder timeout")
    tick()

    t.start("alpha", 3, job_id="daily-export")  # completed, expires (default retain)
    tick()
    t.record("alpha", "daily-export", processed=2, successful=2)
    tick()
    t.record("alpha", "daily-export", processed=1, successful=1)
    tick()

    t.start("alpha", 5, job_id="aborted-import")  # aborted: completed with failures
    tick()
    t.record("alpha", "aborted-import", processed=2, successful=2)
    tick()
    t.abort("alpha", "aborted-import", "pipeline stopped by operator")
    tick()

    t.start("alpha", 0, job_id="empty-batch")  # total 0: completed at once
    tick()

    t.start("alpha", 2, job_id="stream-ingest")  # extended, anonymous failure without error
    tick()
    t.record("alpha", "stream-ingest", processed=1, successful=1)
    tick()
    t.extend("alpha", "stream-ingest", 3)
    tick()
    t.record("alpha", "stream-ingest", processed=1, failed=1)
    tick()

    # beta: items, error groups, a job kept forever
    job = "items-done"
    t.start("beta", 8, job_id=job)
    tick()
    t.record("beta", job, item="s3://bucket/a.pdf", processed=1)
    tick()
    t.record("beta", job, item="s3://bucket/a.pdf", successful=1)
    tick()
    t.record("beta", job, item="s3://bucket/b.pdf", failed=1, error="embedder timeout")
    tick()
    t.record(
        "beta", job, item="s3://bucket/c.pdf", processed=1, failed=1, error="parse: bad header"
    )
    tick()
    t.record("beta", job, item="s3://bucket/d.pdf", failed=1, error="embedder timeout")
    tick()
    t.record(
        "beta", job, item="s3://bucket/d.pdf", failed=1, error="embedder timeout"
    )  # redelivery
    tick()
    t.record("beta", job, item="s3://bucket/e.pdf", failed=1)  # failed without an error
    tick()
    t.record("beta", job, item="s3://bucket/f.pdf", failed=1, error="ocr: no text")
    tick()
    t.record("beta", job, item="s3://bucket/b.pdf", processed=1, successful=1)  # a retry worked
    tick()
    t.record("beta", job, item="s3://bucket/f.pdf", failed=1, error="ocr: retry failed")
    tick()
    t.record("beta", job, item="s3://bucket/f.pdf", processed=1)  # keeps its failure
    tick()
    t.record("beta", job, item="s3://bucket/a.pdf", successful=1)  # redelivery
    tick()
    t.record("beta", job, failed=1, error="embedder timeout")  # anonymous, with an error
    tick()
    t.record("beta", job, item="s3://bucket/g.pdf", successful=1)  # completes it
    tick()
    t.record("beta", job, item="s3://bucket/g.pdf", successful=1)  # redelivery, completed
    tick()

    job = "items-live"  # running, with items
    t.start("beta", 4, job_id=job)
    tick()
    t.record("beta", job, item="doc-1", processed=1, successful=1)
    tick()
    t.record("beta", job, item="doc-2", failed=1, error="network unreachable")
    tick()
    t.record("beta", job, item="doc-2", failed=1, error="network unreachable")  # redelivery
    tick()
    t.record("beta", job, item="doc-3", processed=1)
    tick()

    job = "many-errors"  # more than 100 distinct messages: the overflow group
    t.start("beta", 110, job_id=job)
    for i in range(104):
        tick(0.25)
        t.record("beta", job, processed=1, failed=1, error=f"row {i:03d}: bad value")
    tick()

    forever.start("beta", 1, job_id="kept-forever")  # completed without expiry
    tick()
    forever.record("beta", "kept-forever", processed=1, successful=1)
    tick()
    return t


def report(t: JobTracker, root: str) -> list[dict[str, Any]]:
    """What the tracker says of every job, namespace by namespace, job by job."""
    jobs = []
    for namespace in ("alpha", "beta"):
        names = os.listdir(os.path.join(root, namespace))
        for job_id in sorted(n[:-5] for n in names if n.endswith(".json")):
            status = t.get(namespace, job_id)
            failed = []
            cursor = None
            while True:
                page = t.failed_items(namespace, job_id, limit=2, cursor=cursor)
                failed += [f.to_dict() for f in page.items]
                cursor = page.next_cursor
                if cursor is None:
                    break
            expires = status.expires_at
            jobs.append(
                {
                    "namespace": namespace,
                    "job_id": job_id,
                    "status": status.to_dict(),
                    "expires_at": None if expires is None else format_timestamp(expires),
                    "items": [list(i) for i in ITEMS.get((namespace, job_id), [])],
                    "failed_items": failed,
                    "errors": [e.to_dict() for e in t.errors(namespace, job_id)],
                }
            )
    return jobs


def pack(root: str) -> bytes:
    """The directory as a gzipped tar under TOP/, byte for byte the same on every run."""
    raw = io.BytesIO()
    mtime = int(T0.timestamp())
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root)
            name = TOP if rel == "." else f"{TOP}/{rel}"
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
            tar.addfile(info)
            for filename in sorted(filenames):
                if filename.endswith(("-wal", "-shm", "-journal")):
                    sys.exit(f"{dirpath}/{filename} is left: the databases were not closed")
                data = Path(dirpath, filename).read_bytes()
                info = tarfile.TarInfo(f"{name}/{filename}")
                info.size, info.mode, info.mtime = len(data), 0o644, mtime
                tar.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()


def main() -> None:
    clock = ManualClock(T0)
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, TOP)
        t = build(root, clock)
        if not os.path.isdir(os.path.join(root, "alpha")):
            sys.exit("no JSON documents came out: run this with jobtrack 0.2")
        jobs = report(t, root)
        t.close()  # the last connection: SQLite checkpoints, -wal and -shm go
        TARBALL.write_bytes(pack(root))
    text = json.dumps({"clock_at_end": format_timestamp(clock()), "jobs": jobs}, indent=1)
    EXPECTED.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {TARBALL} and {EXPECTED}: {len(jobs)} jobs")


if __name__ == "__main__":
    main()
