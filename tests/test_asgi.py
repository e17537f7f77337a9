"""The status route: SPEC section 1 exactly, in-process, mounted, and over real HTTP."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import re
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from freezegun import freeze_time

from jobtrack import (
    AsyncJobTracker,
    ConfigurationError,
    Features,
    FileStore,
    JobExpired,
    JobNotFound,
    JobTracker,
    MemoryStore,
    RedisStore,
)
from jobtrack.asgi import status_app
from tests.asgi_driver import call, serving
from tests.test_model import SPEC_EXAMPLE

JOB = "job-a0e3d54b9d0d4616949474697308a39c"
NS = "my-documents"
ROUTE = f"/namespaces/{NS}/upload-jobs/{JOB}"
SPEC_BYTES = json.dumps(json.loads(SPEC_EXAMPLE), separators=(",", ":")).encode()
NOT_FOUND = f"Upload job '{JOB}' not found in namespace 'other'."


@pytest.fixture(autouse=True)
def _fresh_log_throttle() -> None:
    """Each test sees the route's first complaint of each kind (the log throttles repeats)."""
    for throttle in logging.getLogger("jobtrack.asgi").filters:
        throttle.reset()  # type: ignore[union-attr]


@pytest.fixture
def tracker() -> JobTracker:
    tracker = JobTracker(MemoryStore())
    with freeze_time("2026-05-21T12:00:00Z"):
        tracker.start(NS, 1, job_id=JOB)
    return tracker


@pytest.fixture
def app(tracker: JobTracker) -> Any:
    return status_app(tracker)


