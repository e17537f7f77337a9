"""The rules of a job, as pure functions over plain values.

This module is the single statement of SPEC section 3: how a job starts, how
an update is checked and applied, when it completes. It does no I/O and takes
no locks: each store calls :func:`apply` under its own atomicity (a lock, a
file lock), and the Redis store runs ``stores/lua/update.lua``, a port of it
that the shared contract suite proves equivalent.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import NamedTuple

from .clock import from_ms, to_ms
from .errors import InvalidUpdate, JobChanged, JobFinished
from .model import MAX_COUNT, JobStatus, Progress, Status

__all__ = [
    "FAILED",
    "MAX_COUNT",
    "MAX_ERROR_GROUPS",
    "MAX_ERROR_LENGTH",
    "MAX_ITEM_LENGTH",
    "PROCESSED",
    "RATE_TAU_MS",
    "SUCCESSFUL",
    "Delta",
    "ItemChange",
    "add_count",
    "add_rate",
    "apply",
    "apply_item",
    "error_group",
    "errors_counted",
    "expiry",
    "fold",
    "new_job",
    "progress",
]

MAX_ERROR_LENGTH = 1000
"""``last_error`` is truncated to at most this many characters before any store sees it."""

MAX_ITEM_LENGTH = 512
"""An item name is 1 to this many characters, none of them a control character."""

MAX_ERROR_GROUPS = 100
"""``errors()`` keeps this many distinct messages; later ones count in one group without one."""

RATE_TAU_MS = 60_000
"""The time constant of a job's smoothed rate (SPEC section 8), in ms: a pace counts
half after 41.6 s, a twentieth after 3 minutes."""

PROCESSED, FAILED, SUCCESSFUL = 1, 2, 4
"""The bits of an item's state: processed once, and its outcome (neither, failed, successful)."""

_OUTCOME = FAILED | SUCCESSFUL
_RUNNING = Status.RUNNING
_COMPLETED = Status.COMPLETED


class Delta(NamedTuple):  # immutable and quick to build: one is made per update
    """One update to a job: counter increments, an optional error, or an abort.

    Built and validated by the tracker; ``error`` is already truncated. With
    ``abort`` set, the counters are ignored and every remaining item is counted
    as failed with ``error``. With ``item`` set, each count is 0 or 1 and the
    update goes through :func:`apply_item` (SPEC section 5). ``more`` grows
    the total of a running job first (``extend``, SPEC section 6). With
    ``if_updated`` (ms), the update applies only if the job's ``updated_at``
    is still that (``reap``): else ``JobChanged`` and nothing changes.
    ``retain`` is the tracker's retention, ``(retain ms, remember ms)``: the
    update that completes the job sets ``expires_at = finished_at + retain``,
    and the store may reclaim the job *remember* ms after that (SPEC section
    6); None keeps a completed job forever.
    """

    processed: int = 0
    successful: int = 0
    failed: int = 0
    error: str | None = None
    abort: bool = False
    item: str | None = None
    more: int = 0
    if_updated: int | None = None
    retain: tuple[int, int] | None = None


class ItemChange(NamedTuple):
    """What an item update changes: the job, the item, its failed-items entry, the error counts.

    ``state`` is the item's new state (bits :data:`PROCESSED`, :data:`FAILED`,
    :data:`SUCCESSFUL`) and ``error`` its error while failed. ``listed`` says
    what becomes of its entry in the failed items: True, it is (re)listed now,
    last, with ``error`` and ``failed_at = job.updated_at``; False, it leaves
    the list (a retry worked); None, unchanged. ``counted`` is how many failures
    to count under the update's error in ``errors()`` (0 or 1).
    """

    job: JobStatus
    state: int
    error: str | None
    listed: bool | None
    counted: int


def expiry(finished: _dt.datetime, retain: tuple[int, int] | None) -> _dt.datetime | None:
    """When a job finished at *finished* expires under *retain* (None: never).

    A date beyond year 9999 is never.
    """
    if retain is None:
        return None
    try:
        return finished + _dt.timedelta(milliseconds=retain[0])
    except OverflowError:
        return None


