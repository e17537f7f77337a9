"""The store contract, shipped: ``jobtrack.testing.StoreContract``.

Subclass it in a pytest module and define a function-scoped fixture named
``store`` that returns a fresh, empty store; the subclass inherits every
check jobtrack's own stores pass (SPEC section 3): the semantics, bad input,
random update sequences against a plain reference model, through the sync
and the async tracker alike, and, for a store whose ``features.processes``
is true, the multi-process and ``kill -9`` checks, which open the store's
``url`` in other processes::

    import pytest
    from jobtrack.testing import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            return MyStore(tmp_path)

It needs pytest, hypothesis and freezegun (``pip install 'jobtrack[dev]'``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import inspect
import itertools
import json
import math
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from multiprocessing.pool import AsyncResult
from typing import Any

import attrs
import pytest
from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .. import (
    MAX_COUNT,
    AsyncJobTracker,
    ConfigurationError,
    InvalidArgument,
    InvalidName,
    InvalidUpdate,
    JobChanged,
    JobExists,
    JobExpired,
    JobFinished,
    JobNotFound,
    JobStatus,
    JobTracker,
    JobtrackError,
    Page,
    Status,
    Store,
    Update,
)
from ..clock import format_timestamp, to_ms
from ..errors import shown
from ..rules import RATE_TAU_MS, Delta, add_rate
from ..stores import features_of
from ..stores.registry import ENTRY_POINT_GROUP, SCHEMES, StoreURL
from . import worker
from .reference import T0, UTC, ManualClock, RefJob, job_tuple

__all__ = ["AsyncFacade", "StoreContract", "TrackerFactory"]

TrackerFactory = Callable[..., JobTracker]
PROP_NS = "prop"


class AsyncFacade:
    """Drives an AsyncJobTracker from sync test code, on one event loop per test."""

    def __init__(self, tracker: AsyncJobTracker, loop: asyncio.AbstractEventLoop) -> None:
        self.tracker = tracker
        self.store = tracker.store
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.tracker, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(attr(*args, **kwargs))

        return call

    def close_async(self) -> None:
        """Close the async view's own connections (the store is the fixture's)."""
        if self.tracker.native is not None:
            self._loop.run_until_complete(self.tracker.native.aclose())


NS = "my-documents"


class _Start:
    def test_new_job_is_running_with_zero_counters(self, tracker: JobTracker) -> None:
        job = tracker.start(NS, 5)
        assert re.fullmatch(r"job-[0-9a-f]{32}", job.job_id)
        assert job == JobStatus(job.job_id, NS, Status.RUNNING, 5, 0, 0, 0, None, T0, T0, None)
        assert tracker.get(NS, job.job_id) == job

    def test_given_job_id_is_used(self, tracker: JobTracker) -> None:
        job = tracker.start(NS, 3, job_id="batch_42")
        assert job.job_id == "batch_42"
        assert tracker.get(NS, "batch_42") == job

    def test_total_zero_completes_at_once(self, tracker: JobTracker) -> None:
        job = tracker.start(NS, 0)
        assert job.status is Status.COMPLETED
        assert job.finished_at == job.started_at == job.updated_at == T0
        assert tracker.get(NS, job.job_id) == job
        with pytest.raises(JobFinished):
            tracker.record(NS, job.job_id)

    def test_duplicate_id_is_an_error_never_an_overwrite(
        self, tracker: JobTracker, clock: ManualClock
    ) -> None:
        tracker.start(NS, 10, job_id="dup")
        before = tracker.record(NS, "dup", processed=3, successful=2)
        clock.advance(seconds=1)
        with pytest.raises(JobExists, match=r"'dup'.*'my-documents'"):
            tracker.start(NS, 99, job_id="dup")
        assert tracker.get(NS, "dup") == before

    def test_same_id_in_two_namespaces_are_two_jobs(self, tracker: JobTracker) -> None:
        a = tracker.start("ns-a", 2, job_id="same")
        b = tracker.start("ns-b", 4, job_id="same")
        tracker.record("ns-a", "same", successful=1)
        assert tracker.get("ns-b", "same") == b
        assert tracker.get("ns-a", "same").successful == 1
        assert a.total == 2


class _Record:
    def test_deltas_add_up_and_refresh_updated_at(
        self, tracker: JobTracker, clock: ManualClock
    ) -> None:
        job = tracker.start(NS, 10)
        clock.advance(seconds=2)
        after = tracker.record(NS, job.job_id, processed=4, successful=3, failed=1, error="boom")
        assert (after.processed, after.successful, after.failed) == (4, 3, 1)
        assert after.last_error == "boom"
        assert after.started_at == T0
        assert after.updated_at == T0 + dt.timedelta(seconds=2)
        assert after.status is Status.RUNNING and after.finished_at is None
        assert tracker.get(NS, job.job_id) == after

    def test_heartbeat_only_refreshes_updated_at(
        self, tracker: JobTracker, clock: ManualClock
    ) -> None:
        job = tracker.start(NS, 10)
        tracker.record(NS, job.job_id, processed=1, failed=1, error="e1")
        clock.advance(minutes=5)
        beat = tracker.record(NS, job.job_id)
        assert (beat.processed, beat.successful, beat.failed, beat.last_error) == (1, 0, 1, "e1")
        assert beat.updated_at == T0 + dt.timedelta(minutes=5)
        assert tracker.heartbeat(NS, job.job_id).updated_at == beat.updated_at

    def test_last_error_stays_until_a_newer_one(self, tracker: JobTracker) -> None:
        job = tracker.start(NS, 10)
        tracker.record(NS, job.job_id, failed=1, error="first")
        assert tracker.record(NS, job.job_id, successful=1).last_error == "first"
        assert tracker.record(NS, job.job_id, failed=1).last_error == "first"
        assert tracker.record(NS, job.job_id, failed=1, error="second").last_error == "second"

    def test_error_is_truncated_to_1000_characters(self, tracker: JobTracker) -> None:
        job = tracker.start(NS, 3)
        long = "é" * 999 + "xyz"
        after = tracker.record(NS, job.job_id, failed=1, error=long)
        assert after.last_error == long[:1000]
        assert tracker.get(NS, job.job_id).last_error == long[:1000]

    @pytest.mark.parametrize(
        ("error", "stored"),
        [
            ("bad \ud800 name", "bad \ufffd name"),
            ("\udcff" * 1200, "\ufffd" * 1000),
            ("pair \ud83d\ude00", "pair \ufffd\ufffd"),
        ],
        ids=["lone", "truncated", "split-pair"],
    )
    def test_lone_surrogates_become_replacement_characters(
        self, tracker: JobTracker, error: str, stored: str
    ) -> None:
        job = tracker.start(NS, 3)
        after = tracker.record(NS, job.job_id, failed=1, error=error)
        assert after.last_error == stored and after.failed == 1  # the failure still counts
        assert tracker.get(NS, job.job_id) == after
        assert tracker.list(NS).items == (after,)
        assert json.loads(after.to_json())["last_error"] == stored
        assert tracker.abort(NS, job.job_id, error).last_error == stored

    def test_unicode_error_round_trips(self, tracker: JobTracker) -> None:
        job = tracker.start(NS, 3)
        text = 'bad "quote" \\ \n\t \x00 ✓ 𝄞 <script>'
        tracker.record(NS, job.job_id, failed=1, error=text)
        assert tracker.get(NS, job.job_id).last_error == text

    @pytest.mark.parametrize(
        "deltas",
        [
            {"processed": 11},
            {"successful": 11},
            {"failed": 11},
            {"successful": 6, "failed": 5},
            {"processed": 11, "successful": 1},
        ],
    )
    def test_update_breaking_an_invariant_is_rejected_whole(
        self, tracker: JobTracker, clock: ManualClock, deltas: dict[str, Any]
    ) -> None:
        job = tracker.start(NS, 10)
        before = tracker.record(NS, job.job_id, processed=0, successful=0)
        clock.advance(seconds=1)
        with pytest.raises(InvalidUpdate, match="more than total"):
            tracker.record(NS, job.job_id, **deltas)
        assert tracker.get(NS, job.job_id) == before

    def test_exact_fill_completes_exactly_once(
        self, tracker: JobTracker, clock: ManualClock
    ) -> None:
        job = tracker.start(NS, 4)
        clock.advance(seconds=1)
        mid = tracker.record(NS, job.job_id, processed=2, successful=2)
        assert mid.status is Status.RUNNING
        clock.advance(seconds=1)
        done = tracker.record(NS, job.job_id, processed=2, failed=2, error="x")
        assert done.status is Status.COMPLETED
        assert done.finished_at == done.updated_at == T0 + dt.timedelta(seconds=2)
        clock.advance(seconds=1)
        calls: tuple[Callable[[], object], ...] = (
            lambda: tracker.record(NS, job.job_id, processed=0),
            lambda: tracker.record(NS, job.job_id),
            lambda: tracker.abort(NS, job.job_id, "late"),
        )
        for call in calls:
            with pytest.raises(JobFinished):
                call()
        assert tracker.get(NS, job.job_id) == done

    def test_large_counts_are_exact(self, tracker: JobTracker, clock: ManualClock) -> None:
        big = MAX_COUNT  # 2**53 - 1: exact in JSON numbers and Lua doubles
        job = tracker.start(NS, big)
        clock.now = dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
        after = tracker.record(NS, job.job_id, processed=big - 1, successful=2**52 + 1, failed=3)
        assert (after.processed, after.successful, after.failed) == (big - 1, 2**52 + 1, 3)
        assert tracker.get(NS, job.job_id) == after
        done = tracker.record(NS, job.job_id, successful=big - 2**52 - 4)
        assert done.status is Status.COMPLETED and done.successful + done.failed == big
        assert done.finished_at == clock.now

    def test_processed_may_lag_behind_completion(self, tracker: JobTracker) -> None:
        job = tracker.start(NS, 2)
        done = tracker.record(NS, job.job_id, successful=2)
        assert done.status is Status.COMPLETED and done.processed == 0

    def test_updated_at_never_goes_backwards(self, tracker: JobTracker, clock: ManualClock) -> None:
        job = tracker.start(NS, 3)
        clock.advance(seconds=10)
        ahead = tracker.record(NS, job.job_id, processed=1)
        clock.advance(seconds=-30)  # a worker whose clock lags
        behind = tracker.record(NS, job.job_id, successful=1)
        assert behind.updated_at == ahead.updated_at
        clock.advance(seconds=-5)
        done = tracker.record(NS, job.job_id, successful=2)
        assert done.finished_at == done.updated_at == ahead.updated_at

    def test_unknown_job_and_other_namespace_are_not_found(self, tracker: JobTracker) -> None:
        job = tracker.start("ns-a", 5)
        for ns, jid in (("ns-a", "job-missing"), ("ns-b", job.job_id)):
            with pytest.raises(JobNotFound) as info:
                tracker.get(ns, jid)
            assert isinstance(info.value, LookupError)
            assert str(info.value) == f"Upload job {jid!r} not found in namespace {ns!r}."
            with pytest.raises(JobNotFound):
                tracker.record(ns, jid, processed=1)
            with pytest.raises(JobNotFound):
                tracker.abort(ns, jid, "x")
            assert tracker.delete(ns, jid) is False
        assert tracker.get("ns-a", job.job_id) == job


class _Abort:
    def test_abort_fails_the_remaining_items_and_completes(
        self, tracker: JobTracker, clock: ManualClock
    ) -> None:
        job = tracker.start(NS, 10)
        tracker.record(NS, job.job_id, processed=5, successful=3, failed=1, error="one")
        clock.advance(seconds=3)
        aborted = tracker.abort(NS, job.job_id, "pipeline gave up")
        assert (aborted.processed, aborted.successful, aborted.failed) == (5, 3, 7)
        assert aborted.last_error == "pipeline gave up"
        assert aborted.status is Status.COMPLETED
        assert aborted.finished_at == aborted.updated_at == T0 + dt.timedelta(seconds=3)
        assert tracker.get(NS, job.job_id) == aborted

    def test_abort_error_is_required_and_truncated(self, tracker: JobTracker) -> None:
        job = tracker.start(NS, 2)
        for bad in ("", None, 3):
            with pytest.raises(InvalidUpdate):
                tracker.abort(NS, job.job_id, bad)  # type: ignore[arg-type]
        assert tracker.get(NS, job.job_id).status is Status.RUNNING
        assert tracker.abort(NS, job.job_id, "x" * 5000).last_error == "x" * 1000


class _Extend:
    """SPEC section 6: ``extend`` grows a running job's total."""

    def test_extend_grows_the_total_of_a_running_job(
        self, tracker: JobTracker, clock: ManualClock
    ) -> None:
        tracker.start(NS, 2, job_id=JOB)
        tracker.record(NS, JOB, processed=1, successful=1)
        now = clock.advance(seconds=3)
        grown = tracker.extend(NS, JOB, 3)
        assert (grown.total, grown.successful, grown.updated_at) == (5, 1, now)
        assert grown.status is Status.RUNNING
        assert tracker.get(NS, JOB) == grown
        assert not tracker.record(NS, JOB, successful=3).is_finished  # room for the new items
        assert tracker.record(NS, JOB, failed=1).is_finished

    def test_extend_a_completed_or_unknown_job(self, tracker: JobTracker) -> None:
        tracker.start(NS, 1, job_id=JOB)
        done = tracker.record(NS, JOB, successful=1)
        with pytest.raises(JobFinished):
            tracker.extend(NS, JOB, 1)
        assert tracker.get(NS, JOB) == done
        with pytest.raises(JobNotFound):
            tracker.extend(NS, "missing", 1)
        tracker.start(NS, 0, job_id="empty")  # total 0: completed at once
        with pytest.raises(JobFinished):
            tracker.extend(NS, "empty", 1)

    @pytest.mark.parametrize(
        "more", [0, -1, True, 1.5, "2", None, MAX_COUNT + 1, 10**5000], ids=shown
    )
    def test_bad_more(self, tracker: JobTracker, more: object) -> None:
        before = tracker.start(NS, 1, job_id=JOB)
        with pytest.raises(InvalidUpdate, match="more"):
            tracker.extend(NS, JOB, more)  # type: ignore[arg-type]
        assert tracker.get(NS, JOB) == before

    def test_total_stays_exact_up_to_the_largest_count(self, tracker: JobTracker) -> None:
        tracker.start(NS, MAX_COUNT - 5, job_id=JOB)
        tracker.record(NS, JOB, failed=1, error="e")  # the job moves (file store: to SQLite)
        assert tracker.extend(NS, JOB, 5).total == MAX_COUNT
        with pytest.raises(InvalidUpdate, match="total would be"):
            tracker.extend(NS, JOB, 1)
        assert tracker.get(NS, JOB).total == MAX_COUNT