def error(message: str, ns: str | None = None, job: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if job is not None:
        body["job_id"] = job
    if ns is not None:
        body["namespace_name"] = ns
    return {**body, "status": "failure", "message": message}


def check_common(response: Any) -> None:
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert int(response.headers["content-length"]) == len(response.body)


def one_call_held(
    app: Any, path: str, entered: threading.Event, release: threading.Event
) -> tuple[httpx.Response, httpx.Response]:
    """GET *path* twice: the second while the first holds the app's only store call.

    The store sets *entered* when the first call reaches it and waits for
    *release*, which is set once the second request has its answer.
    """

    async def main() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            first = asyncio.ensure_future(client.get(path))
            assert await asyncio.to_thread(entered.wait, 10)  # it holds the only store call
            second = await client.get(path)
            release.set()
            return await first, second

    return asyncio.run(main())


class TestInProcess:
    def test_spec_example_byte_for_byte(self, app: Any) -> None:
        response = call(app, "GET", ROUTE)
        assert response.status == 200
        assert response.body == SPEC_BYTES
        check_common(response)

    def test_httpx_asgi_transport(self, app: Any) -> None:
        async def main() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.get(ROUTE)

        response = asyncio.run(main())
        assert response.status_code == 200
        assert response.content == SPEC_BYTES
        assert list(response.json()) == list(json.loads(SPEC_EXAMPLE))

    def test_head_has_the_headers_and_no_body(self, app: Any) -> None:
        response = call(app, "HEAD", ROUTE)
        assert response.status == 200 and response.body == b""
        assert response.headers["content-length"] == str(len(SPEC_BYTES))
        assert response.headers["cache-control"] == "no-store"

    def test_unknown_job_and_other_namespace_are_404(self, app: Any) -> None:
        response = call(app, "GET", f"/namespaces/other/upload-jobs/{JOB}")
        assert response.status == 404
        assert (
            response.body
            == json.dumps(error(NOT_FOUND, "other", JOB), separators=(",", ":")).encode()
        )
        check_common(response)
        missing = call(app, "GET", f"/namespaces/{NS}/upload-jobs/job-nope")
        assert json.loads(missing.body) == error(
            f"Upload job 'job-nope' not found in namespace '{NS}'.", NS, "job-nope"
        )

    @pytest.mark.parametrize(
        ("raw", "ns", "job"),
        [
            ("/namespaces/a%2Fb/upload-jobs/x", "a/b", "x"),
            ("/namespaces/a%2fb/upload-jobs/x", "a/b", "x"),
            ("/namespaces/ns/upload-jobs/..%2F..%2Fetc", "ns", "../../etc"),
            ("/namespaces/a%20b/upload-jobs/x", "a b", "x"),
            ("/namespaces/..%2F/upload-jobs/x", "../", "x"),
            ("/namespaces/%2E%2E/upload-jobs/x", "..", "x"),
            ("/namespaces/%C3%BC/upload-jobs/x", "ü", "x"),
            ("/namespaces/a%00/upload-jobs/x", "a\x00", "x"),
            ("/namespaces/ns/upload-jobs/" + "x" * 129, "ns", "x" * 129),
            ("/namespaces//upload-jobs/x", "", "x"),
            ("/namespaces/ns/upload-jobs/", "ns", ""),
            ("/namespaces/ns/upload-jobs/a%3Ab", "ns", "a:b"),
        ],
    )
    def test_malformed_names_are_400(self, app: Any, raw: str, ns: str, job: str) -> None:
        response = call(app, "GET", raw)
        assert response.status == 400, raw
        body = json.loads(response.body)
        assert list(body) == ["job_id", "namespace_name", "status", "message"]
        assert (body["job_id"], body["namespace_name"], body["status"]) == (job, ns, "failure")
        assert "Invalid" in body["message"]
        check_common(response)

    @pytest.mark.parametrize("job", ["errors", "upload-jobs", "events", "namespaces"])
    @pytest.mark.parametrize("root", ["", "/api"])
    def test_a_job_named_like_a_route_is_that_job(self, job: str, root: str) -> None:
        tracker = JobTracker("memory://")
        tracker.start(NS, 3, job_id=job)
        app = status_app(tracker)
        response = call(app, "GET", f"/namespaces/{NS}/upload-jobs/{job}", root_path=root)
        assert response.status == 200
        assert json.loads(response.body)["job_id"] == job
        encoded = call(app, "GET", f"/namespaces/{NS}/upload-jobs/{job}%2F", root_path=root)
        assert encoded.status == 400  # "/" encoded inside the id: malformed, never another route

    @pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
    @pytest.mark.parametrize("raw", [ROUTE, "/namespaces/a%2Fb/upload-jobs/x"])
    def test_other_methods_are_405_before_names(self, app: Any, method: str, raw: str) -> None:
        response = call(app, method, raw)
        assert response.status == 405
        assert response.headers["allow"] == "GET, HEAD"
        body = json.loads(response.body)
        assert body["status"] == "failure" and list(body)[-2:] == ["status", "message"]
        check_common(response)

    @pytest.mark.parametrize("method", ["GET", "POST", "HEAD", "DELETE"])
    @pytest.mark.parametrize(
        "raw",
        [
            "/",
            "/namespaces/",  # (GET /namespaces lists them: tests/test_namespaces.py)
            f"/namespaces/{NS}",
            f"/namespaces/{NS}/upload-jobs/{JOB}/",
            f"/namespaces/{NS}/upload-jobs/{JOB}/upload-jobs",
            f"/x/namespaces/{NS}/upload-jobs",
            f"/namespaces/{NS}/upload-jobs/x/y/upload-jobs",
            f"/namespaces/{NS}/x/upload-jobs/{JOB}",
            f"/api/namespaces/{NS}/upload-jobs/{JOB}",
            f"/namespaces/{NS}/upload-job/{JOB}",
            "/openapi.json/x",
        ],
    )
    def test_other_paths_are_404(self, app: Any, method: str, raw: str) -> None:
        response = call(app, method, raw)
        assert response.status == 404
        if method != "HEAD":
            assert json.loads(response.body) == error("Not found.")
        check_common(response) if method != "HEAD" else None

    def test_async_tracker_and_file_store(self, tmp_path: Any) -> None:
        sync = JobTracker(f"file:{tmp_path}")
        job = sync.start(NS, 3)
        for tracker in (sync, AsyncJobTracker(f"file:{tmp_path}")):
            response = call(
                status_app(tracker), "GET", f"/namespaces/{NS}/upload-jobs/{job.job_id}"
            )
            assert json.loads(response.body) == job.to_dict()

    def test_a_job_with_a_lone_surrogate_in_its_error_is_served(self) -> None:
        tracker = JobTracker(MemoryStore())
        tracker.start(NS, 2, job_id=JOB)
        tracker.record(NS, JOB, failed=1, error="bad \udc80 name")  # was: 500 forever
        response = call(status_app(tracker), "GET", ROUTE)
        assert response.status == 200
        assert json.loads(response.body)["last_error"] == "bad \ufffd name"

    def test_store_unreachable_is_503_with_no_detail(self, caplog: Any) -> None:
        import port_for

        port = port_for.select_random()
        app = status_app(JobTracker(RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.5)))
        response = call(app, "GET", ROUTE)
        assert response.status == 503
        assert response.headers["retry-after"] == "2"
        assert json.loads(response.body) == error(
            "The job store is unavailable; retry later.", NS, JOB
        )
        check_common(response)
        assert "job store unavailable" in caplog.text and "Traceback" not in caplog.text

    def test_corrupt_job_is_a_clear_500(self, tmp_path: Any, caplog: Any) -> None:
        tracker = JobTracker(FileStore(tmp_path))
        tracker.start(NS, 1, job_id=JOB)
        with sqlite3.connect(tmp_path / "jobtrack.sqlite3") as db:  # a row broken by hand
            db.execute("UPDATE jobtrack_jobs SET processed = 7, last_error = 'NaN'")
        db.close()
        response = call(status_app(tracker), "GET", ROUTE)
        assert response.status == 500
        assert json.loads(response.body) == error(
            "The stored job is corrupt; it cannot be read.", NS, JOB
        )
        assert b"NaN" not in response.body and str(tmp_path).encode() not in response.body
        assert "corrupt job" in caplog.text
        check_common(response)

    def test_a_store_that_is_down_is_logged_once_per_interval(self, caplog: Any) -> None:
        import port_for

        port = port_for.select_random()
        app = status_app(JobTracker(RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.5)))
        for _ in range(20):
            assert call(app, "GET", ROUTE).status == 503
        lines = [r for r in caplog.records if r.getMessage().startswith("job store unavailable")]
        assert len(lines) == 1  # not twenty: the log cannot flood

    def test_a_request_that_waits_too_long_for_the_store_is_503(self) -> None:
        entered, release = threading.Event(), threading.Event()

        class Slow(MemoryStore):
            features = Features()  # blocking: run in a worker thread

            def get(self, namespace: str, job_id: str) -> Any:
                entered.set()
                release.wait(10)
                return super().get(namespace, job_id)

        tracker = JobTracker(Slow())
        with freeze_time("2026-05-21T12:00:00Z"):
            tracker.start(NS, 1, job_id=JOB)
        app = status_app(tracker, max_store_calls=1, store_wait=0.2)
        first, second = one_call_held(app, ROUTE, entered, release)
        assert first.status_code == 200
        assert second.status_code == 503 and second.headers["retry-after"] == "2"
        assert second.json() == error("The job store is busy; retry later.", NS, JOB)

    @pytest.mark.parametrize(
        ("option", "value"),
        [("max_store_calls", 0), ("max_store_calls", 1.5), ("store_wait", 0), ("store_wait", "2")],
    )
    def test_bad_limits_are_configuration_errors(self, option: str, value: object) -> None:
        with pytest.raises(ConfigurationError, match=option):
            status_app(JobTracker(MemoryStore()), **{option: value})  # type: ignore[arg-type]

    def test_unexpected_failure_is_500_with_no_traceback(self, caplog: Any) -> None:
        class Broken(MemoryStore):
            def get(self, namespace: str, job_id: str) -> Any:
                raise RuntimeError("secret internal detail")

        response = call(status_app(JobTracker(Broken())), "GET", ROUTE)
        assert response.status == 500
        assert json.loads(response.body) == error("Internal server error.")
        assert b"secret" not in response.body and b"Traceback" not in response.body
        assert "secret internal detail" in caplog.text  # logged for the operator

    def test_refuses_a_non_tracker(self) -> None:
        from jobtrack import ConfigurationError

        with pytest.raises(ConfigurationError):
            status_app("memory://")  # type: ignore[arg-type]


