"""The ``jobtrack`` command line: its parser, which names the function of each command."""

from __future__ import annotations

import argparse

from .. import __version__
from ..arguments import MAX_LIST_LIMIT, check_limit
from .commands import DEFAULT_LIST_LIMIT, cmd_abort, cmd_list, cmd_status, cmd_watch
from .demo import cmd_demo
from .serve import cmd_serve
from .stores import default_store_url

__all__ = ["build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; each sets ``func`` to the command to run."""
    parser = argparse.ArgumentParser(
        prog="jobtrack",
        description="Track the progress of batch upload jobs; serve the status route.",
        epilog=(
            "The store comes from --store or JOBTRACK_STORE; by default a file store in "
            f"{default_store_url()[len('file://') :]}. Exit statuses: 0 ok, 1 watch saw "
            "failed items, 2 bad command line, 3 no such job, 4 other errors."
        ),
    )
    parser.add_argument("--version", action="version", version=f"jobtrack {__version__}")
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--store",
        metavar="URL",
        help="memory://, file:///abs/path, file:rel/path, redis://..., redis+cluster://...",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo", parents=[store], help="serve the route and run a demo pipeline"
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--namespace", default="demo")
    demo.add_argument("--items", type=int, default=200, help="items in the job (200)")
    demo.add_argument("--workers", type=int, default=4, help="worker threads (4)")
    demo.add_argument("--failure-rate", type=float, default=0.05, help="share failing (0.05)")
    demo.add_argument("--item-seconds", type=float, default=0.25, help="mean work per item (0.25)")
    demo.add_argument("--seed", type=int, default=None, help="seed of the simulation")
    demo.add_argument("--exit-when-done", action="store_true", help="exit once the job completes")
    demo.set_defaults(func=cmd_demo)

    serve = commands.add_parser("serve", parents=[store], help="serve the status route (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.set_defaults(func=cmd_serve)

    status = commands.add_parser("status", parents=[store], help="show one job")
    status.add_argument("namespace")
    status.add_argument("job_id")
    status.add_argument("--json", action="store_true", help="print the wire document")
    status.set_defaults(func=cmd_status)

    listing = commands.add_parser("list", parents=[store], help="list a namespace's jobs")
    listing.add_argument("namespace")
    listing.add_argument(
        "--limit",
        type=_page_size,
        default=DEFAULT_LIST_LIMIT,
        help=f"jobs per page, 1-{MAX_LIST_LIMIT} ({DEFAULT_LIST_LIMIT})",
    )
    listing.add_argument("--cursor", default=None)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)

    watch = commands.add_parser(
        "watch", parents=[store], help="progress bar until the job completes"
    )
    watch.add_argument("namespace")
    watch.add_argument("job_id")
    watch.add_argument("--interval", type=float, default=0.5, help="seconds between polls (0.5)")
    watch.add_argument("--quiet", action="store_true", help="no bar, only the final summary")
    watch.set_defaults(func=cmd_watch)

    abort = commands.add_parser("abort", parents=[store], help="fail every remaining item of a job")
    abort.add_argument("namespace")
    abort.add_argument("job_id")
    abort.add_argument(
        "--error", required=True, metavar="MSG", help="the reason, kept as last_error"
    )
    abort.set_defaults(func=cmd_abort)
    return parser


def _page_size(text: str) -> int:
    try:
        return check_limit(int(text))  # the tracker's own rule (InvalidArgument is a ValueError)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to {MAX_LIST_LIMIT}") from None
