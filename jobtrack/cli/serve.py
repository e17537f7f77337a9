"""``jobtrack serve``: the status route under uvicorn, on a socket of our own."""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import warnings
from typing import Any

from ..asgi import DEFAULT_MAX_STORE_CALLS
from ..errors import JobtrackWarning
from .guard import (
    DEFAULT_HEAD_TIMEOUT,
    connection_limits,
    guarded_protocol,
    throttle_server_logs,
)
from .helpers import EXIT_OK, CliError, need, open_tracker, shown_store

__all__ = ["bind", "cmd_serve", "make_server", "run_until_signal", "url_host"]


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
    from ..asgi import status_app  # noqa: PLC0415

    tracker = open_tracker(args)
    check = getattr(tracker.store, "check_eviction", None)  # Redis: would it drop jobs?
    if callable(check):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", JobtrackWarning)
            message = check()
        if message:
            print(f"jobtrack serve: warning: {message}", file=sys.stderr)
    if args.max_store_calls < 1 or not 0 < args.store_wait < float("inf"):
        raise CliError("--max-store-calls must be >= 1 and --store-wait a number of seconds > 0")
    app = status_app(tracker, max_store_calls=args.max_store_calls, store_wait=args.store_wait)
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


def run_until_signal(server: Any, sock: socket.socket) -> None:
    """Run uvicorn; SIGINT and SIGTERM end it after a graceful shutdown."""
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the signal it handled
        server.run(sockets=[sock])


def url_host(host: str) -> str:
    """*host* as it goes in a URL (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host else host
