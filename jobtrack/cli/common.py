"""Helpers shared by the commands: exit statuses, the one-line error, job summaries."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

from ..model import JobStatus

__all__ = [
    "EXIT_ERROR",
    "EXIT_FAILED_ITEMS",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "need",
    "program",
    "summary",
]

EXIT_OK = 0
EXIT_FAILED_ITEMS = 1
EXIT_USAGE = 2
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


def summary(job: JobStatus) -> str:
    """A few lines about a job, for people."""
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


def program() -> str:
    """How to call this command again: ``jobtrack`` when that is on the PATH."""
    here = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(here) != "jobtrack":  # python -m jobtrack
        return f"{sys.executable} -m jobtrack"
    found = shutil.which("jobtrack")
    if found and os.path.exists(here) and os.path.samefile(found, here):
        return "jobtrack"
    return here
