"""``jobtrack serve``: the status route under uvicorn, on a socket of our own."""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import warnings
from typing import Any

from ..errors import JobtrackWarning
from .helpers import EXIT_OK, CliError, need, open_tracker, shown_store

__all__ = ["bind", "cmd_serve", "make_server", "run_until_signal", "url_host"]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on *host*:*port* (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def make_server(app: Any, log_level: str, command: str, *, access_log: bool = False) -> Any:
    """A uvicorn server for *app* (*command* names the command that needs it)."""
    uvicorn = need("uvicorn", command)
    config = uvicorn.Config(app, log_level=log_level, lifespan="on", access_log=access_log)
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
    app = status_app(tracker, max_store_calls=args.max_store_calls, store_wait=args.store_wait)
    server = make_server(app, args.log_level, "serve", access_log=args.access_log)
    sock = bind(args.host, args.port)
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
