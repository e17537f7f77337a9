"""Every tracker operation, written once for the sync and the async tracker.

An operation is a generator ("sans I/O", as h11 does it): it checks its
arguments, yields each store call it needs as ``(method name, arguments)``,
receives the store's answer, and returns the operation's result.
:class:`jobtrack.JobTracker` sends the calls to its store;
:class:`jobtrack.AsyncJobTracker` awaits them (natively, in a worker thread
or directly, as the store's :class:`~jobtrack.stores.Features` say). A new
feature is one generator here and a one-line method on each tracker.
"""

from __future__ import annotations

import builtins
from collections.abc import Generator, Iterable
from typing import Any, TypeVar

from .arguments import (
    check_abort,
    check_limit,
    check_record,
    check_start,
    check_updates,
    decode_cursor,
    encode_cursor,
    make_now,
)
from .clock import Clock
from .errors import ConfigurationError, JobNotFound, JobtrackError
from .model import JobStatus, Page, Update
from .names import validate_name
from .rules import new_job
from .stores import Store, open_store

__all__ = ["Operation", "StoreCall", "TrackerBase", "resolve_store"]

T = TypeVar("T")
StoreCall = tuple[str, tuple[Any, ...]]
"""A call the store must make: the name of a :class:`Store` method and its arguments."""
Operation = Generator[StoreCall, Any, T]


def resolve_store(store: Store | str) -> Store:
    """A store object, opening it first when *store* is a URL."""
    if isinstance(store, str):
        return open_store(store)
    if not isinstance(store, Store):
        raise ConfigurationError(
            f"store must be a store object or a store URL, got {type(store).__name__}"
        )
    return store


class TrackerBase:
    """What both trackers share: the store, the clock, and every operation."""

    def __init__(self, store: Store | str, *, clock: Clock | None = None) -> None:
        self.store: Store = resolve_store(store)
        self._now = make_now(clock)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r})"

    def _start(self, namespace: str, total: int, job_id: str | None) -> Operation[JobStatus]:
        ns, count, jid = check_start(namespace, total, job_id)
        job = new_job(ns, jid, count, self._now())
        yield "create", (job,)
        return job

    def _record(
        self,
        namespace: str,
        job_id: str,
        processed: int,
        successful: int,
        failed: int,
        error: str | None,
    ) -> Operation[JobStatus]:
        ns, jid, delta = check_record(namespace, job_id, processed, successful, failed, error)
        job: JobStatus = yield "update", (ns, jid, delta, self._now())
        return job

    def _record_many(
        self, updates: Iterable[Update]
    ) -> Operation[builtins.list[JobStatus | JobtrackError]]:
        checked = check_updates(updates)
        results: builtins.list[JobStatus | JobtrackError] = yield (
            "update_many",
            (
                checked,
                self._now(),
            ),
        )
        return results

    def _abort(self, namespace: str, job_id: str, error: str) -> Operation[JobStatus]:
        ns, jid, delta = check_abort(namespace, job_id, error)
        job: JobStatus = yield "update", (ns, jid, delta, self._now())
        return job

    def _get(self, namespace: str, job_id: str) -> Operation[JobStatus]:
        ns = validate_name(namespace, "namespace")
        jid = validate_name(job_id, "job id")
        job: JobStatus | None = yield "get", (ns, jid)
        if job is None:
            raise JobNotFound(ns, jid)
        return job

    def _delete(self, namespace: str, job_id: str) -> Operation[bool]:
        ns = validate_name(namespace, "namespace")
        jid = validate_name(job_id, "job id")
        existed: bool = yield "delete", (ns, jid)
        return existed

    def _list(self, namespace: str, limit: int, cursor: str | None) -> Operation[Page]:
        ns = validate_name(namespace, "namespace")
        size = check_limit(limit)
        before = decode_cursor(cursor)
        jobs: builtins.list[JobStatus] = yield "list", (ns, size + 1, before)
        if len(jobs) > size:
            return Page(tuple(jobs[:size]), encode_cursor(jobs[size - 1]))
        return Page(tuple(jobs), None)
