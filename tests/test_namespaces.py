"""GET /namespaces (SPEC section 7): in-process, mounted, authorized, and over real uvicorn."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from jobtrack import ConfigurationError, InvalidArgument, JobTracker, MemoryStore
from jobtrack.asgi import MOST_NAMES_FILTERED, status_app
from jobtrack.testing import ManualClock as Clock
from tests.asgi_driver import call, serving


@pytest.fixture
def tracker() -> JobTracker:
    """b: a running job and a stalled one; a: one completed job; c: nothing left."""
    clock = Clock()
    tracker = JobTracker(MemoryStore(), clock=clock, stall_after=datetime.timedelta(minutes=5))
    tracker.start("b", 2, job_id="old")
    clock.advance(minutes=10)
    tracker.start("b", 2, job_id="new")
    tracker.start("a", 1, job_id="done")
    tracker.record("a", "done", successful=1)
    tracker.start("c", 1, job_id="gone")
    tracker.delete("c", "gone")
    return tracker


def body_of(response: Any) -> dict[str, Any]:
    assert response.status == 200, response.body
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = json.loads(response.body)
    assert list(body) == ["namespaces", "next_cursor"]
    for row in body["namespaces"]:
        assert list(row) == ["name", "running", "stalled", "completed"]
    return body


A = {"name": "a", "running": 0, "stalled": 0, "completed": 1}
B = {"name": "b", "running": 2, "stalled": 1, "completed": 0}


def test_the_namespaces_with_their_counts_by_name(tracker: JobTracker) -> None:
    app = status_app(tracker)
    assert body_of(call(app, "GET", "/namespaces")) == {"namespaces": [A, B], "next_cursor": None}
    first = body_of(call(app, "GET", "/namespaces?limit=1"))
    assert first == {"namespaces": [A], "next_cursor": "a"}
    rest = body_of(call(app, "GET", "/namespaces?limit=1&cursor=a"))
    assert rest == {"namespaces": [B], "next_cursor": None}
    assert body_of(call(app, "GET", "/namespaces?limit=&cursor=")) == body_of(
        call(app, "GET", "/namespaces")
    )
    head = call(app, "HEAD", "/namespaces")
    assert head.status == 200 and head.body == b""
    assert call(app, "POST", "/namespaces").status == 405
    for path in ("/namespaces/", "/namespace", "/namespaces/b", "/Namespaces"):
        assert call(app, "GET", path).status == 404, path


def test_stalled_is_null_without_stall_after(tracker: JobTracker) -> None:
    app = status_app(tracker, stall_after=None)
    rows = body_of(call(app, "GET", "/namespaces"))["namespaces"]
    assert [row["stalled"] for row in rows] == [None, None]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "limit must be an int from 1 to 1000, got 0"),
        ("limit=1001", "limit must be an int from 1 to 1000, got 1001"),
        ("limit=x", "limit must be an integer, got 'x'"),
        ("cursor=a.b", "malformed cursor 'a.b': pass back a next_cursor unchanged"),
        ("cursor=%00", "malformed cursor '\\x00': pass back a next_cursor unchanged"),
        ("limit=1&limit=2", "Give limit at most once."),
    ],
)
def test_bad_parameters_are_400_with_the_trackers_message(
    tracker: JobTracker, query: str, message: str
) -> None:
    response = call(status_app(tracker), "GET", f"/namespaces?{query}")
    assert response.status == 400
    assert json.loads(response.body) == {"status": "failure", "message": message}
    with pytest.raises(InvalidArgument):
        tracker.namespaces(limit=0)


def test_mounted_under_a_root_path(tracker: JobTracker) -> None:
    app = status_app(tracker)
    response = call(app, "GET", "/namespaces", root_path="/jobs")
    assert body_of(response)["namespaces"] == [A, B]
    assert call(app, "GET", "/jobs", root_path="/jobs").status == 404


def test_only_the_namespaces_the_hook_allows_and_no_cursor_names_another(
    tracker: JobTracker,
) -> None:
    asked: list[str] = []

    def authorize(namespace: str, headers: Mapping[str, str]) -> bool:
        asked.append(namespace)
        return headers.get("x-tenant") == namespace

    for i in range(5):
        tracker.start(f"t{i}", 1)
    app = status_app(tracker, authorize=authorize)
    mine = body_of(call(app, "GET", "/namespaces?limit=1", headers=[(b"x-tenant", b"t3")]))
    assert mine == {"namespaces": [tracker.namespaces(cursor="t2").items[0].to_dict()],
                    "next_cursor": "t3"}  # fmt: skip
    rest = call(app, "GET", "/namespaces?limit=1&cursor=t3", headers=[(b"x-tenant", b"t3")])
    assert body_of(rest) == {"namespaces": [], "next_cursor": None}
    anonymous = body_of(call(app, "GET", "/namespaces?limit=1"))
    assert anonymous == {"namespaces": [], "next_cursor": None}
    assert set(asked) == {"a", "b", "t0", "t1", "t2", "t3", "t4"}


def test_the_hooks_scan_is_bounded(tracker: JobTracker) -> None:
    calls = 0

    def deny(namespace: str, headers: Mapping[str, str]) -> bool:
        nonlocal calls
        calls += 1
        return False

    for i in range(MOST_NAMES_FILTERED + 500):
        tracker.start(f"n{i:05d}", 1)
    app = status_app(tracker, authorize=deny)
    assert body_of(call(app, "GET", "/namespaces?limit=1000")) == {
        "namespaces": [],
        "next_cursor": None,
    }
    assert calls == MOST_NAMES_FILTERED


def test_a_hook_that_answers_nonsense_is_a_400_not_a_500(tracker: JobTracker) -> None:
    app = status_app(tracker, authorize=lambda namespace, headers: "yes")  # type: ignore[arg-type,return-value]
    response = call(app, "GET", "/namespaces")
    assert response.status == 400 and b"authorize hook returned 'yes'" in response.body


def test_a_store_without_namespaces_is_a_clear_error() -> None:
    class Plain(MemoryStore):
        features = MemoryStore.features.__class__(blocking=False)

    tracker = JobTracker(Plain())
    with pytest.raises(ConfigurationError, match="cannot list its namespaces"):
        tracker.namespaces()
    assert call(status_app(tracker), "GET", "/namespaces").status == 400


def test_in_the_openapi_document(tracker: JobTracker) -> None:
    document = json.loads(call(status_app(tracker), "GET", "/openapi.json").body)
    route = document["paths"]["/namespaces"]["get"]
    assert route["operationId"] == "listNamespaces"
    assert set(route["responses"]) == {"200", "400", "401", "503"}
    page = document["components"]["schemas"]["NamespacePage"]
    assert page["required"] == ["namespaces", "next_cursor"]
    assert page["properties"]["namespaces"]["items"]["required"] == [
        "name",
        "running",
        "stalled",
        "completed",
    ]


def test_over_real_uvicorn(tracker: JobTracker) -> None:
    with serving(status_app(tracker)) as base:
        response = httpx.get(f"{base}/namespaces", params={"limit": "1"})
        assert response.status_code == 200
        assert response.json() == {"namespaces": [A], "next_cursor": "a"}
        bad = httpx.get(f"{base}/namespaces", params={"cursor": "no/such"})
        assert bad.status_code == 400
        assert httpx.get(f"{base}/namespaces/").status_code == 404
