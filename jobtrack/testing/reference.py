"""A manual clock and a plain reference model of a job, for tests of any store."""

from __future__ import annotations

import datetime as dt

import attrs

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 5, 21, 12, 0, 0, tzinfo=UTC)


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        """The current (manual) time."""
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        """Move the clock by ``timedelta(**delta)``; return the new time."""
        self.now += dt.timedelta(**delta)
        return self.now


@attrs.define
class RefJob:
    """The reference model: SPEC section 3 written as plainly as possible."""

    total: int
    started: dt.datetime
    processed: int = 0
    successful: int = 0
    failed: int = 0
    last_error: str | None = None
    updated: dt.datetime = attrs.field(default=None)
    finished: dt.datetime | None = None

    def __attrs_post_init__(self) -> None:
        self.updated = self.started
        if self.total == 0:
            self.finished = self.started

    def record(self, p: int, s: int, f: int, error: str | None, now: dt.datetime) -> str:
        """Apply an update; return "ok", "finished" or "invalid"."""
        if self.finished is not None:
            return "finished"
        if self.processed + p > self.total or self.successful + s + self.failed + f > self.total:
            return "invalid"
        self.processed += p
        self.successful += s
        self.failed += f
        if error is not None:
            self.last_error = error[:1000]
        self.updated = max(self.updated, now)
        if self.successful + self.failed == self.total:
            self.finished = self.updated
        return "ok"

    def abort(self, error: str, now: dt.datetime) -> str:
        """Fail the remaining items; return "ok" or "finished"."""
        if self.finished is not None:
            return "finished"
        self.failed = self.total - self.successful
        self.last_error = error[:1000]
        self.updated = max(self.updated, now)
        self.finished = self.updated
        return "ok"

    def as_tuple(self) -> tuple[object, ...]:
        """The fields :func:`job_tuple` gives of a status, in its order."""
        return (
            "completed" if self.finished else "running",
            self.total,
            self.processed,
            self.successful,
            self.failed,
            self.last_error,
            self.started,
            self.updated,
            self.finished,
        )


def job_tuple(job: object) -> tuple[object, ...]:
    """The fields of a JobStatus that the reference model also holds."""
    return (
        job.status.value,  # type: ignore[attr-defined]
        job.total,  # type: ignore[attr-defined]
        job.processed,  # type: ignore[attr-defined]
        job.successful,  # type: ignore[attr-defined]
        job.failed,  # type: ignore[attr-defined]
        job.last_error,  # type: ignore[attr-defined]
        job.started_at,  # type: ignore[attr-defined]
        job.updated_at,  # type: ignore[attr-defined]
        job.finished_at,  # type: ignore[attr-defined]
    )
