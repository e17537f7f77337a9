"""The apps the HTTP suite serves under uvicorn, one per process.

``python -m benchmarks.http_apps PORT KIND STORE_URL JOB_ID``, KIND one of
``jobtrack`` (the status route), ``bare`` (a bare ASGI app answering a
constant body of the same size), ``starlette`` (the route as a user would
hand-write it in Starlette), and the bare apps of a medium, that read the
job with one raw call per request and answer its fields as JSON, within the
route's budget of store calls: ``hgetall`` (``redis.asyncio``, a pool of
that many connections; ``hgetall-timeout``: with the store's socket timeouts
too) and ``select`` (the store's primary-key ``SELECT`` on
a connection per worker thread with the store's pragmas, in the same worker
threads as the store).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from jobtrack import JobNotFound, JobTracker
from jobtrack.asgi import status_app

NS = "bench"


def make_app(kind: str, store_url: str, job_id: str) -> Any:
    """The ASGI app of *kind* over the store at *store_url*."""
    tracker = JobTracker(store_url)
    try:
        job = tracker.get(NS, job_id)
    except JobNotFound:
        job = tracker.start(NS, 1000, job_id=job_id)
    if kind == "jobtrack":
        return status_app(tracker)
    if kind == "bare":
        body = json.dumps(job.to_dict(), separators=(",", ":")).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"cache-control", b"no-store"),
            (b"content-length", str(len(body)).encode()),
        ]

        async def bare(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        return bare
    if kind == "starlette":
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def upload_job(request: Any) -> JSONResponse:
            ns = request.path_params["namespace_name"]
            jid = request.path_params["job_id"]
            try:
                found = tracker.get(ns, jid)
            except JobNotFound as exc:
                return JSONResponse({"status": "failure", "message": str(exc)}, status_code=404)
            return JSONResponse(found.to_dict(), headers={"Cache-Control": "no-store"})

        return Starlette(
            routes=[Route("/namespaces/{namespace_name}/upload-jobs/{job_id}", upload_job)]
        )
    if kind in ("hgetall", "hgetall-timeout"):
        return _hgetall_app(tracker, timed=kind == "hgetall-timeout")
    if kind == "select":
        return _select_app(tracker, job_id)
    raise SystemExit(f"unknown app kind {kind!r}")


_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]


async def _answer(send: Any, body: bytes) -> None:
    headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _hgetall_app(tracker: JobTracker, timed: bool) -> Any:
    import redis.asyncio

    from jobtrack.asgi import DEFAULT_MAX_STORE_CALLS

    store = tracker.store
    url = store.url  # type: ignore[attr-defined]
    prefix = len(f"/namespaces/{NS}/upload-jobs/")
    job_key = store.commands.job_key  # type: ignore[attr-defined]
    clients: list[Any] = []  # made in the server's loop, on the first request

    async def hgetall(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if not clients:
            timeout = store.timeout if timed else None  # type: ignore[attr-defined]
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                url,
                max_connections=DEFAULT_MAX_STORE_CALLS,
                decode_responses=True,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
            )
            clients.append(redis.asyncio.Redis(connection_pool=pool))
        fields = await clients[0].hgetall(job_key(NS, scope["path"][prefix:]))
        await _answer(send, json.dumps(fields, separators=(",", ":")).encode())

    return hgetall


def _select_app(tracker: JobTracker, job_id: str) -> Any:
    import asyncio
    import sqlite3
    import threading

    from jobtrack.stores.sql.sqlite import DIALECT

    from .local import PRAGMAS, store_pragmas

    store = tracker.store
    pragmas = store_pragmas(store)  # type: ignore[arg-type]
    statement = DIALECT.statements()["get"]
    prefix = len(f"/namespaces/{NS}/upload-jobs/")
    local = threading.local()

    def select(job: str) -> bytes:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = sqlite3.connect(
                store.path,  # type: ignore[attr-defined]
                isolation_level=None,
                check_same_thread=False,
            )
            for name in PRAGMAS[2:]:  # auto_vacuum and journal_mode belong to the file
                conn.execute(f"PRAGMA {name} = {pragmas[name]}").fetchall()
            got = {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in PRAGMAS}
            if got != pragmas:
                raise RuntimeError(f"pragmas {got}, not the store's {pragmas}")
        row = conn.execute(statement, {"ns": NS, "id": job}).fetchone()
        return json.dumps(row, separators=(",", ":")).encode()

    async def bare_select(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await _answer(send, await asyncio.to_thread(select, scope["path"][prefix:]))

    return bare_select


def main(argv: list[str]) -> None:
    """Serve one app until terminated."""
    import uvicorn

    port, kind, store_url, job_id = int(argv[0]), argv[1], argv[2], argv[3]
    uvicorn.run(
        make_app(kind, store_url, job_id),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main(sys.argv[1:])
