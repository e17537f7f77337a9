"""Reading a directory written by the file store of jobtrack 0.1 and 0.2, to import it once.

The layout of such a directory (names follow the name rules, so they hold
no ``/`` or ``.``)::

    <root>/<namespace>/<job_id>.json          the job's document (below)
    <root>/<namespace>/<job_id>.lock          the target of its writers' flock (empty)
    <root>/<namespace>/<job_id>[.<token>].tmp a next version never renamed into place
    <root>/<namespace>/.index.sqlite          the listing index: a copy, ignored here
    <root>/<namespace>/.items.sqlite          0.2: jobs with items or errors (below)

A document is the job's wire document (SPEC section 1), plus in 0.2
``"_expires": <ms>`` (a completed job's ``expires_at``) and ``"_items":
true``, the mark of a job whose live state moved into ``.items.sqlite``:

    jobs    (id, job, doc, position)               doc: the job's document, unmarked
    items   (job, item, state, error, position, failed_ms)
    errors  (job, message, count, first_ms, last_ms)   message '': beyond the first 100

Which copy of a job is its truth, as the 0.2 store read it: an unmarked
document (its job has no items); a marked, completed document (rewritten
with the final counters when the job completed) with the rows' items; a
marked, running document's row in ``jobs`` (the document keeps the counters
it had when it moved), or the document itself when there is no row yet.

Nothing here writes under the directory, and nothing is followed: every
path is checked with ``lstat`` (a symlink or anything but a regular file is
skipped with a warning), a document is read in one bounded read, and
``.items.sqlite`` (with its ``-wal`` or ``-journal``, whose writes a killed
0.2 process may have left) is copied into a temporary directory and read
there. Portable: no ``fcntl``, no ``/proc``.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from typing import Any

import attrs

from ...clock import from_ms
from ...model import MAX_COUNT, ErrorCount, FailedItem, JobStatus, parse_json
from ...names import is_valid_name
from ...rules import FAILED

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "LegacyJob",
    "is_legacy_directory",
    "legacy_files",
    "read_legacy_directory",
]

logger = logging.getLogger("jobtrack.stores.sql")

MAX_DOCUMENT_BYTES = 64 * 1024
"""A job document is a few hundred bytes (at most ~4 KiB of error text): a larger one is skipped."""

ITEMS_NAME = ".items.sqlite"
_DATABASES = (".index.sqlite", ITEMS_NAME)
_SIDES = ("", "-wal", "-shm", "-journal")
_O_READ = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_O_READ |= getattr(os, "O_BINARY", 0)


@attrs.frozen
class LegacyJob:
    """One job of a 0.1/0.2 directory, as the 0.2 store reported it.

    ``status`` carries ``expires_at`` (None while running, for a job kept
    forever, and for every job of 0.1). ``items`` is every item named in its
    updates: ``(item, state, error)``, ``state`` the bits of
    :mod:`jobtrack.rules`, ``error`` the item's error while it is failed.
    ``failed`` lists the failed items in the order they failed, ``errors``
    the error groups as ``errors()`` gave them (most frequent first; the
    messages beyond the first 100 with ``message`` None).
    """

    status: JobStatus
    items: list[tuple[str, int, str | None]]
    failed: list[FailedItem]
    errors: list[ErrorCount]


def is_legacy_directory(root: str) -> bool:
    """Whether *root* holds a 0.1/0.2 file store: a namespace directory with a job or items.

    Nothing is read but directory entries.
    """
    for namespace in _namespaces(root, warn=False):
        for name, kind in _entries(os.path.join(root, namespace)):
            if kind == "file" and (_job_id(name) or name == ITEMS_NAME):
                return True
    return False


def legacy_files(root: str) -> list[str]:
    """The paths, relative to *root*, a user may delete once the directory is imported.

    Each namespace directory's documents, lock files, leftover temporary
    files and databases (with their ``-wal``, ``-shm``, ``-journal``), then
    the directory itself when nothing else is in it: deleting them in this
    order empties the tree. Symlinks among them are listed (deleting one
    deletes the link), directories inside are not.
    """
    paths: list[str] = []
    for namespace in _namespaces(root, warn=False):
        entries = sorted(_entries(os.path.join(root, namespace)))
        ours = [name for name, kind in entries if kind != "dir" and _is_legacy_file(name)]
        paths += [os.path.join(namespace, name) for name in ours]
        if ours and len(ours) == len(entries):
            paths.append(namespace)
    return paths


def read_legacy_directory(root: str) -> Iterator[LegacyJob]:
    """Every job of the 0.1/0.2 directory *root*, namespace by namespace, by job id.

    A job that cannot be read (a corrupt, oversized or unreadable document, a
    symlink, a running job whose live state is in an unreadable
    ``.items.sqlite``) is skipped with a warning; a completed job whose items
    cannot be read comes without them, with a warning. Nothing is written.
    """
    for namespace in _namespaces(root, warn=True):
        directory = os.path.join(root, namespace)
        names = sorted(name for name, _ in _entries(directory) if name.endswith(".json"))
        with _ItemsCopy(directory) as items:
            for name in names:
                path = os.path.join(directory, name)
                job_id = _job_id(name)
                if job_id is None:
                    logger.warning("legacy import skips %r: not a job document name", path)
                    continue
                data = _read(path)
                if data is None:
                    continue
                try:
                    document, marked = _decode(data, namespace, job_id)
                except ValueError as exc:
                    logger.warning("legacy import skips corrupt job document %r: %.300s", path, exc)
                    continue
                job = _job(document, items, path) if marked else LegacyJob(document, [], [], [])
                if job is not None:
                    yield job


def _namespaces(root: str, *, warn: bool) -> list[str]:
    """The namespace directories of *root*: real directories with valid names, by name."""
    found = []
    for name, kind in _entries(root):
        if is_valid_name(name) and kind == "dir":
            found.append(name)
        elif is_valid_name(name) and kind == "link" and warn:
            logger.warning(
                "legacy import skips %r: a symlink, never followed", os.path.join(root, name)
            )
    return sorted(found)


def _entries(directory: str) -> list[tuple[str, str]]:
    """``(name, kind)`` of the entries (dir, file, link, other); none if it cannot be listed."""
    try:
        with os.scandir(directory) as scan:
            return [(e.name, _kind(e)) for e in scan]
    except OSError:
        return []


def _kind(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        return "link"
    if entry.is_dir(follow_symlinks=False):
        return "dir"
    return "file" if entry.is_file(follow_symlinks=False) else "other"


def _job_id(name: str) -> str | None:
    """The job id of a document's file name, or None."""
    return name[:-5] if name.endswith(".json") and is_valid_name(name[:-5]) else None