def new_job(
    namespace: str,
    job_id: str,
    total: int,
    now: _dt.datetime,
    retain: tuple[int, int] | None = None,
) -> JobStatus:
    """A fresh job: zero counters, ``started_at == updated_at == now``.

    A job with ``total == 0`` is completed at once (and expires under *retain*).
    """
    done = total == 0
    return JobStatus(
        job_id,
        namespace,
        _COMPLETED if done else _RUNNING,
        total,
        0,
        0,
        0,
        None,
        now,
        now,
        now if done else None,
        expiry(now, retain) if done else None,
    )


def add_rate(rate: float, since: int, done: int, now: int) -> tuple[float, int]:
    """A job's smoothed rate, and its time, after *done* more items at *now* (times in ms).

    ``rate`` is a sum of items done weighted by ``exp(-age / tau) / tau``
    (:data:`RATE_TAU_MS`), as of *since*: the job's ``rate_at``, or its start
    before any item was done (``rate_at`` 0). The *done* items count as done
    evenly over the ``dt`` ms since then, weighted by ``(1 - exp(-dt / tau)) /
    dt``, so that a steady pace reads exactly steady in :func:`progress`
    however often it is recorded; at one instant (``dt <= 0``, clocks that
    disagree included) by ``1 / tau``. The SQL and Lua stores spell this same
    step (``schema.py``, ``apply.sql``, ``update.lua``).
    """
    dt = now - since
    if dt <= 0:
        return rate + done * 1000 / RATE_TAU_MS, since
    decay = math.exp(max(-dt / RATE_TAU_MS, -700.0))  # (PostgreSQL's exp() refuses underflow)
    return rate * decay + done * 1000 * (1.0 - decay) / dt, now


def fold(job: JobStatus, done: int, now: int) -> tuple[float, int]:
    """*job*'s rate and its time with *done* more items folded in at *now* (ms), if any."""
    if done <= 0:
        return job.rate, job.rate_at
    return add_rate(job.rate, job.rate_at or to_ms(job.started_at), done, now)


def progress(job: JobStatus, now: _dt.datetime, stalled: bool) -> Progress:
    """How *job* is getting on at *now* (a completed job: at its ``finished_at``).

    The items done that the rate has not folded in yet (``done - rate_done``:
    the SQL and Redis stores fold them once a second, not on every update) are
    folded in as of ``updated_at``, by :func:`add_rate` as Redis would.

    ``rate_per_s`` is the job's rate decayed to then, divided by the weight
    its age allows (``1 - exp(-elapsed / tau)``): steady work since the start
    reads exactly its pace, early on the plain average, a stalled job decays
    towards 0. ``eta_at`` is then + what remains at that rate, None when the
    rate is 0, nothing remains, the job is *stalled* (no promise for a job
    nobody is working on) or done.
    """
    at = job.finished_at if job.finished_at is not None else now
    at_ms = to_ms(at)
    elapsed = at_ms - to_ms(job.started_at)
    folded, folded_at = fold(job, job.done - job.rate_done, to_ms(job.updated_at))
    rate = 0.0
    if elapsed > 0 and folded > 0:
        age = max(at_ms - folded_at, 0)
        rate = folded * math.exp(-age / RATE_TAU_MS) / -math.expm1(-elapsed / RATE_TAU_MS)
    eta = None
    if job.finished_at is None and not stalled and rate > 0 and job.remaining > 0:
        try:
            eta = from_ms(at_ms + round(job.remaining * 1000 / rate))
        except (OverflowError, ValueError):  # beyond year 9999: never, as far as anyone knows
            eta = None
    return Progress(job.percent, rate, eta, max(elapsed, 0) / 1000, stalled, job.expires_at)