class TestAuthorize:
    @pytest.mark.parametrize(
        ("decision", "status"), [(True, 200), (None, 200), (False, 403), (403, 403), (401, 401)]
    )
    def test_decisions(self, tracker: JobTracker, decision: Any, status: int) -> None:
        seen: list[Any] = []

        def authorize(namespace: str, headers: Any) -> Any:
            seen.append((namespace, dict(headers)))
            return decision

        app = status_app(tracker, authorize=authorize)
        response = call(
            app,
            "GET",
            ROUTE,
            headers=[(b"Authorization", b"Bearer t"), (b"X-A", b"1"), (b"x-a", b"2")],
        )
        assert response.status == status
        assert seen == [(NS, {"authorization": "Bearer t", "x-a": "1, 2"})]
        if status != 200:
            body = json.loads(response.body)
            assert body["status"] == "failure" and body["namespace_name"] == NS

    def test_async_hook(self, tracker: JobTracker) -> None:
        async def authorize(namespace: str, headers: Any) -> bool:
            return bool(headers.get("authorization") == "Bearer good")

        app = status_app(tracker, authorize=authorize)
        assert call(app, "GET", ROUTE, headers=[(b"authorization", b"Bearer good")]).status == 200
        assert call(app, "GET", ROUTE, headers=[(b"authorization", b"Bearer bad")]).status == 403

    def test_names_are_checked_before_the_hook(self, tracker: JobTracker) -> None:
        def authorize(namespace: str, headers: Any) -> bool:
            raise AssertionError("must not be asked")

        app = status_app(tracker, authorize=authorize)
        assert call(app, "GET", "/namespaces/a%2Fb/upload-jobs/x").status == 400

    def test_bad_hook_answer_is_500(self, tracker: JobTracker) -> None:
        app = status_app(tracker, authorize=lambda ns, h: "yes")  # type: ignore[arg-type,return-value]
        assert call(app, "GET", ROUTE).status == 500


