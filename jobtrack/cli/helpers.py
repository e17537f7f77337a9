"""Helpers of the commands: exit statuses, errors, summaries, and which store to use.

The store comes from ``--store``, else ``JOBTRACK_STORE``, else the default
file store.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import shutil
import sys
from typing import Any

from ..clock import format_timestamp
from ..model import JobStatus, Progress
from ..stores import display_url, open_store
from ..tracker import JobTracker

EXIT_OK = 0
EXIT_FAILED_ITEMS = 1
EXIT_NOT_FOUND = 3
EXIT_ERROR = 4


class CliError(Exception):
    """An error to report as one line on stderr, with an exit status."""

    def __init__(self, message: str, status: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.status = status


def need(module: str, command: str) -> Any:
    """Import *module* for *command*, or fail with the extra to install."""
    try:
        return __import__(module)
    except ImportError:
        raise CliError(
            f"'jobtrack {command}' needs {module}, which is not installed: "
            "pip install 'jobtrack[server]'"
        ) from None


def summary(job: JobStatus, progress: Progress | None = None) -> str:
    """A few lines about a job, for people; with its *progress*, its rate, ETA and stall."""
    stalled = progress is not None and progress.stalled
    state = job.status.value + (" (STALLED: no update for longer than --stall-after)" * stalled)
    if job.is_finished and job.failed:  # aborted and reaped jobs too: say what it means
        state += f" with {job.failed} failed item(s)"
    lines = [
        f"job {job.job_id} in namespace {job.namespace_name}: {state}",
        f"  items      {job.total} total, {job.processed} processed, "
        f"{job.successful} successful, {job.failed} failed ({job.percent:.1f}% done)",
        f"  started    {job.to_dict()['started_at']}",
        f"  updated    {job.to_dict()['updated_at']}",
    ]
    if progress is not None:
        eta = (
            ""
            if progress.eta_at is None
            else f", done at about {format_timestamp(progress.eta_at)}"
        )
        lines.append(f"  rate       {progress.rate_per_s:.3g} items/s{eta}")
    if job.finished_at is not None:
        lines.append(f"  finished   {job.to_dict()['finished_at']}")
    if job.expires_at is not None:
        lines.append(f"  expires    {format_timestamp(job.expires_at)}")
    if job.last_error is not None:
        lines.append(f"  last error {printable(job.last_error)}")
    return "\n".join(lines)


def printable(text: str) -> str:
    """*text* safe for a terminal: control characters (ESC, CR, LF...) shown escaped.

    Anything a store holds may have been written by anyone: it must never
    move the cursor, retitle the window or fake an output line.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def program() -> str:
    """How to call this command again: ``jobtrack`` when that is on the PATH."""
    here = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(here) != "jobtrack":  # python -m jobtrack
        return f"{sys.executable} -m jobtrack"
    found = shutil.which("jobtrack")
    if found and os.path.exists(here) and os.path.samefile(found, here):
        return "jobtrack"
    return here


def default_store_url() -> str:
    """The store used when neither ``--store`` nor ``JOBTRACK_STORE`` names one.

    The SQLite database of ``file:`` in ``$XDG_STATE_HOME/jobtrack/jobs`` (by
    default ``~/.local/state/jobtrack/jobs``), so separate commands share their
    jobs; the jobs jobtrack 0.1/0.2 kept there as files are imported once.
    """
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return "file://" + os.path.abspath(os.path.join(state, "jobtrack", "jobs"))


def store_url(args: argparse.Namespace) -> str:
    """The store URL a command uses."""
    if args.store is not None:  # given, even empty: never fall back silently
        return str(args.store)
    return os.environ.get("JOBTRACK_STORE") or default_store_url()


def open_tracker(args: argparse.Namespace, *, existing: bool = False) -> JobTracker:
    """The tracker over the chosen store.

    With *existing*, a local store named by ``--store`` or ``JOBTRACK_STORE``
    must exist already: commands that look at jobs never create a database
    for a mistyped path (the default store is ours to create). The tracker
    takes the command's ``--stall-after``, ``--retain`` and
    ``--remember-expired``, where it has them.
    """
    url = store_url(args)
    if not url:
        raise CliError("--store needs a store URL (see --help)")
    seconds = getattr(args, "stall_after", None)
    options: dict[str, Any] = {
        "stall_after": None if seconds is None else datetime.timedelta(seconds=seconds)
    }
    for name in ("retain", "remember_expired"):  # given: else the tracker's defaults
        if hasattr(args, name):
            options[name] = getattr(args, name)
    if existing and url != default_store_url():  # never make a store for a mistyped path
        return JobTracker(open_store(url, create=False), **options)
    return JobTracker(url, **options)


def age(seconds: float) -> str:
    """A short age for people: ``42s``, ``5m``, ``3h``, ``2d``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(0, int(seconds))}s"


def shown_store(args: argparse.Namespace) -> str:
    """The store URL to print: absolute for a file store, password masked."""
    return display_url(store_url(args))


def store_flag(args: argparse.Namespace) -> str:
    """`` --store URL`` for a printed command, unless the store is the default one.

    A store chosen with ``JOBTRACK_STORE`` is named too: the terminal the
    command is pasted into may not have that variable.
    """
    url = store_url(args)
    return "" if url == default_store_url() else f" --store {shlex.quote(display_url(url))}"
