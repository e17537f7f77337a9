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
    """The reference model: SPEC sections 3 and 5 written as plainly as possible."""

    total: int
    started: dt.datetime
    processed: int = 0
    successful: int = 0
    failed: int = 0
    last_error: str | None = None
    updated: dt.datetime = attrs.field(default=None)
    finished: dt.datetime | None = None
    # item -> (processed, outcome None/"failed"/"successful", error)
    items: dict[str, tuple[bool, str | None, str | None]] = attrs.field(factory=dict)
    failed_list: list[tuple[str, str | None, dt.datetime]] = attrs.field(factory=list)
    groups: dict[str | None, tuple[int, dt.datetime, dt.datetime]] = attrs.field(factory=dict)

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
        if error is not None:
            self.count_error(error[:1000], f)
        return "ok"

    def record_item(
        self, item: str, p: int, s: int, f: int, error: str | None, now: dt.datetime
    ) -> str:
        """Apply an item update; return "ok", "noop", "finished" or "invalid"."""
        was = self.items.get(item, (False, None, None))
        processed, outcome, item_error = was
        fails = False
        if p:
            processed = True
        if s:
            outcome, item_error = "successful", None
        elif f and (outcome is None or (outcome == "failed" and error not in (None, item_error))):
            outcome, item_error, fails = "failed", error, True
        if (processed, outcome, item_error) == was and not fails:
            return "noop"
        if self.finished is not None:
            return "finished"
        dp = int(processed) - int(was[0])
        ds = int(outcome == "successful") - int(was[1] == "successful")
        df = int(outcome == "failed") - int(was[1] == "failed")
        if self.processed + dp > self.total or self.successful + ds + self.failed + df > self.total:
            return "invalid"
        self.processed += dp
        self.successful += ds
        self.failed += df
        self.updated = max(self.updated, now)
        if self.successful + self.failed == self.total:
            self.finished = self.updated
        self.items[item] = (processed, outcome, item_error)
        if fails or outcome != "failed":
            self.failed_list = [entry for entry in self.failed_list if entry[0] != item]
        if fails:
            self.failed_list.append((item, item_error, self.updated))
            if error is not None:
                self.last_error = error
                self.count_error(error, 1)
        return "ok"

    def count_error(self, message: str, n: int) -> None:
        """Count *n* failures under *message* (the first 100 messages; then under None)."""
        if n == 0:
            return
        named = sum(1 for key in self.groups if key is not None)
        key: str | None = message if message in self.groups or named < 100 else None
        count, first, _ = self.groups.get(key, (0, self.updated, self.updated))
        self.groups[key] = (min(count + n, 2**53 - 1), first, self.updated)

    def error_list(self) -> list[tuple[str | None, int, dt.datetime, dt.datetime]]:
        """The groups as ``errors()`` orders them: most first, then the earliest."""
        groups = [(key, *value) for key, value in self.groups.items()]
        return sorted(groups, key=lambda g: (-g[1], g[2], g[0] is None, g[0] or ""))

    def extend(self, more: int, now: dt.datetime) -> str:
        """Add *more* items to the total; return "ok", "finished" or "invalid"."""
        if self.finished is not None:
            return "finished"
        if self.total + more > 2**53 - 1:
            return "invalid"
        self.total += more
        self.updated = max(self.updated, now)
        return "ok"

    def abort(self, error: str, now: dt.datetime) -> str:
        """Fail the remaining items; return "ok" or "finished"."""
        if self.finished is not None:
            return "finished"
        remaining = self.total - self.successful - self.failed
        self.failed = self.total - self.successful
        self.last_error = error[:1000]
        self.updated = max(self.updated, now)
        self.finished = self.updated
        self.count_error(error[:1000], remaining)
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