class TestProtocol:
    def test_lifespan_closes_the_store(self) -> None:
        closed: list[bool] = []

        class Spy(MemoryStore):
            def close(self) -> None:
                closed.append(True)

        app = status_app(JobTracker(Spy()))
        messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
        sent: list[Any] = []

        async def receive() -> Any:
            return next(messages)

        async def send(message: Any) -> None:
            sent.append(message["type"])

        asyncio.run(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        assert closed == [True]

    def test_websocket_is_refused(self, app: Any) -> None:
        sent: list[Any] = []

        async def receive() -> Any:
            return {"type": "websocket.connect"}

        async def send(message: Any) -> None:
            sent.append(message)

        asyncio.run(app({"type": "websocket", "path": ROUTE}, receive, send))
        assert sent == [{"type": "websocket.close", "code": 1003}]

    def test_openapi_document(self, app: Any) -> None:
        response = call(app, "GET", "/openapi.json")
        assert response.status == 200
        doc = json.loads(response.body)
        assert doc["openapi"] == "3.1.0"
        assert "/namespaces/{namespace_name}/upload-jobs/{job_id}" in doc["paths"]
        assert call(app, "POST", "/openapi.json").status == 405


class TestItemRoutes:
    """SPEC section 7: a job's failed items and error counts."""

    @pytest.fixture
    def items_app(self, tracker: JobTracker) -> Any:
        with freeze_time("2026-05-21T12:00:01Z"):
            tracker.start(NS, 10, job_id="j2")
            for i in range(5):
                tracker.record(NS, "j2", item=f"s3://b/{i}.pdf", failed=1, error=f"bad {i % 2}")
            tracker.record(NS, "j2", failed=2, error="bad 1")
        return status_app(tracker)

    def test_failed_items_page_by_page(self, items_app: Any) -> None:
        base = f"/namespaces/{NS}/upload-jobs/j2/failed-items"
        first = call(items_app, "GET", base + "?limit=2")
        assert first.status == 200
        check_common(first)
        body = json.loads(first.body)
        assert list(body) == ["items", "next_cursor"]
        assert body["items"] == [
            {"item": "s3://b/0.pdf", "error": "bad 0", "failed_at": "2026-05-21T12:00:01.000Z"},
            {"item": "s3://b/1.pdf", "error": "bad 1", "failed_at": "2026-05-21T12:00:01.000Z"},
        ]
        items = [entry["item"] for entry in body["items"]]
        cursor = body["next_cursor"]
        while cursor is not None:
            page = json.loads(call(items_app, "GET", f"{base}?limit=2&cursor={cursor}").body)
            items += [entry["item"] for entry in page["items"]]
            cursor = page["next_cursor"]
        assert items == [f"s3://b/{i}.pdf" for i in range(5)]
        assert json.loads(call(items_app, "GET", base).body)["next_cursor"] is None
        empty = call(items_app, "GET", base + "?limit=&cursor=")  # empty values: not given
        assert empty.status == 200 and len(json.loads(empty.body)["items"]) == 5
        head = call(items_app, "HEAD", base)
        assert head.status == 200 and head.body == b""

    def test_errors(self, items_app: Any) -> None:
        response = call(items_app, "GET", f"/namespaces/{NS}/upload-jobs/j2/errors")
        assert response.status == 200
        check_common(response)
        at = "2026-05-21T12:00:01.000Z"
        assert json.loads(response.body) == {
            "errors": [
                {"message": "bad 1", "count": 4, "first_at": at, "last_at": at},
                {"message": "bad 0", "count": 3, "first_at": at, "last_at": at},
            ]
        }

    @pytest.mark.parametrize(
        ("query", "message"),
        [
            ("limit=0", "limit must be an int from 1 to 1000, got 0"),
            ("limit=1001", "limit must be an int from 1 to 1000, got 1001"),
            ("limit=-1", "limit must be an integer, got '-1'"),
            ("limit=abc", "limit must be an integer, got 'abc'"),
            ("limit=%C2%B2", "limit must be an integer, got '²'"),
            ("limit=" + "1" * 5000, "got 11111111111111111111"),
            ("limit=1&limit=2", "at most once"),
            ("cursor=nope", "malformed cursor 'nope'"),
            ("cursor=1&cursor=2", "at most once"),
        ],
    )
    def test_bad_parameters_are_400(self, items_app: Any, query: str, message: str) -> None:
        response = call(items_app, "GET", f"/namespaces/{NS}/upload-jobs/j2/failed-items?{query}")
        assert response.status == 400
        body = json.loads(response.body)
        assert body["status"] == "failure" and message in body["message"]
        assert (body["namespace_name"], body["job_id"]) == (NS, "j2")

    def test_route_words_may_be_percent_encoded(self, items_app: Any) -> None:
        # %75 is "u", %65 "e", %2D "-": unreserved characters, the same path decoded
        for encoded, plain in (
            (f"/namespaces/{NS}/%75pload-jobs/j2", f"/namespaces/{NS}/upload-jobs/j2"),
            (f"/namespaces/{NS}/%75pload-jobs", f"/namespaces/{NS}/upload-jobs"),
            (
                f"/namespaces/{NS}/upload-jobs/j2/%65rrors",
                f"/namespaces/{NS}/upload-jobs/j2/errors",
            ),
            (
                f"/namespaces/{NS}/upload%2Djobs/j2/failed%2Ditems",
                f"/namespaces/{NS}/upload-jobs/j2/failed-items",
            ),
        ):
            response = call(items_app, "GET", encoded)
            assert response.status == 200, encoded
            assert response.body == call(items_app, "GET", plain).body

    @pytest.mark.parametrize("below", ["failed-items", "errors"])
    def test_names_methods_and_unknown_jobs(self, items_app: Any, below: str) -> None:
        assert call(items_app, "GET", f"/namespaces/{NS}/upload-jobs/nope/{below}").status == 404
        assert call(items_app, "GET", f"/namespaces/other/upload-jobs/j2/{below}").status == 404
        assert call(items_app, "GET", f"/namespaces/a%2Fb/upload-jobs/j2/{below}").status == 400
        assert call(items_app, "GET", f"/namespaces/{NS}/upload-jobs/j.2/{below}").status == 400
        post = call(items_app, "POST", f"/namespaces/{NS}/upload-jobs/j2/{below}")
        assert post.status == 405 and post.headers["allow"] == "GET, HEAD"
        assert call(items_app, "GET", f"/namespaces/{NS}/upload-jobs/j2/{below}/x").status == 404
        assert call(items_app, "GET", f"/namespaces/{NS}/upload-jobs/{below}").status == 404

    @pytest.mark.parametrize("job", ["errors", "failed-items"])
    def test_jobs_named_like_the_routes_below_a_job(self, tracker: JobTracker, job: str) -> None:
        with freeze_time("2026-05-21T12:00:00Z"):
            tracker.start(NS, 1, job_id=job)
            tracker.record(NS, job, item="x", failed=1, error="e")
        app = status_app(tracker)
        with freeze_time("2026-05-21T12:00:00Z"):  # read with the clock it completed by
            status = call(app, "GET", f"/namespaces/{NS}/upload-jobs/{job}")
            below = call(app, "GET", f"/namespaces/{NS}/upload-jobs/{job}/{job}")
            mounted = call(app, "GET", f"/namespaces/{NS}/upload-jobs/{job}", root_path="/x")
        assert status.status == 200 and json.loads(status.body)["job_id"] == job
        assert below.status == 200 and list(json.loads(below.body)) in (
            ["errors"],
            ["items", "next_cursor"],
        )
        assert mounted.status == 200

    def test_a_store_without_items_answers_404(self) -> None:
        class Plain(MemoryStore):
            features = Features(blocking=False)

        tracker = JobTracker(Plain())
        tracker.start(NS, 1, job_id=JOB)
        response = call(status_app(tracker), "GET", f"{ROUTE}/errors")
        assert response.status == 404
        assert json.loads(response.body)["message"] == "This job store does not keep items."
        with pytest.raises(ConfigurationError, match="does not keep items"):
            tracker.record(NS, JOB, item="a", successful=1)

    def test_openapi_describes_them(self, app: Any) -> None:
        doc = json.loads(call(app, "GET", "/openapi.json").body)
        paths = doc["paths"]
        failed = paths["/namespaces/{namespace_name}/upload-jobs/{job_id}/failed-items"]["get"]
        assert set(failed["responses"]) >= {"200", "400", "404", "503"}
        schemas = doc["components"]["schemas"]
        assert schemas["FailedItemPage"]["required"] == ["items", "next_cursor"]
        item = schemas["FailedItemPage"]["properties"]["items"]["items"]
        assert item["required"] == ["item", "error", "failed_at"]
        assert paths["/namespaces/{namespace_name}/upload-jobs/{job_id}/errors"]["get"]
        group = schemas["ErrorCounts"]["properties"]["errors"]["items"]
        assert group["required"] == ["message", "count", "first_at", "last_at"]


T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
LIST = f"/namespaces/{NS}/upload-jobs"


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += datetime.timedelta(**delta)


def page_of(response: Any) -> tuple[list[str], str | None]:
    """The job ids and next cursor of a list response (checked for its shape)."""
    assert response.status == 200, response.body
    check_common(response)
    body = json.loads(response.body)
    assert list(body) == ["jobs", "next_cursor"]
    for job in body["jobs"]:
        assert list(job) == list(json.loads(SPEC_EXAMPLE))  # the status document, 11 keys
    return [job["job_id"] for job in body["jobs"]], body["next_cursor"]


class TestListRoute:
    """SPEC section 7: GET /namespaces/{ns}/upload-jobs?status=&limit=&cursor=."""

    @pytest.fixture
    def clock(self) -> Clock:
        return Clock()

    @pytest.fixture
    def tracker(self, clock: Clock) -> JobTracker:
        """Jobs j0..j5 started a second apart: j0, j1 completed; j2, j3 stalled; j4, j5 fresh."""
        tracker = JobTracker(MemoryStore(), clock=clock, stall_after=datetime.timedelta(minutes=5))
        for i in range(6):
            tracker.start(NS, 1, job_id=f"j{i}")
            clock.advance(seconds=1)
        for job in ("j0", "j1"):
            tracker.record(NS, job, processed=1, successful=1)
        clock.advance(minutes=10)
        for job in ("j4", "j5"):
            tracker.heartbeat(NS, job)
        tracker.start("other", 1, job_id="elsewhere")
        return tracker

    @pytest.fixture
    def app(self, tracker: JobTracker) -> Any:
        return status_app(tracker)

    def test_every_job_newest_first_page_by_page(self, app: Any, tracker: JobTracker) -> None:
        ids, cursor = page_of(call(app, "GET", LIST))
        assert ids == ["j5", "j4", "j3", "j2", "j1", "j0"] and cursor is None
        body = json.loads(call(app, "GET", LIST).body)
        assert body["jobs"][0] == tracker.get(NS, "j5").to_dict()
        seen: list[str] = []
        cursor = ""
        pages = 0
        while cursor is not None:
            ids, cursor = page_of(call(app, "GET", f"{LIST}?limit=4&cursor={cursor or ''}"))
            seen += ids
            pages += 1
        assert seen == ["j5", "j4", "j3", "j2", "j1", "j0"] and pages == 2
        empty = call(app, "GET", f"{LIST}?status=&limit=&cursor=")  # empty values: not given
        assert page_of(empty) == (["j5", "j4", "j3", "j2", "j1", "j0"], None)
        assert page_of(call(app, "GET", "/namespaces/nobody/upload-jobs")) == ([], None)
        head = call(app, "HEAD", f"{LIST}?limit=1")
        assert head.status == 200 and head.body == b""
        assert int(head.headers["content-length"]) == len(call(app, "GET", f"{LIST}?limit=1").body)

    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            ("running", ["j5", "j4", "j3", "j2"]),
            ("completed", ["j1", "j0"]),
            ("stalled", ["j3", "j2"]),
        ],
    )
    def test_status_filter(self, app: Any, status: str, expected: list[str]) -> None:
        assert page_of(call(app, "GET", f"{LIST}?status={status}")) == (expected, None)
        first, cursor = page_of(call(app, "GET", f"{LIST}?status={status}&limit=1"))
        assert first == expected[:1] and cursor is not None
        rest, end = page_of(call(app, "GET", f"{LIST}?status={status}&cursor={cursor}"))
        assert rest == expected[1:] and end is None

    def test_expired_jobs_are_not_listed(self, app: Any, clock: Clock) -> None:
        clock.advance(days=7)  # j0 and j1 completed 7 days and 10 minutes ago
        assert page_of(call(app, "GET", LIST))[0] == ["j5", "j4", "j3", "j2"]
        assert page_of(call(app, "GET", f"{LIST}?status=completed")) == ([], None)

    def test_a_limit_with_leading_zeros_is_its_number(self, app: Any) -> None:
        for zeros in (1, 5000):  # (int() of 5,000 digits would raise)
            response = call(app, "GET", f"{LIST}?limit={'0' * zeros}1")
            assert response.status == 200 and len(json.loads(response.body)["jobs"]) == 1

    @pytest.mark.parametrize(
        ("query", "message"),
        [
            (
                "status=x",
                "status must be one of running, completed, stalled (or none: every job), got 'x'",
            ),
            ("status=Running", "got 'Running'"),
            ("status=failure", "got 'failure'"),
            ("status=running&status=completed", "Give status at most once."),
            ("limit=0", "limit must be an int from 1 to 1000, got 0"),
            ("limit=1001", "limit must be an int from 1 to 1000, got 1001"),
            ("limit=abc", "limit must be an integer, got 'abc'"),
            ("limit=" + "9" * 5000, "got 99999999999999999999"),
            ("limit=1&limit=2", "Give limit at most once."),
            ("cursor=nope", "malformed cursor 'nope': pass back a next_cursor unchanged"),
            ("cursor=12.a%2Fb", "malformed cursor '12.a/b': pass back a next_cursor unchanged"),
            ("cursor=1.a&cursor=1.b", "Give cursor at most once."),
        ],
    )
    def test_bad_parameters_are_400(self, app: Any, query: str, message: str) -> None:
        response = call(app, "GET", f"{LIST}?{query}")
        assert response.status == 400
        check_common(response)
        body = json.loads(response.body)
        assert list(body) == ["namespace_name", "status", "message"]  # no job was named
        assert body["namespace_name"] == NS and body["status"] == "failure"
        assert message in body["message"]

    def test_stalled_needs_stall_after(self, clock: Clock) -> None:
        tracker = JobTracker(MemoryStore(), clock=clock)
        tracker.start(NS, 1, job_id="j")
        app = status_app(tracker)
        response = call(app, "GET", f"{LIST}?status=stalled")
        assert response.status == 400
        assert json.loads(response.body) == error(
            "listing stalled jobs needs a tracker with stall_after "
            "(jobtrack: --stall-after SECONDS)",
            NS,
        )
        assert page_of(call(app, "GET", f"{LIST}?status=running")) == (["j"], None)
        # the app's own stall_after, given to status_app: the tracker stays as it was
        clock.advance(minutes=10)
        stalled = status_app(tracker, stall_after=datetime.timedelta(minutes=5))
        assert page_of(call(stalled, "GET", f"{LIST}?status=stalled")) == (["j"], None)
        assert tracker.stall_after is None

    def test_names_methods_and_other_paths(self, app: Any) -> None:
        bad = call(app, "GET", "/namespaces/a%2Fb/upload-jobs")
        assert bad.status == 400
        assert list(json.loads(bad.body)) == ["namespace_name", "status", "message"]
        assert json.loads(bad.body)["namespace_name"] == "a/b"
        assert call(app, "GET", f"/namespaces/{'x' * 129}/upload-jobs").status == 400
        for method in ("POST", "PUT", "DELETE"):
            refused = call(app, method, LIST)
            assert refused.status == 405 and refused.headers["allow"] == "GET, HEAD"
            assert call(app, method, "/namespaces/a%2Fb/upload-jobs").status == 405
        assert call(app, "GET", f"{LIST}/").status == 400  # a job route with an empty job id
        mounted = call(app, "GET", LIST, root_path="/api")
        assert page_of(mounted)[0][0] == "j5"

    def test_namespaces_and_jobs_named_upload_jobs(self, clock: Clock) -> None:
        tracker = JobTracker(MemoryStore(), clock=clock)
        tracker.start("upload-jobs", 1, job_id="upload-jobs")
        tracker.start("namespaces", 1, job_id="upload-jobs")
        app = status_app(tracker)
        assert page_of(call(app, "GET", "/namespaces/upload-jobs/upload-jobs")) == (
            ["upload-jobs"],
            None,
        )
        job = call(app, "GET", "/namespaces/namespaces/upload-jobs/upload-jobs")
        assert job.status == 200 and json.loads(job.body)["namespace_name"] == "namespaces"
        job = call(app, "GET", "/namespaces/upload-jobs/upload-jobs/upload-jobs")
        assert job.status == 200 and json.loads(job.body)["namespace_name"] == "upload-jobs"

    def test_authorize_is_asked_with_the_namespace(self, tracker: JobTracker) -> None:
        asked: list[str] = []

        def authorize(namespace: str, headers: Any) -> bool:
            asked.append(namespace)
            return namespace == NS

        app = status_app(tracker, authorize=authorize)
        assert page_of(call(app, "GET", LIST))[0][0] == "j5"
        refused = call(app, "GET", "/namespaces/other/upload-jobs")
        assert refused.status == 403
        assert json.loads(refused.body) == error("Not allowed.", "other")
        assert call(app, "GET", "/namespaces/a%2Fb/upload-jobs").status == 400  # not asked
        assert asked == [NS, "other"]

    def test_a_request_that_waits_too_long_for_the_store_is_503(self) -> None:
        entered, release = threading.Event(), threading.Event()

        class Slow(MemoryStore):
            features = Features()  # blocking: run in a worker thread

            def list(self, *args: Any) -> Any:
                entered.set()
                release.wait(10)
                return super().list(*args)

        app = status_app(JobTracker(Slow()), max_store_calls=1, store_wait=0.2)
        first, second = one_call_held(app, LIST, entered, release)
        assert first.status_code == 200 and first.json() == {"jobs": [], "next_cursor": None}
        assert second.status_code == 503 and second.headers["retry-after"] == "2"
        assert second.json() == error("The job store is busy; retry later.", NS)

    def test_store_unreachable_is_503(self) -> None:
        import port_for

        port = port_for.select_random()
        app = status_app(JobTracker(RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.5)))
        response = call(app, "GET", LIST)
        assert response.status == 503 and response.headers["retry-after"] == "2"
        assert json.loads(response.body) == error("The job store is unavailable; retry later.", NS)

    def test_unexpected_failure_is_500(self, caplog: Any) -> None:
        class Broken(MemoryStore):
            def list(self, *args: Any) -> Any:
                raise RuntimeError("secret internal detail")

        response = call(status_app(JobTracker(Broken())), "GET", LIST)
        assert response.status == 500
        assert json.loads(response.body) == error("Internal server error.")
        assert "secret internal detail" in caplog.text and b"secret" not in response.body

    def test_over_a_file_store(self, tmp_path: Any) -> None:
        tracker = JobTracker(FileStore(tmp_path))
        ids = [tracker.start(NS, 2).job_id for _ in range(3)]
        tracker.record(NS, ids[0], processed=2, successful=2)
        app = status_app(tracker)
        assert sorted(page_of(call(app, "GET", LIST))[0]) == sorted(ids)
        assert page_of(call(app, "GET", f"{LIST}?status=completed"))[0] == [ids[0]]


