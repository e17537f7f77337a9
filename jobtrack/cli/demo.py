"""``jobtrack demo``: serve the route and run a simulated ingestion pipeline into it."""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import random
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from ..model import JobStatus
from ..stores import features_of
from ..tracker import JobTracker
from .helpers import EXIT_OK, CliError, open_tracker, program, shown_store, store_flag
from .serve import bind, make_server, run_until_signal, url_host

__all__ = ["DEMO_STOPPED", "cmd_demo"]

DEMO_STOPPED = "demo stopped before every item was done"


def cmd_demo(args: argparse.Namespace) -> int:
    """Serve the route and run a simulated ingestion pipeline into it."""
    from ..asgi import status_app  # noqa: PLC0415

    if args.items < 1 or args.workers < 1 or not 0 <= args.failure_rate <= 1:
        raise CliError("--items and --workers must be >= 1, --failure-rate within 0..1")
    if args.item_seconds < 0:
        raise CliError("--item-seconds must be >= 0")
    tracker = open_tracker(args)
    server = make_server(status_app(tracker), "warning", "demo")
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    job = tracker.start(args.namespace, args.items)
    stop = threading.Event()
    pipeline = _Pipeline(tracker, job, args, stop)
    with _stopped_by_signals(stop, server):  # Ctrl-C at any moment stops it cleanly
        try:
            _demo_banner(args, job, port, features_of(tracker.store).processes)
            pipeline.start()

            def finished() -> None:
                pipeline.join()
                if not stop.is_set():
                    done = tracker.get(args.namespace, job.job_id)
                    print(
                        f"jobtrack demo: job {job.job_id} {done.status.value}: "
                        f"{done.successful} successful, {done.failed} failed"
                        + ("" if args.exit_when_done else "; Ctrl-C stops the server"),
                        flush=True,
                    )
                if args.exit_when_done:
                    server.should_exit = True

            threading.Thread(target=finished, name="demo-done", daemon=True).start()
            if not stop.is_set():
                run_until_signal(server, sock)  # (uvicorn takes the signals while it runs)
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


@contextlib.contextmanager
def _stopped_by_signals(stop: threading.Event, server: Any) -> Iterator[None]:
    """SIGINT and SIGTERM set *stop* and end *server*, instead of raising anywhere.

    A ``KeyboardInterrupt`` raised at a random point of the main thread (inside
    ``Thread.start``, say) can leave a lock of ``threading`` held and hang the
    exit; a flag cannot.
    """

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        server.should_exit = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _demo_banner(args: argparse.Namespace, job: JobStatus, port: int, shared: bool) -> None:
    base = f"http://{url_host(args.host)}:{port}"
    print(f"jobtrack demo: serving the status route on {base}")
    print(f"  store: {shown_store(args)}")
    print(
        f"  job {job.job_id} in namespace {args.namespace}: {args.items} items, "
        f"{args.workers} workers, {args.failure_rate:.0%} failing"
    )
    print("watch the document go from running to completed:")
    print(f"  curl -s {base}/namespaces/{args.namespace}/upload-jobs/{job.job_id}")
    print(f"or open {base}/ui/#ns={args.namespace}&job={job.job_id} in a browser")
    if shared:  # another process can open the store: a watch from another terminal works
        print(f"  {program()} watch {args.namespace} {job.job_id}" + store_flag(args))
    print("Ctrl-C stops it." if not args.exit_when_done else "It exits when the job completes.")
    sys.stdout.flush()


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
