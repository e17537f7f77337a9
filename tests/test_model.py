"""The status document: wire format, strict parsing, helpers."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobtrack import InvalidDocument, JobStatus, Status
from jobtrack.clock import format_timestamp, from_ms, parse_timestamp, to_ms
from tests.helpers import T0, UTC

SPEC_EXAMPLE = """{
  "job_id": "job-a0e3d54b9d0d4616949474697308a39c",
  "namespace_name": "my-documents",
  "status": "running",
  "total": 1,
  "processed": 0,
  "successful": 0,
  "failed": 0,
  "last_error": null,
  "started_at": "2026-05-21T12:00:00.000Z",
  "updated_at": "2026-05-21T12:00:00.000Z",
  "finished_at": null
}"""

EXAMPLE = JobStatus(
    "job-a0e3d54b9d0d4616949474697308a39c",
    "my-documents",
    Status.RUNNING,
    1,
    0,
    0,
    0,
    None,
    T0,
    T0,
    None,
)


def test_to_dict_is_the_spec_example_key_order_included() -> None:
    assert json.dumps(EXAMPLE.to_dict(), indent=2) == SPEC_EXAMPLE
    assert list(EXAMPLE.to_dict()) == [
        "job_id",
        "namespace_name",
        "status",
        "total",
        "processed",
        "successful",
        "failed",
        "last_error",
        "started_at",
        "updated_at",
        "finished_at",
    ]


def test_from_dict_inverts_the_spec_example() -> None:
    assert JobStatus.from_dict(json.loads(SPEC_EXAMPLE)) == EXAMPLE


def test_helpers() -> None:
    job = JobStatus("j", "n", Status.RUNNING, 8, 5, 3, 1, "x", T0, T0, None)
    assert (job.remaining, job.done, job.percent, job.is_finished) == (4, 4, 50.0, False)
    empty = JobStatus("j", "n", Status.COMPLETED, 0, 0, 0, 0, None, T0, T0, T0)
    assert (empty.remaining, empty.percent, empty.is_finished) == (0, 100.0, True)
    assert str(Status.RUNNING) == "running"


def test_job_status_is_frozen() -> None:
    with pytest.raises(AttributeError):
        EXAMPLE.total = 3  # type: ignore[misc]


GOOD: dict[str, Any] = json.loads(SPEC_EXAMPLE)
MALFORMED = [
    ("missing-key", {k: v for k, v in GOOD.items() if k != "failed"}, "required field missing"),
    ("extra-key", {**GOOD, "eta": 3}, "extra fields"),
    ("bool-count", {**GOOD, "total": True}, "total"),
    ("str-count", {**GOOD, "processed": "0"}, "processed"),
    ("float-count", {**GOOD, "total": 1.0}, "total"),
    ("bad-status", {**GOOD, "status": "failure"}, "status"),
    ("no-millis", {**GOOD, "started_at": "2026-05-21T12:00:00Z"}, "started_at"),
    ("offset", {**GOOD, "updated_at": "2026-05-21T12:00:00.000+00:00"}, "updated_at"),
    ("micros", {**GOOD, "updated_at": "2026-05-21T12:00:00.000000Z"}, "updated_at"),
    ("bad-date", {**GOOD, "updated_at": "2026-02-30T12:00:00.000Z"}, "updated_at"),
    ("bad-name", {**GOOD, "namespace_name": "a/b"}, "name rules"),
    ("negative", {**GOOD, "failed": -1}, ">= 0"),
    ("over-total", {**GOOD, "processed": 2}, "exceeds total"),
    ("huge-total", {**GOOD, "total": 2**70}, "total exceeds 9007199254740991"),
    ("huge-counts", {**GOOD, "total": 2**53, "processed": 2**53}, "total exceeds"),
    ("done-but-running", {**GOOD, "successful": 1}, "disagrees"),
    ("finished-while-running", {**GOOD, "finished_at": "2026-05-21T12:00:00.000Z"}, "finished_at"),
    ("updated-before-started", {**GOOD, "updated_at": "2026-05-21T11:59:59.999Z"}, "precedes"),
    ("empty-error", {**GOOD, "last_error": ""}, "last_error"),
    ("number-error", {**GOOD, "last_error": 5}, "last_error"),
]


@pytest.mark.parametrize(
    ("doc", "message"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_from_dict_rejects_malformed_documents(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidDocument, match=message) as info:
        JobStatus.from_dict(doc)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("doc", [None, [], "{}", 3])
def test_from_dict_rejects_non_objects(doc: Any) -> None:
    with pytest.raises(InvalidDocument, match="JSON object"):
        JobStatus.from_dict(doc)


def test_timestamps() -> None:
    assert format_timestamp(dt.datetime(2026, 5, 21, 12, 0, 0, 123999, tzinfo=UTC)) == (
        "2026-05-21T12:00:00.123Z"
    )
    assert format_timestamp(dt.datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.000Z"
    with pytest.raises(ValueError, match="naive"):
        format_timestamp(dt.datetime(2026, 1, 1))
    assert to_ms(from_ms(1_779_364_800_123)) == 1_779_364_800_123
    assert parse_timestamp("2026-05-21T12:00:00.000Z") == T0


names = st.text(alphabet="ABCXYZabcxyz0123456789_-", min_size=1, max_size=128)
timestamps = st.datetimes(
    min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(9999, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))


@st.composite
def statuses(draw: st.DrawFn) -> JobStatus:
    total = draw(st.integers(0, 2**53 - 1))
    successful = draw(st.integers(0, total))
    failed = draw(st.integers(0, total - successful))
    processed = draw(st.integers(0, total))
    started = draw(timestamps)
    updated = draw(timestamps.filter(lambda t: t >= started))
    done = successful + failed == total
    return JobStatus(
        draw(names),
        draw(names),
        Status.COMPLETED if done else Status.RUNNING,
        total,
        processed,
        successful,
        failed,
        draw(st.none() | st.text(min_size=1, max_size=1000)),
        started,
        updated,
        updated if done else None,
    )


@given(statuses())
def test_wire_round_trip(job: JobStatus) -> None:
    text = json.dumps(job.to_dict())
    again = JobStatus.from_dict(json.loads(text))
    assert again == job
    assert json.dumps(again.to_dict()) == text


def test_to_json_is_the_compact_document_computed_once() -> None:
    job = JobStatus("j", "n", Status.RUNNING, 3, 1, 0, 1, "é ✓", T0, T0, None)
    body = job.to_json()
    assert body == json.dumps(job.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()
    assert job.to_json() is body
    assert JobStatus.from_dict(json.loads(body)) == job
    assert job == JobStatus("j", "n", Status.RUNNING, 3, 1, 0, 1, "é ✓", T0, T0, None)
