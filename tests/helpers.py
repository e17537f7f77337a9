"""Test helpers: the manual clock and reference model now ship in jobtrack.testing."""

from __future__ import annotations

import math

from jobtrack import JobTracker
from jobtrack.clock import to_ms
from jobtrack.testing.reference import T0, UTC, ManualClock, RefJob, job_tuple

__all__ = ["T0", "UTC", "ManualClock", "RefJob", "job_tuple", "sql_rate_waits_a_second"]


def sql_rate_waits_a_second(tracker: JobTracker, clock: ManualClock) -> None:
    """A SQL store's fast path (``add``) leaves the rate; the next second's update folds it."""
    tracker.start("docs", 100, job_id="job")
    clock.advance(milliseconds=1500)
    first = tracker.record("docs", "job", processed=4, successful=4)  # into another second
    assert (first.rate_at, first.rate_done) == (to_ms(T0) + 1500, 4)
    clock.advance(milliseconds=300)
    fast = tracker.record("docs", "job", processed=2, successful=1, failed=1)  # the same second
    for status in (fast, tracker.get("docs", "job")):
        assert (status.rate, status.rate_at, status.rate_done) == (first.rate, first.rate_at, 4)
        assert status.done == 6
    clock.advance(milliseconds=300)
    folded = tracker.record("docs", "job", processed=3, successful=3)  # into the next second
    assert (folded.rate_at, folded.rate_done) == (to_ms(T0) + 2100, 9)
    decay = math.exp(-600 / 60_000)
    assert folded.rate == first.rate * decay + 5 * 1000 * (1 - decay) / 600  # as rules.add_rate
