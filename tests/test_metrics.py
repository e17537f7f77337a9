"""GET /metrics (SPEC section 8): Prometheus text, namespace labels only, opt-in, protected."""

from __future__ import annotations

import asyncio
import datetime
import json
import subprocess
import sys
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobtrack import AsyncJobTracker, ConfigurationError, JobTracker, MemoryStore, Update
from jobtrack.asgi import status_app
from jobtrack.metrics import (
    MAX_COUNTED_NAMESPACES,
    MAX_SCRAPE_NAMESPACES,
    OTHER_NAMESPACES,
    Metrics,
)
from jobtrack.openapi import openapi_document
from jobtrack.testing.reference import ManualClock
from tests.asgi_driver import call, serving

STALL = datetime.timedelta(minutes=5)


def scrape(app: Any, **kwargs: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics: each sample by name and labels."""
    response = call(app, "GET", "/metrics", **kwargs)
    assert response.status == 200, response.body
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert response.headers["cache-control"] == "no-store"
    samples = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def sequence(tracker: JobTracker, clock: ManualClock) -> None:
    """A known sequence: jobs in two namespaces, one of them stalled, one completed."""
    tracker.start("alpha", 3, job_id="a1")
    tracker.start("alpha", 2, job_id="a2")
    tracker.start("beta", 5, job_id="b1")
    tracker.record("alpha", "a1", processed=1, successful=1)
    tracker.record("alpha", "a1", processed=1, failed=1, error="boom")
    tracker.record("alpha", "a2", processed=2, successful=2)  # completes a2
    results = tracker.record_many(
        [
            Update("beta", "b1", processed=3, successful=3),
            Update("alpha", "a2", processed=1, successful=1),  # a2 completed: rejected
        ]
    )
    assert isinstance(results[1], Exception)
    clock.advance(minutes=10)
    tracker.record("alpha", "a1", processed=1, successful=1)  # a1 completes; b1 stalls


def test_known_sequence() -> None:
    clock = ManualClock()
    tracker = JobTracker(MemoryStore(), clock=clock, stall_after=STALL, metrics=Metrics())
    sequence(tracker, clock)
    app = status_app(tracker)
    assert call(app, "GET", "/namespaces/alpha/upload-jobs/a1").status == 200
    assert call(app, "GET", "/namespaces/alpha/upload-jobs/nope").status == 404
    assert call(app, "GET", "/somewhere/else").status == 404
    got = scrape(app)
    items = "jobtrack_items_recorded_total"
    assert got[items, (("namespace", "alpha"), ("outcome", "successful"))] == 4
    assert got[items, (("namespace", "alpha"), ("outcome", "failed"))] == 1
    assert got[items, (("namespace", "beta"), ("outcome", "successful"))] == 3
    assert got["jobtrack_store_update_seconds_count", ()] == 5  # record_many: one update
    assert got["jobtrack_jobs", (("namespace", "alpha"), ("status", "completed"))] == 2
    assert got["jobtrack_jobs", (("namespace", "alpha"), ("status", "running"))] == 0
    assert got["jobtrack_jobs", (("namespace", "beta"), ("status", "running"))] == 1
    assert got["jobtrack_stalled_jobs", (("namespace", "beta"),)] == 1
    assert got["jobtrack_stalled_jobs", (("namespace", "alpha"),)] == 0
    assert got["jobtrack_namespaces_truncated", ()] == 0
    routes = {
        dict(labels)["route"]: value
        for (name, labels), value in got.items()
        if name == "jobtrack_http_request_duration_seconds_count"
    }
    assert routes == {"/namespaces/{namespace_name}/upload-jobs/{job_id}": 2, "other": 1}
    assert {key for _, labels in got for key, _ in labels} <= {
        "namespace",
        "outcome",
        "status",
        "route",
        "le",
    }
    text = call(app, "GET", "/metrics").body.decode()
    assert "a1" not in text and "b1" not in text  # no label per job, ever


def test_every_route_is_labelled_with_its_openapi_path() -> None:
    tracker = JobTracker(MemoryStore(), metrics=Metrics())
    tracker.start("ns", 1, job_id="j")
    tracker.record("ns", "j", processed=1, failed=1, item="x", error="boom")  # completes j
    app = status_app(tracker)
    below = ("", "/failed-items", "/errors", "/progress", "/events")
    for path in [
        "/namespaces/ns/upload-jobs",
        *(f"/namespaces/ns/upload-jobs/j{t}" for t in below),
    ]:
        assert call(app, "HEAD", path).status == 200, path  # (HEAD: the stream not sent)
    routes = {
        dict(labels)["route"]
        for (name, labels), _ in scrape(app).items()
        if name == "jobtrack_http_request_duration_seconds_count"
    }
    paths = set(openapi_document("test")["paths"])
    assert len(routes) == 6 and routes <= paths, routes - paths


def test_async_tracker_counts_too() -> None:
    metrics = Metrics()

    async def main() -> None:
        tracker = AsyncJobTracker(MemoryStore(), metrics=metrics)
        await tracker.start("ns", 2, job_id="j")
        await tracker.record("ns", "j", processed=1, failed=1)
        await tracker.record_many([Update("ns", "j", processed=1, successful=1)])

    asyncio.run(main())
    text = metrics.exposition([], truncated=False).decode()
    samples = {
        (s.name, tuple(s.labels.values())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples["jobtrack_items_recorded_total", ("ns", "failed")] == 1
    assert samples["jobtrack_items_recorded_total", ("ns", "successful")] == 1
    assert samples["jobtrack_store_update_seconds_count", ()] == 2


def test_a_tracker_without_metrics_still_serves_the_jobs() -> None:
    tracker = JobTracker(MemoryStore())
    tracker.start("ns", 1, job_id="j")
    got = scrape(status_app(tracker))
    assert got["jobtrack_jobs", (("namespace", "ns"), ("status", "running"))] == 1
    assert not [name for name, _ in got if name.startswith("jobtrack_items")]
    assert not [name for name, _ in got if name.startswith("jobtrack_stalled")]  # no stall_after


def test_at_most_so_many_namespaces_per_scrape() -> None:
    tracker = JobTracker(MemoryStore())
    for i in range(MAX_SCRAPE_NAMESPACES + 1):
        tracker.start(f"ns{i:05}", 1)
    got = scrape(status_app(tracker))
    listed = {labels for name, labels in got if name == "jobtrack_jobs"}
    assert len(listed) == 2 * MAX_SCRAPE_NAMESPACES
    assert got["jobtrack_namespaces_truncated", ()] == 1


def test_the_items_counted_by_namespace_are_bounded() -> None:
    """Past MAX_COUNTED_NAMESPACES, a process counts every other namespace's items together."""
    metrics = Metrics()
    tracker = JobTracker(MemoryStore(), metrics=metrics)
    for i in range(MAX_COUNTED_NAMESPACES + 5):
        tracker.start(f"ns{i:05}", 2, job_id="j")
        tracker.record(f"ns{i:05}", "j", processed=1, successful=1)
        tracker.record(f"ns{i:05}", "j", processed=1, failed=1)
    got = scrape(status_app(tracker))
    counted = {
        dict(labels)["namespace"] for name, labels in got if name == "jobtrack_items_recorded_total"
    }
    assert len(counted) == MAX_COUNTED_NAMESPACES + 1
    other = (("namespace", OTHER_NAMESPACES), ("outcome", "successful"))
    assert got["jobtrack_items_recorded_total", other] == 5
    assert len(metrics._counters) == 2 * MAX_COUNTED_NAMESPACES + 2


def test_off_and_methods() -> None:
    app = status_app(JobTracker(MemoryStore()), metrics=False)
    response = call(app, "GET", "/metrics")
    assert response.status == 404
    assert json.loads(response.body) == {
        "status": "failure",
        "message": "Metrics are off on this server (status_app(metrics=False)).",
    }
    assert call(status_app(JobTracker(MemoryStore())), "POST", "/metrics").status == 405
    with pytest.raises(ConfigurationError, match="metrics"):
        status_app(JobTracker(MemoryStore()), metrics="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="metrics"):
        JobTracker(MemoryStore(), metrics=object())  # type: ignore[arg-type]


def test_authorize_is_asked_with_a_name_no_namespace_has() -> None:
    asked: list[str] = []

    def authorize(namespace: str, headers: Any) -> bool | int:
        asked.append(namespace)
        if "authorization" not in headers:
            return 401
        return bool(headers["authorization"] == "Bearer ops")

    app = status_app(JobTracker(MemoryStore()), authorize=authorize)
    assert call(app, "GET", "/metrics").status == 401
    assert call(app, "GET", "/metrics", headers=[(b"authorization", b"Bearer x")]).status == 403
    assert scrape(app, headers=[(b"authorization", b"Bearer ops")]) is not None
    assert asked == ["/metrics"] * 3


def test_over_real_uvicorn() -> None:
    tracker = JobTracker(MemoryStore())
    tracker.start("ns", 1, job_id="j")
    with serving(status_app(tracker)) as url:
        response = httpx.get(url + "/metrics")
    assert response.status_code == 200
    assert 'jobtrack_jobs{namespace="ns",status="running"} 1.0' in response.text


def test_without_prometheus_client_404_and_import_needs_none() -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "import json, jobtrack, jobtrack.asgi\n"
        "from jobtrack import JobTracker, MemoryStore, ConfigurationError\n"
        "from jobtrack.metrics import Metrics\n"
        "from tests.asgi_driver import call\n"
        "try:\n"
        "    Metrics()\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
        "tracker = JobTracker(MemoryStore()); tracker.start('ns', 1, job_id='j')\n"
        "app = jobtrack.asgi.status_app(tracker)\n"
        "response = call(app, 'GET', '/metrics')\n"
        "print(response.status, response.body.decode())\n"
        "print(call(app, 'GET', '/namespaces/ns/upload-jobs/j').status)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    missing, answer, status = result.stdout.splitlines()
    assert missing == "metrics need prometheus_client: pip install 'jobtrack[metrics]'"
    assert answer == (
        '404 {"status":"failure","message":"Metrics need prometheus_client on the server: '
        "pip install 'jobtrack[metrics]'.\"}"
    )
    assert status == "200"
    plain = "import sys, jobtrack.asgi, jobtrack.cli; print('prometheus_client' in sys.modules)"
    assert (
        subprocess.run(
            [sys.executable, "-c", plain], capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()
        == "False"
    )
