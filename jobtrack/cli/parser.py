"""The ``jobtrack`` command line: its parser, and the commands about jobs.

``serve`` and ``demo`` have modules of their own.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Iterator
from typing import Any

from .. import __version__
from ..arguments import MAX_LIST_LIMIT, MAX_STALL_AFTER, check_limit
from ..asgi import DEFAULT_MAX_STORE_CALLS, DEFAULT_STORE_WAIT
from ..clock import utc_now
from ..errors import WaitTimeout
from ..model import FailedItem, JobStatus, Progress
from ..stores.protocol import STATUSES
from ..tracker import JobTracker
from .demo import cmd_demo
from .guard import DEFAULT_HEAD_TIMEOUT
from .helpers import (
    EXIT_FAILED_ITEMS,
    EXIT_OK,
    CliError,
    age,
    default_store_url,
    need,
    open_tracker,
    printable,
    program,
    store_flag,
    summary,
)
from .serve import DEFAULT_PURGE_EVERY, cmd_serve

DEFAULT_LIST_LIMIT = 20


def cmd_status(args: argparse.Namespace) -> int:
    """Print one job's status."""
    with open_tracker(args, existing=True) as tracker:
        job = tracker.get(args.namespace, args.job_id)
        progress = tracker.progress(job)
    print(json.dumps(job.to_dict(), indent=2) if args.json else summary(job, progress))
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    """Print a page of a namespace's jobs, newest first (``--status``: of that status only)."""
    with open_tracker(args, existing=True) as tracker:
        page = tracker.list(
            args.namespace, status=args.status, limit=args.limit, cursor=args.cursor
        )
    if args.json:
        doc = {"jobs": [job.to_dict() for job in page.items], "next_cursor": page.next_cursor}
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    if not page.items:
        which = f"{args.status} " if args.status else ""
        if page.next_cursor:  # the page passed over many expired jobs, or jobs of other statuses
            print(f"no {which}jobs on this page")
        else:
            more = "more " if args.cursor else ""
            print(f"no {more}{which}jobs in namespace {args.namespace}")
    now = utc_now()
    rows = [
        (job, printable(job.job_id), f"{job.successful + job.failed}/{job.total}")
        for job in page.items
    ]
    width = max((len(shown) for _, shown, _ in rows), default=0)
    done_width = max((len(done) for _, _, done in rows), default=0)
    failed_width = max((len(str(job.failed)) for job in page.items), default=0)
    for job, shown, done in rows:
        started = job.to_dict()["started_at"]
        updated = age((now - job.updated_at).total_seconds())
        mark = "  STALLED" if tracker.is_stalled(job) else ""
        print(
            f"{shown:<{width}}  {job.status.value:<9}  {done:>{done_width}}"
            f"  failed {job.failed:<{failed_width}}  started {started}  updated {updated} ago{mark}"
        )
    if page.next_cursor:
        limit = f" --limit {args.limit}" if args.limit != DEFAULT_LIST_LIMIT else ""
        status = f" --status {args.status}" if args.status else ""
        stall = "" if args.stall_after is None else f" --stall-after {_shown(args.stall_after)}"
        cursor = page.next_cursor  # (one of a job started before 1970 begins with '-')
        cursor = f"--cursor={cursor}" if cursor.startswith("-") else f"--cursor {cursor}"
        ns = args.namespace  # a name may begin with '-' too: then it goes after '--'
        first, last = ("", f" -- {ns}") if ns.startswith("-") else (f" {ns}", "")
        print(
            f"more: {program()} list{first}{store_flag(args)}{limit}{status}{stall} {cursor}{last}"
        )
    return EXIT_OK


def cmd_namespaces(args: argparse.Namespace) -> int:
    """Print a page of the namespaces that hold jobs, with their counts (as GET /namespaces)."""
    with open_tracker(args, existing=True) as tracker:
        page = tracker.namespaces(limit=args.limit, cursor=args.cursor)
    if args.json:
        doc = {"namespaces": [row.to_dict() for row in page.items], "next_cursor": page.next_cursor}
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    if not page.items:
        print("no namespaces on this page" if page.next_cursor else "no namespaces with jobs")
    width = max((len(row.name) for row in page.items), default=0)
    for row in page.items:
        stalled = "" if row.stalled is None else f" ({row.stalled} stalled)"
        print(f"{row.name:<{width}}  running {row.running}{stalled}  completed {row.completed}")
    if page.next_cursor:
        limit = f" --limit {args.limit}" if args.limit != DEFAULT_LIST_LIMIT else ""
        stall = "" if args.stall_after is None else f" --stall-after {_shown(args.stall_after)}"
        more = f"{store_flag(args)}{limit}{stall} --cursor={page.next_cursor}"
        print(f"more: {program()} namespaces{more}")
    return EXIT_OK


