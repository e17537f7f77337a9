"""The file store's listing index: one small SQLite table per namespace directory.

A page of a namespace's jobs, newest first, must cost the same whatever the
namespace holds (SPEC section 7), and a directory can only be read whole. So
each namespace directory also holds ``.index.sqlite`` (job ids never contain a
dot, so no job file can clash with it): the key ``(started ms, job id)`` of
every job, ordered by its primary key. The documents stay the truth:

* ``create`` adds the key before it writes the document, ``delete`` removes it
  after it unlinks the document, both under the job's lock; so a crash leaves
  at most a key without a document, which a listing skips and tidies;
* a directory without an index (written by jobtrack 0.1, or whose index was
  deleted) gets one built from its documents on first use.

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

from ..errors import StoreCorrupt
from .protocol import ListKey

__all__ = ["INDEX_NAME", "NamespaceIndex", "connect"]

INDEX_NAME = ".index.sqlite"
_SETUP_ATTEMPTS = 170  # ~5 s of 10-50 ms waits
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (ms INTEGER NOT NULL, id TEXT NOT NULL, PRIMARY KEY (ms, id))
    WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_by_id ON jobs (id);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def connect(dfd: int, name: str, schema: str, *, durable: bool) -> sqlite3.Connection:
    """Open (and set up) the SQLite database *name* in the directory open as *dfd*.

    The database and its ``-wal`` / ``-shm`` files must be regular files (never
    symlinks): anything else there is ``StoreCorrupt``. WAL mode, autocommit
    (``isolation_level=None``: transactions are explicit), *schema* applied.
    A connection that fails to open is an ``OSError`` (retryable).
    """
    try:
        for suffix in ("", "-wal", "-shm"):
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
    """The index of the namespace directory open as *dfd* (a context manager)."""

    def __init__(self, dfd: int, *, durable: bool) -> None:
        self.db = connect(dfd, INDEX_NAME, _SCHEMA, durable=durable)

    def __enter__(self) -> NamespaceIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.db.close()

    def is_built(self) -> bool:
        """Whether every document of the directory has its key here."""
        return self.db.execute("SELECT 1 FROM meta WHERE name = 'built'").fetchone() is not None

    def build(self, keys: Iterable[ListKey]) -> None:
        """Add the keys of the directory's documents, once (racing builders agree)."""
        with self.db:  # one transaction
            self.db.execute("BEGIN IMMEDIATE")
            if not self.is_built():
                self.db.executemany("INSERT OR IGNORE INTO jobs VALUES (?, ?)", keys)
                self.db.execute("INSERT INTO meta VALUES ('built', '1')")

    def add(self, key: ListKey) -> None:
        """Index a job (before its document is written)."""
        self.db.execute("INSERT OR IGNORE INTO jobs VALUES (?, ?)", key)

    def remove(self, job_id: str, ms: int | None) -> None:
        """Forget a job (after its document is gone); without *ms*, look for its id."""
        if ms is None:  # every key of the id (its document was unreadable, or a create failed)
            self.db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        else:
            self.db.execute("DELETE FROM jobs WHERE ms = ? AND id = ?", (ms, job_id))

    def page(self, limit: int, before: ListKey | None) -> list[ListKey]:
        """Up to *limit* keys below *before*, newest first: one range scan."""
        if before is None:
            rows = self.db.execute(
                "SELECT ms, id FROM jobs ORDER BY ms DESC, id DESC LIMIT ?", (limit,)
            )
        else:
            rows = self.db.execute(
                "SELECT ms, id FROM jobs WHERE (ms, id) < (?, ?) ORDER BY ms DESC, id DESC LIMIT ?",
                (*before, limit),
            )
        return [(int(ms), str(job_id)) for ms, job_id in rows]
