"""Every tracker operation, written once for the sync and the async tracker.

An operation checks its arguments and returns a :class:`Step` ("sans I/O",
as h11 does it): the store method to call, its arguments, and what to make
of the answer: the result itself, or the next step. :class:`JobTracker`
calls the store; :class:`AsyncJobTracker` awaits it (natively, in a worker
thread or directly, as the store's :class:`~jobtrack.stores.Features` say).
A new feature is one function here and a one-line method on each tracker.
(Steps rather than generators: one is made per update, and a generator
costs half a microsecond more.)
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from .arguments import (
    check_abort,
    check_extend,
    check_item_cursor,
    check_limit,
    check_name_cursor,
    check_record,
    check_retention,
    check_stall_after,
    check_start,
    check_status,
    check_updates,
    decode_cursor,
    encode_cursor,
    make_now,
)
from .clock import Clock, format_timestamp, to_ms
from .errors import (
    ConfigurationError,
    InvalidArgument,
    JobChanged,
    JobExpired,
    JobFinished,
    JobNotFound,
    StoreCorrupt,
    WaitTimeout,
    shown,
)
from .metrics import Metrics
from .model import ErrorCount, FailedItem, JobStatus, NamespaceCounts, Page, Progress, Update
from .names import validate_name
from .rules import Delta, new_job, progress
from .stores import ListKey, Store, features_of, open_store
from .stores.protocol import BEAT_MS, STALLED, beat_key, has_status, list_key
from .stores.registry import not_a_store

__all__ = [
    "DEFAULT_REMEMBER_EXPIRED",
    "DEFAULT_RETAIN",
    "Step",
    "TrackerBase",
    "Watching",
]

logger = logging.getLogger("jobtrack")

DEFAULT_RETAIN = _dt.timedelta(days=7)
"""How long a completed job stays readable, unless the tracker says otherwise."""
DEFAULT_REMEMBER_EXPIRED = _dt.timedelta(days=30)
"""How long after it expired a job still answers "expired" (HTTP 410), not "unknown"."""


class Step(NamedTuple):
    """A store call an operation needs, and what to make of the answer.

    ``then`` is None when the answer is the operation's result; else
    ``then(answer, args)`` gives the result, or the next :class:`Step`. (A
    plain function of the arguments, not a closure: one is made per call.)
    """

    method: str
    args: tuple[Any, ...]
    then: Callable[[Any, tuple[Any, ...]], Any] | None = None

    def follow(self, answer: Any) -> tuple[bool, Any]:
        """``(True, result)`` if the store's *answer* ends it, else ``(False, next step)``."""
        if self.then is None:
            return True, answer
        result = self.then(answer, self.args)
        return type(result) is not Step, result


FIRST_POLL = 0.05
"""Seconds before a watcher without push reads the job again; doubled each time, up to LAST_POLL."""
LAST_POLL = 1.0


class Watching:
    """The pace of ``watch`` and ``wait``, for either tracker: what to yield, how long to wait.

    A store with push (``Features.push``) is waited on for up to a second at
    a time; any other is read again after 50 ms, then after twice as long
    each time nothing changed, up to a second (SPEC section 8).
    """

    def __init__(self, namespace: str, job_id: str, timeout: float | None, push: bool) -> None:
        self.namespace = validate_name(namespace, "namespace")
        self.job_id = validate_name(job_id, "job id")
        if timeout is not None and (
            type(timeout) not in (int, float) or not 0 <= timeout < float("inf")
        ):
            raise InvalidArgument(f"timeout must be seconds >= 0 or None, got {shown(timeout)}")
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.push = push
        self.delay = FIRST_POLL
        self.last: JobStatus | None = None

    def new(self, job: JobStatus) -> bool:
        """Whether *job* is a newer status than the last one seen (then it is yielded)."""
        if job == self.last:
            self.delay = min(self.delay * 2, LAST_POLL)
            return False
        self.last, self.delay = job, FIRST_POLL
        return True

    def pause(self) -> float:
        """Seconds to wait before the next read; ``WaitTimeout`` once the time is up."""
        wait = LAST_POLL if self.push else self.delay
        if self.deadline is None:
            return wait
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(self.namespace, self.job_id)
        return min(wait, left)


