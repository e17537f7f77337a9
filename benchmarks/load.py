"""A small HTTP/1.1 keep-alive load generator, run as its own process.

``python -m benchmarks.load PORT PATH SECONDS CONNECTIONS`` prints the
requests per second it got from 127.0.0.1:PORT (every response must be 200).
"""

from __future__ import annotations

import asyncio
import sys
import time


async def _client(port: int, request: bytes, stop_at: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    done = 0
    try:
        while time.monotonic() < stop_at:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"unexpected response: {head[:80]!r}")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            done += 1
    finally:
        counts.append(done)
        writer.close()


async def _run(port: int, path: str, seconds: float, connections: int) -> float:
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    counts: list[int] = []
    start = time.monotonic()
    stop_at = start + seconds
    await asyncio.gather(*(_client(port, request, stop_at, counts) for _ in range(connections)))
    return sum(counts) / (time.monotonic() - start)


def main(argv: list[str]) -> None:
    """Run the load and print requests/s."""
    port, path, seconds, connections = int(argv[0]), argv[1], float(argv[2]), int(argv[3])
    print(f"{asyncio.run(_run(port, path, seconds, connections)):.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
