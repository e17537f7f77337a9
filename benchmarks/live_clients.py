"""Many HTTP clients of one job on raw asyncio streams, run as a process of their own.

``python -m benchmarks.live_clients PORT MODE COUNT``:

* ``sse``: COUNT event streams of ``live-sse``; prints ``ready`` once each
  has its first event, then, once every stream has ended (after the
  completed document), one JSON line: for each client, ``[processed, time]``
  of each event it got (``time.time()`` on receipt);
* ``bare``: the same of the bare baseline's stream (``/bare/events``);
* ``idle``: COUNT/2 event streams and COUNT/2 long-polls (``?wait=60`` with
  the ``If-None-Match`` of the status just read) of ``live-idle``; prints
  ``ready`` once the streams have their first event and the long-polls are
  sent, then holds them until its standard input closes.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time

from .live_apps import IDLE_JOB, NS, SSE_JOB, raise_fd_limit

PROCESSED = re.compile(rb'"processed":(\d+)')
CONNECTING = 64  # connections opened at once


def _path(job_id: str, tail: str = "") -> bytes:
    return f"/namespaces/{NS}/upload-jobs/{job_id}{tail}".encode()


async def _open(
    port: int, gate: asyncio.Semaphore, request: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    async with gate:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"unexpected response: {head[:80]!r}")
    return reader, writer, head


async def _chunk(reader: asyncio.StreamReader) -> bytes:
    """The next chunk of a chunked body (b"" at its end)."""
    size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
    data = await reader.readexactly(size + 2)
    return data[:-2]


async def _stream(
    port: int, path: bytes, gate: asyncio.Semaphore, first: asyncio.Queue[None]
) -> list[tuple[int, float]]:
    request = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n" % path
    reader, writer, _ = await _open(port, gate, request)
    got: list[tuple[int, float]] = []
    try:
        while True:
            data = await _chunk(reader)
            now = time.time()
            if not data:
                return got
            match = PROCESSED.search(data)
            if match is None:
                continue  # a heartbeat
            got.append((int(match[1]), now))
            if len(got) == 1:
                first.put_nowait(None)
    finally:
        writer.close()


async def _long_poll(port: int, gate: asyncio.Semaphore, sent: asyncio.Queue[None]) -> None:
    status = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % _path(IDLE_JOB)
    reader, writer, head = await _open(port, gate, status)
    fields = dict(line.split(b": ", 1) for line in head[:-4].split(b"\r\n")[1:])
    await reader.readexactly(int(fields[b"content-length"]))
    writer.write(
        b"GET %s?wait=60 HTTP/1.1\r\nHost: 127.0.0.1\r\nIf-None-Match: %s\r\n\r\n"
        % (_path(IDLE_JOB), fields[b"etag"])
    )
    await writer.drain()
    sent.put_nowait(None)
    try:
        await reader.read(1)  # held: nothing comes while the job is unchanged
    finally:
        writer.close()


async def _ready(queue: asyncio.Queue[None], count: int) -> None:
    for _ in range(count):
        await queue.get()
    print("ready", flush=True)


async def _sse(port: int, path: bytes, count: int) -> None:
    gate, first = asyncio.Semaphore(CONNECTING), asyncio.Queue[None]()
    streams = [_stream(port, path, gate, first) for _ in range(count)]
    *_, results = await asyncio.gather(_ready(first, count), asyncio.gather(*streams))
    print(json.dumps(results), flush=True)


async def _idle(port: int, count: int) -> None:
    gate, ready = asyncio.Semaphore(CONNECTING), asyncio.Queue[None]()
    held: list[asyncio.Future[object]] = [
        asyncio.ensure_future(_stream(port, _path(IDLE_JOB, "/events"), gate, ready))
        for _ in range(count // 2)
    ]
    held += (
        asyncio.ensure_future(_long_poll(port, gate, ready)) for _ in range(count - count // 2)
    )
    await _ready(ready, count)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until closed
    for task in held:
        task.cancel()
    await asyncio.gather(*held, return_exceptions=True)


def main(argv: list[str]) -> None:
    """Run the clients of MODE."""
    raise_fd_limit()
    port, mode, count = int(argv[0]), argv[1], int(argv[2])
    if mode == "idle":
        asyncio.run(_idle(port, count))
    else:
        asyncio.run(
            _sse(port, b"/bare/events" if mode == "bare" else _path(SSE_JOB, "/events"), count)
        )


if __name__ == "__main__":
    main(sys.argv[1:])