class TrackerBase:
    """What both trackers share: the store, the clock, and every operation."""

    def __init__(
        self,
        store: Store | str,
        *,
        clock: Clock | None = None,
        stall_after: _dt.timedelta | None = None,
        retain: _dt.timedelta | None = DEFAULT_RETAIN,
        remember_expired: _dt.timedelta = DEFAULT_REMEMBER_EXPIRED,
        metrics: Metrics | None = None,
    ) -> None:
        if metrics is not None and not isinstance(metrics, Metrics):
            raise ConfigurationError(f"metrics must be a Metrics or None, got {shown(metrics)}")
        self.metrics = metrics
        self._now = make_now(clock)  # every option checked before a store is opened
        self.stall_after = check_stall_after(stall_after)
        self._retain = check_retention(retain, remember_expired)
        if isinstance(store, str):
            store = open_store(store)
        elif what := not_a_store(store):
            raise ConfigurationError(f"store must be a store object or a store URL, got {what}")
        self.store: Store = store
        self.retain = retain
        self.remember_expired = remember_expired
        self._bind()

    def _bind(self) -> None:
        """Choose how the store is called, once it is set (the async tracker chooses)."""

    def is_stalled(self, status: JobStatus) -> bool:
        """Whether *status* is of a running job not updated for longer than ``stall_after``.

        By the tracker's clock; never, without ``stall_after``.
        """
        _check_status(status)
        if self.stall_after is None or status.is_finished:
            return False
        return self._now() - status.updated_at > self.stall_after

    def progress(self, status: JobStatus) -> Progress:
        """How *status*'s job is getting on, by the tracker's clock (SPEC section 8).

        The smoothed rate (60 s time constant) of items done, the time it
        should complete at that rate, whether it is stalled (``stall_after``),
        and when it expires. A completed job reads as of its ``finished_at``.
        No store call: pass a status just read (``get``, ``record``, ``watch``).
        """
        _check_status(status)
        if (
            type(status.rate) is not float
            or type(status.rate_at) is not int
            or type(status.rate_done) is not int
        ):
            raise InvalidArgument("status must have a float rate, an int rate_at and rate_done")
        return progress(status, self._now(), self.is_stalled(status))

    def expired_at(self, status: JobStatus) -> _dt.datetime | None:
        """When *status*'s job expired, by the tracker's clock; None if it has not (yet)."""
        _check_status(status)
        return status.expires_at if _expired(status, self._now()) else None

    def _items(self) -> None:
        """Refuse an item call on a store that does not keep items."""
        if not features_of(self.store).items:
            raise ConfigurationError(
                f"{self.store!r} does not keep items (Features.items): "
                "item updates, failed_items and errors need a store that does"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r})"

    def _start(self, namespace: str, total: int, job_id: str | None) -> Step:
        ns, count, jid = check_start(namespace, total, job_id)
        now = self._now()
        job = new_job(ns, jid, count, now, self._retain)
        if features_of(self.store).expiry:  # a forgotten job of that id does not count
            return Step("create", (job, _earlier(now, self.remember_expired)), _the_job)
        return Step("create", (job,), _the_job)

    def _record(
        self,
        namespace: str,
        job_id: str,
        processed: int,
        successful: int,
        failed: int,
        error: str | None,
        item: str | None = None,
    ) -> Step:
        ns, jid, delta = check_record(
            namespace, job_id, processed, successful, failed, error, item, self._retain
        )
        if item is not None:
            self._items()
        return Step("update", (ns, jid, delta, self._now()))

    def _record_many(self, updates: Iterable[Update]) -> Step:
        checked = check_updates(updates, self._retain)
        if any(delta.item is not None for _, _, delta in checked):
            self._items()
        return Step("update_many", (checked, self._now()))

    def _abort(self, namespace: str, job_id: str, error: str) -> Step:
        ns, jid, delta = check_abort(namespace, job_id, error, self._retain)
        return Step("update", (ns, jid, delta, self._now()))

    def _extend(self, namespace: str, job_id: str, more: int) -> Step:
        ns, jid, delta = check_extend(namespace, job_id, more)
        return Step("update", (ns, jid, delta, self._now()))

    def _reap(self, namespace: str) -> Step:
        """Find the namespace's stalled running jobs, page by page; then abort them at once.

        Each abort applies only if the job's ``updated_at`` is still the one seen
        stalled (``Delta.if_updated``): a job updated in between is left alone.
        """
        ns = validate_name(namespace, "namespace")
        if self.stall_after is None:
            raise ConfigurationError("reap needs a tracker with stall_after")
        now = self._now()
        stalled: list[tuple[str, str, Delta]] = []

        def abort(jobs: list[JobStatus], cursor: ListKey | None) -> Step | None:
            for job in jobs:
                since = format_timestamp(job.updated_at)
                stalled.append((ns, job.job_id, Delta(
                    error=f"stalled: no update since {since}", abort=True,
                    if_updated=to_ms(job.updated_at), retain=self._retain,
                )))  # fmt: skip
            if cursor is not None:
                return None  # the next page
            return Step("update_many", (stalled, now), _reaped)

        return self._pages(ns, STALLED, _REAP_PAGE, None, now, abort)

    def _purge(self) -> Step:
        if not features_of(self.store).expiry:
            raise ConfigurationError(f"{self.store!r} does not keep expiry (Features.expiry)")
        return Step("purge", (_earlier(self._now(), self.remember_expired),))

    def _get(self, namespace: str, job_id: str) -> Step:
        ns = validate_name(namespace, "namespace")
        return Step("get", (ns, validate_name(job_id, "job id")), self._found)

    def _delete(self, namespace: str, job_id: str) -> Step:
        ns = validate_name(namespace, "namespace")
        return Step("delete", (ns, validate_name(job_id, "job id")))

    def _found(self, job: JobStatus | None, args: tuple[str, str]) -> JobStatus:
        """The job read, unless it is unknown or has expired (SPEC section 6)."""
        if job is None:
            raise JobNotFound(*args)
        if job.expires_at is not None:
            now = self._now()
            if _expired(job, now):
                if now - job.expires_at >= self.remember_expired:
                    raise JobNotFound(*args)
                raise JobExpired(args[0], args[1], job.expires_at)
        return job

    def _list(self, namespace: str, limit: int, cursor: str | None, status: str | None) -> Step:
        ns = validate_name(namespace, "namespace")
        size = check_limit(limit)
        before = decode_cursor(cursor)
        check_status(status, self.stall_after)

        def page(jobs: list[JobStatus], next_key: ListKey | None) -> Page[JobStatus]:
            return Page(tuple(jobs), None if next_key is None else encode_cursor(next_key))

        return self._pages(ns, status, size, before, self._now(), page)

    def _pages(
        self,
        ns: str,
        status: str | None,
        size: int,
        before: ListKey | None,
        now: _dt.datetime,
        then: Callable[[list[JobStatus], ListKey | None], Any],
    ) -> Step:
        """Pages of *size* listed jobs of *status* (None: all), expired ones left out.

        ``then(page, next key)`` ends the operation (a result or a Step), or
        returns None for the next page. Stores with ``Features.statuses`` read
        a per-status index; others are filtered here (every job is read).
        """
        indexed = features_of(self.store).statuses
        cutoff = None
        if status == STALLED:
            assert self.stall_after is not None
            cutoff = to_ms(_earlier(now, self.stall_after))
        key = beat_key if status == STALLED and indexed else list_key
        found: list[JobStatus] = []

        start: ListKey | None = before  # where this page started
        batch = size + 1  # how many jobs the store was last asked for
        scanned = 0  # jobs this page read

        def call(after: ListKey | None, many: int = size + 1) -> Step:
            nonlocal batch
            batch = many
            if indexed and status is not None:
                return Step("list_status", (ns, status, many, after, cutoff), step)
            return Step("list", (ns, many, after), step)

        def step(jobs: list[JobStatus], _: object) -> Any:
            nonlocal scanned, start
            scanned += len(jobs)
            found.extend(  # (stores with status indexes return their status only; others all)
                job
                for job in jobs
                if not _expired(job, now) and (status is None or has_status(job, status, cutoff))
            )
            if len(found) > size:
                page, last = found[:size], key(found[size - 1])
            elif len(jobs) >= batch and scanned < _MOST_SCANNED + 10 * size:
                return call(key(jobs[-1]), max(batch, 100))  # the store has more: read on
            elif len(jobs) >= batch:  # read enough for one page: a short page, and read on later
                page, last = found[:], key(jobs[-1])
            else:
                page, last = found[:], None
            if last is not None and start is not None and last >= start:
                raise StoreCorrupt(f"a listing of {ns!r} did not move past {last!r}")
            result = then(page, last)
            if result is None:  # the caller wants the next page
                del found[:]
                scanned, start = 0, last
                return call(last)
            return result

        return call(before)

    def _namespaces(self, limit: int, cursor: str | None) -> Step:
        """A page of the namespaces that hold jobs, by name, with their counts (SPEC section 7).

        The counts are as :meth:`JobTracker.namespaces` says. A namespace whose
        jobs all expired is left out; like a listing's expired jobs, such rows cost
        a page at most ``_MOST_SCANNED`` + ten pages' worth more reads, then it
        ends short, with a cursor.
        """
        size = check_limit(limit)
        after = check_name_cursor(cursor)
        if not features_of(self.store).namespaces:
            raise ConfigurationError(
                f"{self.store!r} cannot list its namespaces (Features.namespaces)"
            )
        now = self._now()
        beat = None
        if self.stall_after is not None:
            cutoff = to_ms(_earlier(now, self.stall_after))
            beat = cutoff - cutoff % BEAT_MS  # a job counts once its whole second is older
        found: list[NamespaceCounts] = []
        scanned = 0

        def step(rows: list[NamespaceCounts], args: tuple[Any, ...]) -> Any:
            nonlocal scanned
            scanned += len(rows)
            found.extend(row for row in rows if row.running or row.completed)
            if len(found) > size:
                return Page(tuple(found[:size]), found[size - 1].name)
            if len(rows) < args[0]:  # the last of them
                return Page(tuple(found), None)
            if scanned < _MOST_SCANNED + 10 * size:
                return Step("namespaces", (max(args[0], 100), rows[-1].name, *args[2:]), step)
            return Page(tuple(found), rows[-1].name)  # a short page: read on later

        return Step("namespaces", (size + 1, after, to_ms(now), beat), step)

    def _failed_items(self, namespace: str, job_id: str, limit: int, cursor: str | None) -> Step:
        ns = validate_name(namespace, "namespace")
        jid = validate_name(job_id, "job id")
        size = check_limit(limit)
        after = check_item_cursor(cursor)
        self._items()
        return self._readable(ns, jid, Step("failed_items", (ns, jid, size + 1, after), _item_page))

    def _errors(self, namespace: str, job_id: str) -> Step:
        ns = validate_name(namespace, "namespace")
        jid = validate_name(job_id, "job id")
        self._items()
        return self._readable(ns, jid, Step("errors", (ns, jid), _sorted_errors))

    def _readable(self, ns: str, jid: str, then: Step) -> Step:
        """*then*, once the job is found readable: an expired or forgotten job's items are gone.

        (``JobExpired``, ``JobNotFound``: SPEC section 7, for every caller.)
        """

        def found(job: JobStatus | None, args: tuple[str, str]) -> Step:
            self._found(job, args)
            return then

        return Step("get", (ns, jid), found)

    def now(self) -> _dt.datetime:
        """The tracker's current time: what its clock says (aware UTC, whole milliseconds)."""
        return self._now()


