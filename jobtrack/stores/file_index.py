"""The file store's listing index: one small SQLite table per namespace directory.

A page of a namespace's jobs, newest first, must cost the same whatever the
namespace holds (SPEC section 7), and a directory can only be read whole. So
each namespace directory also holds ``.index.sqlite`` (job ids never contain a
dot, so no job file can clash with it): one row per job, its key
``(started ms, job id)`` first, then whether it is done, its "beat" (its
``updated_at`` to the second while running, see
:data:`~jobtrack.stores.protocol.BEAT_MS`) and its ``expires_at`` (ms), with
an index for each listing (running or completed by key, stalled by beat) and
for purging (by expiry). The documents stay the truth:

* ``create`` adds the row before it writes the document, ``delete`` removes it
  after it unlinks the document, both under the job's lock; so a crash leaves
  at most a row without a document, which a listing skips and tidies;
* an update that completes a job, or moves its beat to another second, writes
  its row after the document (at most once a second per job); a row found
  out of date (a writer died in between) is a hint only: listings read each
  document, skip a job whose status is not the one asked, and set its row;
* a directory without an index (written by jobtrack 0.1, or whose index was
  deleted) gets one built from its documents on first use; an index of the
  0.1 layout (keys only, ``user_version`` 0) is rebuilt the same way.

The database is opened through ``/proc/self/fd/<directory>`` (Linux), so it is
always the one inside the directory the store opened without following a
symlink, and never a symlink itself.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import time
from collections.abc import Iterable

from ..clock import to_ms
from ..errors import StoreCorrupt
from ..model import JobStatus
from .protocol import COMPLETED, ListKey, beat_key, list_key, stalled_before

__all__ = ["INDEX_NAME", "NamespaceIndex", "connect"]

INDEX_NAME = ".index.sqlite"
_SETUP_ATTEMPTS = 170  # ~5 s of 10-50 ms waits
_SCHEMA = "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
_VERSION = 2
_LAYOUT = (  # version 2; statements run one by one, in one transaction
    "DROP TABLE IF EXISTS jobs",
    "DELETE FROM meta WHERE name = 'built'",
    "CREATE TABLE jobs (ms INTEGER NOT NULL, id TEXT NOT NULL, done INTEGER NOT NULL, "
    "beat INTEGER, expires INTEGER, PRIMARY KEY (ms, id)) WITHOUT ROWID",
    "CREATE INDEX jobs_by_id ON jobs (id)",
    "CREATE INDEX jobs_by_status ON jobs (done, ms, id)",
    "CREATE INDEX jobs_by_beat ON jobs (beat, id) WHERE beat IS NOT NULL",
    "CREATE INDEX jobs_by_expiry ON jobs (expires) WHERE expires IS NOT NULL",
    f"PRAGMA user_version = {_VERSION}",
)
Row = tuple[int, str, int, "int | None", "int | None"]


def row(job: JobStatus) -> Row:
    """A job's row: ``(started ms, id, done, beat ms or None, expires ms or None)``."""
    ms, job_id = list_key(job)
    if job.is_finished:
        expires = job.expires_at
        return ms, job_id, 1, None, None if expires is None else to_ms(expires)
    return ms, job_id, 0, beat_key(job)[0], None


