"""The status route's ETag, 304 and ?wait= long-poll (SPEC section 8), in-process and over HTTP."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest

from jobtrack import JobTracker, MemoryStore
from jobtrack.asgi import status_app

from .asgi_driver import call, call_async
from .conftest import StoreFactory

NS = "polled"


def route(job_id: str) -> str:
    return f"/namespaces/{NS}/upload-jobs/{job_id}"


def test_etag_and_304() -> None:
    tracker = JobTracker(MemoryStore())
    job = tracker.start(NS, 3)
    app = status_app(tracker)
    first = call(app, "GET", route(job.job_id))
    etag = first.headers["etag"]
    assert first.status == 200 and etag.startswith('"') and etag.endswith('"')
    again = call(app, "GET", route(job.job_id), headers=[(b"if-none-match", etag.encode())])
    assert again.status == 304 and again.body == b"" and again.headers["etag"] == etag
    assert again.headers["cache-control"] == "no-store"
    tracker.record(NS, job.job_id, successful=1)
    changed = call(app, "GET", route(job.job_id), headers=[(b"if-none-match", etag.encode())])
    assert changed.status == 200 and changed.headers["etag"] != etag
    assert changed.body == tracker.get(NS, job.job_id).to_json()


@pytest.mark.parametrize(
    "wait", ["0", "-1", "61", "0.5", "nan", "inf", "abc", "1" * 5000, "1&wait=2", "%C2%B2"]
)
def test_bad_wait_is_400(wait: str) -> None:
    tracker = JobTracker(MemoryStore())
    job = tracker.start(NS, 3)
    response = call(status_app(tracker), "GET", f"{route(job.job_id)}?wait={wait}")
    assert response.status == 400 and b"wait" in response.body


def test_long_poll_answers_the_change_or_304(store_factory: StoreFactory) -> None:
    tracker = JobTracker(store_factory())
    job = tracker.start(NS, 3)
    app = status_app(JobTracker(store_factory()))
    etag = call(app, "GET", route(job.job_id)).headers["etag"].encode()

    async def main() -> tuple[Any, Any]:
        began = time.monotonic()
        unchanged = await call_async(
            app, "GET", f"{route(job.job_id)}?wait=1", headers=[(b"if-none-match", etag)]
        )
        assert 1 <= time.monotonic() - began < 10
        waiting = asyncio.ensure_future(
            call_async(
                app, "GET", f"{route(job.job_id)}?wait=30", headers=[(b"if-none-match", etag)]
            )
        )
        await asyncio.sleep(0)  # (the request is under way before the update)
        await asyncio.to_thread(tracker.record, NS, job.job_id, successful=1)
        return unchanged, await waiting

    unchanged, changed = asyncio.run(main())
    assert unchanged.status == 304
    assert changed.status == 200 and changed.body == tracker.get(NS, job.job_id).to_json()


def test_many_waiting_clients_share_one_watch() -> None:
    store = MemoryStore()
    tracker = JobTracker(store)
    job = tracker.start(NS, 3)
    app = status_app(tracker)
    etag = call(app, "GET", route(job.job_id)).headers["etag"].encode()
    reads = 0
    get = store.get

    def counted(namespace: str, job_id: str) -> Any:
        nonlocal reads
        reads += 1
        return get(namespace, job_id)

    store.get = counted  # type: ignore[method-assign]

    async def main() -> list[Any]:
        clients = [
            asyncio.ensure_future(
                call_async(
                    app, "GET", f"{route(job.job_id)}?wait=30", headers=[(b"if-none-match", etag)]
                )
            )
            for _ in range(200)
        ]
        for _ in range(3):
            await asyncio.sleep(0)
        tracker.record(NS, job.job_id, successful=1)
        return await asyncio.gather(*clients)

    answers = asyncio.run(main())
    assert {a.status for a in answers} == {200}
    assert reads < 200 + 20  # one read per request, and a few by the one shared watch


def test_an_unknown_or_deleted_job_while_waiting() -> None:
    tracker = JobTracker(MemoryStore())
    job = tracker.start(NS, 3)
    app = status_app(tracker)
    etag = call(app, "GET", route(job.job_id)).headers["etag"].encode()

    async def main() -> Any:
        waiting = asyncio.ensure_future(
            call_async(
                app, "GET", f"{route(job.job_id)}?wait=30", headers=[(b"if-none-match", etag)]
            )
        )
        for _ in range(3):
            await asyncio.sleep(0)
        tracker.delete(NS, job.job_id)
        return await waiting

    assert asyncio.run(main()).status == 404
    assert (
        call(app, "GET", f"{route('nope')}?wait=5", headers=[(b"if-none-match", etag)]).status
        == 404
    )


def test_over_http(served: tuple[str, JobTracker]) -> None:
    base, tracker = served
    job = tracker.start(NS, 2)
    with httpx.Client(base_url=base, timeout=30) as client:
        first = client.get(route(job.job_id))
        etag = first.headers["etag"]
        assert client.get(route(job.job_id), headers={"if-none-match": etag}).status_code == 304
        polled = client.get(
            route(job.job_id), params={"wait": "1"}, headers={"if-none-match": etag}
        )
        assert polled.status_code == 304 and polled.content == b""
        threading.Timer(0.2, tracker.record, (NS, job.job_id), {"successful": 2}).start()
        changed = client.get(
            route(job.job_id), params={"wait": "20"}, headers={"if-none-match": etag}
        )
        assert changed.status_code == 200 and changed.json()["status"] == "completed"


def test_a_waiting_client_that_goes_stops_waiting_at_once() -> None:
    tracker = JobTracker(MemoryStore())
    job = tracker.start(NS, 3)
    app = status_app(tracker)
    etag = call(app, "GET", route(job.job_id)).headers["etag"].encode()
    path = route(job.job_id)

    async def main() -> None:
        went = asyncio.Event()
        request = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict[str, Any]:
            if request:
                return request.pop()
            await went.wait()
            return {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            pass

        scope = {
            "type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
            "root_path": "", "query_string": b"wait=60", "headers": [(b"if-none-match", etag)],
        }  # fmt: skip
        waiting = asyncio.ensure_future(app(scope, receive, send))
        while not app._hub().jobs:  # until the request waits on the job's watch
            await asyncio.sleep(0)
        went.set()
        await asyncio.wait_for(waiting, 5)  # not the 60 s asked for
        assert app._hub().jobs == {}

    asyncio.run(main())
