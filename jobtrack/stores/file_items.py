"""The file store's jobs with items or errors: their live state in SQLite.

A job's items cannot live in its JSON document (the document is rewritten
on every update; a job may have a million items). So once a job gets its
first item update or error, its live state moves to the namespace
directory's ``.items.sqlite``, where one transaction changes the job, its
item and its error counts together:

* ``jobs``: the job's current wire document, and the last failed-item position;
* ``items``: one row per item: its state (bits 1 processed, 2 failed,
  4 successful), and while failed, its error, position and failure time;
* ``errors``: one row per error message ('' for the messages beyond the first
  100): count, first and last time.

The move is made in this order, under the job's file lock: the JSON document
is rewritten with the mark ``"_items": true`` (counters unchanged), then the
first transaction inserts the job's row. A document with the mark is read
from its row; a marked document without a row (a writer died between the
two steps) is still the truth, and the next update inserts the row. The
document is rewritten once more, with its final counters, when the job
completes. Every update of a marked job is one SQLite transaction: no file
is renamed, so it costs less than an update of a plain job.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import sqlite3
from collections.abc import Iterator

from ..clock import from_ms, to_ms
from ..errors import StoreCorrupt
from ..model import ErrorCount, FailedItem, JobStatus
from ..rules import MAX_COUNT, Delta, apply, apply_item, error_group, errors_counted
from .file_document import decode_document, encode_document
from .file_index import connect

__all__ = ["ITEMS_NAME", "ItemsDB"]

ITEMS_NAME = ".items.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY, job TEXT NOT NULL UNIQUE, doc BLOB NOT NULL,
    position INTEGER NOT NULL DEFAULT 0);
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
_READ = (
    "SELECT j.id, j.doc, j.position, i.state, i.error FROM jobs j "
    "LEFT JOIN items i ON i.job = j.id AND i.item = ? WHERE j.job = ?"
)
_SET_STATE = (  # an item only marked processed now keeps its failure, if any
    "INSERT INTO items (job, item, state) VALUES (?, ?, ?) "
    "ON CONFLICT DO UPDATE SET state = excluded.state"
)
_SET_ALL = (
    "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
    "state = excluded.state, error = excluded.error, position = excluded.position, "
    "failed_ms = excluded.failed_ms"
)
_COUNT = (
    "INSERT INTO errors VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE "
    f"SET count = min(count + excluded.count, {MAX_COUNT}), last_ms = excluded.last_ms"
)


def decode_row(data: bytes | str, namespace: str, job_id: str) -> JobStatus:
    """The job *job_id* from its row's document, strictly (``StoreCorrupt`` if it is not)."""
    try:
        job, marked = decode_document(data)
        if marked:
            raise ValueError("a row is never marked")
        if job.job_id != job_id or job.namespace_name != namespace:
            raise ValueError("it names another job")
    except (ValueError, TypeError) as exc:
        raise StoreCorrupt(f"corrupt job {job_id!r} in {ITEMS_NAME}: {str(exc)[:300]}") from None
    return job


def _checked_count(value: object) -> int:
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise ValueError("not a count")
    return value


def _corrupt_rows(job_id: str, what: str) -> StoreCorrupt:
    return StoreCorrupt(f"corrupt {what} of job {job_id!r} in {ITEMS_NAME}")


