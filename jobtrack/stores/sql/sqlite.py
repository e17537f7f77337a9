"""SQLiteStore: every job in one SQLite database, shared by the processes of a host.

The database runs in WAL mode with a busy timeout: readers never wait for
writers, writers queue for the write lock, and a process killed at any
moment (``kill -9`` included) leaves the last committed update in place.
Connections are kept in a small pool, whatever the number of threads or
namespaces. Only the standard library's :mod:`sqlite3` is used, and nothing
specific to one operating system: the store runs on Linux, macOS and Windows.

``file:DIR`` opens the same store on ``DIR/jobtrack.sqlite3``, after
importing once the jobs a jobtrack 0.1/0.2 file store left in ``DIR``
(see :mod:`.legacy`).
"""

from __future__ import annotations

import builtins
import collections
import datetime as _dt
import logging
import math
import os
import sqlite3
import stat
import time
import urllib.parse
from collections.abc import Sequence

from ...errors import (
    ConfigurationError,
    JobtrackError,
    StoreCorrupt,
    StoreUnavailable,
    shown,
)
from ...model import JobStatus
from ...rules import Delta
from ..protocol import Features
from ..registry import StoreURL, boolean, seconds
from . import operations as ops
from .importer import import_legacy
from .schema import SCHEMA_VERSION, Dialect

__all__ = ["FileStore", "SQLiteStore"]

logger = logging.getLogger("jobtrack.stores.sql")

DIALECT = Dialect(
    "sqlite", named=True, jobs_options=" WITHOUT ROWID", rows_options=" WITHOUT ROWID"
)
_SQL = {**DIALECT.statements(), "begin": "BEGIN IMMEDIATE", "commit": "COMMIT"}
_KEPT_CONNECTIONS = 8
_CHANGE_CHECK = 0.02  # seconds between two looks at PRAGMA data_version
_SIDE_FILES = ("-wal", "-shm", "-journal")
DATABASE_NAME = "jobtrack.sqlite3"
"""The database a ``file:DIR`` store keeps in ``DIR``."""