class _Stalled:
    """SPEC section 6: stalled jobs, and reaping them."""

    def test_is_stalled_by_the_trackers_clock(
        self, stalling: JobTracker, clock: ManualClock
    ) -> None:
        job = stalling.start(NS, 2, job_id=JOB)
        clock.advance(minutes=5)
        assert not stalling.is_stalled(job)  # exactly stall_after: not older yet
        clock.advance(milliseconds=1)
        assert stalling.is_stalled(job)
        fresh = stalling.record(NS, JOB, processed=1)
        assert not stalling.is_stalled(fresh)
        done = stalling.record(NS, JOB, successful=2)
        clock.advance(days=1)
        assert not stalling.is_stalled(done)  # completed jobs never stall
        with pytest.raises(InvalidArgument):
            stalling.is_stalled("job-1")  # type: ignore[arg-type]
        naive = attrs.evolve(job, updated_at=job.updated_at.replace(tzinfo=None))
        for check in (stalling.is_stalled, stalling.expired_at):  # a status built by hand
            with pytest.raises(InvalidArgument, match="aware datetimes"):
                check(naive)

    def test_never_stalled_without_stall_after(
        self, tracker: JobTracker, clock: ManualClock
    ) -> None:
        job = tracker.start(NS, 2, job_id=JOB)
        clock.advance(days=365)
        assert not tracker.is_stalled(job)
        with pytest.raises(ConfigurationError, match="stall_after"):
            tracker.reap(NS)

    def test_the_longest_stall_after_reaps_nothing(
        self, tracker_factory: TrackerFactory, store: Store
    ) -> None:
        early = ManualClock(dt.datetime(500, 1, 1, tzinfo=UTC))
        patient = tracker_factory(store, clock=early, stall_after=dt.timedelta(days=365_000))
        patient.start(NS, 1, job_id=JOB)
        assert patient.reap(NS) == []  # "now - 1000 years" was before year 1: nothing older

    @pytest.mark.parametrize(
        "bad",
        [dt.timedelta(0), dt.timedelta(seconds=-1), 300, "5m", dt.timedelta(days=365_001),
         dt.timedelta.max],
    )  # fmt: skip
    def test_bad_stall_after(self, store: Store, bad: object) -> None:
        with pytest.raises(ConfigurationError, match="stall_after"):
            JobTracker(store, stall_after=bad)  # type: ignore[arg-type]

    def test_reap_aborts_only_the_stalled_running_jobs(
        self, stalling: JobTracker, clock: ManualClock
    ) -> None:
        for job_id in ("old", "busy", "done", "other"):
            stalling.start(NS if job_id != "other" else "elsewhere", 4, job_id=job_id)
        stalling.record(NS, "old", processed=2, successful=1)
        stalling.record(NS, "done", successful=4)
        since = stalling.get(NS, "old").updated_at
        clock.advance(minutes=4)
        stalling.record(NS, "busy", processed=1)
        clock.advance(minutes=2)
        reaped = stalling.reap(NS)
        assert [job.job_id for job in reaped] == ["old"]
        [old] = reaped
        assert (old.status, old.processed, old.successful, old.failed) == (
            Status.COMPLETED, 2, 1, 3,
        )  # fmt: skip
        assert old.last_error == "stalled: no update since " + since.isoformat(
            timespec="milliseconds"
        ).replace("+00:00", "Z")
        assert stalling.get(NS, "old") == old
        assert stalling.get(NS, "busy").status is Status.RUNNING
        assert stalling.get("elsewhere", "other").status is Status.RUNNING  # another namespace
        assert stalling.reap(NS) == []  # nothing stalled is left
        clock.advance(minutes=10)
        assert [job.job_id for job in stalling.reap(NS)] == ["busy"]

    def test_reap_leaves_alone_a_job_updated_since_it_was_seen(
        self, stalling: JobTracker, store: Store, clock: ManualClock
    ) -> None:
        seen = stalling.start(NS, 4, job_id=JOB)
        clock.advance(minutes=6)
        stalling.record(NS, JOB, processed=1)  # the update that comes in between
        stale = Delta(
            error="stalled", abort=True, if_updated=int(seen.updated_at.timestamp() * 1000)
        )
        with pytest.raises(JobChanged):
            store.update(NS, JOB, stale, clock.now)
        assert stalling.get(NS, JOB).status is Status.RUNNING

    def test_reap_pages_through_a_large_namespace(
        self, stalling: JobTracker, clock: ManualClock
    ) -> None:
        for i in range(1203):
            stalling.start(NS, 1, job_id=f"j{i}")
        clock.advance(minutes=6)
        stalling.record(NS, "j600", processed=1)
        reaped = stalling.reap(NS)
        assert len(reaped) == 1202 and "j600" not in {job.job_id for job in reaped}


def _page_ids(page: Page[JobStatus]) -> list[str]:
    return [job.job_id for job in page.items]


def _walk(tracker: JobTracker, status: str | None, limit: int) -> list[str]:
    """Every job id a listing of *status* gives, page by page (each page full but the last)."""
    seen: list[str] = []
    cursor = None
    while True:
        page = tracker.list(NS, status=status, limit=limit, cursor=cursor)
        seen += _page_ids(page)
        cursor = page.next_cursor
        if cursor is None:
            return seen
        assert len(page.items) == limit


