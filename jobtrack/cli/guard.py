"""What ``jobtrack serve`` adds to uvicorn so a slow or greedy client cannot take it down.

uvicorn (0.54, h11) has no deadline for a request's head: its keep-alive
timer starts only after a response, and any byte cancels it, so a client
that sends one header line every few seconds holds its connection forever;
its ``limit_concurrency`` is checked only once a head is complete, so such
connections are never capped; and on ``EMFILE`` Python 3.11's accept loop
logs one traceback per attempt, thousands a second. So:

* :func:`guarded_protocol`: uvicorn's h11 protocol with a deadline for every
  request, head and body (from the connection's start, and again after each
  response; bytes trickling in never extend it) and a hard cap on open
  connections (one over it is answered 503 and
  closed without being read);
* :func:`connection_limits`: a cap and a listen backlog that keep the
  process below its file limit, with room for the store's connections;
* :func:`throttle_server_logs`: the "out of system resource" log line at most
  once a minute, uvicorn's complaints about bad requests once every 10 s,
  each with the count of those held back.

hypercorn has the head deadline but no cap; granian has both but cannot
serve a socket we bound; see docs/cli.md for what a reverse proxy should
still do.
"""

from __future__ import annotations

import logging
from typing import Any

try:
    import resource
except ImportError:  # Windows: no file-descriptor limit to read
    resource = None  # type: ignore[assignment]

from ..logs import Throttle

__all__ = ["DEFAULT_HEAD_TIMEOUT", "connection_limits", "guarded_protocol", "throttle_server_logs"]

DEFAULT_HEAD_TIMEOUT = 10.0
"""Seconds a client has to send a request's whole head (from connecting, or after a response)."""

_BUSY_BODY = b'{"status":"failure","message":"Too many connections; retry later."}'
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"cache-control: no-store\r\nretry-after: 2\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


def connection_limits(store_calls: int) -> tuple[int, int]:
    """``(max connections, listen backlog)`` that stay below the process's file limit.

    The accept loop may take a whole backlog of connections at once before it
    closes those over the cap, and the store needs its own descriptors; the
    rest, less a margin for files and logs, is for connections (at most 10,000).
    """
    soft = 8192 if resource is None else resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    backlog = max(8, min(128, soft // 8))
    return max(4, min(10_000, soft - backlog - store_calls - 64)), backlog


def guarded_protocol(head_timeout: float, max_connections: int) -> type[Any]:
    """Uvicorn's h11 protocol with a request-head deadline and a connection cap."""
    import h11  # noqa: PLC0415 - with uvicorn, the server extra
    from uvicorn.protocols.http.h11_impl import H11Protocol  # noqa: PLC0415

    _INCOMPLETE = (h11.IDLE, h11.SEND_BODY)

    class GuardedH11Protocol(H11Protocol):
        _deadline: Any = None

        def connection_made(self, transport: Any) -> None:
            if len(self.connections) >= max_connections:
                self.transport = transport  # over the cap: answer at once, never read
                transport.write(_BUSY)
                transport.close()
                return
            super().connection_made(transport)
            self._start_clock()

        def _start_clock(self) -> None:  # only ever called with no clock running
            self._deadline = self.loop.call_later(head_timeout, self._too_slow)

        def _stop_clock(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if self.conn.their_state in _INCOMPLETE and not self.transport.is_closing():
                self.logger.debug("request not complete after %gs: closed", head_timeout)
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state in _INCOMPLETE:  # waiting for a request, or its body
                if self._deadline is None:
                    self._start_clock()
            else:  # the request is in (or broken): the app has it
                self._stop_clock()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._deadline is None and not self.transport.is_closing():
                self._start_clock()  # the next request gets the same time; a body still
                # coming in keeps the clock it has: answering early extends nothing

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_clock()
            if getattr(self, "flow", None) is None:  # the over-cap path set nothing up
                return
            super().connection_lost(exc)

    return GuardedH11Protocol


ACCEPT_ERROR = "socket.accept() out of system resource"


UVICORN_COMPLAINTS = (
    "Invalid HTTP request received",
    "Unsupported upgrade request",
    "No supported WebSocket library detected",
)


_SERVER_THROTTLES = {
    "asyncio": Throttle(60.0, (ACCEPT_ERROR,)),
    "uvicorn.error": Throttle(10.0, UVICORN_COMPLAINTS),
}


def throttle_server_logs() -> None:
    """Throttle the complaints a flood of bad clients makes the server log (once per process).

    asyncio's accept error (one per attempt, each with a traceback) once a
    minute; uvicorn's per-request warnings about bad requests once every 10 s.
    """
    for name, throttle in _SERVER_THROTTLES.items():
        logger = logging.getLogger(name)
        if throttle not in logger.filters:
            logger.addFilter(throttle)
