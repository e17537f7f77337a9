"""The status route as a pure ASGI app (no web framework at runtime).

``status_app(tracker)`` serves ``GET``/``HEAD
/namespaces/{namespace_name}/upload-jobs/{job_id}`` exactly as SPEC section 1
says (410 once the job has expired, SPEC section 6), the job's
``/failed-items``, ``/errors`` and ``/progress`` below it, the namespace's jobs at
``/namespaces/{namespace_name}/upload-jobs`` (SPEC section 7), and its
OpenAPI document at ``/openapi.json``. Mount it anywhere: paths
are read relative to ``root_path``. It answers lifespan (closing the store's
connections at shutdown), never blocks the event loop, and never shows a
traceback: unexpected errors are logged and answered with a bare 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import enum
import functools
import hashlib
import inspect
import json
import logging
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from typing import Any, TypeVar

from .arguments import MAX_LIST_LIMIT, MAX_WAIT
from .async_tracker import AsyncJobTracker
from .errors import (
    ConfigurationError,
    InvalidArgument,
    JobExpired,
    JobNotFound,
    StoreCorrupt,
    StoreUnavailable,
    shown,
)
from .logs import Throttle
from .metrics import MAX_SCRAPE_NAMESPACES, MAX_SCRAPE_PAGES, Metrics
from .model import JobStatus, NamespaceCounts, Page
from .names import MAX_NAME_LENGTH, is_valid_name
from .openapi import JOBS_PATH, openapi_document
from .static import ui_response
from .stores import features_of
from .tracker import JobTracker

__all__ = [
    "DEFAULT_MAX_STORE_CALLS",
    "DEFAULT_STORE_WAIT",
    "RETRY_AFTER_SECONDS",
    "Authorize",
    "StatusApp",
    "include_in",
    "status_app",
]

logger = logging.getLogger("jobtrack.asgi")
# never a flood: each complaint once per 10 s, with a count (an unexpected failure
# keeps its traceback: it is a bug to fix)
logger.addFilter(Throttle(10.0, ("job store busy", "job store unavailable", "corrupt job")))
logger.addFilter(Throttle(10.0, ("jobtrack status route failed",), keep_traceback=True))

T = TypeVar("T")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

AuthDecision = bool | int | None
Authorize = Callable[[str, Mapping[str, str]], AuthDecision | Awaitable[AuthDecision]]
"""``authorize(namespace, headers)``: True or None lets the request through;
False or 403 answers 403; 401 answers 401. It may be a coroutine function.
Header names are lowercase; repeated headers are joined with ``", "``."""

RETRY_AFTER_SECONDS = 2
"""``Retry-After`` of a 503 (store unreachable or busy)."""

DEFAULT_MAX_STORE_CALLS = 32
"""Store calls the route makes at once, at most (connections, worker threads)."""

MOST_NAMES_FILTERED = 10_000
"""With an ``authorize`` hook, the most names one ``GET /namespaces`` reads (and asks about)."""

DEFAULT_STORE_WAIT = 2.0
"""Seconds a request waits for a store call before it is answered 503."""


class _Busy(Exception):
    """Every store call of the route is taken, and stayed taken too long."""


class _BadQuery(Exception):
    """A query parameter is malformed (answered 400 with its message)."""


_ITEM_ROUTES = ("failed-items", "errors", "events", "progress")
_JOB_TEMPLATES = {below: f"{JOBS_PATH}/{{job_id}}/{below}" for below in _ITEM_ROUTES}
_JOB_TEMPLATES[""] = JOBS_PATH + "/{job_id}"


class _Events(bytes):
    """The body of an event stream: sent as it happens by ``_stream``, not at once.

    It holds the job's status as read to answer the request: the stream starts from it.
    """

    status: JobStatus


HEARTBEAT_SECONDS = 15.0
"""An event stream sends a ``:`` comment at least this often (SPEC section 8)."""
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # proxies: pass each event on at once
]


class _Unset(enum.Enum):
    UNSET = enum.auto()


_UNSET = _Unset.UNSET  # an option of status_app not given: the tracker's own value holds


_ALLOWED = ("GET", "HEAD")
_ALLOW_HEADER = (b"allow", b"GET, HEAD")
_NO_STORE = [(b"cache-control", b"no-store")]
_BASE_HEADERS = [(b"content-type", b"application/json"), *_NO_STORE]

METRICS_NAME = "/metrics"
"""The name *authorize* is asked about for ``GET /metrics`` (never a namespace's)."""


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _error_body(message: str, namespace: str | None = None, job_id: str | None = None) -> bytes:
    body = {"job_id": job_id, "namespace_name": namespace, "status": "failure", "message": message}
    return _dumps({key: value for key, value in body.items() if value is not None})


def _name_problem(what: str, value: str) -> str:
    shown = value if len(value) <= 64 else value[:64] + "..."
    return (
        f"Invalid {what} {shown!r}: use 1-{MAX_NAME_LENGTH} characters of "
        "A-Z, a-z, 0-9, '_' and '-'."
    )


@functools.lru_cache(maxsize=1024)  # pollers of an unchanged job send the same bytes object
def _document(status: JobStatus) -> bytes:
    """The status document of *status*: encoded once for every equal status read again.

    A store other than memory decodes a new status on each read; encoding it
    cost more than the read (SQLite) for pollers of a job that did not change.
    """
    return status.to_json()


@functools.lru_cache(maxsize=1024)
def _etag(body: bytes) -> bytes:
    """The strong ``ETag`` of a document: a digest of its bytes, quoted."""
    return b'"%s"' % hashlib.blake2b(body, digest_size=12).hexdigest().encode()


def _header(scope: Scope, name: bytes) -> bytes | None:
    """The request header *name* (lowercase), spaces around it removed; None if absent."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).strip()
    return None


def _wait_query(scope: Scope) -> int:
    """``?wait=N`` of a status request: whole seconds from 1 to MAX_WAIT (0: not given)."""
    if not scope.get("query_string"):
        return 0
    text = _query(scope, ("wait",)).get("wait")
    if text is None:
        return 0
    if not (text.isascii() and text.isdigit() and len(text) <= 2 and 1 <= int(text) <= MAX_WAIT):
        raise _BadQuery(f"wait must be whole seconds from 1 to {MAX_WAIT}, got {text[:20]!r}")
    return int(text)


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone (``http.disconnect``)."""
    while (await receive()).get("type") != "http.disconnect":
        pass


class _Watch:
    """The one watch of one job in a server process, and the clients waiting on it."""

    def __init__(self) -> None:
        self.latest: JobStatus | None = None
        self.error: BaseException | None = None
        self.wakes: set[asyncio.Future[bool]] = set()  # one per waiting client
        self.waiters = 0
        self.task: asyncio.Task[None] | None = None

    def tell(self) -> None:
        """Wake every waiting client at once (one pass of the loop, no lock to hand on)."""
        wakes, self.wakes = self.wakes, set()
        for wake in wakes:
            _settle(wake, True)


def _settle(wake: asyncio.Future[bool], told: bool, *_: object) -> None:
    if not wake.done():  # (*_: a done callback is passed the future)
        wake.set_result(told)


class _Hub:
    """One store watch per job per process, however many clients wait for its change.

    The watch (:meth:`AsyncJobTracker.watch`: pushed where the store can)
    runs while a client waits and stops with the last one.
    """

    def __init__(self, tracker: AsyncJobTracker) -> None:
        self.tracker = tracker
        self.jobs: dict[tuple[str, str], _Watch] = {}

    async def change(
        self, namespace: str, job_id: str, seen: bytes, timeout: float, gone: asyncio.Future[None]
    ) -> JobStatus | None:
        """The job's status once its document differs from *seen*.

        None after *timeout* s, or at once when *gone* is done (the client went).
        """
        key = (namespace, job_id)
        watch = self.jobs.get(key)
        if watch is None:
            watch = self.jobs[key] = _Watch()
            watch.task = asyncio.ensure_future(self._follow(key, watch))
        watch.waiters += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while watch.error is None and (watch.latest is None or _document(watch.latest) == seen):
                wake: asyncio.Future[bool] = loop.create_future()  # True: told; False: timed out
                watch.wakes.add(wake)
                timer = loop.call_at(deadline, _settle, wake, False)
                went = functools.partial(_settle, wake, False)
                gone.add_done_callback(went)
                try:
                    if not await wake:
                        return None
                finally:
                    timer.cancel()
                    gone.remove_done_callback(went)
                    watch.wakes.discard(wake)
        finally:
            watch.waiters -= 1
            if watch.waiters == 0 and self.jobs.get(key) is watch:
                del self.jobs[key]
                assert watch.task is not None
                watch.task.cancel()
        if watch.error is not None:
            raise watch.error
        return watch.latest

    async def _follow(self, key: tuple[str, str], watch: _Watch) -> None:
        """Follow the job, telling its waiters each new status (or why it ended)."""
        try:
            async for status in self.tracker.watch(*key):
                watch.latest = status
                watch.tell()
        except Exception as exc:  # the job went (404, 410), the store failed (503)...
            watch.error = exc
            watch.tell()


class StatusApp:
    """The ASGI app behind :func:`status_app`."""

    def __init__(
        self,
        tracker: AsyncJobTracker,
        authorize: Authorize | None,
        max_store_calls: int = DEFAULT_MAX_STORE_CALLS,
        store_wait: float = DEFAULT_STORE_WAIT,
        metrics: bool = True,
    ) -> None:
        self.tracker = tracker
        self.metrics: Metrics | None = None
        self.metrics_off = "Metrics are off on this server (status_app(metrics=False))."
        if metrics:
            try:
                self.metrics = tracker.metrics or Metrics()  # the app's own: route latency
            except ConfigurationError:
                self.metrics_off = (
                    "Metrics need prometheus_client on the server: pip install 'jobtrack[metrics]'."
                )
        self.authorize = authorize
        self.max_store_calls = max_store_calls
        self.store_wait = store_wait
        features = features_of(tracker.store)
        self._limited = features.blocking or features.native_async
        self._calls: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._hubs: tuple[asyncio.AbstractEventLoop, _Hub] | None = None
        from . import __version__  # noqa: PLC0415 - the package imports this module lazily

        self.document = openapi_document(__version__)
        self._openapi = _dumps(self.document)
        self._paths = frozenset(self.document["paths"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection."""
        kind = scope.get("type")
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            message = await receive()
            if message.get("type") == "websocket.connect":
                await send({"type": "websocket.close", "code": 1003})
        # any other scope type: nothing to serve, nothing sent

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.tracker.aclose()
                except Exception as exc:  # report, never raise out of the server
                    logger.exception("closing the job store failed")
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = _match(scope)
        page = None if route is not None else _page(scope)
        if page is not None:  # the page for people: its own content types and caching
            status, headers, body = page
            headers = [*headers, (b"content-length", str(len(body)).encode())]
        else:
            started = time.perf_counter()
            try:
                status, body, extra = await self._respond(scope, receive, route)
            except Exception:  # never a traceback over HTTP
                logger.exception("jobtrack status route failed")
                status, body, extra = 500, _error_body("Internal server error."), []
            if self.metrics is not None:  # by route template, never by raw path
                self.metrics.route(self._template(scope, route)).observe(
                    time.perf_counter() - started
                )
            if isinstance(body, _Events) and scope.get("method") == "GET":
                assert route is not None and route[1] is not None
                await self._stream(route[0], route[1], body.status, scope, receive, send)
                return
            base = _NO_STORE if extra and extra[0][0] == b"content-type" else _BASE_HEADERS
            headers = [*base, (b"content-length", str(len(body)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        head = scope.get("method") == "HEAD"
        await send({"type": "http.response.body", "body": b"" if head else body})

    async def _respond(
        self, scope: Scope, receive: Receive, route: tuple[str, str | None, str] | None
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """The response: the route's own, a 200 with the body it read, or the error it raised."""
        method = scope.get("method", "GET")
        namespace = job_id = None
        reading: Awaitable[tuple[int, bytes, list[tuple[bytes, bytes]]] | bytes | None]
        if route is None:
            relative = _relative_path(scope)
            if relative not in ("/openapi.json", "/namespaces", "/metrics"):
                return 404, _error_body("Not found."), []
            if method not in _ALLOWED:
                return 405, _error_body("Method not allowed."), [_ALLOW_HEADER]
            if relative == "/openapi.json":
                return 200, self._openapi, []
            reading = self._metrics(scope) if relative == "/metrics" else self._namespaces(scope)
        else:
            namespace, job_id, below = route  # job_id None: the namespace's list of jobs
            if method not in _ALLOWED:
                return 405, _error_body("Method not allowed.", namespace, job_id), [_ALLOW_HEADER]
            if not is_valid_name(namespace):
                problem = _name_problem("namespace name", namespace)
                return 400, _error_body(problem, namespace, job_id), []
            if job_id is not None and not is_valid_name(job_id):
                return 400, _error_body(_name_problem("job id", job_id), namespace, job_id), []
            if self.authorize is not None:
                denied = await self._check(namespace, scope)
                if denied is not None:
                    message = "Not authenticated." if denied == 401 else "Not allowed."
                    return denied, _error_body(message, namespace, job_id), []
            if job_id is not None and below == "":
                reading = self._status(namespace, job_id, scope, receive)
            else:
                reading = self._read(namespace, job_id, below, scope)
        try:
            body = await reading
            if isinstance(body, tuple):
                return body
        except (_BadQuery, InvalidArgument, ConfigurationError) as exc:  # the tracker's word
            return 400, _error_body(str(exc), namespace, job_id), []
        except (_Busy, StoreUnavailable) as exc:  # 503: every store call taken, or the store down
            if isinstance(exc, _Busy):
                logger.warning("job store busy: %d calls running", self.max_store_calls)
                message = "The job store is busy; retry later."
            else:  # one line: a store that is down must not flood the log
                logger.warning("job store unavailable: %s", exc)
                message = "The job store is unavailable; retry later."
            retry = (b"retry-after", str(RETRY_AFTER_SECONDS).encode())
            return 503, _error_body(message, namespace, job_id), [retry]
        except JobExpired as exc:  # gone for readers: says when (SPEC section 6)
            return 410, _error_body(str(exc), namespace, job_id), []
        except JobNotFound as exc:
            return 404, _error_body(str(exc), namespace, job_id), []
        except StoreCorrupt as exc:  # not retryable: say so, without the store's detail
            logger.error("corrupt job %r in namespace %r: %s", job_id, namespace, exc)
            message = "The stored job is corrupt; it cannot be read."
            return 500, _error_body(message, namespace, job_id), []
        if body is None:
            return 404, _error_body("This job store does not keep items.", namespace, job_id), []
        return 200, body, []

    async def _metrics(self, scope: Scope) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """``GET /metrics``: Prometheus text, the namespaces' jobs read now (SPEC section 8).

        Not per namespace: *authorize* is asked with the name ``"/metrics"``
        (no namespace has it); 404 when metrics are off or the extra is missing.
        """
        if self.metrics is None:
            return 404, _error_body(self.metrics_off), []
        if self.authorize is not None:
            denied = await self._check(METRICS_NAME, scope)
            if denied is not None:
                message = "Not authenticated." if denied == 401 else "Not allowed."
                return denied, _error_body(message), []
        counts: list[NamespaceCounts] = []
        cursor = None
        if features_of(self.tracker.store).namespaces:  # else no jobs gauges
            for _ in range(MAX_SCRAPE_PAGES):  # bounded: a page may end short, with a cursor
                limit = min(MAX_LIST_LIMIT, MAX_SCRAPE_NAMESPACES - len(counts))
                page = await self._call(self.tracker.namespaces(limit=limit, cursor=cursor))
                counts += page.items
                cursor = page.next_cursor
                if cursor is None or len(counts) >= MAX_SCRAPE_NAMESPACES:
                    break
        body = self.metrics.exposition(counts, truncated=cursor is not None)
        return 200, body, [(b"content-type", self.metrics.content_type.encode())]

    async def _status(
        self, namespace: str, job_id: str, scope: Scope, receive: Receive
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """The status document with its ``ETag``; 304 for a client that has it (SPEC 8).

        With ``?wait=N`` and ``If-None-Match``, an unchanged document is held
        up to N seconds for a change (200), then 304. Every client waiting on a
        job shares one watch of it (:class:`_Hub`): no store read per client.
        A client that goes away stops waiting at once.
        """
        wait = _wait_query(scope)
        body = _document(await self._call(self.tracker.get(namespace, job_id)))
        held = _header(scope, b"if-none-match")
        if held is not None and held == _etag(body) and wait:
            gone = asyncio.ensure_future(_disconnected(receive))
            try:
                newer = await self._hub().change(namespace, job_id, body, wait, gone)
            finally:
                gone.cancel()
            if newer is not None:
                body = _document(newer)
        etag = _etag(body)
        if held == etag:
            return 304, b"", [(b"etag", etag)]
        return 200, body, [(b"etag", etag)]

    async def _stream(
        self,
        namespace: str,
        job_id: str,
        status: JobStatus,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """Server-sent events: *status* (read to answer), then each newer one, until completed.

        ``id:`` is the document's ETag; a client that sends ``Last-Event-ID``
        gets nothing it already has (and, holding the completed document,
        nothing at all). A ``:`` comment keeps the connection alive at least
        every 15 s. The stream follows the job through the process's one watch
        of it; a client that goes away ends its stream at once.
        """
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        seen = _header(scope, b"last-event-id") or b""
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            while not gone.done():
                body = _document(status)
                etag = _etag(body)
                if etag != seen:
                    seen = etag
                    event = b"event: status\nid: %s\ndata: %s\n\n" % (etag, body)
                    await send({"type": "http.response.body", "body": event, "more_body": True})
                if status.is_finished:
                    break
                newer = await self._hub().change(namespace, job_id, body, HEARTBEAT_SECONDS, gone)
                if gone.done():
                    break
                if newer is None:
                    alive = b": alive\n\n"
                    await send({"type": "http.response.body", "body": alive, "more_body": True})
                else:
                    status = newer
        except Exception as exc:  # the job went, the store failed: say so, end the stream
            logger.warning("event stream of %r in %r ended: %s", job_id, namespace, exc)
            message = json.dumps({"status": "failure", "message": str(exc)}).encode()
            failure = b"event: failure\ndata: %s\n\n" % message
            await send({"type": "http.response.body", "body": failure, "more_body": True})
        finally:
            gone.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _template(self, scope: Scope, route: tuple[str, str | None, str] | None) -> str:
        """The request's route as its OpenAPI path template ("other" for any other path)."""
        if route is None:
            path = _relative_path(scope)
            return path if path in self._paths else "other"
        return JOBS_PATH if route[1] is None else _JOB_TEMPLATES[route[2]]

    def _hub(self) -> _Hub:
        loop = asyncio.get_running_loop()
        if self._hubs is None or self._hubs[0] is not loop:  # one per event loop
            self._hubs = (loop, _Hub(self.tracker))
        return self._hubs[1]

    async def _read(
        self, namespace: str, job_id: str | None, below: str, scope: Scope
    ) -> bytes | None:
        """The body of the job's route *below* (not its status: :meth:`_status`), read.

        With no *job_id*, ``{"jobs": [...], "next_cursor": ...}``: a page of the
        namespace's jobs (SPEC 7). None if the store keeps no items (for the item routes).
        """
        tracker = self.tracker
        if job_id is None:
            query = _query(scope, ("status", "limit", "cursor"))
            status, limit, cursor = query.get("status"), _limit(query), query.get("cursor")
            jobs = await self._call(
                tracker.list(namespace, status=status, limit=limit, cursor=cursor)
            )
            listed = b",".join(job.to_json() for job in jobs.items)
            return b'{"jobs":[%s],"next_cursor":%s}' % (listed, _dumps(jobs.next_cursor))
        if below == "events":  # the stream starts from the status read now (404, 410, 503)
            events = _Events()
            events.status = await self._call(tracker.get(namespace, job_id))
            return events
        if below == "progress":  # SPEC section 8: by the tracker's clock, no more store calls
            return _dumps(
                tracker.progress(await self._call(tracker.get(namespace, job_id))).to_dict()
            )
        if not features_of(tracker.store).items:
            return None
        if below == "errors":
            groups = await self._call(tracker.errors(namespace, job_id))
            return _dumps({"errors": [group.to_dict() for group in groups]})
        query = _query(scope, ("limit", "cursor"))
        limit, cursor = _limit(query), query.get("cursor")
        page = await self._call(tracker.failed_items(namespace, job_id, limit=limit, cursor=cursor))
        items = [item.to_dict() for item in page.items]
        return _dumps({"items": items, "next_cursor": page.next_cursor})

    async def _namespaces(self, scope: Scope) -> bytes:
        """``{"namespaces": [...], "next_cursor": ...}``: a page of the namespaces (SPEC 7).

        With an ``authorize`` hook, only the names it allows (asked per name)
        are listed, and the cursor is always the last name listed: a caller
        never sees a name the hook denies, in the list or in a cursor. The
        route then reads on, page after page, until it has ``limit`` allowed
        names or the end, reading at most :data:`MOST_NAMES_FILTERED` names;
        beyond them, the page ends with the names found (the last page when
        there are none: a cursor past denied names would show one).
        """
        query = _query(scope, ("limit", "cursor"))
        limit, cursor = _limit(query), query.get("cursor")
        page = await self._call(self.tracker.namespaces(limit=limit, cursor=cursor))
        rows, read = list(page.items), len(page.items)
        if self.authorize is not None:
            rows = [row for row in rows if await self._check(row.name, scope) is None]
            while len(rows) < limit and page.next_cursor is not None and read < MOST_NAMES_FILTERED:
                cursor = page.next_cursor
                page = await self._call(self.tracker.namespaces(limit=limit, cursor=cursor))
                read += len(page.items)
                for row in page.items:
                    if len(rows) < limit and await self._check(row.name, scope) is None:
                        rows.append(row)
            more = page.next_cursor is not None or len(rows) == limit
            page = Page(tuple(rows), rows[-1].name if rows and more else None)
        return _dumps(
            {"namespaces": [row.to_dict() for row in rows], "next_cursor": page.next_cursor}
        )

    def _call(self, call: Awaitable[T]) -> Awaitable[T]:
        """Await a store call holding one of the route's few store calls.

        Readers never take more than ``max_store_calls`` connections (or
        worker threads) of the store, so a flood of requests cannot starve
        the pipeline's updates; a request that waits ``store_wait`` seconds
        for one raises ``_Busy`` (answered 503). A store that never blocks
        (memory) answers inline and holds nothing meanwhile: no limit applies.
        """
        return self._limit(call) if self._limited else call

    async def _limit(self, call: Awaitable[T]) -> T:
        loop = asyncio.get_running_loop()
        if self._calls is None or self._calls[0] is not loop:  # one per event loop
            self._calls = (loop, asyncio.Semaphore(self.max_store_calls))
        calls = self._calls[1]
        if not calls.locked():  # a call is free: take it at once (wait_for makes a task)
            await calls.acquire()
        else:
            try:
                await asyncio.wait_for(calls.acquire(), self.store_wait)
            except asyncio.TimeoutError:
                if inspect.iscoroutine(call):
                    call.close()  # never awaited: no "was never awaited" warning
                raise _Busy from None
        try:
            return await call
        finally:
            calls.release()

    async def _check(self, namespace: str, scope: Scope) -> int | None:
        assert self.authorize is not None
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", []):
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        decision = self.authorize(namespace, headers)
        if inspect.isawaitable(decision):
            decision = await decision
        if decision is True or decision is None:
            return None
        if decision is False or decision == 403:
            return 403
        if decision == 401:
            return 401
        raise ConfigurationError(
            f"authorize hook returned {decision!r}: use True, False, 401 or 403"
        )


def _relative_path(scope: Scope) -> str:
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path


def _page(scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """The answer for the page at ``/ui/`` (:mod:`jobtrack.static`); None for any other path.

    ``/ui`` redirects to ``ui/`` (relative: right under any prefix). A name is
    one segment as sent (an encoded ``/`` is not a separator); an unknown
    one is None, answered 404 like any other path.
    """
    relative = _relative_path(scope)
    if relative == "/ui":
        return 308, [(b"location", b"ui/"), (b"cache-control", b"no-store")], b""
    if not relative.startswith("/ui/"):
        return None
    name = relative[len("/ui/") :]
    raw = scope.get("raw_path")
    if raw:
        parts = raw.decode("latin-1").split("/")
        if parts[-2:] != ["ui", parts[-1]] or urllib.parse.unquote(parts[-1]) != name:
            return None
    if "/" in name:
        return None
    if scope.get("method") not in _ALLOWED:
        if ui_response(name, None) is None:
            return None
        return 405, [*_BASE_HEADERS, _ALLOW_HEADER], _error_body("Method not allowed.")
    return ui_response(name, _header(scope, b"if-none-match"))


def _match(scope: Scope) -> tuple[str, str | None, str] | None:
    """(namespace, job id, route below the job or ""), percent-decoded, if the path is a job's.

    The job id is None for the namespace's list of jobs (``/namespaces/{ns}/upload-jobs``).
    """
    relative = _relative_path(scope)
    parts = relative.split("/")
    raw = scope.get("raw_path")
    if raw and "%" in (text := raw.decode("latin-1")):
        # Split the path as sent, before decoding, so that an encoded "/" stays
        # inside its name (making it malformed) instead of adding a segment: the
        # names are the last ones sent that, decoded, spell the path below root_path.
        # (No comprehension reads a local here: that would slow every request.)
        sent = [urllib.parse.unquote(part) for part in text.split("/")[-5:]]
        tails = (["", *sent], ["", *sent[1:]], ["", *sent[2:]])
        parts = {"/".join(tail): tail for tail in tails}.get(relative, [])
    if len(parts) < 4 or parts[0] or parts[1] != "namespaces" or parts[3] != "upload-jobs":
        return None
    if len(parts) == 4:
        return parts[2], None, ""
    if len(parts) == 5 or (len(parts) == 6 and parts[5] in _ITEM_ROUTES):
        return parts[2], parts[4], parts[5] if len(parts) == 6 else ""
    return None


def _query(scope: Scope, names: tuple[str, ...]) -> dict[str, str]:
    """The query parameters *names* that were given (others are ignored; empty is absent).

    Each at most once, else :class:`_BadQuery`.
    """
    query = urllib.parse.parse_qs(  # (lenient: it raises for nothing a client can send)
        scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
    )
    given = {}
    for name in names:
        values = query.get(name, [])
        if len(values) > 1:
            raise _BadQuery(f"Give {name} at most once.")
        if values and values[0]:
            given[name] = values[0]
    return given


def _limit(query: Mapping[str, str]) -> int:
    """The page size ``limit`` of a query as an int (100 when not given); the tracker checks it.

    Thousands of digits are cut to twenty first (``int()`` refuses them).
    """
    text = query.get("limit", "100")
    if not (text.isascii() and text.isdigit()):
        raise _BadQuery(f"limit must be an integer, got {text[:20]!r}")
    return int(text.lstrip("0")[:20] or "0")


def status_app(
    tracker: JobTracker | AsyncJobTracker,
    *,
    authorize: Authorize | None = None,
    max_store_calls: int = DEFAULT_MAX_STORE_CALLS,
    store_wait: float = DEFAULT_STORE_WAIT,
    stall_after: datetime.timedelta | _Unset | None = _UNSET,
    retain: datetime.timedelta | _Unset | None = _UNSET,
    remember_expired: datetime.timedelta | _Unset = _UNSET,
    metrics: bool = True,
) -> StatusApp:
    """An ASGI app serving ``GET /namespaces/{namespace_name}/upload-jobs/{job_id}``.

    *tracker* may be sync or async: a sync one is served through an
    :class:`AsyncJobTracker` over the same store, so no request blocks the
    event loop. *authorize*, if given, is asked about every well-formed
    request before the store is read (see :data:`Authorize`). At most
    *max_store_calls* requests read the store at once (so at most that many
    store connections or worker threads); a request that waits *store_wait*
    seconds for its turn is answered 503 with ``Retry-After``.

    *stall_after*, *retain* and *remember_expired*, when given, replace the
    tracker's own (see :class:`JobTracker`) in the tracker the app reads
    with (over the same store and clock; *tracker* itself is unchanged):
    ``?status=stalled`` needs a *stall_after*; *remember_expired* says how
    long an expired job answers 410 before it is unknown (404).

    ``GET /metrics`` serves Prometheus text when prometheus_client is
    installed (the ``metrics`` extra) and *metrics* is true: the jobs of each
    namespace, the app's route latency, and, if the tracker has
    :class:`~jobtrack.metrics.Metrics`, what it recorded. With *authorize*,
    the hook is asked about it with the name ``"/metrics"``.
    """
    if type(max_store_calls) is not int or max_store_calls < 1:
        raise ConfigurationError(
            f"max_store_calls must be an int >= 1, got {shown(max_store_calls)}"
        )
    if type(store_wait) not in (int, float) or not 0 < store_wait < float("inf"):
        raise ConfigurationError(f"store_wait must be seconds > 0, got {shown(store_wait)}")
    if not isinstance(tracker, (JobTracker, AsyncJobTracker)):
        raise ConfigurationError(
            f"status_app needs a JobTracker or AsyncJobTracker, got {type(tracker).__name__}"
        )
    if authorize is not None and not callable(authorize):
        raise ConfigurationError("authorize must be callable")
    if type(metrics) is not bool:
        raise ConfigurationError(f"metrics must be True or False, got {shown(metrics)}")
    if stall_after is not _UNSET or retain is not _UNSET or remember_expired is not _UNSET:
        tracker = AsyncJobTracker(
            tracker.store,
            clock=tracker.now,
            stall_after=tracker.stall_after if stall_after is _UNSET else stall_after,
            retain=tracker.retain if retain is _UNSET else retain,
            remember_expired=(
                tracker.remember_expired if remember_expired is _UNSET else remember_expired
            ),
            metrics=tracker.metrics,
        )
    elif isinstance(tracker, JobTracker):
        tracker = AsyncJobTracker.from_tracker(tracker)
    return StatusApp(tracker, authorize, max_store_calls, float(store_wait), metrics)


_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)+")


def include_in(
    app: Any, tracker: JobTracker | AsyncJobTracker, prefix: str = "/jobs", **options: Any
) -> StatusApp:
    """Mount every route of :func:`status_app` under *prefix* on a Starlette or FastAPI *app*.

    *options* are those of :func:`status_app`. On FastAPI the routes also
    appear, prefixed, in the host's own ``/openapi.json`` and ``/docs`` (its
    ``openapi()`` is extended, each time FastAPI builds the document anew).
    The host's lifespan closes the tracker's store at shutdown (a mounted
    app gets no lifespan events of its own). Nothing of FastAPI or Starlette
    is imported: *app* needs ``mount()`` and ``router.lifespan_context``.
    Returns the mounted app.

    :raises ConfigurationError: for a bad prefix (``/a/b``: no trailing ``/``),
        a host without ``mount``, or a bad option; nothing is mounted then.
    """
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise ConfigurationError(
            "prefix must be a path such as '/jobs': starting with '/', not ending with '/', "
            f"of A-Z a-z 0-9 . _ ~ - between the slashes; got {shown(prefix)}"
        )
    router: Any = getattr(app, "router", None)
    if not callable(getattr(app, "mount", None)) or not hasattr(router, "lifespan_context"):
        raise ConfigurationError(
            f"include_in needs a Starlette or FastAPI app, got {type(app).__name__}"
        )
    jobs = status_app(tracker, **options)
    app.mount(prefix, jobs)
    inner = router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(host: Any) -> AsyncIterator[Any]:
        try:
            async with inner(host) as state:
                yield state
        finally:
            await jobs.tracker.aclose()

    router.lifespan_context = lifespan
    if not callable(getattr(app, "openapi", None)) or not hasattr(app, "openapi_schema"):
        return jobs  # not FastAPI: no document to extend
    text = json.dumps(jobs.document)
    for section, entries in jobs.document["components"].items():
        for name in entries:  # renamed Jobtrack*, and so every reference to it
            ref = f'"#/components/{section}/'
            text = text.replace(f'{ref}{name}"', f'{ref}Jobtrack{name}"')
    host_openapi = app.openapi
    extended: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        schema: dict[str, Any] = host_openapi()
        if extended and extended[0] is schema:  # FastAPI builds it anew when its routes change
            return schema
        ours = json.loads(text)  # a copy
        paths = schema.setdefault("paths", {})
        ops = [op for item in paths.values() for op in item.values() if isinstance(op, dict)]
        taken = {op.get("operationId") for op in ops}
        for path, item in ours["paths"].items():
            for operation in item.values():
                if isinstance(operation, dict) and "operationId" in operation:
                    operation["tags"] = ["jobtrack"]
                    if operation["operationId"] in taken:  # jobtrack included twice
                        operation["operationId"] += prefix.replace("/", "_")
            paths[prefix + path] = item
        components = schema.setdefault("components", {})
        for section, entries in ours["components"].items():
            for name, value in entries.items():
                components.setdefault(section, {})[f"Jobtrack{name}"] = value
        extended[:] = [schema]
        return schema

    app.openapi = openapi
    return jobs