class ItemsDB:
    """The ``.items.sqlite`` of one namespace directory (one connection, one thread).

    Every method is called with the job's file lock held.
    """

    def __init__(self, dfd: int, *, durable: bool) -> None:
        self.db = connect(dfd, ITEMS_NAME, _SCHEMA, durable=durable)

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def get(self, namespace: str, job_id: str) -> JobStatus | None:
        """The job as its row holds it (None: it has no row yet)."""
        row = self.db.execute("SELECT doc FROM jobs WHERE job = ?", (job_id,)).fetchone()
        return None if row is None else decode_row(row[0], namespace, job_id)

    def update(
        self, document: JobStatus, delta: Delta, now: _dt.datetime
    ) -> tuple[JobStatus, JobStatus]:
        """Apply *delta* to the job, its item and its error counts: one transaction.

        *document* is the job's JSON document: the truth while it has no row.
        Returns the job before and after. An item update that changes nothing
        (a redelivery) writes nothing: both are the job as it is.

        :raises JobFinished, InvalidUpdate: as the rules say; nothing is written.
        """
        with self._transaction() as db:
            row = db.execute(_READ, (delta.item, document.job_id)).fetchone()
            key, doc, position, state, error = row or (None, None, 0, 0, None)
            if not (
                type(position) is int
                and position >= 0
                and (state is None or (type(state) is int and 0 <= state < 8))
                and (error is None or type(error) is str)
            ):
                raise _corrupt_rows(document.job_id, "item rows")
            job = (  # a completed job's document has its final counters and its expiry
                document
                if doc is None or document.is_finished
                else decode_row(doc, document.namespace_name, document.job_id)
            )
            if delta.item is None:
                new = apply(job, delta, now)
                counted, change = errors_counted(job, delta, new), None
            else:
                change = apply_item(job, state or 0, error, delta, now)
                if change is None:  # a redelivery: nothing is written
                    return job, job
                new, counted = change.job, change.counted
            at = to_ms(new.updated_at)
            if change is not None and change.listed:
                position += 1
            if key is None:
                key = db.execute(
                    "INSERT INTO jobs VALUES (NULL, ?, ?, ?) RETURNING id",
                    (new.job_id, encode_document(new), position),
                ).fetchone()[0]
            else:
                db.execute(
                    "UPDATE jobs SET doc = ?, position = ? WHERE id = ?",
                    (encode_document(new), position, key),
                )
            if change is not None:
                if change.listed is None:
                    db.execute(_SET_STATE, (key, delta.item, change.state))
                elif change.listed:  # listed last, with this failure's error and time
                    db.execute(
                        _SET_ALL, (key, delta.item, change.state, change.error, position, at)
                    )
                else:
                    db.execute(_SET_ALL, (key, delta.item, change.state, None, None, None))
            if counted and delta.error is not None:
                self._count(key, delta.error, counted, at)
        return job, new

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` .. ``COMMIT``; rolled back if anything raises."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _count(self, key: int, message: str, count: int, at: int) -> None:
        known = self.db.execute(
            "SELECT 1 FROM errors WHERE job = ? AND message = ?", (key, message)
        ).fetchone()
        groups = 0
        if known is None:
            groups = self.db.execute(
                "SELECT count(*) FROM errors WHERE job = ? AND message != ''", (key,)
            ).fetchone()[0]
        group = error_group(message, known is not None, groups)
        self.db.execute(_COUNT, (key, "" if group is None else group, count, at, at))

    def failed(self, job_id: str, limit: int, after: int | None) -> list[tuple[int, FailedItem]]:
        """Up to *limit* failed items after position *after*, in order."""
        rows = self.db.execute(
            "SELECT i.position, i.item, i.error, i.failed_ms FROM items i JOIN jobs j "
            "ON i.job = j.id WHERE j.job = ? AND i.position > ? ORDER BY i.position LIMIT ?",
            (job_id, -1 if after is None else after, limit),
        )
        try:
            return [
                (int(pos), FailedItem(item, error, from_ms(ms)))
                for pos, item, error, ms in rows
                if type(item) is str and (error is None or type(error) is str)
            ]
        except (TypeError, ValueError, OverflowError):
            raise _corrupt_rows(job_id, "failed items") from None

    def groups(self, job_id: str) -> list[ErrorCount]:
        """The job's error groups, unsorted."""
        rows = self.db.execute(
            "SELECT e.message, e.count, e.first_ms, e.last_ms FROM errors e JOIN jobs j "
            "ON e.job = j.id WHERE j.job = ?",
            (job_id,),
        )
        try:
            return [
                ErrorCount(m or None, _checked_count(c), from_ms(f), from_ms(last))
                for m, c, f, last in rows
                if type(m) is str
            ]
        except (TypeError, ValueError, OverflowError):
            raise _corrupt_rows(job_id, "error counts") from None

    def forget(self, job_id: str) -> None:
        """Remove everything of the job (deleted, or started anew)."""
        with self._transaction() as db:
            row = db.execute("DELETE FROM jobs WHERE job = ? RETURNING id", (job_id,)).fetchone()
            if row is not None:
                db.execute("DELETE FROM items WHERE job = ?", row)
                db.execute("DELETE FROM errors WHERE job = ?", row)