def _is_legacy_file(name: str) -> bool:
    """Whether *name* in a namespace directory is a file of the 0.1/0.2 store."""
    if name.endswith((".json", ".lock")):
        return is_valid_name(name[:-5])
    if name.endswith(".tmp"):  # <job id>.<token>.tmp (0.2), <job id>.tmp (0.1)
        job_id, dot, token = name[:-4].partition(".")
        return is_valid_name(job_id) and (not dot or token.isalnum())
    return any(name == db + side for db in _DATABASES for side in _SIDES)


def _read(path: str) -> bytes | None:
    """A document's bytes: one bounded read of a regular file, never through a symlink."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        logger.warning("legacy import skips %r: %s", path, exc)
        return None
    if not stat.S_ISREG(st.st_mode):
        what = "a symlink, never followed" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        logger.warning("legacy import skips %r: %s", path, what)
        return None
    if st.st_size > MAX_DOCUMENT_BYTES:
        logger.warning("legacy import skips %r: %d bytes, more than a document", path, st.st_size)
        return None
    try:
        fd = os.open(path, _O_READ)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the lstat
                raise OSError("it changed while opened")
            data = os.read(fd, MAX_DOCUMENT_BYTES + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        logger.warning("legacy import skips %r: %s", path, exc)
        return None
    if len(data) > MAX_DOCUMENT_BYTES:
        logger.warning("legacy import skips %r: it grew past %d bytes", path, MAX_DOCUMENT_BYTES)
        return None
    return data


def _decode(data: Any, namespace: str, job_id: str) -> tuple[JobStatus, bool]:
    """A document of the job *job_id*, strictly: the job (with ``_expires``), and its mark.

    :raises ValueError: if it is not one (``InvalidDocument`` is a ``ValueError``).
    """
    if type(data) not in (bytes, str):
        raise ValueError("not a document")
    document = parse_json(data)
    if type(document) is not dict:
        raise ValueError("not a JSON object")
    marked = "_items" in document
    if marked and document.pop("_items") is not True:
        raise ValueError("'_items' must be true")
    expires = document.pop("_expires", None)
    job = JobStatus.from_dict(document)
    if job.job_id != job_id or job.namespace_name != namespace:
        raise ValueError("it names another job")
    if expires is not None:
        if type(expires) is not int or not job.is_finished:
            raise ValueError("'_expires' must be milliseconds, of a completed job")
        try:
            job = attrs.evolve(job, expires_at=from_ms(expires))
        except OverflowError:
            raise ValueError("'_expires' is not a representable time") from None
    return job, marked


def _job(document: JobStatus, items: _ItemsCopy, path: str) -> LegacyJob | None:
    """A marked job: its live state, items, failed items and error groups."""
    ns, job_id = document.namespace_name, document.job_id
    bare = LegacyJob(document, [], [], [])
    try:
        db = items.connect()
        row = (
            None
            if db is None
            else db.execute("SELECT id, doc FROM jobs WHERE job = ?", (job_id,)).fetchone()
        )
    except (OSError, sqlite3.Error) as exc:
        if not document.is_finished:  # its truth is in there, and unreadable
            logger.warning("legacy import skips job %r of %r: %s: %s", job_id, ns, ITEMS_NAME, exc)
            return None
        logger.warning("job %r of %r is imported without its items: %s", job_id, ns, exc)
        return bare
    if row is None:  # a writer died between marking the document and its first transaction
        return bare
    assert db is not None
    key, doc = row
    live = document
    if not document.is_finished:  # the row is the truth (never read once completed)
        try:
            live, marked = _decode(doc, ns, job_id)
            if marked:
                raise ValueError("a row is never marked")
        except ValueError as exc:
            logger.warning("legacy import skips job %r of %r: corrupt row: %.300s", job_id, ns, exc)
            return None
    if live.started_at != document.started_at:
        logger.warning(
            "legacy import reads job %r from %r: the rows of %s are of an earlier job of that id",
            job_id,
            path,
            ITEMS_NAME,
        )
        return bare
    return LegacyJob(live, *_items(db, key, job_id, ns), _errors(db, key, job_id, ns))


def _items(
    db: sqlite3.Connection, key: int, job_id: str, ns: str
) -> tuple[list[tuple[str, int, str | None]], list[FailedItem]]:
    """The job's items by name, and its failed items in the order they failed."""
    items, listed, bad = [], [], 0
    query = "SELECT item, state, error, position, failed_ms FROM items WHERE job = ? ORDER BY item"
    for item, state, error, position, failed_ms in db.execute(query, (key,)):
        try:
            if not (
                type(item) is str
                and item
                and type(state) is int
                and 0 <= state < 8
                and (error is None or type(error) is str)
                and (position is None or (type(position) is int and state & FAILED))
            ):
                raise ValueError
            if position is not None:
                listed.append((position, FailedItem(item, error, from_ms(failed_ms))))
        except (ValueError, TypeError, OverflowError):
            bad += 1
            continue
        items.append((item, state, error if state & FAILED else None))
    if bad:
        logger.warning("legacy import skips %d corrupt item rows of job %r of %r", bad, job_id, ns)
    return items, [entry for _, entry in sorted(listed, key=lambda e: e[0])]


