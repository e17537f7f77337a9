"""The ``jobtrack`` command: demo, serve, status, list, watch, abort.

Exit statuses (also in ``docs/cli.md``):

* 0 - success (``watch``: the job completed with no failed item)
* 1 - ``watch``: the job completed with failed items
* 2 - bad command line (argparse)
* 3 - no such job
* 4 - any other error: store unreachable, bad store URL, missing extra, bad argument
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import random
import shlex
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any, NoReturn

from . import __version__
from .arguments import MAX_LIST_LIMIT, check_limit
from .errors import JobNotFound, JobtrackError
from .model import JobStatus
from .stores.urls import display_url
from .tracker import JobTracker

__all__ = [
    "EXIT_ERROR",
    "EXIT_FAILED_ITEMS",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "default_store_url",
    "main",
]

EXIT_OK = 0
EXIT_FAILED_ITEMS = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_ERROR = 4

DEFAULT_LIST_LIMIT = 20
DEMO_STOPPED = "demo stopped before every item was done"


class CliError(Exception):
    """An error to report as one line on stderr, with an exit status."""

    def __init__(self, message: str, status: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.status = status


def default_store_url() -> str:
    """The store used when neither ``--store`` nor ``JOBTRACK_STORE`` names one.

    A file store in ``$XDG_STATE_HOME/jobtrack/jobs`` (by default
    ``~/.local/state/jobtrack/jobs``), so separate commands share their jobs.
    """
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return "file://" + os.path.abspath(os.path.join(state, "jobtrack", "jobs"))


def _store_url(args: argparse.Namespace) -> str:
    return args.store or os.environ.get("JOBTRACK_STORE") or default_store_url()


def _tracker(args: argparse.Namespace, *, existing: bool = False) -> JobTracker:
    """The tracker over the chosen store.

    With *existing*, a file store named by ``--store`` or ``JOBTRACK_STORE``
    must exist already: commands that look at jobs never create a directory
    for a mistyped path (the default store is ours to create).
    """
    url = _store_url(args)
    if existing and url != default_store_url() and url.partition(":")[0].lower() == "file":
        url += ("&" if "?" in url else "?") + "create=false"
    return JobTracker(url)


def _shown_store(args: argparse.Namespace) -> str:
    """The store URL to print: absolute for a file store, password masked."""
    return display_url(_store_url(args))


def _store_flag(args: argparse.Namespace) -> str:
    """`` --store URL`` for a printed command, unless the store is the default one.

    A store chosen with ``JOBTRACK_STORE`` is named too: the terminal the
    command is pasted into may not have that variable.
    """
    url = _store_url(args)
    return "" if url == default_store_url() else f" --store {shlex.quote(display_url(url))}"


def _need(module: str, command: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise CliError(
            f"'jobtrack {command}' needs {module}, which is not installed: "
            "pip install 'jobtrack[server]'"
        ) from None


def _summary(job: JobStatus) -> str:
    lines = [
        f"job {job.job_id} in namespace {job.namespace_name}: {job.status.value}",
        f"  items      {job.total} total, {job.processed} processed, "
        f"{job.successful} successful, {job.failed} failed ({job.percent:.1f}% done)",
        f"  started    {job.to_dict()['started_at']}",
        f"  updated    {job.to_dict()['updated_at']}",
    ]
    if job.finished_at is not None:
        lines.append(f"  finished   {job.to_dict()['finished_at']}")
    if job.last_error is not None:
        lines.append(f"  last error {job.last_error}")
    return "\n".join(lines)


# -- commands ---------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    """Print one job's status."""
    with _tracker(args, existing=True) as tracker:
        job = tracker.get(args.namespace, args.job_id)
    print(json.dumps(job.to_dict(), indent=2) if args.json else _summary(job))
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    """Print a page of a namespace's jobs, newest first."""
    with _tracker(args, existing=True) as tracker:
        page = tracker.list(args.namespace, limit=args.limit, cursor=args.cursor)
    if args.json:
        doc = {"items": [job.to_dict() for job in page.items], "next_cursor": page.next_cursor}
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    if not page.items:
        print(f"no jobs in namespace {args.namespace}")
    for job in page.items:
        started = job.to_dict()["started_at"]
        print(
            f"{job.job_id}  {job.status.value:<9}  {job.successful + job.failed:>6}/{job.total:<6}"
            f"  failed {job.failed:<5}  started {started}"
        )
    if page.next_cursor:
        limit = f" --limit {args.limit}" if args.limit != DEFAULT_LIST_LIMIT else ""
        print(
            f"more: {_program()} list {args.namespace}{_store_flag(args)}{limit}"
            f" --cursor {page.next_cursor}"
        )
    return EXIT_OK