class TestProgressRoute:
    """SPEC section 8: ``GET .../{job_id}/progress``, by the server's clock."""

    @pytest.fixture
    def clock(self) -> Clock:
        return Clock()

    @pytest.fixture
    def tracker(self, clock: Clock) -> JobTracker:
        stalling = datetime.timedelta(minutes=5)
        tracker = JobTracker(MemoryStore(), clock=clock, stall_after=stalling)
        tracker.start("y", 100, job_id="x")
        clock.advance(seconds=10)
        tracker.record("y", "x", processed=20, successful=20)  # 2 a second
        return tracker

    def test_progress(self, tracker: JobTracker, clock: Clock) -> None:
        app = status_app(tracker)
        response = call(app, "GET", "/namespaces/y/upload-jobs/x/progress")
        assert response.status == 200
        check_common(response)
        body = json.loads(response.body)
        assert list(body) == [
            "percent",
            "rate_per_s",
            "eta_at",
            "elapsed_s",
            "stalled",
            "expires_at",
        ]
        assert body == {
            "percent": 20.0,
            "rate_per_s": pytest.approx(2.0, rel=1e-9),
            "eta_at": "2026-01-01T00:00:50.000Z",  # 80 more at 2 a second
            "elapsed_s": 10.0,
            "stalled": False,
            "expires_at": None,
        }
        assert call(app, "HEAD", "/namespaces/y/upload-jobs/x/progress").body == b""
        clock.advance(minutes=6)  # the server's clock: stalled, and the rate decays
        later = json.loads(call(app, "GET", "/namespaces/y/upload-jobs/x/progress").body)
        assert later["stalled"] is True and later["rate_per_s"] < 0.01
        assert later["elapsed_s"] == 370.0
        tracker.record("y", "x", successful=80)
        done = json.loads(call(app, "GET", "/namespaces/y/upload-jobs/x/progress").body)
        assert (done["percent"], done["eta_at"], done["stalled"]) == (100.0, None, False)
        assert done["expires_at"] == "2026-01-08T00:06:10.000Z"  # the default 7 days

    @pytest.mark.parametrize(
        ("path", "status", "message"),
        [
            ("/namespaces/y/upload-jobs/nope/progress", 404, "Upload job 'nope' not found"),
            ("/namespaces/other/upload-jobs/x/progress", 404, "Upload job 'x' not found"),
            ("/namespaces/y/upload-jobs/b%21d/progress", 400, "job id"),
            ("/namespaces/b%2Fd/upload-jobs/x/progress", 400, "namespace name"),
        ],
    )
    def test_bad_requests(self, tracker: JobTracker, path: str, status: int, message: str) -> None:
        response = call(status_app(tracker), "GET", path)
        assert response.status == status
        check_common(response)
        assert message in json.loads(response.body)["message"]
        assert call(status_app(tracker), "POST", path).status == 405