def _errors(db: sqlite3.Connection, key: int, job_id: str, ns: str) -> list[ErrorCount]:
    """The job's error groups, most frequent first (as ``errors()`` sorts them)."""
    groups, bad = [], 0
    query = "SELECT message, count, first_ms, last_ms FROM errors WHERE job = ?"
    for message, count, first_ms, last_ms in db.execute(query, (key,)):
        try:
            if type(message) is not str or type(count) is not int or not 0 <= count <= MAX_COUNT:
                raise ValueError
            groups.append(ErrorCount(message or None, count, from_ms(first_ms), from_ms(last_ms)))
        except (ValueError, TypeError, OverflowError):
            bad += 1
    if bad:
        logger.warning("legacy import skips %d corrupt error rows of job %r of %r", bad, job_id, ns)
    return sorted(groups, key=lambda g: (-g.count, g.first_at, g.message is None, g.message or ""))


class _ItemsCopy:
    """A namespace's ``.items.sqlite``, copied on first use and opened there (a context).

    The copy takes the writes a ``-wal`` or ``-journal`` holds (SQLite
    recovers them on open) without writing a byte beside the original.
    """

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, ITEMS_NAME)
        self._db: sqlite3.Connection | None = None
        self._error: Exception | None = None
        self._copy: str | None = None
        self._tried = False

    def __enter__(self) -> _ItemsCopy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._db is not None:
            self._db.close()
        if self._copy is not None:
            shutil.rmtree(self._copy, ignore_errors=True)

    def connect(self) -> sqlite3.Connection | None:
        """The copy's connection; None if there is no database. Raises why it cannot be read."""
        if not self._tried:
            self._tried = True
            try:
                self._db = self._open()
            except (OSError, sqlite3.Error) as exc:
                self._error = exc
                logger.warning("legacy import cannot read %r: %s", self.path, exc)
        if self._error is not None:
            raise OSError(f"{ITEMS_NAME} cannot be read: {self._error}")
        return self._db

    def _open(self) -> sqlite3.Connection | None:
        found = {}
        for side in ("", "-wal", "-journal"):
            try:
                st = os.lstat(self.path + side)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode):
                what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
                raise OSError(f"{ITEMS_NAME}{side} is {what}: never followed")
            found[side] = st
        if "" not in found:
            return None
        self._copy = tempfile.mkdtemp(prefix="jobtrack-import-")
        target = os.path.join(self._copy, ITEMS_NAME)
        for side in found:
            fd = os.open(self.path + side, _O_READ)
            with os.fdopen(fd, "rb") as source, open(target + side, "wb") as copy:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise OSError(f"{ITEMS_NAME}{side} changed while opened")
                shutil.copyfileobj(source, copy)
        db = sqlite3.connect(target, isolation_level=None)
        try:
            columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            if not {"id", "job", "doc"} <= columns:
                raise sqlite3.DatabaseError("not the layout of jobtrack 0.2 (no jobs.doc)")
        except BaseException:
            db.close()
            raise
        return db