def _shown(seconds: float) -> str:
    """*seconds* as short as it reads back the same (``600``, not ``600.0``)."""
    short = f"{seconds:g}"
    return short if float(short) == seconds else repr(seconds)


def cmd_purge(args: argparse.Namespace) -> int:
    """Remove the jobs whose retention and ``remember_expired`` have passed."""
    with open_tracker(args, existing=True) as tracker:
        removed = tracker.purge()
    print(f"purged {removed} expired job(s)")
    return EXIT_OK


def cmd_reap(args: argparse.Namespace) -> int:
    """Abort every stalled running job of a namespace."""
    with open_tracker(args, existing=True) as tracker:
        reaped = tracker.reap(args.namespace)
    for job in reaped:
        print(f"reaped {job.job_id}: {printable(job.last_error or '')}")
    print(f"{len(reaped)} stalled job(s) reaped in namespace {args.namespace}")
    return EXIT_OK


def cmd_abort(args: argparse.Namespace) -> int:
    """Fail every remaining item of a job."""
    with open_tracker(args, existing=True) as tracker:
        job = tracker.abort(args.namespace, args.job_id, args.error)
    print(summary(job))
    return EXIT_OK


def cmd_failures(args: argparse.Namespace) -> int:
    """Print a job's error counts and every failed item (exit 1 if there is any).

    ``--json`` prints one JSON document (built page by page, as it is read):
    ``{"job_id", "namespace_name", "failed", "errors": [...], "items": [...]}``
    with the items and groups as the HTTP routes give them.
    """
    with open_tracker(args, existing=True) as tracker:
        job = tracker.get(args.namespace, args.job_id)
        groups = tracker.errors(args.namespace, args.job_id)
        pages = _failed_pages(tracker, args.namespace, args.job_id)
        listed = 0
        if args.json:
            head = {
                "job_id": job.job_id,
                "namespace_name": job.namespace_name,
                "failed": job.failed,
                "errors": [group.to_dict() for group in groups],
            }
            sys.stdout.write(json.dumps(head)[:-1] + ', "items": [')  # ASCII: escapes all
            for item in pages:
                separator = ",\n  " if listed else "\n  "
                sys.stdout.write(separator + json.dumps(item.to_dict()))
                listed += 1
            sys.stdout.write("\n]}\n" if listed else "]}\n")
            return EXIT_FAILED_ITEMS if listed or job.failed else EXIT_OK
        print(f"job {job.job_id} in namespace {job.namespace_name}: {job.failed} failed")
        if groups:
            print("errors (failures with each message):")
        for group in groups:
            message = "(other messages)" if group.message is None else printable(group.message)
            print(f"  {group.count:>8}  {message}")
        for item in pages:
            if not listed:
                print("failed items (latest error):")
            error = "-" if item.error is None else printable(item.error)
            print(f"  {printable(item.item)}  {error}")
            listed += 1
        if job.failed and not listed:
            print("no failed item was named (the failures were recorded without items)")
    return EXIT_FAILED_ITEMS if listed or job.failed else EXIT_OK


def _failed_pages(tracker: JobTracker, namespace: str, job_id: str) -> Iterator[FailedItem]:
    """Every failed item, page by page, each once (one failing again moves to a later page)."""
    cursor = None
    seen: set[str] = set()
    while True:
        page = tracker.failed_items(namespace, job_id, limit=MAX_LIST_LIMIT, cursor=cursor)
        for item in page.items:
            if item.item not in seen:
                seen.add(item.item)
                yield item
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def cmd_watch(args: argparse.Namespace) -> int:
    """Show a live progress bar until the job completes (pushed where the store can)."""
    tqdm = need("tqdm", "watch").tqdm
    if not 0 < args.interval < float("inf"):  # (NaN too)
        raise CliError("--interval must be a number of seconds > 0")
    with open_tracker(args, existing=True) as tracker:
        job = tracker.get(args.namespace, args.job_id)
        if job.is_finished:  # nothing to watch: a bar would show a meaningless rate
            print(summary(job, tracker.progress(job)))
            return EXIT_FAILED_ITEMS if job.failed else EXIT_OK
        with (
            tqdm(
                total=job.total,
                initial=job.successful + job.failed,  # the rate counts what is done while watching
                unit="item",
                desc=job.job_id[:16],
                file=sys.stderr,
                dynamic_ncols=True,
                disable=args.quiet,
            ) as bar
        ):
            while not job.is_finished:
                try:  # each change as it comes; at least every --interval, the stalled mark
                    for job in tracker.watch(args.namespace, args.job_id, timeout=args.interval):
                        _show(bar, job, tracker.progress(job))
                except WaitTimeout:
                    _show(bar, job, tracker.progress(job))
        print(summary(job, tracker.progress(job)))
    return EXIT_FAILED_ITEMS if job.failed else EXIT_OK


