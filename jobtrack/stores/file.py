"""FileStore: one JSON file per job in a directory shared by the processes of a host.

Layout under the root directory (names follow the name rules, so they never
contain ``/`` or ``.`` and cannot leave the root)::

    <root>/<namespace>/<job_id>.json   the job's wire document
    <root>/<namespace>/<job_id>.lock   flock(2) target serializing its writers
    <root>/<namespace>/<job_id>.tmp    the next version, while being written

A writer takes an exclusive ``flock`` on the lock file, reads the document,
applies :func:`jobtrack.rules.apply`, writes the temporary file and renames it
over the document. ``rename`` is atomic, so readers (who take no lock) see the
old or the new document, never a torn one, and a writer killed at any moment
leaves the last acknowledged version in place. The kernel drops the ``flock``
of a dead process, so no lock is ever stale.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import logging
import os
import urllib.parse
from collections.abc import Sequence

from ..clock import to_ms
from ..errors import (
    ConfigurationError,
    InvalidDocument,
    JobExists,
    JobNotFound,
    JobtrackError,
    StoreCorrupt,
    StoreUnavailable,
)
from ..model import JobStatus
from ..names import validate_name
from ..rules import Delta, apply
from .protocol import Features, ListKey
from .registry import StoreURL, boolean

__all__ = ["FileStore"]

logger = logging.getLogger("jobtrack.stores.file")

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_READ = os.O_RDONLY | _O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
MAX_DOCUMENT_BYTES = 64 * 1024
"""A job document is a few hundred bytes (at most ~4 KiB of error text): larger is corrupt."""


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

    features = Features(processes=True)
    """Blocking file I/O, shared by the processes of one host (through :attr:`url`)."""

    def __init__(
        self, path: str | os.PathLike[str], *, fsync: bool = False, create: bool = True
    ) -> None:
        for name, value in (("fsync", fsync), ("create", create)):
            if not isinstance(value, bool):
                raise ConfigurationError(f"{name} must be True or False, got {value!r}")
        root = os.path.abspath(os.fspath(path))
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

    def __repr__(self) -> str:
        return f"FileStore({self.root!r}, fsync={self.fsync})"

    @classmethod
    def from_url(cls, url: StoreURL) -> FileStore:
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
        return cls(os.path.abspath(url.path), **options)

    @property
    def url(self) -> str:
        """The URL that opens this store (in another process, say)."""
        query = "?fsync=true" if self.fsync else ""
        return f"file://{urllib.parse.quote(self.root)}{query}"

    # -- paths and locks ---------------------------------------------------

    def _base(self, namespace: str, job_id: str) -> str:
        # Re-checked here so that no caller, however it reaches the store, can
        # build a path outside the root.
        validate_name(namespace, "namespace")
        validate_name(job_id, "job id")
        return os.path.join(self.root, namespace, job_id)

    def _lock(self, lock_path: str, create: bool) -> int | None:
        """Open and flock *lock_path*; None if it is missing and *create* is false."""
        flags = os.O_RDWR | _O_CLOEXEC | (os.O_CREAT if create else 0)
        while True:
            try:
                fd = os.open(lock_path, flags, 0o644)
            except FileNotFoundError:
                if create:
                    raise
                return None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                # A deleter may have unlinked the file while we waited; then our
                # lock is on an orphan inode (no links left) and protects
                # nothing: start over. Lock files are only ever created at their
                # path and unlinked, never renamed, so a linked inode is the
                # one at lock_path.
                if os.fstat(fd).st_nlink > 0:
                    return fd
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)

    def _write(self, base: str, job: JobStatus) -> None:
        """Write *job* to ``base.json`` atomically (caller holds the lock)."""
        data = job.to_json()
        tmp = base + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, base + ".json")
        if self.fsync:
            self._fsync_dir(os.path.dirname(base))

    @staticmethod
    def _fsync_dir(directory: str) -> None:
        fd = os.open(directory, os.O_RDONLY | _O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _read(path: str) -> JobStatus | None:
        """The job at *path*: one bounded read, never through a symlink.

        ``O_NONBLOCK``: a FIFO at the path reads as empty, so it is corrupt.
        """
        try:
            fd = os.open(path, _O_READ)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StoreCorrupt(f"corrupt job file {path!r}: a symlink") from None
            raise
        try:
            data = os.read(fd, MAX_DOCUMENT_BYTES + 1)  # a regular file reads whole
        finally:
            os.close(fd)
        return decode(data, path)

    # -- the protocol ------------------------------------------------------

    def create(self, job: JobStatus) -> None:
        """Write *job* unless its id is taken in its namespace."""
        base = self._base(job.namespace_name, job.job_id)
        try:
            os.makedirs(os.path.dirname(base), exist_ok=True)
            fd = self._lock(base + ".lock", create=True)
            assert fd is not None
            try:
                if os.path.exists(base + ".json"):
                    raise JobExists(job.namespace_name, job.job_id)
                self._write(base, job)
            finally:
                os.close(fd)
        except OSError as exc:
            raise _unavailable(exc) from exc

    def update(self, namespace: str, job_id: str, delta: Delta, now: _dt.datetime) -> JobStatus:
        """Apply *delta* under the job's file lock; rename makes it visible."""
        base = self._base(namespace, job_id)
        try:
            fd = self._lock(base + ".lock", create=False)
            if fd is None:
                raise JobNotFound(namespace, job_id)
            try:
                job = self._read(base + ".json")
                if job is None:
                    # Only a create killed half-way leaves a lock without a job.
                    os.unlink(base + ".lock")
                    raise JobNotFound(namespace, job_id)
                new = apply(job, delta, now)
                self._write(base, new)
                return new
            finally:
                os.close(fd)
        except OSError as exc:
            raise _unavailable(exc) from exc

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
        base = self._base(namespace, job_id)
        try:
            return self._read(base + ".json")
        except OSError as exc:
            raise _unavailable(exc) from exc

    def delete(self, namespace: str, job_id: str) -> bool:
        """Remove the job's files under its lock; True if it existed."""
        base = self._base(namespace, job_id)
        try:
            fd = self._lock(base + ".lock", create=False)
            if fd is None:
                return False
            try:
                try:
                    os.unlink(base + ".json")
                    existed = True
                except FileNotFoundError:
                    existed = False
                for suffix in (".tmp", ".lock"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(base + suffix)
                if self.fsync:
                    self._fsync_dir(os.path.dirname(base))
                return existed
            finally:
                os.close(fd)
        except OSError as exc:
            raise _unavailable(exc) from exc

    def list(self, namespace: str, limit: int, before: ListKey | None) -> list[JobStatus]:
        """Read every job of the namespace, newest first (cost grows with the namespace)."""
        directory = os.path.join(self.root, validate_name(namespace, "namespace"))
        keyed: list[tuple[ListKey, JobStatus]] = []
        try:
            with os.scandir(directory) as entries:
                names = [e.name for e in entries if e.name.endswith(".json")]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise _unavailable(exc) from exc
        for name in names:
            try:
                job = self._read(os.path.join(directory, name))
            except OSError as exc:
                raise _unavailable(exc) from exc
            except StoreCorrupt as exc:
                logger.warning("listing skips a corrupt job: %s", exc)
                continue
            if job is None:
                continue
            key = (to_ms(job.started_at), job.job_id)
            if before is None or key < before:
                keyed.append((key, job))
        keyed.sort(key=lambda item: item[0], reverse=True)
        return [job for _, job in keyed[:limit]]

    def close(self) -> None:
        """Nothing to release: every call opens and closes its own files."""


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number of a job")


def decode(data: bytes, path: str) -> JobStatus:
    """Decode a job document strictly (through the model); ``StoreCorrupt`` if it is not one."""
    try:
        if len(data) > MAX_DOCUMENT_BYTES:
            raise ValueError(f"larger than {MAX_DOCUMENT_BYTES} bytes")
        return JobStatus.from_dict(json.loads(data, parse_constant=_no_constant))
    except (ValueError, RecursionError, InvalidDocument) as exc:
        raise StoreCorrupt(f"corrupt job file {path!r}: {str(exc)[:300]}") from None


def _unavailable(exc: OSError) -> StoreUnavailable:
    reason = errno.errorcode.get(exc.errno or 0, "error")
    return StoreUnavailable(f"file store I/O failed ({reason}): {exc.strerror or exc}")