def cmd_abort(args: argparse.Namespace) -> int:
    """Fail every remaining item of a job."""
    with _tracker(args, existing=True) as tracker:
        job = tracker.abort(args.namespace, args.job_id, args.error)
    print(_summary(job))
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    """Show a live progress bar until the job completes."""
    tqdm = _need("tqdm", "watch").tqdm
    if args.interval <= 0:
        raise CliError("--interval must be > 0")
    with _tracker(args, existing=True) as tracker:
        job = tracker.get(args.namespace, args.job_id)
        if job.is_finished:  # nothing to watch: a bar would show a meaningless rate
            print(_summary(job))
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
            while True:
                bar.n = job.successful + job.failed
                bar.set_postfix(
                    processed=job.processed, ok=job.successful, failed=job.failed, refresh=False
                )
                bar.refresh()
                if job.is_finished:
                    break
                time.sleep(args.interval)
                job = tracker.get(args.namespace, args.job_id)
    print(_summary(job))
    return EXIT_FAILED_ITEMS if job.failed else EXIT_OK


def _bind(host: str, port: int) -> socket.socket:
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


def _server(app: Any, log_level: str) -> Any:
    uvicorn = _need("uvicorn", "serve")
    config = uvicorn.Config(app, log_level=log_level, lifespan="on", access_log=False)
    return uvicorn.Server(config)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the status route under uvicorn until SIGINT or SIGTERM."""
    from .asgi import status_app  # noqa: PLC0415

    server = _server(status_app(_tracker(args)), args.log_level)
    sock = _bind(args.host, args.port)
    port = sock.getsockname()[1]
    try:
        with contextlib.suppress(KeyboardInterrupt):  # a signal before uvicorn took over
            base = f"http://{_url_host(args.host)}:{port}"
            print(f"jobtrack serve: {base} (store: {_shown_store(args)})")
            sys.stdout.flush()
            _run_until_signal(server, sock)
    finally:
        sock.close()
    print("jobtrack serve: stopped")
    return EXIT_OK


def _run_until_signal(server: Any, sock: socket.socket) -> None:
    """Run uvicorn; SIGINT and SIGTERM end it after a graceful shutdown."""
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the signal it handled
        server.run(sockets=[sock])


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def cmd_demo(args: argparse.Namespace) -> int:
    """Serve the route and run a simulated ingestion pipeline into it."""
    from .asgi import status_app  # noqa: PLC0415

    if args.items < 1 or args.workers < 1 or not 0 <= args.failure_rate <= 1:
        raise CliError("--items and --workers must be >= 1, --failure-rate within 0..1")
    if args.item_seconds < 0:
        raise CliError("--item-seconds must be >= 0")
    tracker = _tracker(args)
    server = _server(status_app(tracker), "warning")
    sock = _bind(args.host, args.port)
    port = sock.getsockname()[1]
    job = tracker.start(args.namespace, args.items)
    stop = threading.Event()
    pipeline = _Pipeline(tracker, job, args, stop)
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C at any moment stops it cleanly
            _demo_banner(args, job, port)
            pipeline.start()

            def finished() -> None:
                pipeline.join()
                if args.exit_when_done:
                    server.should_exit = True

            threading.Thread(target=finished, name="demo-done", daemon=True).start()
            _run_until_signal(server, sock)
    finally:
        stop.set()
        pipeline.join()
        sock.close()
    final = tracker.get(args.namespace, job.job_id)
    if not final.is_finished:  # stopped early: say so in the job, not leave it running forever
        final = tracker.abort(args.namespace, job.job_id, DEMO_STOPPED)
        print(f"jobtrack demo: stopped early; job {job.job_id} aborted: {DEMO_STOPPED}")
    print(json.dumps(final.to_dict(), indent=2))
    if pipeline.errors:
        raise CliError(f"the demo pipeline failed: {pipeline.errors[0]}")
    return EXIT_OK


def _demo_banner(args: argparse.Namespace, job: JobStatus, port: int) -> None:
    base = f"http://{_url_host(args.host)}:{port}"
    print(f"jobtrack demo: serving the status route on {base}")
    print(f"  store: {_shown_store(args)}")
    print(
        f"  job {job.job_id} in namespace {args.namespace}: {args.items} items, "
        f"{args.workers} workers, {args.failure_rate:.0%} failing"
    )
    print("watch the document go from running to completed:")
    print(f"  curl -s {base}/namespaces/{args.namespace}/upload-jobs/{job.job_id}")
    print(f"  {_program()} watch {args.namespace} {job.job_id}" + _store_flag(args))
    print("Ctrl-C stops it." if not args.exit_when_done else "It exits when the job completes.")
    sys.stdout.flush()


def _program() -> str:
    """How to call this command again: ``jobtrack`` when that is on the PATH."""
    here = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(here) != "jobtrack":  # python -m jobtrack
        return f"{sys.executable} -m jobtrack"
    found = shutil.which("jobtrack")
    if found and os.path.exists(here) and os.path.samefile(found, here):
        return "jobtrack"
    return here


class _Pipeline:
    """A simulated ingestion pipeline: workers take items and record each one."""

    _REASONS = (
        "embedding service timed out",
        "document is empty",
        "unsupported file type 'application/x-msdownload'",
        "vector dimension mismatch",
    )

    def __init__(
        self, tracker: JobTracker, job: JobStatus, args: argparse.Namespace, stop: threading.Event
    ) -> None:
        self.tracker, self.job, self.args, self.stop = tracker, job, args, stop
        self.items: queue.SimpleQueue[int] = queue.SimpleQueue()
        for i in range(args.items):
            self.items.put(i)
        self.errors: list[BaseException] = []
        self.rng = random.Random(args.seed)
        self.threads = [
            threading.Thread(target=self._work, name=f"demo-worker-{n}", daemon=True)
            for n in range(args.workers)
        ]

    def start(self) -> None:
        """Start the worker threads."""
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        """Wait for the worker threads (those started)."""
        for thread in self.threads:
            if thread.is_alive():
                thread.join()

    def _work(self) -> None:
        ns, jid = self.job.namespace_name, self.job.job_id
        try:
            while not self.stop.is_set():
                try:
                    item = self.items.get_nowait()
                except queue.Empty:
                    return
                if self.stop.wait(self.args.item_seconds * (0.5 + self.rng.random())):
                    return
                if self.rng.random() < self.args.failure_rate:
                    reason = self.rng.choice(self._REASONS)
                    self.tracker.record(
                        ns, jid, processed=1, failed=1, error=f"item {item}: {reason}"
                    )
                else:
                    self.tracker.record(ns, jid, processed=1, successful=1)
        except BaseException as exc:
            self.errors.append(exc)
            self.stop.set()


# -- the parser ---------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
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


def _on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        status: int = args.func(args)
    except JobNotFound as exc:
        print(f"jobtrack: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except CliError as exc:
        print(f"jobtrack: error: {exc}", file=sys.stderr)
        return exc.status
    except JobtrackError as exc:
        print(f"jobtrack: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("jobtrack: stopped", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    return status


def _one_line(text: str) -> str:
    return " ".join(text.split())


def run() -> NoReturn:
    """Entry point of the console script."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
