"""Reading a directory written by the file store of jobtrack 0.1 and 0.2, to import it once.

The layout of such a directory (names follow the name rules, so they hold
no ``/`` or ``.``)::

    <root>/<namespace>/<job_id>.json          the job's document (below)
    <root>/<namespace>/<job_id>.lock          the target of its writers' flock (empty)
    <root>/<namespace>/<job_id>.<token>.tmp   a next version never renamed into place
    <root>/<namespace>/.index.sqlite          the listing index: a copy, ignored here
    <root>/<namespace>/.items.sqlite          0.2: jobs with items or errors (below)

A document is the job's wire document (SPEC section 1), read strictly, plus
in 0.2 two keys beside it: ``"_expires": <ms>``, a completed job's
``expires_at``, and ``"_items": true``, the mark of a job whose live state
moved into the namespace's ``.items.sqlite`` (its first update with an item
or an error). That database has three tables::

    jobs    (id INTEGER PRIMARY KEY, job TEXT UNIQUE, doc BLOB, position INTEGER)
    items   (job, item, state, error, position, failed_ms)   state: bits 1 processed,
            2 failed, 4 successful; while failed, its error, its place in the
            failed items (position) and when it failed
    errors  (job, message, count, first_ms, last_ms)         message '' is the group
            of the messages beyond the first 100

``jobs.doc`` is a document (never marked, with ``_expires`` once the job
completed). Which copy of a job is its truth, as the 0.2 store reads it:

* an unmarked document: the document; the job has no items or error groups
  (rows of ``.items.sqlite`` under its id are left from a deleted job);
* a marked, completed document: the document (the store rewrote it with the
  final counters and ``_expires`` when the job completed); its items and
  error groups are the database's rows;
* a marked, running document: its row in ``jobs`` (the document keeps the
  counters it had when it was marked), or the document itself when there is
  no row yet (a writer died between marking it and its first transaction).

jobtrack 0.1 wrote plain documents (never ``_expires``: its completed jobs
never expire) and an older index; it had no items. Nothing here writes: every
file is checked with ``lstat`` first (a symlink or anything but a regular file
is skipped with a warning, never followed), a document is read in one bounded
read, and ``.items.sqlite`` is opened ``immutable`` and read-only, or, when a
``-wal`` or ``-journal`` beside it holds writes not yet in the database (a
0.2 process died, or still runs), copied into a temporary directory first
and read there. Portable: no ``fcntl``, no ``/proc``.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

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
INDEX_NAME = ".index.sqlite"
_SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")
_O_READ = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)  # POSIX; elsewhere the fstat check below catches a swap
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in never blocks the read
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)  # Windows
)
_CHUNK = 1 << 20


@attrs.frozen
class LegacyJob:
    """One job of a 0.1/0.2 directory, as the 0.2 store reported it.

    ``status`` carries ``expires_at`` (from ``_expires``; None while running,
    for a job kept forever, and for every job of 0.1). ``items`` is every item
    named in the job's updates, by name: ``(item, state, error)``, ``state``
    the bits :data:`~jobtrack.rules.PROCESSED`, :data:`~jobtrack.rules.FAILED`
    and :data:`~jobtrack.rules.SUCCESSFUL`, ``error`` the item's error while
    it is failed (else None). ``failed`` lists the failed items in the order
    they failed (what ``failed_items()`` paged through), ``errors`` the error
    groups as ``errors()`` gave them: most frequent first, the group of the
    messages beyond the first 100 with ``message`` None.
    """

    status: JobStatus
    items: list[tuple[str, int, str | None]]
    failed: list[FailedItem]
    errors: list[ErrorCount]


def is_legacy_directory(root: str) -> bool:
    """Whether *root* holds a 0.1/0.2 file store.

    True when a subdirectory named as a namespace (a real directory, not a
    symlink) holds a job document (a regular file ``<job id>.json``) or a
    ``.items.sqlite``. Nothing is read but directory entries.
    """
    try:
        namespaces = _namespaces(root, warn=False)
    except OSError:
        return False
    for namespace in namespaces:
        try:
            with os.scandir(os.path.join(root, namespace)) as entries:
                for entry in entries:
                    if (_job_id(entry.name) is not None or entry.name == ITEMS_NAME) and (
                        entry.is_file(follow_symlinks=False)
                    ):
                        return True
        except OSError:
            continue
    return False


def legacy_files(root: str) -> list[str]:
    """The paths, relative to *root*, that a user may delete once the directory is imported.

    In each namespace directory: the job documents (``*.json``), lock files
    (``*.lock``), leftover temporary files (``*.tmp``), and ``.index.sqlite``
    and ``.items.sqlite`` with their ``-wal``, ``-shm`` and ``-journal``;
    then the namespace directory itself when nothing else is in it. In that
    order, so deleting the paths one after another (files with ``os.remove``,
    directories with ``os.rmdir``) empties the tree. Symlinks among them are
    listed (removing one removes the link only), directories inside are not.
    """
    paths: list[str] = []
    try:
        namespaces = _namespaces(root, warn=False)
    except OSError:
        return paths
    for namespace in namespaces:
        try:
            with os.scandir(os.path.join(root, namespace)) as scan:
                entries = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in scan)
        except OSError:
            continue
        ours = [name for name, is_dir in entries if not is_dir and _is_legacy_file(name)]
        paths += [os.path.join(namespace, name) for name in ours]
        if ours and len(ours) == len(entries):
            paths.append(namespace)
    return paths


def read_legacy_directory(root: str) -> Iterator[LegacyJob]:
    """Every job of the 0.1/0.2 directory *root*, namespace by namespace, by job id.

    Each job is read from the copy the 0.2 store held to be its truth (see
    the module's documentation). A job that cannot be read — a corrupt,
    oversized or unreadable document, a symlink, a job whose live state is
    in an unreadable ``.items.sqlite`` — is skipped with a warning on the
    ``jobtrack.stores.sql`` logger; so is a namespace directory that cannot
    be listed. A completed job whose items and error groups cannot be read
    comes without them, with a warning (its counters are in its document).
    Nothing is ever written under *root*.

    :raises OSError: only when *root* itself cannot be listed.
    """
    for namespace in _namespaces(root, warn=True):
        directory = os.path.join(root, namespace)
        try:
            with os.scandir(directory) as entries:
                names = sorted(e.name for e in entries if e.name.endswith(".json"))
        except OSError as exc:
            logger.warning("legacy import skips namespace directory %r: %s", directory, exc)
            continue
        with _ItemsDB(directory) as items:
            for name in names:
                job_id = _job_id(name)
                if job_id is None:
                    logger.warning(
                        "legacy import skips %r: not a job document name",
                        os.path.join(directory, name),
                    )
                    continue
                job = _read_job(directory, namespace, job_id, items)
                if job is not None:
                    yield job


# -- documents -------------------------------------------------------------


def _namespaces(root: str, *, warn: bool) -> list[str]:
    """The namespace directories of *root*, by name: real directories with valid names."""
    found = []
    with os.scandir(root) as entries:
        for entry in entries:
            if not is_valid_name(entry.name):
                continue
            if entry.is_dir(follow_symlinks=False):
                found.append(entry.name)
            elif warn and entry.is_symlink():
                logger.warning(
                    "legacy import skips %r: a symlink, never followed",
                    os.path.join(root, entry.name),
                )
    return sorted(found)


def _job_id(name: str) -> str | None:
    """The job id of a document's file name, or None if *name* is not one."""
    if name.endswith(".json") and is_valid_name(name[:-5]):
        return name[:-5]
    return None


def _is_legacy_file(name: str) -> bool:
    """Whether *name* in a namespace directory is a file of the 0.1/0.2 store."""
    if name.endswith((".json", ".lock")):
        return is_valid_name(name[:-5])
    if name.endswith(".tmp"):  # <job id>.<token>.tmp (0.2), <job id>.tmp (0.1)
        job_id, dot, token = name[:-4].partition(".")
        return is_valid_name(job_id) and (not dot or token.isalnum())
    return any(name in (db + s for s in _SQLITE_SUFFIXES) for db in (INDEX_NAME, ITEMS_NAME))


def _regular(path: str) -> os.stat_result | None:
    """``lstat`` of *path* if it is a regular file; else None, with a warning."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        logger.warning("legacy import skips %r: it is gone", path)
        return None
    except OSError as exc:
        logger.warning("legacy import skips %r: %s", path, exc)
        return None
    if stat.S_ISLNK(st.st_mode):
        logger.warning("legacy import skips %r: a symlink, never followed", path)
        return None
    if not stat.S_ISREG(st.st_mode):
        logger.warning("legacy import skips %r: not a regular file", path)
        return None
    return st


def _open_regular(path: str, st: os.stat_result) -> int | None:
    """Open the regular file *path* found by ``lstat`` as *st*; None if it is not that file now."""
    try:
        fd = os.open(path, _O_READ)
    except OSError as exc:
        logger.warning("legacy import skips %r: %s", path, exc)
        return None
    now = os.fstat(fd)
    same = not st.st_ino or not now.st_ino or (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)
    if stat.S_ISREG(now.st_mode) and same:
        return fd
    os.close(fd)
    logger.warning("legacy import skips %r: it changed while opened (a symlink?)", path)
    return None


def _read_document(path: str) -> bytes | None:
    """The bytes of the document *path*: one bounded read of a regular file, never a symlink."""
    st = _regular(path)
    if st is None:
        return None
    if st.st_size > MAX_DOCUMENT_BYTES:
        logger.warning(
            "legacy import skips %r: %d bytes, more than a job document's %d",
            path,
            st.st_size,
            MAX_DOCUMENT_BYTES,
        )
        return None
    fd = _open_regular(path, st)
    if fd is None:
        return None
    try:
        data = b""
        while len(data) <= MAX_DOCUMENT_BYTES:
            more = os.read(fd, MAX_DOCUMENT_BYTES + 1 - len(data))
            if not more:
                break
            data += more
    except OSError as exc:
        logger.warning("legacy import skips %r: %s", path, exc)
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_DOCUMENT_BYTES:
        logger.warning("legacy import skips %r: it grew past %d bytes", path, MAX_DOCUMENT_BYTES)
        return None
    return data


def _decode(data: bytes | str, namespace: str, job_id: str) -> tuple[JobStatus, bool]:
    """A document of the job *job_id*, strictly: the job (with ``_expires``), and its mark.

    :raises ValueError: if it is not one (``InvalidDocument`` is a ``ValueError``).
    """
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


def _read_job(directory: str, namespace: str, job_id: str, items: _ItemsDB) -> LegacyJob | None:
    """The job *job_id* as the 0.2 store read it; None (with a warning) if it cannot be read."""
    path = os.path.join(directory, job_id + ".json")
    data = _read_document(path)
    if data is None:
        return None
    try:
        document, marked = _decode(data, namespace, job_id)
    except ValueError as exc:
        logger.warning("legacy import skips corrupt job document %r: %s", path, str(exc)[:300])
        return None
    if not marked:
        return LegacyJob(document, [], [], [])
    db = items.connect()
    if db is None:  # gone (the store would have made it anew, empty) or unreadable
        if items.broken and not document.is_finished:
            logger.warning(
                "legacy import skips job %r of namespace %r: its live state is in %r, unreadable",
                job_id,
                namespace,
                items.path,
            )
            return None
        logger.warning(
            "job %r of namespace %r is imported without its items and error groups: %r %s",
            job_id,
            namespace,
            items.path,
            "cannot be read" if items.broken else "is missing",
        )
        return LegacyJob(document, [], [], [])
    try:
        return _read_rows(db, document, path)
    except sqlite3.Error as exc:
        if not document.is_finished:
            logger.warning("legacy import skips job %r of %r: %s", job_id, items.path, exc)
            return None
        logger.warning(
            "job %r of namespace %r is imported without its items and error groups: %s",
            job_id,
            namespace,
            exc,
        )
        return LegacyJob(document, [], [], [])


# -- .items.sqlite -----------------------------------------------------------


def _read_rows(db: sqlite3.Connection, document: JobStatus, path: str) -> LegacyJob | None:
    """A marked job: its live state, items, failed items and error groups from *db*."""
    namespace, job_id = document.namespace_name, document.job_id
    row = db.execute("SELECT id, doc FROM jobs WHERE job = ?", (job_id,)).fetchone()
    if row is None:  # a writer died between marking the document and its first transaction
        return LegacyJob(document, [], [], [])
    key, doc = row
    try:
        if type(doc) not in (bytes, str):
            raise ValueError("not a document")
        live, marked = _decode(doc, namespace, job_id)
        if marked:
            raise ValueError("a row is never marked")
    except ValueError as exc:
        if not document.is_finished:  # the row is the truth, and it is unreadable
            logger.warning(
                "legacy import skips job %r of namespace %r: corrupt row in %s: %s",
                job_id,
                namespace,
                ITEMS_NAME,
                str(exc)[:300],
            )
            return None
        live = document  # (the 0.2 store never read the row of a completed job)
    if live.started_at != document.started_at:  # rows of an earlier job of that id
        logger.warning(
            "legacy import reads job %r from %r: the rows of %s are of an earlier job of that id",
            job_id,
            path,
            ITEMS_NAME,
        )
        return LegacyJob(document, [], [], [])
    status = document if document.is_finished else live
    items, failed = _items(db, key, job_id, namespace)
    return LegacyJob(status, items, failed, _errors(db, key, job_id, namespace))


def _items(
    db: sqlite3.Connection, key: int, job_id: str, namespace: str
) -> tuple[list[tuple[str, int, str | None]], list[FailedItem]]:
    """The job's items by name, and its failed items in the order they failed."""
    items: list[tuple[str, int, str | None]] = []
    listed: list[tuple[int, FailedItem]] = []
    bad = 0
    rows = db.execute(
        "SELECT item, state, error, position, failed_ms FROM items WHERE job = ? ORDER BY item",
        (key,),
    )
    for item, state, error, position, failed_ms in rows:
        if not (
            type(item) is str
            and item
            and type(state) is int
            and 0 <= state < 8
            and (error is None or type(error) is str)
            and (position is None or (type(position) is int and type(failed_ms) is int))
            and (position is None or state & FAILED)
        ):
            bad += 1
            continue
        if position is not None:
            try:
                listed.append((position, FailedItem(item, error, from_ms(failed_ms))))
            except OverflowError:
                bad += 1
                continue
        items.append((item, state, error if state & FAILED else None))
    if bad:
        logger.warning(
            "legacy import skips %d corrupt item rows of job %r of namespace %r",
            bad,
            job_id,
            namespace,
        )
    listed.sort(key=lambda entry: entry[0])
    return items, [entry for _, entry in listed]


def _errors(db: sqlite3.Connection, key: int, job_id: str, namespace: str) -> list[ErrorCount]:
    """The job's error groups, most frequent first (as ``errors()`` sorts them)."""
    groups = []
    bad = 0
    rows = db.execute(
        "SELECT message, count, first_ms, last_ms FROM errors WHERE job = ?",
        (key,),
    )
    for message, count, first_ms, last_ms in rows:
        if not (
            type(message) is str
            and type(count) is int
            and 0 <= count <= MAX_COUNT
            and type(first_ms) is int
            and type(last_ms) is int
        ):
            bad += 1
            continue
        try:
            groups.append(ErrorCount(message or None, count, from_ms(first_ms), from_ms(last_ms)))
        except OverflowError:
            bad += 1
    if bad:
        logger.warning(
            "legacy import skips %d corrupt error-count rows of job %r of namespace %r",
            bad,
            job_id,
            namespace,
        )
    return sorted(groups, key=lambda g: (-g.count, g.first_at, g.message is None, g.message or ""))


class _ItemsDB:
    """A namespace directory's ``.items.sqlite``, opened read-only on first use (a context)."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, ITEMS_NAME)
        self.broken = False  # there, but unreadable (warned once)
        self._tried = False
        self._db: sqlite3.Connection | None = None
        self._copy: str | None = None  # the temporary directory of a copy

    def __enter__(self) -> _ItemsDB:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._copy is not None:
            shutil.rmtree(self._copy, ignore_errors=True)
            self._copy = None

    def connect(self) -> sqlite3.Connection | None:
        """The connection; None if there is no database or it cannot be read."""
        if not self._tried:
            self._tried = True
            try:
                self._db = self._open()
            except (OSError, sqlite3.Error) as exc:
                self._db, self.broken = None, True
                logger.warning("legacy import cannot read %r: %s", self.path, exc)
        return self._db

    def _open(self) -> sqlite3.Connection | None:
        found: dict[str, os.stat_result] = {}
        for suffix in _SQLITE_SUFFIXES:
            try:
                st = os.lstat(self.path + suffix)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode):
                what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
                raise OSError(f"{ITEMS_NAME}{suffix} is {what}: never followed")
            found[suffix] = st
        if "" not in found:
            return None
        if not any(found[s].st_size for s in ("-wal", "-journal") if s in found):
            uri = Path(self.path).absolute().as_uri() + "?mode=ro&immutable=1"
            try:
                return _checked(sqlite3.connect(uri, uri=True, isolation_level=None))
            except sqlite3.OperationalError:  # a path SQLite takes as no URI (a UNC share...)
                pass
        # writes not yet in the database (a -wal, a hot -journal), or no URI: recovered in a copy
        return _checked(self._open_copy(found))

    def _open_copy(self, found: dict[str, os.stat_result]) -> sqlite3.Connection:
        """Copy the database and its ``-wal`` / ``-journal`` into a temporary directory; open it."""
        self._copy = tempfile.mkdtemp(prefix="jobtrack-import-")
        target = os.path.join(self._copy, ITEMS_NAME)
        for suffix, st in found.items():
            if suffix == "-shm":  # rebuilt from the -wal
                continue
            fd = _open_regular(self.path + suffix, st)
            if fd is None:
                raise OSError(f"{ITEMS_NAME}{suffix} changed while opened")
            with os.fdopen(fd, "rb") as source, open(target + suffix, "wb") as copy:
                shutil.copyfileobj(source, copy, _CHUNK)
        db = sqlite3.connect(target, isolation_level=None)  # ours: recovery may write
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # recovers the copy
        except BaseException:
            db.close()
            raise
        return db


def _checked(db: sqlite3.Connection) -> sqlite3.Connection:
    """*db* made query-only, if it has the tables of 0.2 (else closed, ``DatabaseError``)."""
    try:
        db.execute("PRAGMA query_only = ON")
        columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
        if not {"id", "job", "doc"} <= columns:
            raise sqlite3.DatabaseError("not the layout of jobtrack 0.2 (no jobs.doc)")
    except BaseException:
        db.close()
        raise
    return db
