"""The file store's items: item states, failed items and error counts in SQLite.

A job's items cannot live in its JSON document (the document is rewritten
on every update; a job may have a million items), so each namespace
directory also holds ``.items.sqlite``: one row per item, one per error
message, one per job. The document stays the commit point. An update that
changes items or error counts is written as a :class:`Change` inside the
new document (key ``"_items"``, numbered ``v``), under the job's lock:

1. the previous document's change is applied to SQLite first, if a writer
   died before doing so (``jobs.applied`` < its ``v``);
2. the new document, carrying the new change, is renamed into place: the
   update is now done;
3. the change is applied to SQLite, with ``jobs.applied = v``, in one
   transaction.

A crash between 2 and 3 leaves a document whose change the next writer (or
reader of items) applies: an item is never counted twice nor lost. Updates
that touch no item and no error carry the ``"_items"`` key over unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ..clock import from_ms
from ..model import ErrorCount, FailedItem
from ..rules import MAX_ERROR_GROUPS, error_group
from .file_index import connect

__all__ = ["ITEMS_NAME", "Change", "ItemsDB"]

ITEMS_NAME = ".items.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY, job TEXT NOT NULL UNIQUE,
    applied INTEGER NOT NULL, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    job INTEGER NOT NULL, item TEXT NOT NULL, state INTEGER NOT NULL,
    error TEXT, position INTEGER, failed_ms INTEGER,
    PRIMARY KEY (job, item)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS failed ON items (job, position) WHERE position IS NOT NULL;
CREATE TABLE IF NOT EXISTS errors (
    job INTEGER NOT NULL, message TEXT NOT NULL, count INTEGER NOT NULL,
    first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,
    PRIMARY KEY (job, message)) WITHOUT ROWID;
"""
_STATE = (
    "SELECT j.id, j.applied, i.state, i.error FROM jobs j "
    "LEFT JOIN items i ON i.job = j.id AND i.item = ? WHERE j.job = ?"
)
_SET_STATE = (
    "INSERT INTO items (job, item, state) VALUES (?, ?, ?) "
    "ON CONFLICT DO UPDATE SET state = excluded.state"
)
_LIST = (
    "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET state = excluded.state, "
    "error = excluded.error, position = excluded.position, failed_ms = excluded.failed_ms"
)
_UNLIST = (
    "UPDATE items SET state = ?, error = NULL, position = NULL, failed_ms = NULL "
    "WHERE job = ? AND item = ?"
)
_COUNT = (
    "INSERT INTO errors VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE "
    "SET count = count + excluded.count, last_ms = excluded.last_ms"
)


class Change(NamedTuple):
    """What one update changes besides the counters (kept in the document as ``"_items"``).

    ``v`` numbers the changes of a job (1, 2, ...); ``at`` is the update's
    ``updated_at`` in ms. With ``item``: its new ``state`` and ``error``,
    and ``listed`` as in :class:`jobtrack.rules.ItemChange`. With
    ``message``: ``counted`` failures to count under it.
    """

    v: int
    at: int
    item: str | None = None
    state: int = 0
    error: str | None = None
    listed: bool | None = None
    message: str | None = None
    counted: int = 0

    def to_json(self) -> dict[str, Any]:
        """The document's ``"_items"`` value."""
        return self._asdict()

    @classmethod
    def from_json(cls, value: object) -> Change:
        """Parse a document's ``"_items"`` strictly (``ValueError`` if malformed)."""
        if not isinstance(value, Mapping) or set(value) != set(cls._fields):
            raise ValueError("malformed '_items'")
        change = cls(**value)
        if not (
            all(type(n) is int for n in (change.v, change.at, change.state, change.counted))
            and all(
                t is None or type(t) is str for t in (change.item, change.error, change.message)
            )
            and change.listed in (None, True, False)
            and change.v >= 1
        ):
            raise ValueError("malformed '_items'")
        return change


