"""Importing a jobtrack 0.1/0.2 file store directory into its SQLite database, once.

The first :class:`~jobtrack.stores.sql.sqlite.FileStore` to open such a
directory imports every job (counters, timestamps, items, failed items,
error groups, expiry) in one write transaction, and marks the database:
processes opening it at the same moment wait for that transaction, then
find the mark and import nothing. One log line says what was imported and
which old files may now be removed; nothing deletes them.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from typing import Any

from ...clock import to_ms
from .legacy import LegacyJob, is_legacy_directory, legacy_files, read_legacy_directory
from .operations import job_row

__all__ = ["IMPORTED", "import_legacy"]

logger = logging.getLogger("jobtrack.stores.sql")

IMPORTED = "imported_0.2_files"
"""The ``<p>meta`` key set once a directory's old files were imported (value: the job count)."""


def import_legacy(root: str, database: str, conn: sqlite3.Connection, sql: dict[str, str]) -> int:
    """Import the 0.1/0.2 jobs of *root* into *database* (on *conn*) unless they were.

    How many were imported now.
    """
    if not is_legacy_directory(root):
        return 0
    if conn.execute(sql["meta"], {"key": IMPORTED}).fetchone():
        return 0
    conn.execute("BEGIN IMMEDIATE")  # whoever comes second waits here, then finds the mark
    if conn.execute(sql["meta"], {"key": IMPORTED}).fetchone():
        conn.execute("COMMIT")
        return 0
    count = 0
    for job in read_legacy_directory(root):
        count += _insert(conn, sql, job)
    conn.execute(sql["set_meta"], {"key": IMPORTED, "value": str(count)})
    conn.execute("COMMIT")
    folders = sorted({path.replace(os.sep, "/").split("/")[0] for path in legacy_files(root)})
    shown = ", ".join(folders[:5]) + (f" and {len(folders) - 5} more" if len(folders) > 5 else "")
    logger.warning(
        "imported %d job(s) of the jobtrack 0.1/0.2 file store in %r into %r; its old files are "
        "no longer read: once satisfied, delete its namespace folders (%s) there",
        count,
        root,
        database,
        shown,
    )
    return count


def _insert(conn: sqlite3.Connection, sql: dict[str, str], old: LegacyJob) -> int:
    """Insert one imported job with its items and error groups; 0 if its id is taken."""
    row = job_row(old.status)
    if not conn.execute(sql["create"], row).fetchall():
        return 0
    key: dict[str, Any] = {"ns": row["namespace"], "id": row["job_id"]}
    listed = {entry.item: (position, entry) for position, entry in enumerate(old.failed, 1)}
    for item, state, error in old.items:
        position, entry = listed.get(item, (None, None))
        conn.execute(
            sql["put_item"],
            {
                **key,
                "item": item,
                "state": state,
                "error": error,
                "position": position,
                "failed_ms": None if entry is None else to_ms(entry.failed_at),
                "keep": False,
            },
        )
    named = sorted((g for g in old.errors if g.message is not None), key=lambda g: g.first_at)
    groups = [(n, g) for n, g in enumerate(named, 1)]
    groups += [(0, g) for g in old.errors if g.message is None]
    for grp, group in groups:
        conn.execute(
            sql["put_error"],
            {
                **key,
                "grp": grp,
                "message": group.message,
                "count": group.count,
                "first_ms": to_ms(group.first_at),
                "last_ms": to_ms(group.last_at),
            },
        )
    conn.execute(sql["put_all"], {**row, "listed": len(old.failed)})
    return 1