def _check_status(status: object) -> None:
    """A status as a store gives it: a JobStatus with aware timestamps (hand-built ones too)."""
    if not isinstance(status, JobStatus):
        raise InvalidArgument(f"status must be a JobStatus, got {type(status).__name__}")
    times = (status.started_at, status.updated_at, status.finished_at, status.expires_at)
    if any(
        t is not None and (not isinstance(t, _dt.datetime) or t.utcoffset() is None) for t in times
    ):
        raise InvalidArgument("status must have aware datetimes (its *_at fields)")


def _item_page(
    rows: list[tuple[int, FailedItem]] | None, args: tuple[str, str, int, object]
) -> Page[FailedItem]:
    if rows is None:
        raise JobNotFound(args[0], args[1])
    size = args[2] - 1  # (the store was asked for one more: a row beyond the page says more)
    cursor = str(rows[size - 1][0]) if len(rows) > size else None
    return Page(tuple(item for _, item in rows[:size]), cursor)


def _sorted_errors(groups: list[ErrorCount] | None, args: tuple[str, str]) -> list[ErrorCount]:
    """Most frequent first, then the earliest (the group without a message among them)."""
    if groups is None:
        raise JobNotFound(*args)
    return sorted(groups, key=lambda g: (-g.count, g.first_at, g.message is None, g.message or ""))


