"""FileStore: one JSON file per job in a directory shared by the processes of a host.

Layout under the root directory (names follow the name rules, so they never
contain ``/`` or ``.`` and cannot leave the root)::

    <root>/<namespace>/<job_id>.json          the job's wire document
    <root>/<namespace>/<job_id>.lock          flock(2) target serializing its writers
    <root>/<namespace>/<job_id>.<random>.tmp  the next version, while being written
    <root>/<namespace>/.index.sqlite          the listing index (see file_index)
    <root>/<namespace>/.items.sqlite          items, failed items, error counts (see file_items)

A writer takes an exclusive ``flock`` on the lock file, reads the document,
applies :func:`jobtrack.rules.apply`, writes a temporary file of its own
(created exclusively) and renames it over the document. Nothing is ever
opened through a symlink: files are opened with ``O_NOFOLLOW`` relative to
their namespace directory, itself opened with ``O_NOFOLLOW``. ``rename`` is
atomic, so readers (who take no lock) see the old or the new document, never
a torn one, and a writer killed at any moment
leaves the last acknowledged version in place. The kernel drops the ``flock``
of a dead process, so no lock is ever stale.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as _dt
import errno
import fcntl
import logging
import os
import secrets
import sqlite3
import threading
import urllib.parse
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from ..clock import to_ms
from ..errors import (
    ConfigurationError,
    JobExists,
    JobNotFound,
    JobtrackError,
    StoreCorrupt,
    StoreUnavailable,
    shown,
)
from ..model import ErrorCount, FailedItem, JobStatus
from ..names import is_valid_name, validate_name
from ..rules import Delta, apply
from .file_document import MAX_DOCUMENT_BYTES, decode_document, encode_document
from .file_index import INDEX_NAME, NamespaceIndex
from .file_items import ITEMS_NAME, ItemsDB
from .protocol import Features, ListKey, beat_key, entry_differs, has_status
from .registry import StoreURL, boolean

__all__ = ["FileStore"]

logger = logging.getLogger("jobtrack.stores.file")

_O_NOFOLLOW = os.O_CLOEXEC | os.O_NOFOLLOW
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | _O_NOFOLLOW
_O_READ = os.O_RDONLY | os.O_NONBLOCK | _O_NOFOLLOW
_O_LOCK = os.O_RDWR | os.O_CREAT | _O_NOFOLLOW
_O_TMP = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW
_TOKEN = secrets.token_hex(8)  # this process's: temporary names nobody else can predict


def _new_token() -> None:
    global _TOKEN
    _TOKEN = secrets.token_hex(8)


os.register_at_fork(after_in_child=_new_token)

T = TypeVar("T")
D = TypeVar("D", "ItemsDB", "NamespaceIndex")
_KEPT_DIRECTORIES = 256
_PURGE_BATCH = 500
_KEPT_DATABASES = 8  # per thread
_NOT_A_FILE = (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.ENODEV)  # a symlink, directory, socket


class FileStore:
    """Jobs as files in the directory *path*.

    Safe for many threads and processes of one host at once. With
    ``fsync=True`` every acknowledged update also survives a power loss (the
    file and its directory are fsynced before the call returns); without it,
    updates survive a crash or ``kill -9`` of any process, but the last
    updates before a power loss may be lost. The directory is created when
    missing, unless ``create=False`` (for tools that only look at jobs: a
    mistyped path is then an error, not a new empty store).
    """

    features = Features(processes=True, items=True, expiry=True, statuses=True)
    """Blocking file I/O, shared by the processes of one host (through :attr:`url`)."""

    def __init__(
        self, path: str | os.PathLike[str], *, fsync: bool = False, create: bool = True
    ) -> None:
        for name, value in (("fsync", fsync), ("create", create)):
            if not isinstance(value, bool):
                raise ConfigurationError(f"{name} must be True or False, got {shown(value)}")
        if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
            raise ConfigurationError(f"path must be a str or a path, got {type(path).__name__}")
        text = os.fspath(path)
        if not isinstance(text, str) or not text:
            raise ConfigurationError(f"path must name a directory, got {shown(text)}")
        root = os.path.abspath(text)
        if "\x00" in root:
            raise ConfigurationError(f"a file store path cannot hold a NUL byte: {root!r}")
        if not create and not os.path.lexists(root):
            raise ConfigurationError(f"no file store at {root!r}: the directory does not exist")
        try:
            os.makedirs(root, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot use {root!r} as a file store: {exc}") from exc
        if not os.path.isdir(root):
            raise ConfigurationError(f"cannot use {root!r} as a file store: not a directory")
        self.root = root
        self.fsync = fsync
        self._dirs: dict[str, tuple[int, tuple[int, int]]] = {}  # ns -> (fd, (dev, inode))
        self._opened: list[int] = []  # every descriptor kept, closed with the store
        self._dirs_lock = threading.Lock()
        self._local = threading.local()  # each thread's open SQLite databases
        weakref.finalize(self, _close_all, self._opened)

    def __repr__(self) -> str:
        return f"FileStore({self.root!r}, fsync={self.fsync})"

    @classmethod
    def from_url(cls, url: StoreURL, *, create: bool | None = None) -> FileStore:
        """The factory of ``file:///abs/path`` and ``file:rel/path`` (``?fsync=``, ``?create=``)."""
        if url.netloc not in ("", "localhost"):
            raise ConfigurationError(
                f"file store URL {url.url!r} names host {url.netloc!r}; use file:///abs/path or "
                "file:rel/path"
            )
        if not url.path:
            raise ConfigurationError(f"file store URL {url.url!r} has no path")
        if url.url.startswith("file://") and not url.path.startswith("/"):
            raise ConfigurationError(f"file store URL {url.url!r} must have an absolute path")
        options = url.options(fsync=boolean(False), create=boolean(True))
        if create is not None:  # the caller's word wins (the CLI's read-only commands)
            options["create"] = create
        return cls(os.path.abspath(url.path), **options)

    @property
    def url(self) -> str:
        """The URL that opens this store (in another process, say)."""
        query = "?fsync=true" if self.fsync else ""
        return f"file://{urllib.parse.quote(self.root)}{query}"

    # -- directories, locks, documents ---------------------------------------
    # Every file is opened relative to its namespace directory's descriptor, and
    # neither the directory nor any file is ever reached through a symlink.

    def _dir(self, namespace: str, create: bool = False) -> tuple[int | None, bool]:
        """The namespace directory's descriptor (None if missing), and whether to close it.

        The descriptors of the first few hundred namespaces are kept open until
        the store is garbage; each use checks (one ``lstat``) that the path still
        names that very directory, so a directory removed, renamed away or
        replaced is opened afresh (the old descriptor stays open too, so no
        thread ever finds a descriptor number reused under it).
        """
        path = os.path.join(self.root, validate_name(namespace, "namespace"))
        kept = self._dirs.get(namespace)
        if kept is not None:
            try:
                now = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                now = None
            if now is not None and (now.st_dev, now.st_ino) == kept[1]:
                return kept[0], False
        if create:
            try:
                os.makedirs(path, exist_ok=True)
            except FileExistsError:  # something else by that name
                raise StoreCorrupt(f"{path!r} is not a namespace directory") from None
        try:
            fd = os.open(path, _O_DIR)
        except FileNotFoundError:
            return None, False
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise StoreCorrupt(f"{path!r} is not a namespace directory (a symlink?)") from None
            raise
        with self._dirs_lock:
            if len(self._opened) < _KEPT_DIRECTORIES:
                st = os.fstat(fd)
                self._opened.append(fd)
                self._dirs[namespace] = (fd, (st.st_dev, st.st_ino))
                return fd, False
        return fd, True

    @contextlib.contextmanager
    def _directory(self, namespace: str, create: bool = False) -> Iterator[int | None]:
        """:meth:`_dir` as a context manager."""
        dfd, owned = self._dir(namespace, create)
        try:
            yield dfd
        finally:
            if owned:
                os.close(dfd)  # type: ignore[arg-type]

    @staticmethod
    def _lock(dfd: int, job_id: str) -> int:
        """The job's lock file, opened and flocked (made when missing).

        A deleted lock file never strands a job. A deleter may unlink it while
        we wait; then our lock is on an orphan inode (no links left) and
        protects nothing: start over. Lock files are only ever created at
        their path and unlinked, never renamed, so a linked inode is the one
        at the path.
        """
        lock = job_id + ".lock"
        while True:
            try:  # without O_CREAT first: creating takes the directory's lock
                fd = _open(dfd, lock, _O_LOCK & ~os.O_CREAT)
            except FileNotFoundError:
                fd = _open(dfd, lock, _O_LOCK)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_nlink > 0:
                    return fd
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)

    @contextlib.contextmanager
    def _locked(self, namespace: str, job_id: str, create: bool = False) -> Iterator[int | None]:
        """The namespace directory, with the job's lock held (None: no directory)."""
        validate_name(job_id, "job id")
        with self._directory(namespace, create) as dfd:
            if dfd is None:
                yield None
                return
            fd = self._lock(dfd, job_id)
            try:
                yield dfd
            finally:
                os.close(fd)

    def _write(self, dfd: int, job: JobStatus, marked: bool = False) -> None:
        """Write *job* atomically: an exclusive temporary file of its own, renamed.

        *marked*: the job lives in ``.items.sqlite`` (see :mod:`.file_items`).
        """
        # one name per job and process, random per process: nobody can plant it, and
        # the kernel finds it again fast (a random name per write costs a lookup)
        tmp = f"{job.job_id}.{_TOKEN}.tmp"
        try:
            fd = _open(dfd, tmp, _O_TMP)
        except FileExistsError:  # left by a write of ours that failed to clean up
            os.unlink(tmp, dir_fd=dfd)
            fd = _open(dfd, tmp, _O_TMP)
        try:
            try:
                data = encode_document(job, marked)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, job.job_id + ".json", src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:  # ENOSPC, an interrupt: leave nothing behind
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise
        if self.fsync:
            os.fsync(dfd)

    def _read(self, dfd: int, namespace: str, job_id: str) -> JobStatus | None:
        """The job: its document, or for a marked one its row in ``.items.sqlite``."""
        document = self._read_document(dfd, namespace, job_id)
        if document is None or not document[1] or document[0].is_finished:
            # a marked document gets its final counters (and expiry) when the job completes
            return None if document is None else document[0]
        try:
            live = self._items(namespace, dfd).get(namespace, job_id)
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc
        if live is not None:
            return live
        # no row: a writer died while moving the job (its document is the truth),
        # or a deleter just removed both (then the job is gone)
        return document[0] if _exists(dfd, job_id + ".json") else None

    def _read_document(
        self, dfd: int, namespace: str, job_id: str
    ) -> tuple[JobStatus, bool] | None:
        """The job's document: one bounded read of the file itself, never a symlink.

        Returns the job and whether it is marked as living in ``.items.sqlite``.
        ``O_NONBLOCK``: a FIFO there reads as empty, so it is corrupt.
        """
        name = job_id + ".json"
        try:
            fd = _open(dfd, name, _O_READ)
        except FileNotFoundError:
            return None
        try:
            data = _read_bounded(fd, name)
        finally:
            os.close(fd)
        try:
            job, marked = decode_document(data)
            if job.job_id != job_id or job.namespace_name != namespace:
                raise ValueError("it names another job")
        except ValueError as exc:
            path = os.path.join(self.root, namespace, name)
            raise StoreCorrupt(f"corrupt job file {path!r}: {str(exc)[:300]}") from None
        return job, marked

    def _items(self, namespace: str, dfd: int) -> ItemsDB:
        """The calling thread's connection to the namespace's ``.items.sqlite`` (kept open)."""
        return self._database(ItemsDB, ITEMS_NAME, namespace, dfd)

    def _database(self, kind: type[D], name: str, namespace: str, dfd: int) -> D:
        """The calling thread's connection to the database *name* of a namespace (kept open).

        A few per thread (closed with the thread). Each use checks (one
        ``stat``) that the path still names the file connected to (its inode
        stays taken while SQLite holds it open): a database deleted or
        replaced is opened afresh.
        """
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # a forked child opens its own
            local.pid, local.dbs = os.getpid(), {}
        dbs = local.dbs
        st = os.fstat(dfd)
        key = (name, namespace, st.st_dev, st.st_ino)
        kept = dbs.get(key)
        if kept is not None:
            if kept[1] == _file_id(dfd, name):
                return kept[0]  # type: ignore[no-any-return]
            _let_go(dbs.pop(key))
        if len(dbs) >= _KEPT_DATABASES:  # the oldest that no call of this thread is using
            idle = next((k for k, v in dbs.items() if not getattr(v[0], "in_use", 0)), None)
            if idle is not None:
                _let_go(dbs.pop(idle))
        db = kind(dfd, durable=self.fsync)
        # SQLite holds the file open while connected, so its inode is not reused meanwhile
        dbs[key] = (db, _file_id(dfd, name))
        return db

    def _forget_items(self, dfd: int, namespace: str, job_id: str) -> None:
        """Remove a job's items, if its namespace has any (under the job's lock).

        Best effort: an item database that cannot be opened (corrupt) keeps
        its rows, logged; it must not stop a delete or a start.
        """
        if _exists(dfd, ITEMS_NAME):
            try:
                self._items(namespace, dfd).forget(job_id)
            except StoreCorrupt as exc:
                logger.warning("cannot forget the items of job %r: %s", job_id, exc)

    # -- the protocol ------------------------------------------------------

    def create(self, job: JobStatus) -> None:
        """Write *job* unless its id is taken in its namespace."""
        try:
            with self._locked(job.namespace_name, job.job_id, create=True) as dfd:
                assert dfd is not None
                if _exists(dfd, job.job_id + ".json"):
                    raise JobExists(job.namespace_name, job.job_id)
                with self._index(dfd, job.namespace_name) as index:
                    index.remove(job.job_id, None)  # a key left by a create that failed
                    index.put(job)  # first: see file_index
                self._forget_items(dfd, job.namespace_name, job.job_id)  # a deleter died?
                self._write(dfd, job)
        except (OSError, sqlite3.Error) as exc:
            raise _unavailable(exc) from exc

    def update(self, namespace: str, job_id: str, delta: Delta, now: _dt.datetime) -> JobStatus:
        """Apply *delta* under the job's file lock; rename makes it visible.

        Written out, not through :meth:`_locked`: this is the hot path.
        """
        validate_name(job_id, "job id")
        try:
            dfd, owned = self._dir(namespace)
            if dfd is None:
                raise JobNotFound(namespace, job_id)
            try:
                fd = self._lock(dfd, job_id)
                try:
                    document = self._read_document(dfd, namespace, job_id)
                    if document is None:  # the lock file we made (or a killed create left)
                        os.unlink(job_id + ".lock", dir_fd=dfd)
                        raise JobNotFound(namespace, job_id)
                    if document[1] or delta.item is not None or delta.error is not None:
                        return self._update_in_db(dfd, namespace, *document, delta, now)
                    new = apply(document[0], delta, now)
                    self._write(dfd, new)
                    if new.is_finished or beat_key(new) != beat_key(document[0]):
                        self._reindex(dfd, namespace, new)
                    return new
                finally:
                    os.close(fd)
            finally:
                if owned:
                    os.close(dfd)
        except OSError as exc:
            raise _unavailable(exc) from exc

    def _update_in_db(
        self,
        dfd: int,
        namespace: str,
        document: JobStatus,
        marked: bool,
        delta: Delta,
        now: _dt.datetime,
    ) -> JobStatus:
        """Update a job that has (or now gets) items or errors: in ``.items.sqlite``.

        Under the job's lock; see :mod:`.file_items` for the order of the move.
        """
        try:
            db = self._items(namespace, dfd)  # first: a database that cannot open marks nothing
            if not marked:
                self._write(dfd, document, marked=True)
            old, new = db.update(document, delta, now)
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc
        if new is not old and (new.is_finished or beat_key(new) != beat_key(old)):
            self._reindex(dfd, namespace, new)  # first: the row is the truth already
        if new.is_finished and not old.is_finished:  # the document gets the final counters
            self._write(dfd, new, marked=True)
        return new

    def _reindex(self, dfd: int, namespace: str, job: JobStatus) -> None:
        """Set the job's row in the listing index, after its update is stored (lock held).

        The update is done: a failure here must not make it look undone (a
        retry would count it twice), so it is logged, and the row, a hint, is
        set right by the next listing that meets the job.
        """
        try:
            with self._index(dfd, namespace) as index:
                index.put(job)
        except (OSError, sqlite3.Error, StoreCorrupt) as exc:
            logger.warning("cannot index job %r after its update: %s", job.job_id, exc)

    def update_many(
        self, updates: Sequence[tuple[str, str, Delta]], now: _dt.datetime
    ) -> list[JobStatus | JobtrackError]:
        """Apply the updates one after another, each under its job's lock."""
        results: list[JobStatus | JobtrackError] = []
        for namespace, job_id, delta in updates:
            try:
                results.append(self.update(namespace, job_id, delta, now))
            except JobtrackError as exc:
                results.append(exc)
        return results

    def get(self, namespace: str, job_id: str) -> JobStatus | None:
        """Read the job's document (no lock needed: renames are atomic)."""
        validate_name(job_id, "job id")
        try:
            with self._directory(namespace) as dfd:
                return None if dfd is None else self._read(dfd, namespace, job_id)
        except OSError as exc:
            raise _unavailable(exc) from exc

    def delete(self, namespace: str, job_id: str) -> bool:
        """Remove the job's files under its lock; True if it existed."""
        return self._delete(namespace, job_id, None)

    def _delete(self, namespace: str, job_id: str, expired_before: int | None) -> bool:
        """Delete the job; with *expired_before* (ms), only if it expired by then."""
        try:
            with self._locked(namespace, job_id) as dfd:
                if dfd is None:
                    return False
                try:
                    job = self._read(dfd, namespace, job_id)
                except StoreCorrupt:
                    if expired_before is not None:
                        return False  # a purge leaves a corrupt job alone
                    job = None  # it goes all the same
                if expired_before is not None and (
                    job is None or job.expires_at is None or to_ms(job.expires_at) > expired_before
                ):
                    return False  # deleted, or started again meanwhile
                try:
                    os.unlink(job_id + ".json", dir_fd=dfd)
                    existed = True
                except FileNotFoundError:
                    existed = False
                except IsADirectoryError:  # not ours to remove: a person must look
                    raise StoreCorrupt(f"{job_id}.json in {namespace!r} is a directory") from None
                if existed:  # while the lock is held: a create of the same id waits
                    with self._index(dfd, namespace) as index:
                        index.remove(job_id, None if job is None else to_ms(job.started_at))
                    self._forget_items(dfd, namespace, job_id)
                os.unlink(job_id + ".lock", dir_fd=dfd)
                if self.fsync:
                    os.fsync(dfd)
                return existed
        except (OSError, sqlite3.Error) as exc:
            raise _unavailable(exc) from exc

    def list(self, namespace: str, limit: int, before: ListKey | None) -> list[JobStatus]:
        """A page through the namespace's index: see :meth:`list_status`."""
        return self.list_status(namespace, None, limit, before, None)

    def list_status(
        self,
        namespace: str,
        status: str | None,
        limit: int,
        before: ListKey | None,
        cutoff: int | None,
    ) -> builtins.list[JobStatus]:
        """A page through the index (of *status*): about *limit* documents read, whatever it holds.

        A row whose job is gone, or is not of that status any more, is skipped
        and set right under the job's lock; a corrupt document is skipped with
        a warning.
        """
        jobs: list[JobStatus] = []
        try:
            with self._directory(namespace) as dfd:
                if dfd is None:
                    return []
                with self._index(dfd, namespace) as index:
                    while len(jobs) < limit:
                        keys = index.page(status, limit, before, cutoff)
                        for key in keys:
                            try:
                                job = self._read(dfd, namespace, key[1])
                            except StoreCorrupt as exc:
                                logger.warning("listing skips a corrupt job: %s", exc)
                                continue
                            keep = job is not None and (
                                status is None or has_status(job, status, cutoff)
                            )
                            if keep:
                                jobs.append(job)  # type: ignore[arg-type]
                            if job is None or entry_differs(job, status, key):
                                self._tidy(namespace, key[1], index)  # (kept: its key moves)
                        if len(keys) < limit:
                            break
                        before = keys[-1]
        except (OSError, sqlite3.Error) as exc:
            raise _unavailable(exc) from exc
        return jobs[:limit]

    def purge(self, expired_before: _dt.datetime) -> int:
        """Delete every job, of every namespace directory, expired at or before the time given."""
        before = to_ms(expired_before)
        gone = 0
        try:
            with os.scandir(self.root) as entries:
                namespaces = [
                    e.name
                    for e in entries
                    if is_valid_name(e.name) and e.is_dir(follow_symlinks=False)
                ]
            for namespace in namespaces:
                try:
                    gone += self._purge_namespace(namespace, before)
                except StoreCorrupt as exc:  # one broken namespace stops no other's purge
                    logger.warning("purge skips namespace %r: %s", namespace, exc)
        except (OSError, sqlite3.Error) as exc:
            raise _unavailable(exc) from exc
        return gone

    def _purge_namespace(self, namespace: str, before: int) -> int:
        gone = 0
        with self._directory(namespace) as dfd:
            if dfd is None:
                return 0
            with self._index(dfd, namespace) as index:
                keys = index.expired(before, _PURGE_BATCH)
                while keys:
                    deleted = sum(self._delete(namespace, jid, before) for _, jid in keys)
                    if deleted < len(keys):  # deleted or started again: set the rows
                        for _, jid in keys:
                            self._tidy(namespace, jid, index)
                    gone += deleted
                    if len(keys) < _PURGE_BATCH or not deleted:
                        break  # (not deleted: rows of corrupt jobs only, left)
                    keys = index.expired(before, _PURGE_BATCH)
        return gone

    def failed_items(
        self, namespace: str, job_id: str, limit: int, after: int | None
    ) -> builtins.list[tuple[int, FailedItem]] | None:
        """A page of the job's failed items, in the order they failed."""
        return self._read_items(namespace, job_id, lambda db: db.failed(job_id, limit, after))

    def errors(self, namespace: str, job_id: str) -> builtins.list[ErrorCount] | None:
        """The job's error groups."""
        return self._read_items(namespace, job_id, lambda db: db.groups(job_id))

    def _read_items(
        self, namespace: str, job_id: str, read: Callable[[ItemsDB], builtins.list[T]]
    ) -> builtins.list[T] | None:
        """*read* the namespace's item database, under the job's lock.

        None if there is no such job; ``[]`` if it has no items or errors.
        """
        try:
            with self._locked(namespace, job_id) as dfd:
                if dfd is None:
                    return None
                document = self._read_document(dfd, namespace, job_id)
                if document is None:  # no job: the lock file we made goes again
                    os.unlink(job_id + ".lock", dir_fd=dfd)
                    return None
                return read(self._items(namespace, dfd)) if document[1] else []
        except (OSError, sqlite3.Error) as exc:
            raise _unavailable(exc) from exc

    def _tidy(self, namespace: str, job_id: str, index: NamespaceIndex) -> None:
        """Set the job's row right under its lock: gone if the job is, else as it is now."""
        with self._locked(namespace, job_id) as dfd:
            if dfd is None:
                return
            try:
                job = self._read(dfd, namespace, job_id)
            except StoreCorrupt:
                return  # listings skip it with a warning; its row stays
            index.remove(job_id, None)
            if job is None:
                os.unlink(job_id + ".lock", dir_fd=dfd)
            else:
                index.put(job)

    @contextlib.contextmanager
    def _index(self, dfd: int, namespace: str) -> Iterator[NamespaceIndex]:
        """The namespace's listing index (kept open), built from its documents if it has none."""
        index = self._database(NamespaceIndex, INDEX_NAME, namespace, dfd)
        if not index.built:
            if not index.is_built():
                index.build(self._jobs(dfd, namespace))
            index.built = True
        index.in_use += 1  # never let go of while a call (a listing) pages through it
        try:
            yield index
        finally:
            index.in_use -= 1

    def _jobs(self, dfd: int, namespace: str) -> builtins.list[JobStatus]:
        scan = os.open(".", _O_DIR, dir_fd=dfd)  # its own read position: scans may run at once
        try:
            with os.scandir(scan) as entries:
                ids = [e.name[:-5] for e in entries if e.name.endswith(".json")]
        finally:
            os.close(scan)
        jobs = []
        for job_id in ids:
            try:
                job = self._read(dfd, namespace, job_id)
            except StoreCorrupt:
                continue
            if job is not None:
                jobs.append(job)
        return jobs

    def close(self) -> None:
        """Let go of the namespace directories kept open (the store opens them again if used).

        Their descriptors are closed when the store itself is garbage: a thread
        still in a call must never find a descriptor's number reused. The
        calling thread's SQLite connections (index and items) are closed now; other
        threads' when those threads end or the store is garbage.
        """
        with self._dirs_lock:
            self._dirs = {}
        dbs = getattr(self._local, "dbs", None)  # the calling thread's databases
        if dbs is not None and getattr(self._local, "pid", None) == os.getpid():
            for kept in dbs.values():
                _let_go(kept)
            dbs.clear()


