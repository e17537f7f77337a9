"""The contract every store must keep (SPEC section 3), run on every store kind."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from freezegun import freeze_time

from jobtrack import (
    MAX_COUNT,
    InvalidArgument,
    InvalidUpdate,
    JobExists,
    JobFinished,
    JobNotFound,
    JobStatus,
    JobTracker,
    Status,
    Store,
    Update,
)
from tests.conftest import TrackerFactory
from tests.helpers import T0, UTC, ManualClock

NS = "my-documents"


class TestStart:
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


class TestRecord:
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


class TestAbort:
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


class TestDelete:
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


class TestList:
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

    @pytest.mark.parametrize("limit", [0, -1, 1001, 2.0, True, "10", None])
    def test_bad_limit(self, tracker: JobTracker, limit: object) -> None:
        with pytest.raises(InvalidArgument, match="limit"):
            tracker.list(NS, limit=limit)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "cursor", ["", "abc", "12", "12.", "12./x", "x.job", 5, "1" * 20 + ".a"]
    )
    def test_bad_cursor(self, tracker: JobTracker, cursor: object) -> None:
        with pytest.raises(InvalidArgument, match="cursor"):
            tracker.list(NS, cursor=cursor)  # type: ignore[arg-type]


class TestClock:
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


class TestConcurrency:
    def test_threads_lose_no_update_and_complete_once(self, store_factory) -> None:  # type: ignore[no-untyped-def]
        threads, per_thread = 8, 150
        setup = JobTracker(store_factory())
        job = setup.start(NS, threads * per_thread)
        completions: list[JobStatus] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(threads)

        def work() -> None:
            tracker = JobTracker(store_factory())  # its own connection / handles
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
            finally:
                tracker.close()

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
        setup.close()


class TestRecordMany:
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