class _Retention:
    """SPEC section 6: retention, "expired" (410) before "unknown" (404), reclaiming space."""

    @pytest.fixture
    def keeping(self, tracker_factory: TrackerFactory, store: Store, clock: ManualClock) -> Any:
        return tracker_factory(
            store,
            clock=clock,
            retain=dt.timedelta(minutes=1),
            remember_expired=dt.timedelta(minutes=10),
        )

    def test_a_completed_job_expires_then_is_forgotten(
        self, keeping: JobTracker, clock: ManualClock
    ) -> None:
        keeping.start(NS, 1, job_id=JOB)
        running = keeping.start(NS, 1, job_id="running")
        done = keeping.record(NS, JOB, successful=1)
        assert done.expires_at == done.finished_at + dt.timedelta(minutes=1)  # type: ignore[operator]
        assert running.expires_at is None and "expires_at" not in done.to_dict()
        clock.advance(seconds=59, milliseconds=999)
        assert keeping.get(NS, JOB) == done and keeping.expired_at(done) is None
        clock.advance(milliseconds=1)
        with pytest.raises(JobExpired) as expired:
            keeping.get(NS, JOB)
        assert expired.value.expired_at == done.expires_at == keeping.expired_at(done)
        assert isinstance(expired.value, JobNotFound)
        assert "expired at " + format_timestamp(done.expires_at) in str(expired.value)
        clock.advance(minutes=9, seconds=59, milliseconds=999)
        with pytest.raises(JobExpired):
            keeping.get(NS, JOB)
        clock.advance(milliseconds=1)  # remember_expired has passed: unknown
        with pytest.raises(JobNotFound) as unknown:
            keeping.get(NS, JOB)
        assert not isinstance(unknown.value, JobExpired)
        clock.advance(days=3650)
        assert keeping.get(NS, "running") == running  # running jobs never expire

    def test_an_expired_or_forgotten_job_has_no_items_to_read(
        self, keeping: JobTracker, clock: ManualClock
    ) -> None:
        if not features_of(keeping.store).items:
            pytest.skip(f"{type(keeping.store).__name__} keeps no items")
        keeping.start(NS, 2, job_id=JOB)
        keeping.record(NS, JOB, item="customer-42/contract.pdf", failed=1, error="bad page")
        keeping.record(NS, JOB, item="b", successful=1)
        assert [i.item for i in keeping.failed_items(NS, JOB).items] == ["customer-42/contract.pdf"]
        clock.advance(minutes=1)
        for read in (keeping.failed_items, keeping.errors):
            with pytest.raises(JobExpired):
                read(NS, JOB)
        clock.advance(minutes=10)
        for read in (keeping.failed_items, keeping.errors):
            with pytest.raises(JobNotFound) as unknown:
                read(NS, JOB)
            assert not isinstance(unknown.value, JobExpired)

    def test_a_forgotten_id_starts_a_new_job_and_a_remembered_one_is_taken(
        self, keeping: JobTracker, clock: ManualClock
    ) -> None:
        if not features_of(keeping.store).expiry:
            pytest.skip(f"{type(keeping.store).__name__} keeps no expiry")
        keeping.start(NS, 2, job_id=JOB)
        if features_of(keeping.store).items:
            keeping.record(NS, JOB, item="old", failed=1, error="old error")
        keeping.record(NS, JOB, successful=1, failed=0 if features_of(keeping.store).items else 1)
        clock.advance(minutes=1)  # expired: still remembered, the id is taken
        with pytest.raises(JobExists):
            keeping.start(NS, 5, job_id=JOB)
        clock.advance(minutes=10)  # forgotten: the id is free, and nothing of the old job stays
        again = keeping.start(NS, 5, job_id=JOB)
        assert keeping.get(NS, JOB) == again and again.total == 5 and again.failed == 0
        assert [job.job_id for job in keeping.list(NS).items] == [JOB]
        if features_of(keeping.store).items:
            assert keeping.failed_items(NS, JOB).items == ()
            assert keeping.errors(NS, JOB) == []
            keeping.record(NS, JOB, item="old", failed=1, error="old error")  # counted anew
            assert keeping.get(NS, JOB).failed == 1

    def test_expiry_is_fixed_at_completion_by_the_completing_tracker(
        self, keeping: JobTracker, tracker_factory: TrackerFactory, store: Store, clock: ManualClock
    ) -> None:
        forever = tracker_factory(store, clock=clock, retain=None)
        patient = tracker_factory(store, clock=clock, retain=dt.timedelta(days=1))
        for job_id in ("short", "kept"):
            keeping.start(NS, 2, job_id=job_id)
        keeping.record(NS, "short", successful=2)
        kept = forever.record(NS, "kept", successful=1, failed=1)
        assert kept.expires_at is None
        clock.advance(minutes=2)
        with pytest.raises(JobExpired):
            patient.get(NS, "short")  # its own retain is a day: the job's was a minute
        clock.advance(days=10_000)
        assert keeping.get(NS, "kept") == kept

    def test_every_way_of_completing_sets_the_expiry(
        self, keeping: JobTracker, clock: ManualClock
    ) -> None:
        minute = dt.timedelta(minutes=1)
        empty = keeping.start(NS, 0, job_id="empty")
        assert empty.expires_at == empty.finished_at + minute  # type: ignore[operator]
        keeping.start(NS, 3, job_id="aborted")
        clock.advance(seconds=5)
        aborted = keeping.abort(NS, "aborted", "gave up")
        assert aborted.expires_at == aborted.finished_at + minute  # type: ignore[operator]
        [done] = keeping.record_many([Update(NS, keeping.start(NS, 1).job_id, successful=1)])
        assert isinstance(done, JobStatus) and done.expires_at == done.finished_at + minute  # type: ignore[operator]
        extended = keeping.extend(NS, keeping.start(NS, 1, job_id="grows").job_id, 2)
        assert extended.expires_at is None
        assert [keeping.get(NS, j).expires_at for j in ("empty", "aborted")] == [
            empty.expires_at, aborted.expires_at,
        ]  # fmt: skip

    def test_listings_leave_out_expired_jobs_and_stay_full(
        self, keeping: JobTracker, clock: ManualClock
    ) -> None:
        for i in range(12):
            keeping.start(NS, 1, job_id=f"j{i:02}")
            if i % 3:  # two of every three complete
                keeping.record(NS, f"j{i:02}", successful=1)
            clock.advance(seconds=1)
        everything = _walk(keeping, None, 3)
        assert len(everything) == 12
        clock.advance(minutes=1)  # the completed ones have expired
        running = ["j09", "j06", "j03", "j00"]
        assert _walk(keeping, None, 3) == running == _walk(keeping, "running", 3)
        assert _walk(keeping, None, 1) == running
        assert _walk(keeping, "completed", 2) == []

    def test_a_page_reads_a_bounded_number_of_expired_jobs(
        self, keeping: JobTracker, clock: ManualClock
    ) -> None:
        keeping.start(NS, 1, job_id="live")  # the oldest: every expired job is newer
        clock.advance(seconds=1)
        ids = [keeping.start(NS, 1).job_id for _ in range(1200)]
        keeping.record_many([Update(NS, job_id, successful=1) for job_id in ids])
        clock.advance(minutes=2)  # all 1,200 expired, still remembered
        pages: list[list[str]] = []
        cursor = None
        while True:  # a page reads about 1,000 it leaves out, then ends short with a cursor
            page = keeping.list(NS, limit=1, cursor=cursor)
            pages.append(_page_ids(page))
            cursor = page.next_cursor
            if cursor is None:
                break
        assert pages == [[], ["live"]]
        assert _page_ids(keeping.list(NS, status="completed")) == []

    def test_purge_reclaims_what_has_been_expired_long_enough(
        self, keeping: JobTracker, clock: ManualClock
    ) -> None:
        if not features_of(keeping.store).expiry:
            with pytest.raises(ConfigurationError, match="expiry"):
                keeping.purge()
            pytest.skip(f"{type(keeping.store).__name__} does not purge (Features.expiry)")
        for job_id in ("a", "b", "running"):
            keeping.start(NS, 1, job_id=job_id)
        keeping.record(NS, "a", successful=1)
        keeping.record(NS, "b", failed=1, error="no")
        clock.advance(minutes=11, milliseconds=-1)  # retain + remember_expired, all but 1 ms
        assert keeping.purge() == 0
        with pytest.raises(JobExpired):
            keeping.get(NS, "a")
        clock.advance(milliseconds=1)
        assert keeping.purge() == 2
        assert keeping.purge() == 0
        for job_id in ("a", "b"):
            with pytest.raises(JobNotFound):
                keeping.get(NS, job_id)
        assert _walk(keeping, None, 10) == ["running"]
        assert keeping.start(NS, 1, job_id="a").status is Status.RUNNING  # the id is free again
        if features_of(keeping.store).items:
            assert keeping.errors(NS, "a") == []  # nothing of the old job comes back

    @pytest.mark.parametrize(
        ("retain", "remember"),
        [(dt.timedelta(seconds=-1), dt.timedelta(0)), (60, dt.timedelta(0)),
         (dt.timedelta(days=365_001), dt.timedelta(0)), (None, None),
         (dt.timedelta(0), dt.timedelta(seconds=-1)), (dt.timedelta(0), "30d")],
    )  # fmt: skip
    def test_bad_retention(self, store: Store, retain: object, remember: object) -> None:
        with pytest.raises(ConfigurationError, match=r"retain|remember_expired"):
            JobTracker(store, retain=retain, remember_expired=remember)  # type: ignore[arg-type]

    def test_defaults(self, store: Store) -> None:
        tracker = JobTracker(store)
        assert tracker.retain == dt.timedelta(days=7)
        assert tracker.remember_expired == dt.timedelta(days=30)


class _StatusListing:
    """SPEC section 7: listings by status, and how a job moves between them."""

    def test_each_status_lists_its_jobs_newest_first(
        self, stalling: JobTracker, clock: ManualClock
    ) -> None:
        for i in range(9):
            stalling.start(NS, 2, job_id=f"j{i}")
            clock.advance(seconds=1)
        stalling.start("other", 1, job_id="elsewhere")
        for job_id in ("j1", "j4", "j7"):
            stalling.record(NS, job_id, successful=2)
        clock.advance(minutes=5)
        for job_id in ("j2", "j6", "j8"):  # kept fresh: the rest of the running are stalled
            stalling.heartbeat(NS, job_id)
        clock.advance(minutes=1)
        assert _walk(stalling, "completed", 2) == ["j7", "j4", "j1"]
        assert _walk(stalling, "running", 2) == ["j8", "j6", "j5", "j3", "j2", "j0"]
        assert _walk(stalling, "stalled", 2) == ["j5", "j3", "j0"]
        assert _walk(stalling, None, 4) == [f"j{i}" for i in range(8, -1, -1)]
        assert stalling.list(NS, status="stalled", limit=3).next_cursor is None

    def test_stalled_jobs_are_ordered_by_their_last_update(
        self, stalling: JobTracker, clock: ManualClock
    ) -> None:
        for job_id in ("a", "b", "c", "d"):
            stalling.start(NS, 2, job_id=job_id)
        for job_id in ("c", "a", "d"):  # b's last update is its start
            clock.advance(seconds=2)
            stalling.heartbeat(NS, job_id)
        clock.advance(minutes=10)
        # (a store without status indexes lists them as every listing: by start, then id)
        order = (
            ["d", "a", "c", "b"] if features_of(stalling.store).statuses else ["d", "c", "b", "a"]
        )
        assert _walk(stalling, "stalled", 1) == order
        assert [j.job_id for j in stalling.reap(NS)] == order
        assert _walk(stalling, "stalled", 1) == [] and len(_walk(stalling, "completed", 3)) == 4

    def test_a_job_moves_between_the_listings_as_it_changes(
        self, stalling: JobTracker, clock: ManualClock
    ) -> None:
        stalling.start(NS, 3, job_id=JOB)
        assert _walk(stalling, "running", 5) == [JOB] and _walk(stalling, "stalled", 5) == []
        clock.advance(minutes=5, milliseconds=1)
        assert _walk(stalling, "stalled", 5) == [JOB]
        stalling.record(NS, JOB, successful=1)
        assert _walk(stalling, "stalled", 5) == [] and _walk(stalling, "running", 5) == [JOB]
        for _ in range(3):  # many updates in one second, then some in the next ones
            stalling.record(NS, JOB, processed=1)
            clock.advance(milliseconds=400)
        clock.advance(minutes=5)
        assert _walk(stalling, "stalled", 5) == [JOB]  # by its last update, not its first
        clock.advance(minutes=-4, seconds=-59)
        assert _walk(stalling, "stalled", 5) == []
        stalling.record(NS, JOB, successful=2)
        assert _walk(stalling, "completed", 5) == [JOB]
        assert _walk(stalling, "running", 5) == _walk(stalling, "stalled", 5) == []
        assert stalling.delete(NS, JOB)
        assert _walk(stalling, "completed", 5) == _walk(stalling, None, 5) == []

    def test_the_stalled_listing_at_the_edge_of_a_second(
        self, stalling: JobTracker, clock: ManualClock
    ) -> None:
        clock.now = clock.now.replace(microsecond=0)
        for i in range(4):  # updated 0, 250, 500 and 750 ms into one second
            stalling.start(NS, 1, job_id=f"q{i}")
            clock.advance(milliseconds=250)
        clock.advance(minutes=5, milliseconds=-500)  # the first two are stalled
        assert sorted(_walk(stalling, "stalled", 1)) == ["q0", "q1"]
        assert [j.job_id for j in stalling.list(NS, status="stalled", limit=1).items] == ["q1"]

    @pytest.mark.parametrize(
        "status", ["", "Running", "failed", "stalled ", 1, b"running", 10**5000], ids=shown
    )
    def test_bad_status(self, stalling: JobTracker, status: object) -> None:
        with pytest.raises(InvalidArgument, match="status"):
            stalling.list(NS, status=status)  # type: ignore[arg-type]

    def test_stalled_needs_stall_after(self, tracker: JobTracker) -> None:
        with pytest.raises(ConfigurationError, match="stall_after"):
            tracker.list(NS, status="stalled")


class _Delete:
    def test_delete_then_start_again(self, tracker: JobTracker, clock: ManualClock) -> None:
        tracker.start(NS, 2, job_id="again")
        tracker.record(NS, "again", successful=2)
        assert tracker.delete(NS, "again") is True
        with pytest.raises(JobNotFound):
            tracker.get(NS, "again")
        assert tracker.delete(NS, "again") is False
        clock.advance(hours=1)
        fresh = tracker.start(NS, 7, job_id="again")
        assert fresh.total == 7 and fresh.successful == 0 and fresh.status is Status.RUNNING
        assert tracker.get(NS, "again") == fresh

    def test_delete_a_running_job(self, tracker: JobTracker) -> None:
        job = tracker.start(NS, 2)
        assert tracker.delete(NS, job.job_id) is True
        with pytest.raises(JobNotFound):
            tracker.record(NS, job.job_id, processed=1)


class _List:
    def test_newest_first_with_cursor_paging(self, tracker: JobTracker, clock: ManualClock) -> None:
        ids = []
        for i in range(7):
            ids.append(tracker.start(NS, 1, job_id=f"j{i}").job_id)
            if i != 3:  # j3 and j4 share a millisecond; the id breaks the tie
                clock.advance(seconds=1)
        tracker.start("other", 1, job_id="elsewhere")
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = tracker.list(NS, limit=3, cursor=cursor)
            pages += 1
            seen.extend(job.job_id for job in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == ["j6", "j5", "j4", "j3", "j2", "j1", "j0"]
        assert pages == 3
        assert tracker.list(NS, limit=7).next_cursor is None
        assert [j.job_id for j in tracker.list("other").items] == ["elsewhere"]
        assert tracker.list("empty").items == ()

    def test_list_shows_current_status(self, tracker: JobTracker) -> None:
        job = tracker.start(NS, 2)
        done = tracker.record(NS, job.job_id, successful=2)
        assert tracker.list(NS).items == (done,)

    @pytest.mark.parametrize("limit", [0, -1, 1001, 2.0, True, "10", None, 10**5000], ids=shown)
    def test_bad_limit(self, tracker: JobTracker, limit: object) -> None:
        with pytest.raises(InvalidArgument, match="limit"):
            tracker.list(NS, limit=limit)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "cursor", ["", "abc", "12", "12.", "12./x", "x.job", 5, "1" * 20 + ".a"]
    )
    def test_bad_cursor(self, tracker: JobTracker, cursor: object) -> None:
        with pytest.raises(InvalidArgument, match="cursor"):
            tracker.list(NS, cursor=cursor)  # type: ignore[arg-type]