_REAP_PAGE = 1000
_MOST_SCANNED = 1000
"""A page reads at most this many jobs (plus ten pages' worth) that it leaves out (expired,
or of another status on a store without status indexes) before it ends short, with a
cursor: a page's cost stays bounded, and the next page reads on from there."""


def _reaped(results: list[JobStatus | Exception], _: object) -> list[JobStatus]:
    """The jobs reap aborted; the others were updated, completed or deleted meanwhile.

    A job found corrupt is skipped with a warning (as listings do); a store
    that failed raises, after the aborts that went through.
    """
    for result in results:
        if isinstance(result, StoreCorrupt):
            logger.warning("reap skips a corrupt job: %s", result)
        elif isinstance(result, Exception) and not isinstance(
            result, (JobChanged, JobFinished, JobNotFound)
        ):
            raise result
    return [result for result in results if isinstance(result, JobStatus)]


def _expired(job: JobStatus, now: _dt.datetime) -> bool:
    """Whether *job* has expired at *now* (SPEC section 6: from ``expires_at`` on)."""
    return job.expires_at is not None and now >= job.expires_at


def _earlier(now: _dt.datetime, delta: _dt.timedelta) -> _dt.datetime:
    """``now - delta``, or the first representable time when that is before year 1."""
    try:
        return now - delta
    except OverflowError:
        return _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)


def _the_job(_: None, args: tuple[JobStatus, ...]) -> JobStatus:
    return args[0]
