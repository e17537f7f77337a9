"""Test helpers: the manual clock and reference model now ship in jobtrack.testing."""

from __future__ import annotations

from jobtrack.testing.reference import T0, UTC, ManualClock, RefJob, job_tuple

__all__ = ["T0", "UTC", "ManualClock", "RefJob", "job_tuple"]