class SQLiteStore(ops.StoreMethods):
    """Jobs in the SQLite database at *path* (made when missing, unless ``create=False``).

    Safe for many threads and processes of one host at once. ``durable=True``
    (``synchronous=FULL``) makes every acknowledged update survive a power
    loss too; by default (``synchronous=NORMAL``, WAL) it survives any crash of
    a process, and a power loss may take the last updates. A writer waits up
    to *timeout* seconds for the write lock, then gets ``StoreUnavailable``.
    """

    features = Features(
        processes=True, items=True, expiry=True, statuses=True, push=True, namespaces=True
    )
    """Blocking (async trackers run it in a worker thread), shared by processes."""

    scheme = "sqlite"
    _apply = staticmethod(ops.apply_locked)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durable: bool = False,
        create: bool = True,
        timeout: float = 5.0,
    ) -> None:
        for name, value in (("durable", durable), ("create", create)):
            if not isinstance(value, bool):
                raise ConfigurationError(f"{name} must be True or False, got {shown(value)}")
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not (0 < timeout <= 3600)
        ):
            raise ConfigurationError(f"timeout must be 0 < seconds <= 3600, got {shown(timeout)}")
        self.path = _absolute(path, "an SQLite store")
        if os.path.isdir(self.path):
            raise ConfigurationError(f"{self.path!r} is a directory; an SQLite store is a file")
        self.durable = durable
        self.timeout = float(timeout)
        self._idle: collections.deque[sqlite3.Connection] = collections.deque()
        self._pid = os.getpid()
        if not create and not os.path.lexists(self.path):
            raise ConfigurationError(f"no SQLite store at {self.path!r}: the file does not exist")
        folder = os.path.dirname(self.path)
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot make the folder {folder!r}: {exc}") from exc
        self._release(self._open_schema())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    @classmethod
    def from_url(cls, url: StoreURL) -> SQLiteStore:
        """The factory of ``sqlite:///abs/path.db`` and ``sqlite:rel/path.db``.

        Options: ``durable`` (true/false), ``create`` (true/false), ``timeout``
        (seconds a writer waits for the lock).
        """
        path = _url_path(url)
        options = url.options(durable=boolean(False), create=boolean(True), timeout=seconds(5.0))
        options["create"] = options["create"] and url.create
        return cls(path, **options)

    @property
    def url(self) -> str:
        """The URL that opens this store (in another process, say)."""
        query = "?durable=true" if self.durable else ""
        return f"{self.scheme}://{urllib.parse.quote(self.path)}{query}"

    # -- connections ---------------------------------------------------------

    def _check_files(self) -> None:
        """Refuse a database (or its WAL, shared memory, journal) that is not a plain file."""
        for suffix in ("", *_SIDE_FILES):
            path = self.path + suffix
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StoreUnavailable(f"cannot look at {path!r}: {exc}") from exc
            if not stat.S_ISREG(st.st_mode):
                what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
                raise StoreCorrupt(f"{path!r} is {what}: the SQLite store never follows or uses it")

    def _connect(self) -> sqlite3.Connection:
        self._check_files()
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise _translated(exc, self.path) from exc
        try:
            conn.execute(f"PRAGMA synchronous = {'FULL' if self.durable else 'NORMAL'}")
            conn.execute("PRAGMA foreign_keys = ON")
            try:  # the smoothed rate needs exp(): SQLite has it only when built with math
                conn.execute("SELECT exp(0)")
            except sqlite3.OperationalError:
                conn.create_function("exp", 1, math.exp, deterministic=True)
        except sqlite3.Error as exc:
            conn.close()
            raise _translated(exc, self.path) from exc
        return conn

    def _open_schema(self) -> sqlite3.Connection:
        """The first connection: WAL, incremental vacuum, the schema (made or checked)."""
        conn = self._connect()
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before any table: a new file
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            for statement in DIALECT.schema():
                conn.execute(statement)
            row = conn.execute(_SQL["version"]).fetchone()
            if row is None:
                conn.execute(_SQL["set_version"], {"version": str(SCHEMA_VERSION)})
            elif row[0] != str(SCHEMA_VERSION):
                raise ConfigurationError(
                    f"{self.path!r} has jobtrack schema version {row[0]!r}; this jobtrack "
                    f"reads version {SCHEMA_VERSION}: upgrade jobtrack"
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.close()
            raise _translated(exc, self.path) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _acquire(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # a forked child: never use the parent's connections
            self._idle = collections.deque()
            self._pid = os.getpid()
        try:
            return self._idle.pop()
        except IndexError:
            return self._connect()

    def _release(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:  # an operation that failed midway
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                conn.close()
                return
        if len(self._idle) < _KEPT_CONNECTIONS:
            self._idle.append(conn)
        else:
            conn.close()

    def _run(self, op: ops.Op[ops.R]) -> ops.R:
        """Execute the statements *op* yields, on one connection, until it returns."""
        conn = self._acquire()
        try:
            query = next(op)
            while True:
                name, params = query
                query = op.send(conn.execute(_SQL[name], params).fetchall())
        except StopIteration as stop:
            done: ops.R = stop.value
            return done
        except sqlite3.Error as exc:
            raise _translated(exc, self.path) from exc
        finally:
            self._release(conn)

    # -- the protocol ---------------------------------------------------------

    def update_many(
        self, updates: Sequence[tuple[str, str, Delta]], now: _dt.datetime
    ) -> builtins.list[JobStatus | JobtrackError]:
        """Apply each update in its own transaction; report each result."""
        results: builtins.list[JobStatus | JobtrackError] = []
        for namespace, job_id, delta in updates:
            try:
                results.append(self.update(namespace, job_id, delta, now))
            except JobtrackError as exc:
                results.append(exc)
        return results

    def purge(self, expired_before: _dt.datetime) -> int:
        """Remove every job expired at or before *expired_before*, then give the space back.

        The freed pages go back to the file system (incremental vacuum) and
        the write-ahead log is truncated once no reader needs it.
        """
        gone: int = self._run(ops.purge(expired_before))
        if gone:
            conn = self._acquire()
            try:
                conn.executescript("PRAGMA incremental_vacuum")  # stepped to the end
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error as exc:
                raise _translated(exc, self.path) from exc
            finally:
                self._release(conn)
        return gone

    def wait_change(
        self, namespace: str, job_id: str, seen: JobStatus | None, timeout: float
    ) -> None:
        """Return once the job differs from *seen*, or after *timeout* seconds.

        The job is read once; then a cheap check (``PRAGMA data_version``: did
        any process commit?) every 20 ms on one connection, no read of the job
        until something changed (the caller reads it again).
        """
        deadline = time.monotonic() + timeout
        conn = self._acquire()
        try:
            first = conn.execute("PRAGMA data_version").fetchone()[0]
            if self.get(namespace, job_id) != seen:  # changed before the first look
                return
            while time.monotonic() < deadline:
                time.sleep(min(_CHANGE_CHECK, max(0.0, deadline - time.monotonic())))
                if conn.execute("PRAGMA data_version").fetchone()[0] != first:
                    return
        except sqlite3.Error as exc:
            raise _translated(exc, self.path) from exc
        finally:
            self._release(conn)

    def close(self) -> None:
        """Close the pooled connections (the store opens new ones if used again)."""
        while self._idle:
            self._idle.pop().close()


class FileStore(SQLiteStore):
    """``file:DIR``: a :class:`SQLiteStore` on ``DIR/jobtrack.sqlite3``.

    The first time it opens a directory a jobtrack 0.1/0.2 file store wrote,
    it imports every job there once (see :mod:`.legacy`); the old files are
    then left for the user to remove. ``fsync=True`` is ``durable=True``.
    """

    scheme = "file"

    def __init__(
        self, path: str | os.PathLike[str], *, fsync: bool = False, create: bool = True
    ) -> None:
        root = _absolute(path, "a file store")
        if not create and not os.path.isdir(root):
            raise ConfigurationError(f"no file store at {root!r}: the directory does not exist")
        if os.path.lexists(root) and not os.path.isdir(root):
            raise ConfigurationError(f"cannot use {root!r} as a file store: not a directory")
        self.root = root
        super().__init__(
            os.path.join(root, DATABASE_NAME),
            durable=fsync,
            create=create or os.path.isdir(root),
        )
        conn = self._acquire()
        try:
            import_legacy(root, self.path, conn, _SQL)
        except sqlite3.Error as exc:
            raise _translated(exc, self.path) from exc
        finally:
            self._release(conn)

    @property
    def fsync(self) -> bool:
        """Whether every update is made durable against a power loss (``durable``)."""
        return self.durable

    @classmethod
    def from_url(cls, url: StoreURL) -> FileStore:
        """The factory of ``file:///abs/path`` and ``file:rel/path`` (``?fsync=``, ``?create=``)."""
        path = _url_path(url)
        options = url.options(fsync=boolean(False), create=boolean(True))
        options["create"] = options["create"] and url.create
        return cls(path, **options)

    @property
    def url(self) -> str:
        """The URL that opens this store (in another process, say)."""
        query = "?fsync=true" if self.durable else ""
        return f"file://{urllib.parse.quote(self.root)}{query}"


def _url_path(url: StoreURL) -> str:
    """The path of a ``sqlite:`` or ``file:`` URL, checked."""
    what = f"{url.scheme} store URL {url.shown!r}"
    if url.netloc not in ("", "localhost"):
        raise ConfigurationError(
            f"{what} names host {url.netloc!r}; use {url.scheme}:///abs/path or "
            f"{url.scheme}:rel/path"
        )
    if not url.path:
        raise ConfigurationError(f"{what} has no path")
    if url.url.partition("?")[0].startswith(f"{url.scheme}://") and not os.path.isabs(url.path):
        raise ConfigurationError(f"{what} must have an absolute path")
    return url.path


def _absolute(path: object, what: str) -> str:
    """*path* (a str or an ``os.PathLike``), checked and made absolute."""
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
        raise ConfigurationError(f"path must be a str or a path, got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str) or not text:
        raise ConfigurationError(f"{what} path must name a place on disk, got {shown(text)}")
    if "\x00" in text:
        raise ConfigurationError(f"{what} path cannot hold a NUL byte: {text!r}")
    return os.path.abspath(text)


def _translated(exc: sqlite3.Error, path: str) -> JobtrackError:
    """The jobtrack error for an SQLite error: corrupt data, or a store unavailable for now."""
    if isinstance(exc, sqlite3.OperationalError) or not isinstance(exc, sqlite3.DatabaseError):
        return StoreUnavailable(f"SQLite store {path!r}: {exc}")
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError)):
        return StoreCorrupt(f"SQLite store {path!r} refused a write: {exc}")
    return StoreCorrupt(f"SQLite store {path!r} is not a valid jobtrack database: {exc}")