class TestExpiry:
    """SPEC section 6: an expired job answers 410, then (after remember_expired) 404."""

    @pytest.fixture
    def clock(self) -> Clock:
        return Clock()

    @pytest.fixture
    def tracker(self, clock: Clock) -> JobTracker:
        tracker = JobTracker(
            MemoryStore(),
            clock=clock,
            retain=datetime.timedelta(minutes=1),
            remember_expired=datetime.timedelta(hours=1),
        )
        tracker.start("y", 3, job_id="x")
        tracker.record("y", "x", item="a", failed=1, error="bad")
        tracker.record("y", "x", processed=2, successful=2)  # completed at T0
        tracker.start("y", 3, job_id="running")
        return tracker

    EXPIRED = "Upload job 'x' in namespace 'y' expired at 2026-01-01T00:01:00.000Z."

    def test_status_route_410_then_404(self, tracker: JobTracker, clock: Clock) -> None:
        app = status_app(tracker)
        clock.advance(seconds=59.999)
        assert call(app, "GET", "/namespaces/y/upload-jobs/x").status == 200  # not yet
        clock.advance(seconds=0.001)  # the expiry instant itself: expired
        response = call(app, "GET", "/namespaces/y/upload-jobs/x")
        assert response.status == 410
        check_common(response)
        assert (
            response.body
            == json.dumps(error(self.EXPIRED, "y", "x"), separators=(",", ":")).encode()
        )
        assert list(json.loads(response.body)) == ["job_id", "namespace_name", "status", "message"]
        head = call(app, "HEAD", "/namespaces/y/upload-jobs/x")
        assert head.status == 410 and head.body == b""
        assert call(app, "GET", "/namespaces/other/upload-jobs/x").status == 404  # never revealed
        clock.advance(minutes=59, seconds=59.999)
        assert call(app, "GET", "/namespaces/y/upload-jobs/x").status == 410
        clock.advance(seconds=0.001)  # remember_expired has passed: unknown
        gone = call(app, "GET", "/namespaces/y/upload-jobs/x")
        assert gone.status == 404
        assert json.loads(gone.body) == error(
            "Upload job 'x' not found in namespace 'y'.", "y", "x"
        )
        clock.advance(days=3650)
        assert call(app, "GET", "/namespaces/y/upload-jobs/running").status == 200  # never expires

    @pytest.mark.parametrize("below", ["failed-items", "errors", "progress"])
    def test_item_routes_410_then_404(self, tracker: JobTracker, clock: Clock, below: str) -> None:
        app = status_app(tracker)
        assert call(app, "GET", f"/namespaces/y/upload-jobs/x/{below}").status == 200
        clock.advance(minutes=1)
        response = call(app, "GET", f"/namespaces/y/upload-jobs/x/{below}")
        assert response.status == 410
        assert json.loads(response.body) == error(self.EXPIRED, "y", "x")
        clock.advance(hours=1)
        assert call(app, "GET", f"/namespaces/y/upload-jobs/x/{below}").status == 404

    def test_a_sync_and_an_async_tracker_read_with_their_own_clock(
        self, tracker: JobTracker, clock: Clock
    ) -> None:
        clock.advance(minutes=2)
        for app in (status_app(tracker), status_app(AsyncJobTracker.from_tracker(tracker))):
            assert call(app, "GET", "/namespaces/y/upload-jobs/x").status == 410

    def test_status_app_options_replace_the_trackers(
        self, tracker: JobTracker, clock: Clock
    ) -> None:
        clock.advance(minutes=2)  # expired a minute ago
        short = status_app(tracker, remember_expired=datetime.timedelta(seconds=30))
        assert call(short, "GET", "/namespaces/y/upload-jobs/x").status == 404
        assert call(status_app(tracker), "GET", "/namespaces/y/upload-jobs/x").status == 410
        with pytest.raises(JobExpired):  # the tracker itself is unchanged
            tracker.get("y", "x")
        kept = status_app(tracker, retain=None)
        assert (
            kept.tracker.retain is None
            and kept.tracker.remember_expired == tracker.remember_expired
        )
        with pytest.raises(ConfigurationError, match="remember_expired"):
            status_app(tracker, remember_expired=datetime.timedelta(seconds=-1))
        with pytest.raises(ConfigurationError, match="stall_after"):
            status_app(tracker, stall_after=datetime.timedelta(0))

    def test_the_library_agrees(self, tracker: JobTracker, clock: Clock) -> None:
        clock.advance(minutes=1)
        with pytest.raises(JobExpired) as expired:
            tracker.get("y", "x")
        assert str(expired.value) == self.EXPIRED
        clock.advance(hours=1)
        with pytest.raises(JobNotFound) as unknown:
            tracker.get("y", "x")
        assert not isinstance(unknown.value, JobExpired)


