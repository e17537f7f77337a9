"""``jobtrack serve``: the status route under uvicorn, on a socket of our own.

Beside the route, it sweeps the store: every ``--purge-every`` seconds it
reclaims the jobs whose retention has passed (:func:`sweep`, run by
:class:`Sweeping` for as long as the server runs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from ..asgi import DEFAULT_MAX_STORE_CALLS, Message, Receive, Scope, Send, status_app
from ..async_tracker import AsyncJobTracker
from ..errors import JobtrackError, JobtrackWarning
from ..logs import Throttle
from ..stores import features_of
from .guard import (
    DEFAULT_HEAD_TIMEOUT,
    connection_limits,
    guarded_protocol,
    throttle_server_logs,
)
from .helpers import EXIT_OK, CliError, need, open_tracker, shown_store

__all__ = [
    "DEFAULT_PURGE_EVERY",
    "Sweeping",
    "bind",
    "cmd_serve",
    "make_server",
    "run_until_signal",
    "sweep",
    "url_host",
]

DEFAULT_PURGE_EVERY = 600.0
"""Seconds between two purges of expired jobs in ``jobtrack serve``."""

logger = logging.getLogger("jobtrack.serve")
# a store that stays down must not fill the log: each complaint once a minute, with a count
logger.addFilter(Throttle(60.0, ("periodic purge failed:",)))
logger.addFilter(Throttle(60.0, ("periodic purge failed unexpectedly",), keep_traceback=True))

Wait = Callable[[float], Awaitable[Any]]


async def sweep(
    purge: Callable[[], Awaitable[int]], every: float, wait: Wait = asyncio.sleep
) -> None:
    """Call ``purge()`` at once, then again *every* seconds, until cancelled.

    Nothing it raises ends the sweep or the server: a store error is logged
    in one line, anything else with its traceback (each at most once a
    minute). Cancelled while a purge is under way, it lets that purge finish
    first (the store is closed after it). *wait* is how it waits between
    purges (tests pass their own).
    """
    while True:
        call = asyncio.ensure_future(_purge_once(purge))
        try:
            await asyncio.shield(call)
        except asyncio.CancelledError:
            await call  # never interrupt a purge under way: it never raises
            raise
        await wait(every)


async def _purge_once(purge: Callable[[], Awaitable[int]]) -> None:
    try:
        removed = await purge()
    except JobtrackError as exc:  # store down, busy, corrupt: the next sweep may do
        logger.warning("periodic purge failed: %s", exc)
    except Exception:
        logger.exception("periodic purge failed unexpectedly")
    else:
        if removed:
            logger.info("purged %d expired job(s)", removed)


class Sweeping:
    """An ASGI app that runs :func:`sweep` beside *app* while the server runs.

    The sweep starts with the server (lifespan startup) and is cancelled at
    lifespan shutdown, before *app* hears of it (and closes the store).
    Every other scope goes to *app* untouched.
    """

    def __init__(
        self,
        app: Any,
        purge: Callable[[], Awaitable[int]],
        every: float,
        wait: Wait = asyncio.sleep,
    ) -> None:
        self.app = app
        self.purge = purge
        self.every = every
        self.wait = wait
        self.task: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection; start and stop the sweep with the lifespan."""
        if scope.get("type") != "lifespan":
            await self.app(scope, receive, send)
            return

        async def lifespan_receive() -> Message:
            message = await receive()
            if message.get("type") == "lifespan.startup" and self.task is None:
                self.task = asyncio.create_task(sweep(self.purge, self.every, self.wait))
            elif message.get("type") == "lifespan.shutdown":
                await self.stop()
            return message

        try:
            await self.app(scope, lifespan_receive, send)
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Cancel the sweep, and wait until it has stopped."""
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def bind(host: str, port: int, backlog: int = 128) -> socket.socket:
    """A listening socket on *host*:*port* (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def make_server(
    app: Any,
    log_level: str,
    command: str,
    *,
    access_log: bool = False,
    head_timeout: float = DEFAULT_HEAD_TIMEOUT,
    limits: tuple[int, int] | None = None,
) -> Any:
    """A uvicorn server for *app* that protects itself (see :mod:`.guard`).

    *command* names the command that needs it; *limits* is ``(max
    connections, backlog)``, by default what the file limit allows.
    """
    uvicorn = need("uvicorn", command)
    max_connections, backlog = limits or connection_limits(DEFAULT_MAX_STORE_CALLS)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        lifespan="on",
        access_log=access_log,
        http=guarded_protocol(head_timeout, max_connections),
        backlog=backlog,
    )
    throttle_server_logs()
    return uvicorn.Server(config)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the status route under uvicorn until SIGINT or SIGTERM."""
    tracker = open_tracker(args)
    if features_of(tracker.store).checks:  # say, a Redis that would drop jobs when full
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", JobtrackWarning)
            message = tracker.store.check_setup()  # type: ignore[attr-defined]
        if message:
            print(f"jobtrack serve: warning: {message}", file=sys.stderr)
    if args.max_store_calls < 1 or not 0 < args.store_wait < float("inf"):
        raise CliError("--max-store-calls must be >= 1 and --store-wait a number of seconds > 0")
    served = AsyncJobTracker.from_tracker(tracker)
    app: Any = status_app(served, max_store_calls=args.max_store_calls, store_wait=args.store_wait)
    if args.purge_every > 0:
        if features_of(tracker.store).expiry:
            app = Sweeping(app, served.purge, args.purge_every)
        else:
            print(
                "jobtrack serve: warning: this store keeps no expiry; expired jobs are not purged",
                file=sys.stderr,
            )
    limits = connection_limits(args.max_store_calls)
    if args.max_connections is not None:
        if not 1 <= args.max_connections <= limits[0]:
            raise CliError(
                f"--max-connections must be from 1 to {limits[0]} (the file limit allows that many)"
            )
        limits = (args.max_connections, limits[1])
    if not 0 < args.header_timeout <= 3600:
        raise CliError("--header-timeout must be > 0 and <= 3600 seconds")
    server = make_server(
        app,
        args.log_level,
        "serve",
        access_log=args.access_log,
        head_timeout=args.header_timeout,
        limits=limits,
    )
    _log_like_uvicorn(logger, args.log_level)
    sock = bind(args.host, args.port, limits[1])
    port = sock.getsockname()[1]
    try:
        with contextlib.suppress(KeyboardInterrupt):  # a signal before uvicorn took over
            base = f"http://{url_host(args.host)}:{port}"
            print(f"jobtrack serve: {base} (store: {shown_store(args)})")
            sys.stdout.flush()
            run_until_signal(server, sock)
    finally:
        sock.close()
    print("jobtrack serve: stopped")
    return EXIT_OK


def _log_like_uvicorn(log: logging.Logger, level: str) -> None:
    """Send *log*'s records to stderr as uvicorn writes its own (``INFO:     ...``)."""
    from uvicorn.logging import DefaultFormatter  # noqa: PLC0415 - the server extra

    if not any(getattr(h, "jobtrack_serve", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s"))
        handler.jobtrack_serve = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.setLevel(level.upper())
    log.propagate = False


def run_until_signal(server: Any, sock: socket.socket) -> None:
    """Run uvicorn; SIGINT and SIGTERM end it after a graceful shutdown."""
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the signal it handled
        server.run(sockets=[sock])


def url_host(host: str) -> str:
    """*host* as it goes in a URL (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host else host
