"""include_in (SPEC section 8): jobtrack's routes on a FastAPI or Starlette host, in its docs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from jobtrack import ConfigurationError, JobTracker, MemoryStore
from jobtrack.asgi import include_in
from jobtrack.openapi import openapi_document
from tests.asgi_driver import serving

NS = "my-documents"
JOB = "job-1"
STATUS = f"/jobs/namespaces/{NS}/upload-jobs/{JOB}"


class Spy(MemoryStore):
    """A memory store that notes when it is closed."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def tracker() -> JobTracker:
    tracker = JobTracker(Spy())
    tracker.start(NS, 3, job_id=JOB)
    tracker.record(NS, JOB, successful=1)
    return tracker


T = TypeVar("T")


@contextlib.asynccontextmanager
async def running(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of *app* in-process, between the app's lifespan startup and shutdown."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    task = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put)
    )
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://host") as client:
        yield client
    await inbox.put({"type": "lifespan.shutdown"})
    assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
    await task


def with_client(app: Any, use: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with running(app) as client:
            return await use(client)

    return asyncio.run(main())


def fastapi_host() -> FastAPI:
    host = FastAPI(title="host")

    @host.get("/hello/{name}")
    def hello(name: str) -> dict[str, str]:
        return {"hello": name}

    return host


def test_fastapi_openapi_lists_every_route_with_the_prefix(tracker: JobTracker) -> None:
    host = fastapi_host()
    include_in(host, tracker, prefix="/jobs")

    async def use(client: httpx.AsyncClient) -> dict[str, Any]:
        docs = await client.get("/docs")
        assert docs.status_code == 200 and "/openapi.json" in docs.text
        document: dict[str, Any] = (await client.get("/openapi.json")).json()
        return document

    doc = with_client(host, use)
    ours = openapi_document("x")
    assert "/hello/{name}" in doc["paths"]  # the host's own, beside
    for path in ours["paths"]:  # new jobtrack routes follow by themselves
        assert "/jobs" + path in doc["paths"], path
        assert doc["paths"]["/jobs" + path]["get"]["tags"] == ["jobtrack"]
    status = doc["paths"]["/jobs/namespaces/{namespace_name}/upload-jobs/{job_id}"]
    assert [p["name"] for p in status["parameters"]] == ["namespace_name", "job_id"]
    assert {"200", "304", "400", "404", "410", "503"} <= set(status["get"]["responses"])
    ok = status["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/JobtrackJobStatus"}
    schemas = doc["components"]["schemas"]
    assert "JobtrackJobStatus" in schemas and "HTTPValidationError" in schemas
    refs = [part for part in str(doc).split("'") if part.startswith("#/components/")]
    assert all(ref.rsplit("/", 1)[1] in schemas for ref in refs)


def test_fastapi_rebuilds_its_document_and_keeps_ours(tracker: JobTracker) -> None:
    host = fastapi_host()
    include_in(host, tracker)
    first = host.openapi()
    assert host.openapi() is first  # cached, extended once

    @host.get("/later")
    def later() -> str:
        return "later"

    again = host.openapi()
    assert (
        "/later" in again["paths"]
        and STATUS.replace(JOB, "{job_id}").replace(NS, "{namespace_name}") in again["paths"]
    )


def test_two_prefixes_keep_operation_ids_unique(tracker: JobTracker) -> None:
    host = fastapi_host()
    include_in(host, tracker, prefix="/a")
    include_in(host, JobTracker(MemoryStore()), prefix="/b/c")
    ids = [
        op["operationId"]
        for item in host.openapi()["paths"].values()
        for op in item.values()
        if isinstance(op, dict)
    ]
    assert len(ids) == len(set(ids))
    assert "getUploadJobStatus" in ids and "getUploadJobStatus_b_c" in ids


def test_requests_through_the_prefix_and_lifespan_closes_the_store(tracker: JobTracker) -> None:
    host = fastapi_host()
    include_in(host, tracker, prefix="/jobs")

    async def use(client: httpx.AsyncClient) -> None:
        response = await client.get(STATUS)
        assert response.status_code == 200
        assert response.json()["successful"] == 1
        assert (await client.get(STATUS + "x")).status_code == 404
        listing = (await client.get(f"/jobs/namespaces/{NS}/upload-jobs")).json()
        assert listing["jobs"][0]["job_id"] == JOB
        assert (await client.get("/hello/you")).json() == {"hello": "you"}
        assert (await client.get("/jobs/openapi.json")).status_code == 200  # its own, too
        assert tracker.store.closed == 0  # type: ignore[attr-defined]

    with_client(host, use)
    assert tracker.store.closed == 1  # type: ignore[attr-defined]


def test_starlette_host_in_process(tracker: JobTracker) -> None:
    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse("home")

    host = Starlette(routes=[Route("/", home)])
    include_in(host, tracker, prefix="/api/v1")

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=host)
        async with httpx.AsyncClient(transport=transport, base_url="http://host") as client:
            return [
                await client.get(STATUS.replace("/jobs", "/api/v1")),
                await client.get("/"),
                await client.get(f"/api/v1/namespaces/{NS}/upload-jobs/bad%2Fid"),
            ]

    job, home_page, bad = asyncio.run(main())
    assert job.status_code == 200 and job.json()["job_id"] == JOB
    assert home_page.text == "home"
    assert bad.status_code == 400


def test_over_real_uvicorn(tracker: JobTracker) -> None:
    host = fastapi_host()
    include_in(host, tracker, prefix="/jobs")
    with serving(host) as url:
        assert httpx.get(url + STATUS).json()["successful"] == 1
        doc = httpx.get(url + "/openapi.json").json()
        assert "/jobs/namespaces/{namespace_name}/upload-jobs/{job_id}" in doc["paths"]
    assert tracker.store.closed == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("prefix", ["", "/", "jobs", "/jobs/", "/a//b", "/{x}", "/a b", None])
def test_bad_prefix_mounts_nothing(tracker: JobTracker, prefix: Any) -> None:
    host = fastapi_host()
    routes = list(host.routes)
    with pytest.raises(ConfigurationError, match="prefix"):
        include_in(host, tracker, prefix=prefix)
    assert host.routes == routes


def test_bad_host_or_option_mounts_nothing(tracker: JobTracker) -> None:
    with pytest.raises(ConfigurationError, match="Starlette or FastAPI"):
        include_in(None, tracker)
    with pytest.raises(ConfigurationError, match="Starlette or FastAPI"):
        include_in(object(), tracker)
    host = fastapi_host()
    routes = list(host.routes)
    with pytest.raises(ConfigurationError, match="max_store_calls"):
        include_in(host, tracker, max_store_calls=0)
    with pytest.raises(TypeError):
        include_in(host, tracker, no_such_option=1)
    assert host.routes == routes


def test_the_host_lifespan_still_runs(tracker: JobTracker) -> None:
    seen: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        seen.append("start")
        yield
        seen.append(f"stop, store closed {tracker.store.closed}")  # type: ignore[attr-defined]

    host = FastAPI(lifespan=lifespan)
    include_in(host, tracker)

    async def use(client: httpx.AsyncClient) -> int:
        return (await client.get(STATUS)).status_code

    assert with_client(host, use) == 200
    assert seen == ["start", "stop, store closed 0"]  # the host's shutdown first
    assert tracker.store.closed == 1  # type: ignore[attr-defined]