class TestListOpenApi:
    def test_the_document_describes_the_list_route_and_410(self, app: Any) -> None:
        doc = json.loads(call(app, "GET", "/openapi.json").body)
        route = doc["paths"]["/namespaces/{namespace_name}/upload-jobs"]["get"]
        assert [p["name"] for p in route["parameters"]] == ["status", "limit", "cursor"]
        assert set(route["responses"]) == {"200", "400", "401", "403", "503"}
        for path in ("", "/failed-items", "/errors"):
            job_route = doc["paths"][f"/namespaces/{{namespace_name}}/upload-jobs/{{job_id}}{path}"]
            assert "410" in job_route["get"]["responses"]
        assert doc["components"]["schemas"]["JobStatus"]["required"] == list(
            json.loads(SPEC_EXAMPLE)
        )

    def test_responses_match_the_document(self) -> None:
        import jsonschema_rs

        clock = Clock()
        tracker = JobTracker(MemoryStore(), clock=clock, stall_after=datetime.timedelta(seconds=1))
        for i in range(3):
            tracker.start(NS, 1, job_id=f"j{i}")
        tracker.record(NS, "j0", processed=1, failed=1, error="bad")
        app = status_app(tracker)
        doc = json.loads(call(app, "GET", "/openapi.json").body)

        def valid(response: Any, path: str, status: str) -> bool:
            operation = doc["paths"][path]["get"]["responses"][status]
            schema = operation["content"]["application/json"]["schema"]
            validator = jsonschema_rs.Draft202012Validator({**doc, **schema})
            return bool(validator.is_valid(json.loads(response.body)))

        lists = "/namespaces/{namespace_name}/upload-jobs"
        page = call(app, "GET", f"{LIST}?limit=2")
        assert valid(page, lists, "200") and json.loads(page.body)["next_cursor"]
        assert valid(call(app, "GET", f"{LIST}?status=nope"), lists, "400")
        clock.advance(days=7)
        expired = call(app, "GET", f"{LIST}/j0")
        assert expired.status == 410
        assert valid(expired, "/namespaces/{namespace_name}/upload-jobs/{job_id}", "410")
        assert not valid(expired, "/namespaces/{namespace_name}/upload-jobs/{job_id}", "200")
        cursor = json.loads(call(app, "GET", f"{LIST}?limit=1").body)["next_cursor"]
        pattern = doc["paths"][lists]["get"]["parameters"][2]["schema"]["pattern"]
        assert re.fullmatch(pattern, cursor)