def apply(job: JobStatus, delta: Delta, now: _dt.datetime) -> JobStatus:
    """Apply *delta* to *job* at time *now*; return the new job.

    ``updated_at`` becomes ``max(job.updated_at, now)`` so it never goes back.
    The update that brings ``successful + failed`` to ``total`` completes the
    job, setting ``finished_at = updated_at``.

    :raises JobFinished: if the job has already completed (heartbeats and
        aborts included).
    :raises InvalidUpdate: if the update would break an invariant; nothing of
        it is applied.
    """
    if job.status is _COMPLETED:
        raise JobFinished(job.namespace_name, job.job_id)
    if delta.if_updated is not None and to_ms(job.updated_at) != delta.if_updated:
        raise JobChanged(job.namespace_name, job.job_id)
    total = job.total
    if delta.more:
        total += delta.more
        if total > MAX_COUNT:
            raise InvalidUpdate(
                f"update rejected for job {job.job_id!r} in namespace {job.namespace_name!r}: "
                f"total would be {total}, more than {MAX_COUNT} (2**53 - 1)"
            )
    processed = job.processed
    successful = job.successful
    if delta.abort:
        failed = total - successful
    else:
        processed += delta.processed
        successful += delta.successful
        failed = job.failed + delta.failed
        if processed > total:
            raise InvalidUpdate(
                f"update rejected for job {job.job_id!r} in namespace {job.namespace_name!r}: "
                f"processed would be {processed}, more than total {total}"
            )
        if successful + failed > total:
            raise InvalidUpdate(
                f"update rejected for job {job.job_id!r} in namespace {job.namespace_name!r}: "
                f"successful + failed would be {successful + failed}, more than total {total}"
            )
    updated_at = now if now > job.updated_at else job.updated_at
    done = successful + failed == total
    # the items done since the rate last moved (the SQL and Redis stores defer them) and now
    # (not an abort's: no spike at the end) move the rate
    pending = (job.done if delta.abort else successful + failed) - job.rate_done
    rate, rate_at = fold(job, pending, to_ms(now))
    return JobStatus(
        job.job_id,
        job.namespace_name,
        _COMPLETED if done else _RUNNING,
        total,
        processed,
        successful,
        failed,
        job.last_error if delta.error is None else delta.error,
        job.started_at,
        updated_at,
        updated_at if done else None,
        expiry(updated_at, delta.retain) if done else None,
        rate,
        rate_at,
        successful + failed,
    )


def apply_item(
    job: JobStatus, state: int, item_error: str | None, delta: Delta, now: _dt.datetime
) -> ItemChange | None:
    """Apply an item update (SPEC section 5) to *job*, whose item is in *state*.

    None means a redelivery: nothing would change for the item (the same
    outcome, and for a failure the same error text), so nothing changes at
    all, on a completed job too. Otherwise the counters move as the item does:
    a first outcome counts it, failed -> successful moves one count from
    ``failed`` to ``successful``, successful stays successful, failed -> failed
    with a new error only sets the errors; ``processed=1`` counts the first time.

    :raises JobFinished, InvalidUpdate: as :func:`apply` does, for a change.
    """
    outcome = state & _OUTCOME
    new = state | PROCESSED if delta.processed else state
    failing = False
    if delta.successful:
        if outcome != SUCCESSFUL:
            new = (new & PROCESSED) | SUCCESSFUL
    elif delta.failed and (
        outcome == 0
        or (outcome == FAILED and delta.error is not None and delta.error != item_error)
    ):
        new = (new & PROCESSED) | FAILED
        failing = True
    if new == state and not failing:
        return None
    counts = Delta(
        (new & PROCESSED) - (state & PROCESSED),
        1 if new & SUCCESSFUL and not outcome & SUCCESSFUL else 0,
        (1 if new & FAILED else 0) - (1 if outcome & FAILED else 0),
        delta.error if failing else None,
        retain=delta.retain,
    )
    changed = apply(job, counts, now)
    if failing:
        return ItemChange(changed, new, delta.error, True, 0 if delta.error is None else 1)
    if new & FAILED:  # only marked processed now
        return ItemChange(changed, new, item_error, None, 0)
    return ItemChange(changed, new, None, False if outcome == FAILED else None, 0)


def errors_counted(before: JobStatus, delta: Delta, after: JobStatus) -> int:
    """How many failures an anonymous update or an abort counts under its error."""
    return 0 if delta.error is None else after.failed - before.failed


def add_count(count: int, more: int) -> int:
    """An error count after *more* failures: it stops at :data:`MAX_COUNT`.

    (A failed item that fails again with another message counts again, so
    the counts are not bounded by the job's total.)
    """
    return min(count + more, MAX_COUNT)


def error_group(message: str, known: bool, groups: int) -> str | None:
    """The group a failure with *message* counts in, given the job's named *groups*.

    A message counts under itself if it has a group or fewer than
    :data:`MAX_ERROR_GROUPS` exist; else in the one group whose message is None.
    """
    return message if known or groups < MAX_ERROR_GROUPS else None
