"""The server of the live suite: the status routes over a store that counts its calls.

``python -m benchmarks.live_apps PORT STORE_URL TOTAL`` serves, under one
uvicorn process, :func:`jobtrack.asgi.status_app` over a :class:`CountingStore`
of STORE_URL, with two running jobs in namespace ``bench``: ``live-sse`` (of
TOTAL items, for the event streams) and ``live-idle`` (for idle clients).
Two routes of the benchmark's own sit beside it:

* ``POST /bench/write?job=ID&n=N&gap=MS`` records N items of job ID, MS ms
  apart, from a thread of this process (over the store itself, not counted),
  and answers the wall-clock time taken just before each ``record`` call;
* ``POST /bench/reset?job=ID`` starts job ID again (a new round);
* ``POST /bench/profile`` profiles the event loop from then on, until
  ``POST /bench/profile?to=PATH`` writes the profile to PATH;
* ``GET /bench/calls`` answers the store calls the routes made so far, by name;
* ``GET /bare/events``: the bare baseline of an event stream. The writer
  hands each new document of ``live-bare`` to the event loop, which wakes
  every stream at once with it (one future, no store, no ETag, no hub).
"""

from __future__ import annotations

import asyncio
import collections
import cProfile
import json
import resource
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from jobtrack import JobTracker, open_store
from jobtrack.asgi import status_app
from jobtrack.stores import features_of

NS = "bench"
SSE_JOB = "live-sse"
BARE_JOB = "live-bare"
IDLE_JOB = "live-idle"


def raise_fd_limit(wanted: int = 8192) -> None:
    """Lift this process's open-file limit to *wanted* (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class CountingStore:
    """A store that passes every call on to *inner* and counts them by method name.

    Its async view (``open_async``) is counted too, under ``async <name>``.
    """

    def __init__(self, inner: Any, calls: collections.Counter[str] | None = None) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.calls: collections.Counter[str] = collections.Counter() if calls is None else calls
        self.features = features_of(inner)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr
        if name == "open_async":
            return lambda: _CountingView(attr(), self)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count(name)
            return attr(*args, **kwargs)

        return counted

    def count(self, name: str) -> None:
        """One more call of *name*."""
        with self._lock:
            self.calls[name] += 1


class _CountingView:
    def __init__(self, inner: Any, counter: CountingStore) -> None:
        self._inner = inner
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._counter.count(f"async {name}")
            return attr(*args, **kwargs)

        return counted


class _Board:
    """The bare baseline's news: the latest document, and a future for the next one."""

    def __init__(self, document: bytes) -> None:
        self.document = document
        self.next: asyncio.Future[bytes] | None = None

    def publish(self, document: bytes) -> None:
        self.document = document
        if self.next is not None:
            self.next.set_result(document)
            self.next = None

    def wait(self) -> asyncio.Future[bytes]:
        if self.next is None:
            self.next = asyncio.get_running_loop().create_future()
        return self.next


def _write(
    tracker: JobTracker, job_id: str, n: int, gap: float, tell: Callable[[bytes], None]
) -> list[float]:
    times = []
    for _ in range(n):
        times.append(time.time())
        tell(tracker.record(NS, job_id, processed=1, successful=1).to_json())
        time.sleep(gap)  # the writer's pace, the thing measured against
    return times


_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store")]


async def _bare_events(board: _Board, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
    document = board.document
    while True:
        event = b"event: status\ndata: %s\n\n" % document
        await send({"type": "http.response.body", "body": event, "more_body": True})
        if b'"status":"completed"' in document:
            break
        document = await board.wait()
    await send({"type": "http.response.body", "body": b""})


def make_app(store_url: str, total: int) -> Callable[..., Any]:
    """The status app over a counting store, with the benchmark's routes beside it."""
    inner = open_store(store_url)
    writer = JobTracker(inner)

    def reset(job_id: str, items: int = total) -> bytes:
        writer.delete(NS, job_id)  # a job of an earlier round or run
        return writer.start(NS, items, job_id=job_id).to_json()

    reset(SSE_JOB), reset(IDLE_JOB, 1000)
    board = _Board(reset(BARE_JOB))
    profiling: list[cProfile.Profile] = []  # the event loop's, when asked for
    counting = CountingStore(inner)
    routes = status_app(JobTracker(counting))

    async def reply(send: Any, document: object) -> None:
        body = json.dumps(document).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(("/bench/", "/bare/")):
            await routes(scope, receive, send)
        elif path == "/bare/events":
            await _bare_events(board, send)
        elif path == "/bench/profile":  # start; ?to=PATH: stop and write the profile there
            query = dict(urllib.parse.parse_qsl(scope["query_string"].decode()))
            if "to" in query:
                profiling.pop().dump_stats(query["to"])
            else:
                profiling.append(cProfile.Profile())
                profiling[-1].enable()
            await reply(send, None)
        elif path == "/bench/calls":
            await reply(send, dict(counting.calls))
        elif path == "/bench/reset":  # a new round: the job starts again
            job_id = dict(urllib.parse.parse_qsl(scope["query_string"].decode()))["job"]
            document = reset(job_id)
            if job_id == BARE_JOB:
                board.publish(document)
            await reply(send, None)
        elif path == "/bench/write":
            query = dict(urllib.parse.parse_qsl(scope["query_string"].decode()))
            job_id, n, gap = query["job"], int(query["n"]), float(query["gap"]) / 1000
            loop = asyncio.get_running_loop()

            def tell(document: bytes) -> None:
                if job_id == BARE_JOB:
                    loop.call_soon_threadsafe(board.publish, document)

            await reply(send, await asyncio.to_thread(_write, writer, job_id, n, gap, tell))
        else:
            await reply(send, None)

    return app


def main(argv: list[str]) -> None:
    """Serve until terminated."""
    import uvicorn

    raise_fd_limit()
    port, store_url, total = int(argv[0]), argv[1], int(argv[2])
    uvicorn.run(
        make_app(store_url, total),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        backlog=4096,
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