def over_asgi(app: Any, requests: list[tuple[str, str]]) -> list[httpx.Response]:
    """Send requests to *app* in process with httpx's ASGITransport."""

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return [await client.request(method, url) for method, url in requests]

    return asyncio.run(main())


class TestMounted:
    def test_starlette_mount(self, tracker: JobTracker) -> None:
        from starlette.applications import Starlette
        from starlette.routing import Mount

        outer = Starlette(routes=[Mount("/api/v1", app=status_app(tracker))])
        ok, encoded, unmounted, openapi = over_asgi(
            outer,
            [
                ("GET", f"/api/v1{ROUTE}"),
                ("GET", f"/api/v1/namespaces/a%2Fb/upload-jobs/{JOB}"),
                ("GET", ROUTE),
                ("GET", "/api/v1/openapi.json"),
            ],
        )
        assert ok.status_code == 200 and ok.content == SPEC_BYTES
        assert encoded.status_code == 400 and encoded.json()["namespace_name"] == "a/b"
        assert unmounted.status_code == 404
        assert openapi.json()["openapi"] == "3.1.0"

    def test_fastapi_mount(self, tracker: JobTracker) -> None:
        from fastapi import FastAPI

        outer = FastAPI()
        outer.mount("/jobs", status_app(tracker))
        ok, missing, post = over_asgi(
            outer,
            [
                ("GET", f"/jobs{ROUTE}"),
                ("GET", f"/jobs/namespaces/other/upload-jobs/{JOB}"),
                ("POST", f"/jobs{ROUTE}"),
            ],
        )
        assert ok.status_code == 200 and ok.content == SPEC_BYTES
        assert ok.headers["cache-control"] == "no-store"
        assert missing.status_code == 404 and missing.json()["message"] == NOT_FOUND
        assert post.status_code == 405


@pytest.fixture
def served(tracker: JobTracker) -> Iterator[str]:
    """The app under a real uvicorn server, on a socket bound before it starts."""
    with serving(status_app(tracker)) as base:
        yield base


class TestOverHttp:
    def test_uvicorn(self, served: str) -> None:
        with httpx.Client(base_url=served, timeout=10) as client:
            response = client.get(ROUTE)
            assert response.status_code == 200
            assert response.content == SPEC_BYTES
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["content-type"] == "application/json"
            head = client.head(ROUTE)
            assert head.status_code == 200 and head.content == b""
            bad = client.get(f"/namespaces/a%2Fb/upload-jobs/{JOB}")
            assert bad.status_code == 400 and bad.json()["namespace_name"] == "a/b"
            post = client.post(ROUTE)
            assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"
            assert client.get("/nothing/here").status_code == 404
            assert client.get(f"/namespaces/other/upload-jobs/{JOB}").json()["message"] == NOT_FOUND
            errors = client.get(f"{ROUTE}/errors")
            assert errors.status_code == 200 and errors.json() == {"errors": []}
            page = client.get(f"{ROUTE}/failed-items", params={"limit": "5"})
            assert page.status_code == 200 and page.json() == {"items": [], "next_cursor": None}
            assert client.get(f"{ROUTE}/failed-items?limit=0").status_code == 400


@pytest.mark.redis
@pytest.mark.parametrize("api", ["sync", "async"])
def test_route_over_a_real_redis(redis_server: Any, redis_prefix: str, api: str) -> None:
    from tests.redis_fixtures import redis_url

    url = f"{redis_url(redis_server)}?prefix={redis_prefix}"
    setup = JobTracker(url)
    job = setup.start(NS, 5)
    setup.record(NS, job.job_id, processed=2, failed=1, error="bad ✓")
    tracker: Any = JobTracker(url) if api == "sync" else AsyncJobTracker(url)
    app = status_app(tracker)

    async def main() -> list[Any]:
        from tests.asgi_driver import call_async

        found = await call_async(app, "GET", f"/namespaces/{NS}/upload-jobs/{job.job_id}")
        missing = await call_async(app, "GET", f"/namespaces/other/upload-jobs/{job.job_id}")
        await app.tracker.aclose()  # what lifespan shutdown does
        return [found, missing]

    found, missing = asyncio.run(main())
    assert found.status == 200
    assert json.loads(found.body) == setup.get(NS, job.job_id).to_dict()
    assert missing.status == 404
    setup.close()


def test_list_and_expiry_routes_over_every_store(store: Any) -> None:
    """The list route by status, and 410 then 404 for an expired job, on each store kind."""
    from tests.asgi_driver import call_async

    clock = Clock()
    tracker = JobTracker(
        store,
        clock=clock,
        stall_after=datetime.timedelta(minutes=5),
        retain=datetime.timedelta(minutes=1),
        remember_expired=datetime.timedelta(minutes=10),
    )
    for i in range(5):
        tracker.start(NS, 2, job_id=f"s{i}")
        clock.advance(seconds=1)
    tracker.record(NS, "s1", successful=2)
    clock.advance(minutes=5)  # s1 has expired; s0 and s2 have stalled
    tracker.heartbeat(NS, "s4")
    tracker.record(NS, "s3", failed=2, error="no")
    app = status_app(tracker)

    async def main() -> None:  # one event loop: a Redis store's async view lives in it
        async def get(path: str) -> Any:
            return await call_async(app, "GET", path)

        assert page_of(await get(LIST)) == (["s4", "s3", "s2", "s0"], None)  # s1 expired
        assert page_of(await get(f"{LIST}?status=completed")) == (["s3"], None)
        assert page_of(await get(f"{LIST}?status=running")) == (["s4", "s2", "s0"], None)
        assert page_of(await get(f"{LIST}?status=stalled&limit=1"))[0] == ["s2"]
        assert page_of(await get(f"{LIST}?status=stalled")) == (["s2", "s0"], None)
        expired = await get(f"{LIST}/s1")
        assert expired.status == 410 and b"expired at" in expired.body
        clock.advance(minutes=10)
        assert (await get(f"{LIST}/s1")).status == 404
        assert (await get(f"{LIST}/s3")).status == 410
        await app.tracker.aclose()

    asyncio.run(main())