class ItemsDB:
    """The ``.items.sqlite`` of one namespace directory (one connection; one thread at a time)."""

    def __init__(self, dfd: int, *, durable: bool) -> None:
        self.db = connect(dfd, ITEMS_NAME, _SCHEMA, durable=durable)

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def state(self, job_id: str, item: str, pending: Change | None) -> tuple[int, str | None]:
        """*item*'s state and error, once the document's *pending* change is applied."""
        row = self.db.execute(_STATE, (item, job_id)).fetchone()
        if pending is not None and (row is None or row[1] < pending.v):
            self.apply(job_id, pending)
            row = self.db.execute(_STATE, (item, job_id)).fetchone()
        if row is None or row[2] is None:
            return 0, None
        return int(row[2]), row[3]

    def settle(self, job_id: str, pending: Change | None) -> None:
        """Apply the document's *pending* change if a writer died before it could."""
        if pending is not None:
            row = self.db.execute("SELECT applied FROM jobs WHERE job = ?", (job_id,)).fetchone()
            if row is None or row[0] < pending.v:
                self.apply(job_id, pending)

    def apply(self, job_id: str, change: Change) -> None:
        """Apply *change* and mark it applied, in one transaction."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT id, position FROM jobs WHERE job = ?", (job_id,)).fetchone()
            if row is None:
                row = db.execute(
                    "INSERT INTO jobs (job, applied, position) VALUES (?, 0, 0) RETURNING id, 0",
                    (job_id,),
                ).fetchone()
            key, position = row
            if change.item is not None:
                if change.listed:
                    position += 1
                    db.execute(
                        _LIST, (key, change.item, change.state, change.error, position, change.at)
                    )
                elif change.listed is False:
                    db.execute(_UNLIST, (change.state, key, change.item))
                else:
                    db.execute(_SET_STATE, (key, change.item, change.state))
            if change.message is not None and change.counted:
                self._count(key, change.message, change.counted, change.at)
            db.execute(
                "UPDATE jobs SET applied = ?, position = ? WHERE id = ?", (change.v, position, key)
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _count(self, key: int, message: str, count: int, at: int) -> None:
        known = self.db.execute(
            "SELECT 1 FROM errors WHERE job = ? AND message = ?", (key, message)
        ).fetchone()
        groups = 0
        if known is None:
            groups = self.db.execute(
                "SELECT count(*) FROM errors WHERE job = ? AND message != ''", (key,)
            ).fetchone()[0]
        group = error_group(message, known is not None, min(groups, MAX_ERROR_GROUPS))
        self.db.execute(_COUNT, (key, "" if group is None else group, count, at, at))

    def failed(self, job_id: str, limit: int, after: int | None) -> list[tuple[int, FailedItem]]:
        """Up to *limit* failed items after position *after*, in order."""
        rows = self.db.execute(
            "SELECT i.position, i.item, i.error, i.failed_ms FROM items i JOIN jobs j "
            "ON i.job = j.id WHERE j.job = ? AND i.position > ? ORDER BY i.position LIMIT ?",
            (job_id, -1 if after is None else after, limit),
        )
        return [(int(pos), FailedItem(item, error, from_ms(ms))) for pos, item, error, ms in rows]

    def groups(self, job_id: str) -> list[ErrorCount]:
        """The job's error groups, unsorted."""
        rows = self.db.execute(
            "SELECT e.message, e.count, e.first_ms, e.last_ms FROM errors e JOIN jobs j "
            "ON e.job = j.id WHERE j.job = ?",
            (job_id,),
        )
        return [ErrorCount(m or None, int(c), from_ms(f), from_ms(last)) for m, c, f, last in rows]

    def forget(self, job_id: str) -> None:
        """Remove everything of the job (deleted, or started anew)."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("DELETE FROM jobs WHERE job = ? RETURNING id", (job_id,)).fetchone()
            if row is not None:
                db.execute("DELETE FROM items WHERE job = ?", row)
                db.execute("DELETE FROM errors WHERE job = ?", row)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
