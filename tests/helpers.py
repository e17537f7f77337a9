"""Test helpers: the manual clock and reference model now ship in jobtrack.testing."""

from __future__ import annotations

import pytest

from jobtrack import JobStatus, JobTracker
from jobtrack.clock import to_ms
from jobtrack.rules import add_rate
from jobtrack.testing.reference import T0, UTC, ManualClock, RefJob, job_tuple

__all__ = ["T0", "UTC", "ManualClock", "RefJob", "job_tuple", "rate_waits_a_second"]


def rate_waits_a_second(tracker: JobTracker, clock: ManualClock) -> tuple[JobStatus, JobStatus]:
    """A store's fast path leaves the rate; the next second's update folds it.

    (SQL: the ``add`` statement; Redis: ``update.lua``.) Returns the update
    that folded 4 items at ``T0 + 1.5 s`` and the one that folded 2 more from
    ``T0 + 1.8 s`` and its own 3 at ``T0 + 2.1 s``: how it folds them is the
    caller's to check.
    """
    tracker.start("docs", 100, job_id="job")
    clock.advance(milliseconds=1500)
    first = tracker.record("docs", "job", processed=4, successful=4)  # into another second
    assert (first.rate_at, first.rate_done) == (to_ms(T0) + 1500, 4)
    # (approx: a Redis server's exp() is its libm's, not necessarily Python's)
    assert first.rate == pytest.approx(add_rate(0.0, to_ms(T0), 4, to_ms(T0) + 1500)[0], rel=1e-12)
    clock.advance(milliseconds=300)
    fast = tracker.record("docs", "job", processed=2, successful=1, failed=1)  # the same second
    for status in (fast, tracker.get("docs", "job")):
        assert (status.rate, status.rate_at, status.rate_done) == (first.rate, first.rate_at, 4)
        assert status.done == 6
    clock.advance(milliseconds=300)
    folded = tracker.record("docs", "job", processed=3, successful=3)  # into the next second
    assert (folded.rate_at, folded.rate_done) == (to_ms(T0) + 2100, 9)
    return first, folded