def _show(bar: Any, job: JobStatus, progress: Progress) -> None:
    """Draw *job* on the bar: its smoothed rate and ETA (SPEC 8), ``STALLED`` once it is."""
    bar.total = job.total  # extend() may have raised it
    bar.n = job.successful + job.failed
    state = {"STALLED": "no update for longer than --stall-after"} if progress.stalled else {}
    eta = {} if progress.eta_at is None else {"eta": progress.to_dict()["eta_at"][11:19]}
    bar.set_postfix(
        processed=job.processed,
        ok=job.successful,
        failed=job.failed,
        rate=f"{progress.rate_per_s:.3g}/s",
        **eta,
        **state,
        refresh=False,
    )
    bar.refresh()


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; each sets ``func`` to the command to run."""
    parser = argparse.ArgumentParser(
        prog="jobtrack",
        description="Track the progress of batch upload jobs; serve the status route.",
        epilog=(
            "The store comes from --store or JOBTRACK_STORE; by default an SQLite store in "
            f"{default_store_url()[len('file://') :]}. Exit statuses: 0 ok, 1 watch or "
            "failures saw failed items, 2 bad command line, 3 no such (or expired) job, "
            "4 other errors."
        ),
    )
    parser.add_argument("--version", action="version", version=f"jobtrack {__version__}")
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--store",
        metavar="URL",
        help="sqlite:rel.db, file:dir, postgresql://..., redis://..., redis+cluster://..., "
        "memory://",
    )
    retention = argparse.ArgumentParser(add_help=False)  # for the commands that complete jobs
    retention.add_argument(
        "--retain",
        type=_retain,
        default=argparse.SUPPRESS,
        metavar="SECONDS",
        help="how long the jobs this command completes (abort, reap) stay readable; "
        "none: forever (7 days)",
    )
    remember = argparse.ArgumentParser(add_help=False)
    remember.add_argument(
        "--remember-expired",
        type=_duration,
        default=argparse.SUPPRESS,
        metavar="SECONDS",
        help="how long an expired job reads as expired, not unknown (30 days)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo", parents=[store], help="serve the route and run a demo pipeline"
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=_port, default=8080)
    demo.add_argument("--namespace", default="demo")
    demo.add_argument("--items", type=int, default=200, help="items in the job (200)")
    demo.add_argument("--workers", type=int, default=4, help="worker threads (4)")
    demo.add_argument("--failure-rate", type=float, default=0.05, help="share failing (0.05)")
    demo.add_argument("--item-seconds", type=float, default=0.25, help="mean work per item (0.25)")
    demo.add_argument("--seed", type=int, default=None, help="seed of the simulation")
    demo.add_argument("--exit-when-done", action="store_true", help="exit once the job completes")
    demo.set_defaults(func=cmd_demo)

    serve = commands.add_parser(
        "serve", parents=[store, remember], help="serve the status route (uvicorn)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8080)
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.add_argument("--access-log", action="store_true", help="log every request (off)")
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=DEFAULT_HEAD_TIMEOUT,
        metavar="S",
        help=f"seconds a client has to send a request's head ({DEFAULT_HEAD_TIMEOUT:g})",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=None,
        metavar="N",
        help="open connections at most (default: what the file limit allows)",
    )
    serve.add_argument(
        "--max-store-calls",
        type=int,
        default=DEFAULT_MAX_STORE_CALLS,
        metavar="N",
        help=f"store calls the route makes at once ({DEFAULT_MAX_STORE_CALLS})",
    )
    serve.add_argument(
        "--store-wait",
        type=float,
        default=DEFAULT_STORE_WAIT,
        metavar="S",
        help=f"seconds a request waits for a store call before a 503 ({DEFAULT_STORE_WAIT:g})",
    )
    serve.add_argument(
        "--purge-every",
        type=_interval,
        default=DEFAULT_PURGE_EVERY,
        metavar="S",
        help=f"seconds between purges of expired jobs; 0: never ({DEFAULT_PURGE_EVERY:g})",
    )
    _stall_after(serve, "answer ?status=stalled: running jobs not updated for longer")
    serve.set_defaults(func=cmd_serve)

    _job_commands(commands, [store, remember], [store, retention, remember])
    return parser


def _job_commands(
    commands: Any,
    parents: list[argparse.ArgumentParser],
    completing: list[argparse.ArgumentParser],
) -> None:
    """The commands about the jobs of a store: status, list, watch, abort, failures, reap, purge.

    *completing*: the options of the commands that complete jobs (abort, reap), with ``--retain``.
    """
    job = argparse.ArgumentParser(add_help=False)  # the arguments of a command about one job
    job.add_argument("namespace")
    job.add_argument("job_id")
    status = commands.add_parser("status", parents=[*parents, job], help="show one job")
    status.add_argument("--json", action="store_true", help="print the wire document")
    _stall_after(status, "say STALLED when the running job was not updated for longer")
    status.set_defaults(func=cmd_status)

    listing = commands.add_parser("list", parents=parents, help="list a namespace's jobs")
    listing.add_argument("namespace")
    _paging(listing, "jobs")
    listing.add_argument(
        "--status",
        choices=STATUSES,
        default=None,
        help="only the jobs of that status (stalled needs --stall-after)",
    )
    listing.add_argument("--json", action="store_true")
    _stall_after(listing, "mark running jobs not updated for longer as STALLED")
    listing.set_defaults(func=cmd_list, usage=listing)

    names = commands.add_parser(
        "namespaces", parents=parents, help="list the namespaces with their job counts"
    )
    _paging(names, "namespaces")
    names.add_argument("--json", action="store_true", help="print what GET /namespaces sends")
    _stall_after(names, "count running jobs not updated for longer as stalled")
    names.set_defaults(func=cmd_namespaces, usage=names)

    watch = commands.add_parser(
        "watch", parents=[*parents, job], help="progress bar until the job completes"
    )
    watch.add_argument(
        "--interval",
        type=float,
        default=0.5,
        help="seconds between redraws while nothing changes (0.5); changes show as they come",
    )
    watch.add_argument("--quiet", action="store_true", help="no bar, only the final summary")
    _stall_after(watch, "mark the job STALLED when it is not updated for longer")
    watch.set_defaults(func=cmd_watch)

    abort = commands.add_parser(
        "abort", parents=[*completing, job], help="fail every remaining item of a job"
    )
    abort.add_argument(
        "--error", required=True, metavar="MSG", help="the reason, kept as last_error"
    )
    abort.set_defaults(func=cmd_abort)

    failures = commands.add_parser(
        "failures", parents=[*parents, job], help="a job's error counts and failed items"
    )
    failures.add_argument(
        "--json", action="store_true", help="one JSON document, for a retry script"
    )
    failures.set_defaults(func=cmd_failures)

    reap = commands.add_parser(
        "reap", parents=completing, help="abort the stalled running jobs of a namespace"
    )
    reap.add_argument("namespace")
    _stall_after(reap, "a running job not updated for longer is stalled", required=True)
    reap.set_defaults(func=cmd_reap)

    forgotten = (
        "remove the jobs forgotten: expired longer than --remember-expired ago "
        "(an expired job still answers 'expired' until then)"
    )
    purge = commands.add_parser(
        "purge", parents=parents, help=forgotten, description=forgotten.capitalize() + "."
    )
    purge.set_defaults(func=cmd_purge)


def _paging(parser: argparse.ArgumentParser, what: str) -> None:
    """``--limit`` (*what* per page) and ``--cursor``, as a listing command takes them."""
    parser.add_argument(
        "--limit",
        type=_page_size,
        default=DEFAULT_LIST_LIMIT,
        help=f"{what} per page, 1-{MAX_LIST_LIMIT} ({DEFAULT_LIST_LIMIT})",
    )
    parser.add_argument("--cursor", default=None)


def _stall_after(parser: argparse.ArgumentParser, text: str, required: bool = False) -> None:
    parser.add_argument(
        "--stall-after", type=_seconds, required=required, metavar="SECONDS", help=text
    )


def _number(text: str, low: float, says: str) -> float:
    """A number of seconds from *low* to 1000 years, else an argparse error that *says* so."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= MAX_STALL_AFTER.total_seconds():
        raise argparse.ArgumentTypeError(f"must be a number of seconds {says}, got {text!r}")
    return value


def _seconds(text: str) -> float:
    """``--stall-after``: seconds > 0."""
    return _number(text, 0.001, "> 0 (0.001 to 1000 years)")


def _duration(text: str) -> datetime.timedelta:
    """A duration in seconds, 0 to 1000 years (``--remember-expired``)."""
    return datetime.timedelta(seconds=_number(text, 0, ">= 0 (up to 1000 years)"))


def _retain(text: str) -> datetime.timedelta | None:
    """``--retain``: a duration in seconds, or ``none`` (kept forever)."""
    if text.strip().lower() == "none":
        return None
    return datetime.timedelta(seconds=_number(text, 0, ">= 0 (up to 1000 years) or none"))


def _interval(text: str) -> float:
    """``--purge-every``: seconds >= 0 (0: never)."""
    return _number(text, 0, ">= 0 and up to 1000 years (0: never)")


def _port(text: str) -> int:
    """``--port``: 0 (any free port) to 65535."""
    if not (text.isascii() and text.isdigit() and int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {text!r}")
    return int(text)


def _page_size(text: str) -> int:
    try:
        return check_limit(int(text))  # the tracker's own rule (InvalidArgument is a ValueError)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to {MAX_LIST_LIMIT}") from None
