"""The apps the HTTP suite serves under uvicorn, one per process.

``python -m benchmarks.http_apps KIND PORT STORE_URL JOB_ID``, KIND one of
``jobtrack`` (the status route), ``bare`` (a bare ASGI app answering a
constant body of the same size) and ``starlette`` (the route as a user would
hand-write it in Starlette).
"""

from __future__ import annotations

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
        import json

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
    raise SystemExit(f"unknown app kind {kind!r}")


def main(argv: list[str]) -> None:
    """Serve one app until terminated."""
    import uvicorn

    kind, port, store_url, job_id = argv[0], int(argv[1]), argv[2], argv[3]
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
