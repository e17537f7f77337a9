"""Fuzz the status app against its own OpenAPI document with schemathesis.

Every generated request must get a declared status (never a 5xx), and every
response must match the schema: body, content type and headers.
"""

from __future__ import annotations

import datetime
from typing import Any

import schemathesis
from hypothesis import settings

from jobtrack import JobTracker, MemoryStore
from jobtrack.asgi import status_app

NOW = datetime.datetime(2026, 5, 21, 12, tzinfo=datetime.timezone.utc)
_store = MemoryStore()
# one clock for every read (SPEC section 6: read with the clock the jobs were written with)
_tracker = JobTracker(_store, clock=lambda: NOW, stall_after=datetime.timedelta(minutes=5))
_earlier = JobTracker(_store, clock=lambda: NOW - datetime.timedelta(minutes=10))
for i, name in enumerate(["a", "A", "0", "_", "-", "my-documents"]):
    (_earlier if i % 2 else _tracker).start(name, i, job_id=name)  # some of them stalled
    if i > 1:
        _tracker.record(name, name, processed=1, failed=1, error='bad ✓ "item"')
# completed 8 days ago: expired (410) under the default retention of 7 days
JobTracker(_store, clock=lambda: NOW - datetime.timedelta(days=8)).start("a", 0, job_id="old")
app = status_app(_tracker)

# (the event stream of a running job never ends by itself: tests/test_events.py covers it)
schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path_regex="/events$")


@schema.parametrize()
@settings(max_examples=150, deadline=None)
def test_status_route_conforms_to_its_openapi_document(case: Any) -> None:
    case.call_and_validate()