def _counts(tracker: JobTracker) -> dict[str, tuple[int, int | None, int]]:
    """Every listed namespace's (running, stalled, completed), read page by page."""
    found: dict[str, tuple[int, int | None, int]] = {}
    cursor = None
    while True:
        page = tracker.namespaces(limit=2, cursor=cursor)
        for row in page.items:
            assert row.name not in found
            found[row.name] = (row.running, row.stalled, row.completed)
        cursor = page.next_cursor
        if cursor is None:
            return found


class _Namespaces:
    """``tracker.namespaces()`` (SPEC section 7), on stores with ``Features.namespaces``."""

    @pytest.fixture
    def listing(self, store: Store) -> None:
        """Skips a store that does not list namespaces (not autouse: only these tests)."""
        if not features_of(store).namespaces:
            pytest.skip("the store does not list namespaces (Features.namespaces)")

    @pytest.mark.usefixtures("listing")
    def test_counts_follow_every_write(
        self, tracker_factory: TrackerFactory, store: Store, clock: ManualClock
    ) -> None:
        tracker = tracker_factory(
            store, clock=clock, stall_after=dt.timedelta(minutes=5),
            retain=dt.timedelta(hours=1), remember_expired=dt.timedelta(hours=1),
        )  # fmt: skip
        assert _counts(tracker) == {}
        for i in range(4):
            tracker.start("ns-a", 2, job_id=f"a{i}")
        tracker.start("ns-b", 0, job_id="empty")  # completed at once
        assert _counts(tracker) == {"ns-a": (4, 0, 0), "ns-b": (0, 0, 1)}
        tracker.record("ns-a", "a0", successful=2)
        tracker.abort("ns-a", "a1", "no")
        assert _counts(tracker)["ns-a"] == (2, 0, 2)
        clock.advance(minutes=5, seconds=1)  # a2, a3 are stalled (running counts them too)
        assert _counts(tracker)["ns-a"] == (2, 2, 2)
        tracker.heartbeat("ns-a", "a3")
        assert _counts(tracker)["ns-a"] == (2, 1, 2)
        assert tracker_factory(store, clock=clock).namespaces().items[0].stalled is None
        tracker.delete("ns-a", "a2")
        assert _counts(tracker)["ns-a"] == (1, 0, 2)
        clock.advance(hours=1)  # a0, a1 and ns-b's job have expired: not counted; a3 stalled
        assert _counts(tracker) == {"ns-a": (1, 1, 0)}
        tracker.start("ns-b", 1, job_id="again")
        assert _counts(tracker) == {"ns-a": (1, 1, 0), "ns-b": (1, 0, 0)}
        clock.advance(hours=1)
        tracker.purge()
        tracker.delete("ns-b", "again")
        assert _counts(tracker) == {"ns-a": (1, 1, 0)}
        tracker.delete("ns-a", "a3")
        assert _counts(tracker) == {}
        assert tracker.namespaces() == Page((), None)

    @pytest.mark.usefixtures("listing")
    def test_pages_cover_every_namespace_once(self, tracker: JobTracker) -> None:
        names = [f"t{i:03d}" for i in range(250)]
        for name in reversed(names):
            tracker.start(name, 1)
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = tracker.namespaces(limit=100, cursor=cursor)
            pages += 1
            seen += [row.name for row in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == names and pages == 3
        assert len(tracker.namespaces(limit=1000).items) == 250

    @pytest.mark.usefixtures("listing")
    def test_a_namespace_goes_with_its_last_job(
        self, tracker_factory: TrackerFactory, store: Store, clock: ManualClock
    ) -> None:
        tracker = tracker_factory(
            store, clock=clock, retain=dt.timedelta(minutes=1), remember_expired=dt.timedelta(0)
        )
        tracker.start("short", 1, job_id="j")
        tracker.record("short", "j", successful=1)
        tracker.start("kept", 1, job_id="k")
        clock.advance(minutes=1)  # expired: no longer listed, whatever is still stored
        assert [row.name for row in tracker.namespaces().items] == ["kept"]
        tracker.purge()
        assert [row.name for row in tracker.namespaces().items] == ["kept"]
        tracker.start("short", 1, job_id="j")  # forgotten: its id is free; the namespace back
        assert [row.name for row in tracker.namespaces().items] == ["kept", "short"]

    @pytest.mark.usefixtures("listing")
    def test_reads_write_nothing(self, tracker: JobTracker) -> None:
        tracker.start(NS, 1, job_id="j")
        before = tracker.namespaces()
        for name in ("nobody", "never"):
            with pytest.raises(JobNotFound):
                tracker.get(name, "j")
            assert tracker.list(name, status="running").items == ()
        assert tracker.namespaces() == before == Page((before.items[0],), None)

    @pytest.mark.usefixtures("listing")
    @pytest.mark.parametrize("cursor", ["", "a.b", "x" * 129, 5, "a/b"], ids=shown)
    def test_bad_cursor(self, tracker: JobTracker, cursor: object) -> None:
        with pytest.raises(InvalidArgument, match="cursor"):
            tracker.namespaces(cursor=cursor)  # type: ignore[arg-type]

    @pytest.mark.usefixtures("listing")
    @pytest.mark.parametrize("limit", [0, 1001, True, "10"], ids=shown)
    def test_bad_limit(self, tracker: JobTracker, limit: object) -> None:
        with pytest.raises(InvalidArgument, match="limit"):
            tracker.namespaces(limit=limit)  # type: ignore[arg-type]


class _Clock:
    @pytest.mark.parametrize(
        "when",
        [
            dt.datetime(1, 1, 1, tzinfo=UTC),
            dt.datetime(1969, 12, 31, 23, 59, 59, 1000, tzinfo=UTC),
            dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
        ],
        ids=["year-1", "before-1970", "year-9999"],
    )
    def test_listing_pages_at_any_representable_time(
        self, tracker: JobTracker, clock: ManualClock, when: dt.datetime
    ) -> None:
        clock.now = when
        for i in range(3):  # one millisecond: the ids break the tie
            tracker.start(NS, 1, job_id=f"t{i}")
        seen: list[str] = []
        cursor = None
        while True:
            page = tracker.list(NS, limit=1, cursor=cursor)
            seen += [job.job_id for job in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == ["t2", "t1", "t0"]
        assert tracker.get(NS, "t0").started_at == when

    def test_freezegun_moves_the_default_clock(
        self, store: Store, tracker_factory: TrackerFactory
    ) -> None:
        tracker = tracker_factory(store)
        with freeze_time("2026-05-21 12:00:00.123456") as frozen:
            job = tracker.start(NS, 2)
            assert job.started_at == dt.datetime(2026, 5, 21, 12, 0, 0, 123000, tzinfo=UTC)
            frozen.tick(dt.timedelta(seconds=1.5))
            after = tracker.record(NS, job.job_id, successful=1)
        assert after.updated_at == dt.datetime(2026, 5, 21, 12, 0, 1, 623000, tzinfo=UTC)
        assert tracker.get(NS, job.job_id) == after

    def test_injected_clock_is_truncated_to_ms_and_converted_to_utc(
        self, store: Store, tracker_factory: TrackerFactory
    ) -> None:
        tz = dt.timezone(dt.timedelta(hours=2))
        clock = ManualClock(dt.datetime(2026, 5, 21, 14, 0, 0, 999999, tzinfo=tz))
        job = tracker_factory(store, clock=clock).start(NS, 1)
        assert job.started_at == dt.datetime(2026, 5, 21, 12, 0, 0, 999000, tzinfo=UTC)
        assert job.started_at.utcoffset() == dt.timedelta(0)
        assert job.to_dict()["started_at"] == "2026-05-21T12:00:00.999Z"


class _Concurrency:
    def test_threads_lose_no_update_and_complete_once(self, store: Store) -> None:
        threads, per_thread = 8, 150
        setup = JobTracker(store)
        job = setup.start(NS, threads * per_thread)
        completions: list[JobStatus] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(threads)

        def work() -> None:
            tracker = JobTracker(store)  # one store is shared by every thread
            try:
                barrier.wait()
                for i in range(per_thread):
                    failed = i % 10 == 0
                    status = tracker.record(
                        NS,
                        job.job_id,
                        processed=1,
                        successful=0 if failed else 1,
                        failed=1 if failed else 0,
                        error="bad item" if failed else None,
                    )
                    if status.status is Status.COMPLETED:
                        completions.append(status)
                    tracker.get(NS, job.job_id)  # readers never see a torn job
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        pool = [threading.Thread(target=work) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert errors == []
        final = setup.get(NS, job.job_id)
        assert (final.processed, final.successful, final.failed) == (1200, 1080, 120)
        assert final.status is Status.COMPLETED
        assert completions == [final]


class _RecordMany:
    def test_each_update_applies_or_reports_its_error(
        self, tracker: JobTracker, clock: ManualClock
    ) -> None:
        tracker.start(NS, 3, job_id="a")
        tracker.start(NS, 1, job_id="b")
        clock.advance(seconds=1)
        results = tracker.record_many(
            [
                Update(NS, "a", processed=1, successful=1),
                Update(NS, "missing", processed=1),
                Update(NS, "a", processed=9),
                Update(NS, "b", successful=1),
                Update(NS, "b", failed=1, error="late"),
                Update(NS, "a", processed=1, failed=1, error="bad"),
            ]
        )
        kinds = [type(r).__name__ for r in results]
        assert kinds == [
            "JobStatus",
            "JobNotFound",
            "InvalidUpdate",
            "JobStatus",
            "JobFinished",
            "JobStatus",
        ]
        a = tracker.get(NS, "a")
        assert (a.processed, a.successful, a.failed, a.last_error) == (2, 1, 1, "bad")
        assert a.updated_at == T0 + dt.timedelta(seconds=1)
        assert results[5] == a
        assert tracker.get(NS, "b").is_finished
        assert tracker.record_many([]) == []

    def test_one_malformed_update_rejects_the_batch(self, tracker: JobTracker) -> None:
        tracker.start(NS, 3, job_id="a")
        before = tracker.get(NS, "a")
        for bad in (
            [Update(NS, "a", processed=1), Update(NS, "a", processed=-1)],
            [Update(NS, "a", processed=1), Update("bad/ns", "a")],
            [Update(NS, "a", processed=1), ("ns", "a")],
            "not updates",
            None,
        ):
            with pytest.raises(InvalidArgument):
                tracker.record_many(bad)  # type: ignore[arg-type]
        assert tracker.get(NS, "a") == before


JOB = "job-1"

BAD_NAMES = [
    pytest.param("a/b", id="slash"),
    pytest.param("..", id="dotdot"),
    pytest.param("../etc", id="dotdot-slash"),
    pytest.param(".", id="dot"),
    pytest.param("a b", id="space"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("x" * 129, id="129-chars"),
    pytest.param("ünïcode", id="non-ascii"),
    pytest.param("٣", id="non-ascii-digit"),
    pytest.param("", id="empty"),
    pytest.param("abc\n", id="trailing-newline"),
    pytest.param("a:b", id="colon"),
    pytest.param("{a}", id="braces"),
    pytest.param("a*", id="glob"),
    pytest.param("C:\\x", id="backslash"),
    pytest.param(None, id="None"),
    pytest.param(12, id="int"),
    pytest.param(b"abc", id="bytes"),
]

Call = Callable[[JobTracker, Any], object]

NAME_CALLS: dict[str, Call] = {
    "start-ns": lambda t, bad: t.start(bad, 1),
    "start-id": lambda t, bad: t.start(NS, 1, job_id=bad),
    "record-ns": lambda t, bad: t.record(bad, JOB, processed=1),
    "record-id": lambda t, bad: t.record(NS, bad, processed=1),
    "get-ns": lambda t, bad: t.get(bad, JOB),
    "get-id": lambda t, bad: t.get(NS, bad),
    "abort-id": lambda t, bad: t.abort(NS, bad, "x"),
    "delete-ns": lambda t, bad: t.delete(bad, JOB),
    "delete-id": lambda t, bad: t.delete(NS, bad),
    "list-ns": lambda t, bad: t.list(bad),
}


def snapshot(tracker: JobTracker) -> object:
    return tracker.get(NS, JOB), tracker.list(NS).items


NAME_CASES = [
    pytest.param(call, bad.values[0], id=f"{call}-{bad.id}")
    for call in NAME_CALLS
    for bad in BAD_NAMES
    if not (call == "start-id" and bad.values[0] is None)  # None means "generate one"
]


UPDATES: list[tuple[str, dict[str, Any], type[JobtrackError], str]] = [
    ("negative-processed", {"processed": -1}, InvalidUpdate, ">= 0"),
    ("negative-successful", {"successful": -1}, InvalidUpdate, ">= 0"),
    ("negative-failed", {"failed": -2, "error": "x"}, InvalidUpdate, ">= 0"),
    ("bool-delta", {"processed": True}, InvalidUpdate, "int"),
    ("float-delta", {"successful": 1.0}, InvalidUpdate, "int"),
    ("str-delta", {"failed": "1"}, InvalidUpdate, "int"),
    ("none-delta", {"processed": None}, InvalidUpdate, "int"),
    ("overflow-processed", {"processed": 9}, InvalidUpdate, "more than total"),
    ("overflow-done", {"successful": 5, "failed": 4}, InvalidUpdate, "more than total"),
    ("overflow-huge", {"successful": 2**63}, InvalidUpdate, "<="),
    ("overflow-max", {"successful": MAX_COUNT}, InvalidUpdate, "more than total"),
    ("error-without-failure", {"successful": 1, "error": "why"}, InvalidUpdate, "failed >= 1"),
    ("error-alone", {"error": "why"}, InvalidUpdate, "failed >= 1"),
    ("empty-error", {"failed": 1, "error": ""}, InvalidUpdate, "non-empty"),
    ("non-str-error", {"failed": 1, "error": 42}, InvalidUpdate, "string"),
]


class _BadInput:
    @pytest.fixture
    def job_tracker(self, tracker: JobTracker) -> JobTracker:
        tracker.start(NS, 10, job_id=JOB)
        tracker.record(NS, JOB, processed=2, successful=1, failed=1, error="first")
        return tracker

    @pytest.mark.parametrize(("call", "bad"), NAME_CASES)
    def test_bad_names_are_rejected(self, job_tracker: JobTracker, call: str, bad: object) -> None:
        before = snapshot(job_tracker)
        with pytest.raises(InvalidName) as info:
            NAME_CALLS[call](job_tracker, bad)
        assert isinstance(info.value, ValueError)
        assert "namespace" in str(info.value) or "job id" in str(info.value)
        assert snapshot(job_tracker) == before

    def test_longest_name_is_fine(self, tracker: JobTracker) -> None:
        name = "A-z_9" * 25 + "abc"
        assert len(name) == 128
        assert tracker.start(name, 1, job_id=name).job_id == name

    BAD_TOTALS = (-1, True, False, 1.0, "3", None, MAX_COUNT + 1, 2**64, 10**5000)

    @pytest.mark.parametrize("total", BAD_TOTALS, ids=shown)
    def test_bad_totals(self, job_tracker: JobTracker, total: object) -> None:
        before = snapshot(job_tracker)
        with pytest.raises(InvalidUpdate, match="total"):
            job_tracker.start(NS, total, job_id="other")  # type: ignore[arg-type]
        assert snapshot(job_tracker) == before

    @pytest.mark.parametrize(
        ("deltas", "error", "message"), [u[1:] for u in UPDATES], ids=[u[0] for u in UPDATES]
    )
    def test_bad_updates(
        self, job_tracker: JobTracker, deltas: dict[str, Any], error: type[Exception], message: str
    ) -> None:
        before = snapshot(job_tracker)
        with pytest.raises(error, match=message):
            job_tracker.record(NS, JOB, **deltas)
        assert snapshot(job_tracker) == before

    def test_updates_after_completion(self, job_tracker: JobTracker) -> None:
        done = job_tracker.record(NS, JOB, successful=8)
        before = snapshot(job_tracker)
        calls: tuple[Callable[[], object], ...] = (
            lambda: job_tracker.record(NS, JOB, processed=1),
            lambda: job_tracker.record(NS, JOB),
            lambda: job_tracker.record(NS, JOB, failed=1, error="late"),
            lambda: job_tracker.abort(NS, JOB, "late"),
        )
        for call in calls:
            with pytest.raises(JobFinished, match="already completed"):
                call()
        assert snapshot(job_tracker) == before
        assert before[0] == done  # type: ignore[index]

    def test_duplicate_job_id(self, job_tracker: JobTracker) -> None:
        before = snapshot(job_tracker)
        with pytest.raises(JobExists):
            job_tracker.start(NS, 3, job_id=JOB)
        assert snapshot(job_tracker) == before

    def test_positional_deltas_are_refused(self, job_tracker: JobTracker) -> None:
        with pytest.raises(TypeError):
            job_tracker.record(NS, JOB, 1)  # type: ignore[call-arg]


_ids = itertools.count()

errors = st.none() | st.text(min_size=1, max_size=1200)
small = st.integers(0, 6)
record_ops = st.tuples(st.just("record"), small, small, small, errors)
abort_ops = st.tuples(st.just("abort"), st.text(min_size=1, max_size=1100))
clock_ops = st.tuples(st.just("clock"), st.integers(-5_000, 60_000))
operations = st.lists(
    st.one_of(record_ops, record_ops, record_ops, clock_ops, abort_ops), max_size=25
)


def _run_against_reference(
    store: Store, tracker_factory: TrackerFactory, total: int, ops: list[tuple[object, ...]]
) -> tuple[JobTracker, str, RefJob]:
    """Apply *ops* to a new job and to a :class:`RefJob`; after each, both must agree.

    An op is ``("clock", ms)``, ``("abort", error)``, ``("extend", more)``,
    ``("record", p, s, f, error)`` or ``("item", name, p, "s"|"f"|"", error)``.
    """
    clock = ManualClock()
    tracker = tracker_factory(store, clock=clock)
    job_id = f"p{next(_ids)}"
    tracker.start(PROP_NS, total, job_id=job_id)
    ref = RefJob(total, T0)
    for op in ops:
        if op[0] == "clock":
            clock.advance(milliseconds=op[1])  # type: ignore[arg-type]
            continue
        try:
            if op[0] == "abort":
                expected = ref.abort(op[1], clock.now)  # type: ignore[arg-type]
                result = tracker.abort(PROP_NS, job_id, op[1])  # type: ignore[arg-type]
            elif op[0] == "extend":
                expected = ref.extend(op[1], clock.now)  # type: ignore[arg-type]
                result = tracker.extend(PROP_NS, job_id, op[1])  # type: ignore[arg-type]
            elif op[0] == "record":
                _, p, s, f, error = op
                error = error if f else None  # an error needs a failure (test_bad_input)
                expected = ref.record(p, s, f, error, clock.now)  # type: ignore[arg-type]
                result = tracker.record(PROP_NS, job_id, processed=p, successful=s,  # type: ignore[arg-type]
                                        failed=f, error=error)  # type: ignore[arg-type]  # fmt: skip
            else:
                _, item, p, outcome, error = op
                s, f = int(outcome == "s"), int(outcome == "f")
                if not (p or s or f):
                    p = 1
                error = error[:1000] if f and error else None  # type: ignore[index]
                expected = ref.record_item(item, p, s, f, error, clock.now)  # type: ignore[arg-type]
                result = tracker.record(PROP_NS, job_id, item=item, processed=p,  # type: ignore[arg-type]
                                        successful=s, failed=f, error=error)  # fmt: skip
        except JobFinished:
            assert expected == "finished", op
        except InvalidUpdate:
            assert expected == "invalid", op
        else:
            assert expected in (("ok", "noop") if op[0] == "item" else ("ok",)), op
            assert job_tuple(result) == ref.as_tuple(), op
        assert job_tuple(tracker.get(PROP_NS, job_id)) == ref.as_tuple()
    return tracker, job_id, ref


_property_test = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
"""Hypothesis settings of the property tests: the store fixture is the same for every example."""


class _Properties:
    @_property_test
    @given(total=st.integers(0, 20), ops=operations)
    def test_random_updates_match_the_reference_model(
        self,
        store: Store,
        tracker_factory: TrackerFactory,
        total: int,
        ops: list[tuple[object, ...]],
    ) -> None:
        tracker, job_id, _ = _run_against_reference(store, tracker_factory, total, ops)
        assert tracker.delete(PROP_NS, job_id)

    def test_reference_model_sanity(self) -> None:
        ref = RefJob(2, T0)
        assert ref.record(1, 1, 0, None, T0 + dt.timedelta(seconds=1)) == "ok"
        assert ref.record(0, 2, 0, None, T0) == "invalid"
        assert ref.record(0, 0, 1, "x", T0) == "ok"
        assert ref.finished == T0 + dt.timedelta(seconds=1)
        assert ref.abort("y", T0) == "finished"


ITEM = "s3://bucket/a.pdf"
LONG_ITEM = "s3://bucket/" + "x" * 28  # 40 characters: stores may keep a digest of it


def _items_or_skip(store: Store) -> None:
    if not features_of(store).items:
        pytest.skip(f"{type(store).__name__} does not keep items (Features.items)")


def _all_failed(tracker: JobTracker, job_id: str, limit: int = 2) -> list[tuple[object, ...]]:
    """Every failed item, page by page."""
    out: list[tuple[object, ...]] = []
    cursor = None
    while True:
        page = tracker.failed_items(NS, job_id, limit=limit, cursor=cursor)
        out += [(f.item, f.error, f.failed_at) for f in page.items]
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def _error_list(tracker: JobTracker, job_id: str) -> list[tuple[object, ...]]:
    return [(e.message, e.count, e.first_at, e.last_at) for e in tracker.errors(NS, job_id)]


class _Items:
    """SPEC section 5: idempotent item updates, failed items, error counts."""

    @pytest.fixture
    def job(self, tracker: JobTracker, store: Store) -> str:
        _items_or_skip(store)
        return tracker.start(NS, 5, job_id=JOB).job_id

    def test_a_redelivery_changes_nothing(
        self, tracker: JobTracker, job: str, clock: ManualClock
    ) -> None:
        first = tracker.record(NS, job, item=ITEM, processed=1, successful=1)
        assert (first.processed, first.successful) == (1, 1)
        clock.advance(seconds=5)
        tracker.record(NS, job, item="b", failed=1, error="bad PDF")  # last_error names b
        now = tracker.get(NS, job)
        clock.advance(seconds=5)
        for _ in range(3):
            assert tracker.record(NS, job, item=ITEM, processed=1, successful=1) == now
            assert tracker.record(NS, job, item="b", failed=1, error="bad PDF") == now
            assert tracker.record(NS, job, item="b", failed=1) == now  # no new error text
        assert tracker.get(NS, job) == now  # counters, last_error, updated_at as they were

    def test_a_retry_that_works_moves_one_count(self, tracker: JobTracker, job: str) -> None:
        tracker.record(NS, job, item=ITEM, processed=1, failed=1, error="timeout")
        job_after = tracker.record(NS, job, item=ITEM, successful=1)
        assert (job_after.processed, job_after.successful, job_after.failed) == (1, 1, 0)
        assert job_after.last_error == "timeout"  # the latest failure still says why
        assert tracker.failed_items(NS, job).items == ()
        # successful stays successful, whatever comes later
        assert tracker.record(NS, job, item=ITEM, failed=1, error="late") == job_after
        assert tracker.record(NS, job, item=ITEM, processed=1, successful=1) == job_after

    def test_a_new_error_for_a_failed_item(
        self, tracker: JobTracker, job: str, clock: ManualClock
    ) -> None:
        tracker.record(NS, job, item=ITEM, failed=1, error="first")
        clock.advance(seconds=1)
        again = tracker.record(NS, job, item=ITEM, failed=1, error="second")
        assert (again.failed, again.last_error, again.updated_at) == (1, "second", clock.now)
        [item] = tracker.failed_items(NS, job).items
        assert (item.item, item.error, item.failed_at) == (ITEM, "second", clock.now)
        counts = {e.message: e.count for e in tracker.errors(NS, job)}
        assert counts == {"first": 1, "second": 1}

    def test_processed_counts_once_per_item(self, tracker: JobTracker, job: str) -> None:
        tracker.record(NS, job, item=ITEM, processed=1)
        tracker.record(NS, job, item=ITEM, processed=1, failed=1)
        status = tracker.record(NS, job, item=ITEM, processed=1, successful=1)
        assert (status.processed, status.successful, status.failed) == (1, 1, 0)

    def test_completion_and_redelivery_after_it(self, tracker: JobTracker, store: Store) -> None:
        _items_or_skip(store)
        tracker.start(NS, 2, job_id=JOB)
        tracker.record(NS, JOB, item="a", successful=1, processed=1)
        done = tracker.record(NS, JOB, item=LONG_ITEM, failed=1, error="no")
        assert done.is_finished and (done.successful, done.failed) == (1, 1)  # a failure completes
        # redeliveries are answered with the job as it is
        assert tracker.record(NS, JOB, item="a", successful=1, processed=1) == done
        assert tracker.record(NS, JOB, item=LONG_ITEM, failed=1, error="no") == done
        assert tracker.record(NS, JOB, item="a", failed=1) == done  # successful stays so
        # what would change a completed job is refused
        for change in (
            {"item": LONG_ITEM, "successful": 1},  # a retry that works, too late
            {"item": LONG_ITEM, "failed": 1, "error": "other"},
            {"item": LONG_ITEM, "processed": 1},
            {"item": "new", "successful": 1},
        ):
            with pytest.raises(JobFinished):
                tracker.record(NS, JOB, **change)  # type: ignore[arg-type]
        assert tracker.get(NS, JOB) == done
        assert [f.item for f in tracker.failed_items(NS, JOB).items] == [LONG_ITEM]

    def test_items_and_anonymous_updates_mix_under_one_total(
        self, tracker: JobTracker, job: str
    ) -> None:
        tracker.record(NS, job, processed=3, successful=3)
        tracker.record(NS, job, item="a", successful=1)
        with pytest.raises(InvalidUpdate, match="more than total"):
            tracker.record(NS, job, successful=2)
        done = tracker.record(NS, job, item="b", failed=1)
        assert done.is_finished and (done.successful, done.failed) == (4, 1)

    def test_an_item_beyond_the_total_is_rejected_whole(
        self, tracker: JobTracker, store: Store
    ) -> None:
        _items_or_skip(store)
        tracker.start(NS, 2, job_id=JOB)
        tracker.record(NS, JOB, processed=2, successful=1)
        before = tracker.get(NS, JOB)
        with pytest.raises(InvalidUpdate, match="processed"):
            tracker.record(NS, JOB, item="a", processed=1, successful=1)
        assert tracker.get(NS, JOB) == before
        # the item was not stored: it may still count
        assert tracker.record(NS, JOB, item="a", successful=1).is_finished

    BAD_ITEMS: tuple[tuple[dict[str, Any], str], ...] = (
        ({"item": "", "successful": 1}, "1 to 512"),
        ({"item": "x" * 513, "successful": 1}, "1 to 512"),
        ({"item": "a\nb", "successful": 1}, "control"),
        ({"item": "a\x00", "successful": 1}, "control"),
        ({"item": "a\x7f", "successful": 1}, "control"),
        ({"item": "a\x85", "successful": 1}, "control"),
        ({"item": "a\ud800", "successful": 1}, "surrogate"),
        ({"item": 12, "successful": 1}, "string"),
        ({"item": b"a", "successful": 1}, "string"),
        ({"item": "a", "successful": 2}, "0 or 1"),
        ({"item": "a", "processed": 2}, "0 or 1"),
        ({"item": "a", "successful": 1, "failed": 1}, "both"),
        ({"item": "a"}, "needs"),
        ({"item": "a", "successful": 1, "error": "x"}, "failed >= 1"),
        ({"item": "a", "failed": 1, "error": ""}, "non-empty"),
        ({"item": "a", "successful": -1}, ">= 0"),
    )

    @pytest.mark.parametrize(("args", "message"), BAD_ITEMS)
    def test_bad_item_updates_change_nothing(
        self, tracker: JobTracker, job: str, args: dict[str, Any], message: str
    ) -> None:
        tracker.record(NS, job, item="ok", failed=1, error="e")
        before = tracker.get(NS, job), _all_failed(tracker, job), _error_list(tracker, job)
        with pytest.raises(InvalidUpdate, match=message):
            tracker.record(NS, job, **args)
        with pytest.raises(InvalidUpdate, match=message):
            tracker.record_many(
                [Update(NS, job, item="fine", successful=1), Update(NS, job, **args)]
            )
        assert (
            tracker.get(NS, job),
            _all_failed(tracker, job),
            _error_list(tracker, job),
        ) == before

    def test_longest_item_and_any_printable_text(self, tracker: JobTracker, job: str) -> None:
        for item in ("x" * 512, "ünï cödé/ä.pdf", "a:b{c}*?", " ", "日本語" * 100):
            assert tracker.record(NS, job, item=item, failed=1, error="e").failed >= 1
        items = [f.item for f in tracker.failed_items(NS, job).items]
        assert items == ["x" * 512, "ünï cödé/ä.pdf", "a:b{c}*?", " ", "日本語" * 100]

    def test_record_many_takes_items(self, tracker: JobTracker, job: str) -> None:
        results = tracker.record_many(
            [
                Update(NS, job, item="a", processed=1, successful=1),
                Update(NS, job, item="a", processed=1, successful=1),  # redelivered at once
                Update(NS, job, item="b", failed=1, error="x"),
                Update(NS, job, item="b", successful=1),
                Update(NS, "missing", item="a", successful=1),
            ]
        )
        assert [r.successful if isinstance(r, JobStatus) else type(r) for r in results] == [
            1, 1, 1, 2, JobNotFound,
        ]  # fmt: skip
        final = tracker.get(NS, job)
        assert (final.processed, final.successful, final.failed) == (1, 2, 0)

    def test_failed_items_page_in_the_order_they_failed(
        self, tracker: JobTracker, store: Store, clock: ManualClock
    ) -> None:
        _items_or_skip(store)
        tracker.start(NS, 20, job_id=JOB)
        for i in range(7):
            clock.advance(seconds=1)
            tracker.record(NS, JOB, item=f"i{i}", failed=1, error=f"e{i}" if i % 2 else None)
        tracker.record(NS, JOB, item="i2", successful=1)  # no longer listed
        clock.advance(seconds=1)
        tracker.record(NS, JOB, item="i0", failed=1, error="again")  # listed last now
        listed = _all_failed(tracker, JOB, limit=2)
        assert [entry[:2] for entry in listed] == [
            ("i1", "e1"), ("i3", "e3"), ("i4", None), ("i5", "e5"), ("i6", None), ("i0", "again"),
        ]  # fmt: skip
        assert listed[-1][2] == clock.now
        page = tracker.failed_items(NS, JOB, limit=6)
        assert len(page.items) == 6 and page.next_cursor is None
        with pytest.raises(InvalidArgument):
            tracker.failed_items(NS, JOB, cursor="nope")
        with pytest.raises(InvalidArgument):
            tracker.failed_items(NS, JOB, limit=0)
        with pytest.raises(JobNotFound):
            tracker.failed_items(NS, "missing")
        with pytest.raises(JobNotFound):
            tracker.errors("other-ns", JOB)

    def test_many_retries_and_refailures_keep_the_list_in_order(
        self, tracker: JobTracker, store: Store
    ) -> None:
        _items_or_skip(store)
        tracker.start(NS, 1000, job_id=JOB)
        for i in range(300):
            tracker.record(NS, JOB, item=f"i{i}", failed=1, error="first")
        for i in range(300):
            if i % 3 != 1:
                tracker.record(NS, JOB, item=f"i{i}", successful=1)  # leaves the list
        for i in range(1, 150, 3):
            tracker.record(NS, JOB, item=f"i{i}", failed=1, error="again")  # moves to the end
        listed = _all_failed(tracker, JOB, limit=37)
        expected = [f"i{i}" for i in range(151, 300, 3)] + [f"i{i}" for i in range(1, 150, 3)]
        assert [entry[0] for entry in listed] == expected
        status = tracker.get(NS, JOB)
        assert (status.successful, status.failed) == (200, 100)

    def test_error_counts(self, tracker: JobTracker, store: Store, clock: ManualClock) -> None:
        _items_or_skip(store)
        tracker.start(NS, 30, job_id=JOB)
        t1 = clock.advance(seconds=1)
        tracker.record(NS, JOB, failed=5, error="disk full")  # counts 5
        tracker.record(NS, JOB, failed=1)  # no error: not counted
        t2 = clock.advance(seconds=1)
        tracker.record(NS, JOB, item="a", failed=1, error="timeout")
        tracker.record(NS, JOB, item="a", failed=1, error="timeout")  # redelivery: nothing
        tracker.record(NS, JOB, item="a", successful=1)  # a retry that worked: no subtraction
        t3 = clock.advance(seconds=1)
        tracker.record(NS, JOB, item="b", failed=1, error="timeout")
        done = tracker.abort(NS, JOB, "gave up")  # counts the 22 items it fails
        assert (done.successful, done.failed) == (1, 29)
        assert _error_list(tracker, JOB) == [
            ("gave up", 22, t3, t3), ("disk full", 5, t1, t1), ("timeout", 2, t2, t3),
        ]  # fmt: skip

    def test_at_most_100_messages_then_one_group_without_one(
        self, tracker: JobTracker, store: Store
    ) -> None:
        _items_or_skip(store)
        tracker.start(NS, 1000, job_id=JOB)
        tracker.record_many(
            [Update(NS, JOB, item=f"i{i}", failed=1, error=f"error {i}") for i in range(130)]
        )
        tracker.record(NS, JOB, failed=4, error="error 7")  # a known message still counts there
        tracker.record(NS, JOB, failed=3, error="brand new")
        groups = tracker.errors(NS, JOB)
        assert len(groups) == 101
        # most frequent first, the group of later messages among the others
        assert [(g.message, g.count) for g in groups[:2]] == [(None, 30 + 3), ("error 7", 5)]
        assert [g.message for g in groups[2:]] == sorted(f"error {i}" for i in range(100) if i != 7)
        assert sum(g.count for g in groups) == 130 + 4 + 3

    def test_error_counts_stop_at_the_largest_count(
        self, tracker: JobTracker, store: Store
    ) -> None:
        _items_or_skip(store)
        tracker.start(NS, MAX_COUNT, job_id=JOB)
        tracker.record(NS, JOB, failed=MAX_COUNT - 2, error="e1")
        for i in range(6):  # a failed item failing again and again counts again
            tracker.record(NS, JOB, item="a", failed=1, error="e2" if i % 2 == 0 else "e1")
        counts = {g.message: g.count for g in tracker.errors(NS, JOB)}
        assert counts == {"e1": MAX_COUNT, "e2": 3}

    def test_delete_takes_the_items_along(self, tracker: JobTracker, job: str) -> None:
        tracker.record(NS, job, item="a", failed=1, error="x")
        assert tracker.delete(NS, job)
        tracker.start(NS, 5, job_id=job)
        assert tracker.failed_items(NS, job).items == () and tracker.errors(NS, job) == []
        assert tracker.record(NS, job, item="a", failed=1, error="x").failed == 1  # new again

    def test_threads_redelivering_count_each_item_once(self, store: Store) -> None:
        _items_or_skip(store)
        tracker = JobTracker(store)
        job = tracker.start(NS, 60)
        finished: set[object] = set()

        def work(seed: int) -> None:
            # the retried items first: a failure counts towards completion
            order = [i for i in range(60) if i % 4 == 0] + [i for i in range(60) if i % 4]
            order = order[seed:15] + order[:seed] + order[15 + seed :] + order[15 : 15 + seed]
            for i in order:
                if i % 4 == 0:
                    tracker.record(NS, job.job_id, item=f"i{i}", failed=1, error="transient")
                status = tracker.record(NS, job.job_id, item=f"i{i}", processed=1, successful=1)
                if status.is_finished:
                    finished.add(status.finished_at)

        threads = [threading.Thread(target=work, args=(seed * 2,)) for seed in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        final = tracker.get(NS, job.job_id)
        assert (final.processed, final.successful, final.failed) == (60, 60, 0)
        assert finished == {final.finished_at}
        assert tracker.failed_items(NS, job.job_id).items == ()
        assert [(e.message, e.count) for e in tracker.errors(NS, job.job_id)] == [("transient", 15)]


_item_names = st.sampled_from(["a", "b", "c", LONG_ITEM, "ünï"])
_item_errors = st.sampled_from([None, "e1", "e2", "x" * 1100])
_item_ops = st.tuples(
    st.just("item"), _item_names, st.integers(0, 1), st.sampled_from(["s", "f", ""]), _item_errors
)
extend_ops = st.tuples(st.just("extend"), st.integers(1, 3))
item_operations = st.lists(
    st.one_of(_item_ops, _item_ops, _item_ops, record_ops, clock_ops, abort_ops, extend_ops),
    max_size=25,
)


class _ItemProperties:
    @_property_test
    @given(total=st.integers(0, 12), ops=item_operations)
    def test_random_redeliveries_and_retries_match_the_reference_model(
        self,
        store: Store,
        tracker_factory: TrackerFactory,
        total: int,
        ops: list[tuple[object, ...]],
    ) -> None:
        _items_or_skip(store)
        tracker, job_id, ref = _run_against_reference(store, tracker_factory, total, ops)
        failed = tracker.failed_items(PROP_NS, job_id, limit=1000).items
        assert [(f.item, f.error, f.failed_at) for f in failed] == ref.failed_list
        errors = tracker.errors(PROP_NS, job_id)
        assert [(e.message, e.count, e.first_at, e.last_at) for e in errors] == ref.error_list()
        assert tracker.delete(PROP_NS, job_id)


def unopenable_elsewhere(url: str) -> str | None:
    """Why a new interpreter could not open *url* (no entry point for its scheme), or None."""
    scheme = StoreURL.parse(url).scheme
    builtin = getattr(SCHEMES.get(scheme), "__module__", "").startswith("jobtrack.")
    if builtin or importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=scheme):
        return None
    return (
        f"{scheme}:// has no {ENTRY_POINT_GROUP!r} entry point: the worker processes "
        f"(new interpreters) cannot open {url!r}; install the package that declares it "
        "(docs/testing.md)"
    )


@contextlib.contextmanager
def _racing_writers(
    url: str, writer: JobTracker, job_ids: list[str]
) -> Iterator[AsyncResult[list[list[tuple[str, int]]]]]:
    """Three spawned processes updating *job_ids* (``worker.write_while_reaped``).

    Yields once they have written 60 updates; their result is, per process,
    the (job id, updated ms) of each update the store acknowledged.
    """
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        pending = pool.starmap_async(
            worker.write_while_reaped, [(url, NS, job_ids, 300, seed) for seed in range(3)]
        )
        started = dt.datetime.now(UTC)
        while sum(writer.get(NS, job_id).processed for job_id in job_ids) < 60:
            assert not pending.ready(), "the writers ended before they wrote"
            assert dt.datetime.now(UTC) - started < dt.timedelta(seconds=60)
        yield pending


def _steady(tracker: JobTracker, clock: ManualClock, per_s: int, seconds: int) -> JobStatus:
    """Record *per_s* items a second, one update a second, for *seconds*; the last status."""
    status = None
    for _ in range(seconds):
        clock.advance(seconds=1)
        status = tracker.record(NS, JOB, processed=per_s, successful=per_s)
    assert status is not None
    return status


class _Progress:
    """SPEC section 8: the smoothed rate kept with the job (rules.add_rate), and progress()."""

    def test_a_steady_pace_reads_steady(self, stalling: JobTracker, clock: ManualClock) -> None:
        stalling.start(NS, 100_000, job_id=JOB)
        status = _steady(stalling, clock, 10, 300)
        progress = stalling.progress(status)
        assert progress.rate_per_s == pytest.approx(10, rel=1e-6)
        assert progress.elapsed_s == 300.0 and progress.percent == 3.0
        assert progress.eta_at is not None  # what remains at that rate, to the ms
        assert (progress.eta_at - clock.now).total_seconds() == pytest.approx(9700, abs=1e-3)
        assert (progress.stalled, progress.expires_at) == (False, None)
        read = stalling.get(NS, JOB)  # what the store keeps is what the update returned
        assert (read.rate, read.rate_at) == (status.rate, status.rate_at)
        assert read.rate == pytest.approx(_replayed(10, 300), rel=1e-12)
        assert read.rate_at == to_ms(clock.now)

    def test_a_change_of_pace_shows_within_two_minutes(
        self, tracker: JobTracker, clock: ManualClock
    ) -> None:
        tracker.start(NS, 100_000, job_id=JOB)
        _steady(tracker, clock, 10, 300)
        a_minute = tracker.progress(_steady(tracker, clock, 2, 60)).rate_per_s
        two_minutes = tracker.progress(_steady(tracker, clock, 2, 60)).rate_per_s
        # a 60 s time constant: the old pace weighs e^-1 after a minute, e^-2 after two
        assert 2 < two_minutes < a_minute < 5
        assert two_minutes < 2 + 0.15 * (10 - 2)

    def test_items_at_one_instant_read_as_the_plain_average(
        self, tracker: JobTracker, clock: ManualClock
    ) -> None:
        started = tracker.start(NS, 1000, job_id=JOB)
        assert tracker.progress(started).rate_per_s == 0.0  # nothing done, nothing elapsed
        assert tracker.progress(started).eta_at is None
        clock.advance(seconds=10)
        status = tracker.record(NS, JOB, processed=30, successful=25, failed=5, error="bad")
        assert tracker.progress(status).rate_per_s == pytest.approx(3.0, rel=1e-9)  # 30 in 10 s
        at_once = tracker.start(NS, 1000, job_id="at-once")  # at the start's instant: N / tau
        status = tracker.record(NS, "at-once", successful=600)
        assert tracker.progress(status).rate_per_s == 0.0  # nothing elapsed
        assert tracker.progress(at_once).rate_per_s == 0.0
        clock.advance(seconds=10)  # N / tau decayed for 10 s, over the weight 10 s allow
        decayed = 600 / 60 * math.exp(-10 / 60) / -math.expm1(-10 / 60)
        assert tracker.progress(status).rate_per_s == pytest.approx(decayed, rel=1e-12)
        assert tracker.progress(tracker.get(NS, "at-once")).rate_per_s == pytest.approx(
            decayed, rel=1e-12
        )

    def test_items_within_a_second_read_as_if_each_moved_the_rate(
        self, tracker: JobTracker, clock: ManualClock
    ) -> None:
        # a SQL store folds the items done into the rate once a second (rate_done stays behind
        # on its fast path), progress() folds the rest as of updated_at: the same readings
        # (for a steady pace: a fold of items done at several times, at the last, is the same)
        tracker.start(NS, 100_000, job_id=JOB)
        rate, since = 0.0, to_ms(T0)
        for _ in range(12):
            clock.advance(milliseconds=250)
            status = tracker.record(NS, JOB, processed=5, successful=5)
            rate, since = add_rate(rate, since, 5, to_ms(clock.now))
            assert 0 <= status.rate_done <= status.done == status.successful
            expected = rate / -math.expm1(-(to_ms(clock.now) - to_ms(T0)) / RATE_TAU_MS)
            for read in (status, tracker.get(NS, JOB)):
                assert tracker.progress(read).rate_per_s == pytest.approx(expected, rel=1e-9)
            assert tracker.progress(read).rate_per_s == pytest.approx(20, rel=1e-9)

    def test_updates_that_do_no_item_leave_the_rate(
        self, tracker: JobTracker, store: Store, clock: ManualClock
    ) -> None:
        tracker.start(NS, 100, job_id=JOB)
        clock.advance(seconds=10)
        moved = tracker.record(NS, JOB, processed=5, successful=4, failed=1, error="bad")
        kept = (moved.rate, moved.rate_at)
        assert moved.rate == pytest.approx(5 * 1000 * -math.expm1(-10 / 60) / 10_000, rel=1e-12)
        assert moved.rate_at == to_ms(clock.now)
        clock.advance(seconds=5)
        for status in (
            tracker.heartbeat(NS, JOB),
            tracker.record(NS, JOB, processed=3),  # processed, not done
            tracker.extend(NS, JOB, 10),
            tracker.get(NS, JOB),
        ):
            assert (status.rate, status.rate_at) == kept
        if features_of(store).items:  # a redelivery moves nothing; a retry that works neither
            tracker.record(NS, JOB, item=ITEM, failed=1, error="timeout")
            first = tracker.get(NS, JOB)
            clock.advance(seconds=5)
            reading = tracker.progress(first).rate_per_s
            for status in (
                tracker.record(NS, JOB, item=ITEM, failed=1, error="timeout"),
                tracker.record(NS, JOB, item=ITEM, successful=1),
                tracker.record(NS, JOB, item=ITEM, processed=1, successful=1),
                tracker.get(NS, JOB),
            ):  # (a store may fold the failure in only now, as of its update: the same reading)
                assert tracker.progress(status).rate_per_s == pytest.approx(reading, rel=1e-12)
        before = tracker.progress(tracker.get(NS, JOB))
        aborted = tracker.abort(NS, JOB, "gave up")  # not items done: no spike at the end
        assert tracker.progress(aborted).rate_per_s == pytest.approx(before.rate_per_s, rel=1e-12)

    def test_a_stalled_job_decays_towards_zero(
        self, stalling: JobTracker, clock: ManualClock
    ) -> None:
        stalling.start(NS, 100_000, job_id=JOB)
        status = _steady(stalling, clock, 10, 300)
        clock.advance(minutes=10)
        progress = stalling.progress(status)
        assert progress.stalled
        # 5 minutes at 10/s, then 10 minutes of nothing: e^-10 of it left
        decayed = 10 * math.exp(-10) * -math.expm1(-5) / -math.expm1(-15)
        assert progress.rate_per_s == pytest.approx(decayed, rel=1e-6)
        assert progress.eta_at is None  # no promise while nobody works on it
        assert progress.elapsed_s == 900.0

    def test_eta_is_null_while_the_rate_is_zero_or_the_job_is_done(
        self, tracker_factory: TrackerFactory, store: Store, clock: ManualClock
    ) -> None:
        keeping = tracker_factory(store, clock=clock, retain=dt.timedelta(days=1))
        keeping.start(NS, 20, job_id=JOB)
        clock.advance(seconds=30)
        idle = keeping.heartbeat(NS, JOB)
        assert keeping.progress(idle).rate_per_s == 0.0
        assert keeping.progress(idle).eta_at is None
        clock.advance(seconds=10)
        half = keeping.record(NS, JOB, processed=10, successful=10)
        progress = keeping.progress(half)
        assert progress.rate_per_s == pytest.approx(0.25, rel=1e-9)  # 10 in 40 s
        assert progress.eta_at is not None
        assert (progress.eta_at - clock.now).total_seconds() == pytest.approx(40, abs=1e-3)
        clock.advance(seconds=20)
        done = keeping.record(NS, JOB, processed=10, successful=10)
        finished = keeping.progress(done)
        assert finished.eta_at is None and finished.percent == 100.0 and not finished.stalled
        assert finished.expires_at == done.expires_at == clock.now + dt.timedelta(days=1)
        clock.advance(hours=3)  # a completed job reads as of its finished_at
        later = keeping.progress(keeping.get(NS, JOB))
        assert later == finished
        assert later.elapsed_s == 60.0 and 0.25 < later.rate_per_s < 0.5  # the later pace weighs
        assert later.to_dict() == {
            "percent": 100.0,
            "rate_per_s": later.rate_per_s,
            "eta_at": None,
            "elapsed_s": 60.0,
            "stalled": False,
            "expires_at": format_timestamp(done.updated_at + dt.timedelta(days=1)),
        }

    def test_progress_takes_a_status(self, tracker: JobTracker) -> None:
        job = tracker.start(NS, 2, job_id=JOB)
        naive = attrs.evolve(job, started_at=job.started_at.replace(tzinfo=None))
        rated = attrs.evolve(job, rate="fast")  # type: ignore[arg-type]
        for bad in ("job-1", None, naive, rated):
            with pytest.raises(InvalidArgument):
                tracker.progress(bad)  # type: ignore[arg-type]


def _replayed(per_s: int, seconds: int) -> float:
    """The rate rules.add_rate keeps after *per_s* items a second for *seconds*, from T0."""
    rate, since = 0.0, to_ms(T0)
    for second in range(1, seconds + 1):
        rate, since = add_rate(rate, since, per_s, to_ms(T0) + second * 1000)
    return rate


class _Processes:
    """Stores whose jobs processes share (``features.processes``), opened by ``store.url``."""

    @pytest.fixture
    def shared_url(self, store: Store) -> str:
        if not features_of(store).processes:
            pytest.skip(f"{type(store).__name__} is not shared by processes")
        url = getattr(store, "url", None)
        assert isinstance(url, str), "a store shared by processes needs a url to open it by"
        problem = unopenable_elsewhere(url)
        if problem:
            pytest.fail(problem)
        return url

    def test_processes_lose_no_update_and_complete_once(self, shared_url: str) -> None:
        procs, per_proc = 4, 400
        job = JobTracker(shared_url).start(NS, procs * per_proc)
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(procs) as pool:
            completions = pool.starmap(
                worker.hammer, [(shared_url, NS, job.job_id, per_proc, 8)] * procs
            )
        final = JobTracker(shared_url).get(NS, job.job_id)
        assert (final.processed, final.successful, final.failed) == (1600, 1400, 200)
        assert final.status is Status.COMPLETED
        assert final.last_error == "worker item failed"
        assert sum(completions) == 1

    def test_processes_redelivering_count_each_item_once(
        self, shared_url: str, store: Store
    ) -> None:
        _items_or_skip(store)
        procs, count = 4, 120
        job = JobTracker(shared_url).start(NS, count)
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(procs) as pool:
            seen = pool.starmap(
                worker.redeliver,
                [(shared_url, NS, job.job_id, count, seed) for seed in range(procs)],
            )
        tracker = JobTracker(shared_url)
        final = tracker.get(NS, job.job_id)
        assert (final.processed, final.successful, final.failed) == (count, count, 0)
        assert final.status is Status.COMPLETED
        assert final.finished_at is not None
        assert set(itertools.chain(*seen)) == {final.finished_at.isoformat()}  # completed once
        assert tracker.failed_items(NS, job.job_id).items == ()
        assert [(e.message, e.count) for e in tracker.errors(NS, job.job_id)] == [
            ("transient", count // 4)
        ]

    def test_processes_move_the_rate_atomically(self, shared_url: str) -> None:
        # every process records one item at a time, all at one frozen instant a minute after
        # the start: the first update spreads its item over that minute, each later one adds
        # 1/tau; an update lost between a read and a write of the rate would show
        procs, per_proc = 4, 100
        clock = ManualClock()
        job = JobTracker(shared_url, clock=clock).start(NS, 1000)
        at = to_ms(clock.advance(minutes=1))
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(procs) as pool:
            pool.starmap(worker.hammer_at, [(shared_url, NS, job.job_id, per_proc, at)] * procs)
        tracker = JobTracker(shared_url, clock=clock)
        final = tracker.get(NS, job.job_id)
        assert final.successful == procs * per_proc
        first = 1000 * -math.expm1(-60_000 / RATE_TAU_MS) / 60_000
        expected = first + (procs * per_proc - 1) * 1000 / RATE_TAU_MS
        # what the store folded (a SQL store: the first update's item), and what progress()
        # folds as it reads (the rest, at updated_at: the same instant)
        assert final.rate_at == at and 1 <= final.rate_done <= final.done
        assert tracker.progress(final).rate_per_s == pytest.approx(
            expected / -math.expm1(-1), rel=1e-9
        )
        done = tracker.record(NS, job.job_id, successful=600)  # completing: everything folded
        assert (done.rate_done, done.rate_at) == (1000, at)
        assert done.rate == pytest.approx(expected + 600 * 1000 / RATE_TAU_MS, rel=1e-9)

    def test_writers_racing_reap_are_never_both_updated_and_reaped(self, shared_url: str) -> None:
        # The reaper's clock runs an hour ahead with stall_after just under an hour, so every
        # job it lists looks stalled: only the conditional abort stands between a writer's
        # update and a reap of that job.
        ahead = ManualClock(dt.datetime.now(UTC) + dt.timedelta(hours=1))
        reaper = JobTracker(shared_url, clock=ahead, stall_after=dt.timedelta(minutes=59))
        writer = JobTracker(shared_url)  # the real clock, as the writer processes have
        job_ids = [writer.start(NS, 10_000, job_id=f"race{i}").job_id for i in range(12)]
        for job_id in job_ids:
            writer.record(NS, job_id, processed=1, successful=1)
        with _racing_writers(shared_url, writer, job_ids) as pending:
            reaped: dict[str, JobStatus] = {}
            while len(reaped) < len(job_ids):  # every job looks stalled: all end reaped
                ahead.now = dt.datetime.now(UTC) + dt.timedelta(hours=1)
                for job in reaper.reap(NS):
                    assert job.job_id not in reaped  # none completes twice
                    reaped[job.job_id] = job
            acked = list(itertools.chain(*pending.get(timeout=300)))
        for job_id in job_ids:
            final = reaper.get(NS, job_id)
            mine = [ms for jid, ms in acked if jid == job_id]
            assert final.processed == final.successful == len(mine) + 1  # no update lost
            job = reaped[job_id]
            assert final == job and final.failed == 10_000 - final.successful
            since = job.last_error.removeprefix("stalled: no update since ")  # type: ignore[union-attr]
            seen = int(dt.datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp() * 1000)
            assert all(ms <= seen for ms in mine), "a job updated after it was seen was reaped"

    def test_writers_racing_reap_and_purge_never_resurrect_a_job(self, shared_url: str) -> None:
        # As above, and the reaper also expires what it reaps at once (retain 0) and purges
        # it (or the store reclaims it by itself): a job is reaped once and goes once, and no
        # update lands after either.
        with JobTracker(shared_url) as probe:
            if not features_of(probe.store).expiry:
                pytest.skip("the store does not purge (Features.expiry)")
        ahead = ManualClock(dt.datetime.now(UTC) + dt.timedelta(hours=1))
        reaper = JobTracker(
            shared_url,
            clock=ahead,
            stall_after=dt.timedelta(minutes=59),
            retain=dt.timedelta(0),
            remember_expired=dt.timedelta(0),
        )
        writer = JobTracker(shared_url)
        job_ids = [writer.start(NS, 10_000, job_id=f"gone{i}").job_id for i in range(12)]
        with _racing_writers(shared_url, writer, job_ids) as pending:
            reaped: dict[str, JobStatus] = {}
            left = set(job_ids)
            purged = 0
            while left:  # (a store that reclaims by itself may leave purge() less to do)
                ahead.now = dt.datetime.now(UTC) + dt.timedelta(hours=1)
                for job in reaper.reap(NS):
                    assert job.job_id not in reaped  # none completes twice
                    reaped[job.job_id] = job
                purged += reaper.purge()
                for job_id in sorted(left):
                    if reaper.store.get(NS, job_id) is None:
                        assert job_id in reaped  # only completed jobs ever go
                        left.remove(job_id)
                assert purged <= len(reaped)
            acked = list(itertools.chain(*pending.get(timeout=300)))
        assert reaper.purge() == 0
        for job_id in job_ids:
            with pytest.raises(JobNotFound):
                writer.get(NS, job_id)  # gone, and no update brought it back
            mine = [ms for jid, ms in acked if jid == job_id]
            job = reaped[job_id]
            assert job.processed == job.successful == len(mine)  # no update lost
            assert all(ms <= to_ms(job.updated_at) for ms in mine)
        assert writer.list(NS).items == ()

    @pytest.mark.parametrize("kill_after", [3, 151])
    def test_kill_9_then_redelivering_everything_counts_each_item_once(
        self, shared_url: str, store: Store, kill_after: int
    ) -> None:
        _items_or_skip(store)
        tracker = JobTracker(shared_url)
        job = tracker.start(NS, 1_000)
        acked = self._kill_worker(shared_url, job.job_id, kill_after, "items")
        after = tracker.get(NS, job.job_id)
        assert acked <= after.processed <= acked + 1
        for i in range(acked + 1):  # the pipeline delivers again all it is unsure of
            tracker.record(NS, job.job_id, item=f"i{i}", processed=1, successful=1)
        final = tracker.get(NS, job.job_id)
        assert final.processed == final.successful == acked + 1
        tracker.close()

    @staticmethod
    def _kill_worker(url: str, job_id: str, kill_after: int, *mode: str) -> int:
        """Run the worker, ``kill -9`` it after *kill_after* acknowledged updates; their count."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobtrack.testing.worker", url, NS, job_id, "100000", *mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        acked = 0
        for line in proc.stdout:
            acked = int(line)
            if acked >= kill_after:
                break
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.stdout.read().split()
        proc.wait()
        proc.stdout.close()
        if rest:
            acked = int(rest[-1])
        assert proc.returncode == -signal.SIGKILL, f"the worker failed first: {proc.stderr.read()}"  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
        return acked

    @pytest.mark.parametrize("kill_after", [1, 17, 60, 151, 333])
    def test_kill_9_keeps_every_acknowledged_update(self, shared_url: str, kill_after: int) -> None:
        tracker = JobTracker(shared_url)
        job = tracker.start(NS, 100_000)
        acked = self._kill_worker(shared_url, job.job_id, kill_after)
        after = tracker.get(NS, job.job_id)  # readable
        # every acknowledged update is there; at most one more was in flight
        assert acked <= after.processed <= acked + 1
        assert after.successful == after.processed
        # nothing the dead writer held blocks the job: it takes updates at once
        assert tracker.record(NS, job.job_id, processed=1, successful=1).processed == (
            after.processed + 1
        )
        tracker.close()


class StoreContract(
    _Start,
    _Record,
    _Abort,
    _Extend,
    _Stalled,
    _Retention,
    _StatusListing,
    _Delete,
    _List,
    _Namespaces,
    _Clock,
    _Concurrency,
    _RecordMany,
    _BadInput,
    _Properties,
    _Items,
    _ItemProperties,
    _Progress,
    _Processes,
):
    """**The store contract** as a pytest base class (see the module docstring).

    A subclass defines the fixture ``store`` (a fresh store per test); the
    fixtures ``clock``, ``api`` (``"sync"``/``"async"``), ``tracker_factory``
    and ``tracker`` come from here.
    """

    @pytest.fixture
    def store(self) -> Store:
        raise NotImplementedError("define a function-scoped fixture 'store' in your subclass")

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    @pytest.fixture(params=["sync", "async"])
    def api(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    def tracker_factory(self, api: str) -> Iterator[TrackerFactory]:
        """Makes a JobTracker, or an AsyncJobTracker behind a sync facade."""
        if api == "sync":
            yield JobTracker
            return
        loop = asyncio.new_event_loop()
        made: list[AsyncFacade] = []

        def make(store: Store, **options: Any) -> JobTracker:
            facade = AsyncFacade(AsyncJobTracker(store, **options), loop)
            made.append(facade)
            return facade  # type: ignore[return-value]

        try:
            yield make
        finally:
            for facade in made:
                facade.close_async()
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    @pytest.fixture
    def tracker(
        self, tracker_factory: TrackerFactory, store: Store, clock: ManualClock
    ) -> JobTracker:
        return tracker_factory(store, clock=clock)

    @pytest.fixture
    def stalling(
        self, tracker_factory: TrackerFactory, store: Store, clock: ManualClock
    ) -> JobTracker:
        """A tracker on ``clock`` whose running jobs stall after 5 minutes."""
        return tracker_factory(store, clock=clock, stall_after=dt.timedelta(minutes=5))
