"""Fuzz the status app against its own OpenAPI document with schemathesis.

Every generated request must get a declared status (never a 5xx), and every
response must match the schema: body, content type and headers.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from freezegun import freeze_time
from hypothesis import settings

from jobtrack import JobTracker, MemoryStore
from jobtrack.asgi import status_app

_tracker = JobTracker(MemoryStore())
with freeze_time("2026-05-21T12:00:00Z"):
    for i, name in enumerate(["a", "A", "0", "_", "-", "my-documents"]):
        _tracker.start(name, i, job_id=name)
        if i > 1:
            _tracker.record(name, name, processed=1, failed=1, error='bad ✓ "item"')
app = status_app(_tracker)

schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=150, deadline=None)
def test_status_route_conforms_to_its_openapi_document(case: Any) -> None:
    case.call_and_validate()
