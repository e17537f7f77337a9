"""Bad input: each case gets its clear error and leaves the job exactly as it was."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from jobtrack import (
    MAX_COUNT,
    InvalidName,
    InvalidUpdate,
    JobExists,
    JobFinished,
    JobTracker,
    JobtrackError,
)

NS = "ns"
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


@pytest.fixture
def job_tracker(tracker: JobTracker) -> JobTracker:
    tracker.start(NS, 10, job_id=JOB)
    tracker.record(NS, JOB, processed=2, successful=1, failed=1, error="first")
    return tracker


def snapshot(tracker: JobTracker) -> object:
    return tracker.get(NS, JOB), tracker.list(NS).items


NAME_CASES = [
    pytest.param(call, bad.values[0], id=f"{call}-{bad.id}")
    for call in NAME_CALLS
    for bad in BAD_NAMES
    if not (call == "start-id" and bad.values[0] is None)  # None means "generate one"
]


@pytest.mark.parametrize(("call", "bad"), NAME_CASES)
def test_bad_names_are_rejected(job_tracker: JobTracker, call: str, bad: object) -> None:
    before = snapshot(job_tracker)
    with pytest.raises(InvalidName) as info:
        NAME_CALLS[call](job_tracker, bad)
    assert isinstance(info.value, ValueError)
    assert "namespace" in str(info.value) or "job id" in str(info.value)
    assert snapshot(job_tracker) == before


def test_longest_name_is_fine(tracker: JobTracker) -> None:
    name = "A-z_9" * 25 + "abc"
    assert len(name) == 128
    assert tracker.start(name, 1, job_id=name).job_id == name


BAD_TOTALS = [-1, True, False, 1.0, "3", None, MAX_COUNT + 1, 2**64]


@pytest.mark.parametrize("total", BAD_TOTALS, ids=repr)
def test_bad_totals(job_tracker: JobTracker, total: object) -> None:
    before = snapshot(job_tracker)
    with pytest.raises(InvalidUpdate, match="total"):
        job_tracker.start(NS, total, job_id="other")  # type: ignore[arg-type]
    assert snapshot(job_tracker) == before


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


@pytest.mark.parametrize(
    ("deltas", "error", "message"), [u[1:] for u in UPDATES], ids=[u[0] for u in UPDATES]
)
def test_bad_updates(
    job_tracker: JobTracker, deltas: dict[str, Any], error: type[Exception], message: str
) -> None:
    before = snapshot(job_tracker)
    with pytest.raises(error, match=message):
        job_tracker.record(NS, JOB, **deltas)
    assert snapshot(job_tracker) == before


def test_updates_after_completion(job_tracker: JobTracker) -> None:
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


def test_duplicate_job_id(job_tracker: JobTracker) -> None:
    before = snapshot(job_tracker)
    with pytest.raises(JobExists):
        job_tracker.start(NS, 3, job_id=JOB)
    assert snapshot(job_tracker) == before


def test_positional_deltas_are_refused(job_tracker: JobTracker) -> None:
    with pytest.raises(TypeError):
        job_tracker.record(NS, JOB, 1)  # type: ignore[call-arg]