def _open(dfd: int, name: str, flags: int) -> int:
    """Open *name* in the directory *dfd*; a symlink there is ``StoreCorrupt``."""
    try:
        return os.open(name, flags, 0o644, dir_fd=dfd)
    except OSError as exc:
        if exc.errno in _NOT_A_FILE:
            raise _not_a_file(name, exc) from None
        raise


def _read_bounded(fd: int, name: str) -> bytes:
    """At most ``MAX_DOCUMENT_BYTES + 1`` bytes of *fd*; a directory there is corrupt."""
    try:
        data = os.read(fd, 16384)  # documents are small: one read
        while 16384 <= len(data) <= MAX_DOCUMENT_BYTES:
            more = os.read(fd, MAX_DOCUMENT_BYTES + 1 - len(data))
            if not more:
                break
            data += more
    except OSError as exc:
        if exc.errno in _NOT_A_FILE:
            raise _not_a_file(name, exc) from None
        raise
    return data


def _not_a_file(name: str, exc: OSError) -> StoreCorrupt:
    if exc.errno == errno.ELOOP:
        return StoreCorrupt(f"{name!r} in the file store is a symlink: never followed")
    return StoreCorrupt(f"{name!r} in the file store is not a regular file ({exc.strerror})")


def _close_all(descriptors: list[int]) -> None:
    """The store's finalizer: close every namespace directory it kept open."""
    for fd in descriptors:
        with contextlib.suppress(OSError):
            os.close(fd)


def _let_go(kept: tuple[ItemsDB | NamespaceIndex, tuple[int, int] | None]) -> None:
    """Close a kept database connection.

    One a call of this thread is still using (a listing's index) is only
    dropped: it closes when that call lets go of it (it is then garbage).
    """
    if not getattr(kept[0], "in_use", 0):
        kept[0].close()


def _file_id(dfd: int, name: str) -> tuple[int, int] | None:
    """``(device, inode)`` of *name* in the directory *dfd*; None if it is missing."""
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _exists(dfd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _unavailable(exc: OSError | sqlite3.Error) -> StoreUnavailable:
    if isinstance(exc, sqlite3.Error):
        return StoreUnavailable(f"file store database failed: {exc}")
    reason = errno.errorcode.get(exc.errno or 0, "error")
    return StoreUnavailable(f"file store I/O failed ({reason}): {exc.strerror or exc}")
