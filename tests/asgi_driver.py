"""A minimal ASGI driver: call an app with a hand-made scope, collect what it sends."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

import attrs


@attrs.frozen
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    header_list: list[tuple[bytes, bytes]]


async def call_async(
    app: Any,
    method: str,
    raw_path: str,
    *,
    root_path: str = "",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Response:
    sent: list[dict[str, Any]] = []
    raw_path, _, query = raw_path.partition("?")  # as a server splits the target
    path = urllib.parse.unquote(raw_path)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": root_path + path,
        "raw_path": (root_path + raw_path).encode("latin-1"),
        "root_path": root_path,
        "query_string": query.encode("latin-1"),
        "headers": headers or [],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }

    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if requested:  # as a server does: nothing more until the client goes
            await asyncio.Event().wait()
        requested = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    header_list = list(sent[0]["headers"])
    return Response(
        sent[0]["status"],
        {k.decode(): v.decode() for k, v in header_list},
        sent[1]["body"],
        header_list,
    )


def call(app: Any, method: str, raw_path: str, **kwargs: Any) -> Response:
    return asyncio.run(call_async(app, method, raw_path, **kwargs))


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """*app* under a real uvicorn server on a free loopback port; its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
