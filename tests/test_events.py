"""Server-sent events of a job's status (SPEC section 8), in-process and over real HTTP."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx
import pytest

import jobtrack.asgi
from jobtrack import JobTracker, MemoryStore
from jobtrack.asgi import status_app

from .asgi_driver import call

NS = "streamed"


def events_of(job_id: str) -> str:
    return f"/namespaces/{NS}/upload-jobs/{job_id}/events"


async def stream(
    app: Any, path: str, headers: list[tuple[bytes, bytes]] | None = None, leave: Any = None
) -> tuple[list[dict[str, Any]], bytes]:
    """Run one request to its end; the response start and the body sent."""
    sent: list[dict[str, Any]] = []
    left = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if leave is None:
            await asyncio.Event().wait()  # never: the client stays
        await leave(sent)
        left.set()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "headers": headers or [], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }  # fmt: skip
    await asyncio.wait_for(app(scope, receive, send), 60)
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    return sent, body


def parse(body: bytes) -> list[dict[str, str]]:
    """The events of a stream, each as its fields (comments left out)."""
    events = []
    for block in body.decode().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if fields:
            events.append(fields)
    return events


def test_each_change_then_the_end() -> None:
    tracker = JobTracker(MemoryStore())
    job = tracker.start(NS, 3)
    app = status_app(tracker)

    async def main() -> tuple[list[dict[str, Any]], bytes]:
        running = asyncio.ensure_future(stream(app, events_of(job.job_id)))
        for n in range(3):
            for _ in range(5):
                await asyncio.sleep(0)
            await asyncio.to_thread(tracker.record, NS, job.job_id, item=f"i{n}", successful=1)
        return await running

    sent, body = asyncio.run(main())
    assert sent[0]["status"] == 200
    assert dict(sent[0]["headers"])[b"content-type"] == b"text/event-stream; charset=utf-8"
    events = parse(body)
    assert {e["event"] for e in events} == {"status"}
    docs = [json.loads(e["data"]) for e in events]
    assert docs[0]["successful"] == 0 and docs[-1]["status"] == "completed"
    assert [d["successful"] for d in docs] == sorted({d["successful"] for d in docs})
    assert len({e["id"] for e in events}) == len(events)
    final = call(app, "GET", f"/namespaces/{NS}/upload-jobs/{job.job_id}")
    assert events[-1]["id"] == final.headers["etag"]


def test_last_event_id_resumes_and_a_completed_holder_gets_nothing() -> None:
    tracker = JobTracker(MemoryStore())
    job = tracker.start(NS, 1)
    app = status_app(tracker)
    done = tracker.record(NS, job.job_id, successful=1)
    etag = call(app, "GET", f"/namespaces/{NS}/upload-jobs/{job.job_id}").headers["etag"]
    _, body = asyncio.run(stream(app, events_of(job.job_id), [(b"last-event-id", etag.encode())]))
    assert body == b""  # it has the completed document: nothing more, the stream ends
    _, body = asyncio.run(stream(app, events_of(job.job_id), [(b"last-event-id", b'"old"')]))
    [event] = parse(body)
    assert json.loads(event["data"]) == done.to_dict()


def test_heartbeats_while_nothing_changes_and_a_client_that_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jobtrack.asgi, "HEARTBEAT_SECONDS", 0.05)
    tracker = JobTracker(MemoryStore())
    job = tracker.start(NS, 1)
    app = status_app(tracker)

    async def leave(sent: list[dict[str, Any]]) -> None:
        while sum(m.get("body", b"").startswith(b":") for m in sent) < 3:
            await asyncio.sleep(0.01)

    _, body = asyncio.run(stream(app, events_of(job.job_id), leave=leave))
    assert body.count(b": alive\n\n") >= 3 and len(parse(body)) == 1


def test_unknown_job_and_bad_names_are_plain_answers() -> None:
    app = status_app(JobTracker(MemoryStore()))
    missing = call(app, "GET", events_of("nope"))
    assert missing.status == 404 and json.loads(missing.body)["status"] == "failure"
    assert call(app, "GET", f"/namespaces/{NS}/upload-jobs/a.b/events").status == 400
    assert call(app, "POST", events_of("nope")).status == 405


def test_over_http(served: tuple[str, JobTracker]) -> None:
    base, tracker = served
    job = tracker.start(NS, 5)
    received: list[bytes] = []

    def pipeline() -> None:
        for n in range(5):
            tracker.record(NS, job.job_id, item=f"i{n}", successful=1)

    worker = threading.Thread(target=pipeline)
    with (
        httpx.Client(base_url=base, timeout=30) as client,
        client.stream("GET", events_of(job.job_id)) as response,
    ):
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            received.append(chunk)
            if not worker.is_alive() and worker.ident is None:
                worker.start()  # the stream is under way: the pipeline runs
    worker.join()
    docs = [json.loads(e["data"]) for e in parse(b"".join(received))]
    assert docs[-1]["status"] == "completed" and docs[-1]["successful"] == 5


def test_a_client_that_goes_ends_its_stream_at_once() -> None:
    tracker = JobTracker(MemoryStore())
    job = tracker.start(NS, 1)
    app = status_app(tracker)  # heartbeats every 15 s: the stream must not wait for one

    async def leave(sent: list[dict[str, Any]]) -> None:
        while len(sent) < 2:  # the response start and the first event
            await asyncio.sleep(0)

    async def main() -> bytes:
        _, body = await asyncio.wait_for(stream(app, events_of(job.job_id), leave=leave), 5)
        assert app._hub().jobs == {}  # the process's watch of the job let go with its client
        return body

    assert len(parse(asyncio.run(main()))) == 1


def test_a_stream_of_a_completed_job_reads_it_once() -> None:
    """The read that answers 404/410/503 first is the stream's first document (it read twice)."""
    store = MemoryStore()
    tracker = JobTracker(store)
    job = tracker.start(NS, 1)
    done = tracker.record(NS, job.job_id, successful=1)
    reads: list[str] = []
    real = store.get

    def get(namespace: str, job_id: str) -> Any:
        reads.append(job_id)
        return real(namespace, job_id)

    store.get = get  # type: ignore[method-assign]
    _, body = asyncio.run(stream(status_app(tracker), events_of(job.job_id)))
    [event] = parse(body)
    assert json.loads(event["data"]) == done.to_dict()
    assert reads == [job.job_id]