def connect(dfd: int, name: str, schema: str, *, durable: bool) -> sqlite3.Connection:
    """Open (and set up) the SQLite database *name* in the directory open as *dfd*.

    The database and its ``-wal`` / ``-shm`` / ``-journal`` files must be regular
    files (never symlinks): anything else there is ``StoreCorrupt``. WAL mode, autocommit
    (``isolation_level=None``: transactions are explicit), *schema* applied.
    A connection that fails to open is an ``OSError`` (retryable).
    """
    try:
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                mode = os.stat(name + suffix, dir_fd=dfd, follow_symlinks=False).st_mode
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(mode):
                raise StoreCorrupt(
                    f"{name + suffix} in a namespace directory is not a regular file"
                )
        db = sqlite3.connect(f"/proc/self/fd/{dfd}/{name}", timeout=30, isolation_level=None)
    except sqlite3.Error as exc:
        raise OSError(errno.EIO, f"cannot open {name}: {exc}") from None
    # Connections setting up a new database at once can get "database is locked"
    # at once, without SQLite's busy wait (switching to WAL needs the file alone):
    # try again for up to ~5 s, then it is a retryable error.
    for attempt in range(_SETUP_ATTEMPTS):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            db.executescript(schema)
            return db
        except sqlite3.OperationalError as exc:  # locked, disk I/O: may pass, retryable
            if "locked" not in str(exc) or attempt == _SETUP_ATTEMPTS - 1:
                db.close()
                raise
            time.sleep(0.01 * (1 + attempt % 5))  # another process holds the file
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StoreCorrupt(
                f"{name} in a namespace directory is not a database: {exc}"
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


class NamespaceIndex:
    """The index of the namespace directory open as *dfd* (one connection, one thread)."""

    def __init__(self, dfd: int, *, durable: bool) -> None:
        self.built = False  # known to be built (the store's note)
        self.in_use = 0  # calls of its thread using it now (the store's note)
        self.db = connect(dfd, INDEX_NAME, _SCHEMA, durable=durable)
        try:
            if self.db.execute("PRAGMA user_version").fetchone()[0] != _VERSION:
                self._lay_out()
        except BaseException:
            self.db.close()
            raise

    def _lay_out(self) -> None:
        """Make the tables of this version (dropping a 0.1 index: it is built again)."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] != _VERSION:  # nobody did it
                for statement in _LAYOUT:
                    db.execute(statement)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def is_built(self) -> bool:
        """Whether every document of the directory has its key here."""
        return self.db.execute("SELECT 1 FROM meta WHERE name = 'built'").fetchone() is not None

    def build(self, jobs: Iterable[JobStatus]) -> None:
        """Add the rows of the directory's documents, once (racing builders agree)."""
        with self.db:  # one transaction
            self.db.execute("BEGIN IMMEDIATE")
            if not self.is_built():
                self.db.executemany(
                    "INSERT OR IGNORE INTO jobs VALUES (?, ?, ?, ?, ?)", map(row, jobs)
                )
                self.db.execute("INSERT INTO meta VALUES ('built', '1')")

    def put(self, job: JobStatus) -> None:
        """Index a job as it is now (before a new job's document is written)."""
        self.db.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?)", row(job))

    def remove(self, job_id: str, ms: int | None) -> None:
        """Forget a job (after its document is gone); without *ms*, look for its id."""
        if ms is None:  # every key of the id (its document was unreadable, or a create failed)
            self.db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        else:
            self.db.execute("DELETE FROM jobs WHERE ms = ? AND id = ?", (ms, job_id))

    def page(
        self, status: str | None, limit: int, before: ListKey | None, cutoff: int | None
    ) -> list[ListKey]:
        """Up to *limit* keys below *before*, newest first: one range scan.

        Of every job, or of the running or completed ones; stalled: the beat
        keys ``(beat, id)`` of running jobs whose beat is at most the second of
        *cutoff* (ms), latest first.
        """
        if before is None:
            before = (2**63 - 1, "")
        if status is None:
            rows = self.db.execute(
                "SELECT ms, id FROM jobs WHERE (ms, id) < (?, ?) ORDER BY ms DESC, id DESC LIMIT ?",
                (*before, limit),
            )
        elif cutoff is not None:  # stalled
            before = stalled_before(before, cutoff)
            rows = self.db.execute(
                "SELECT beat, id FROM jobs WHERE beat IS NOT NULL AND (beat, id) < (?, ?) "
                "ORDER BY beat DESC, id DESC LIMIT ?",
                (*before, limit),
            )
        else:
            done = 1 if status == COMPLETED else 0
            rows = self.db.execute(
                "SELECT ms, id FROM jobs WHERE done = ? AND (ms, id) < (?, ?) "
                "ORDER BY ms DESC, id DESC LIMIT ?",
                (done, *before, limit),
            )
        return [(int(ms), str(job_id)) for ms, job_id in rows]

    def expired(self, before: int, limit: int) -> list[ListKey]:
        """Up to *limit* keys of jobs whose expiry (ms) is at or before *before*."""
        rows = self.db.execute(
            "SELECT ms, id FROM jobs WHERE expires <= ? ORDER BY expires LIMIT ?", (before, limit)
        )
        return [(int(ms), str(job_id)) for ms, job_id in rows]
