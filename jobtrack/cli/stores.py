"""Which store a command uses: ``--store``, ``JOBTRACK_STORE`` or the default file store."""

from __future__ import annotations

import argparse
import os
import shlex

from ..stores import FileStore, StoreURL, display_url
from ..tracker import JobTracker

__all__ = ["default_store_url", "open_tracker", "shown_store", "store_flag", "store_url"]


def default_store_url() -> str:
    """The store used when neither ``--store`` nor ``JOBTRACK_STORE`` names one.

    A file store in ``$XDG_STATE_HOME/jobtrack/jobs`` (by default
    ``~/.local/state/jobtrack/jobs``), so separate commands share their jobs.
    """
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return "file://" + os.path.abspath(os.path.join(state, "jobtrack", "jobs"))


def store_url(args: argparse.Namespace) -> str:
    """The store URL a command uses."""
    return args.store or os.environ.get("JOBTRACK_STORE") or default_store_url()


def open_tracker(args: argparse.Namespace, *, existing: bool = False) -> JobTracker:
    """The tracker over the chosen store.

    With *existing*, a file store named by ``--store`` or ``JOBTRACK_STORE``
    must exist already: commands that look at jobs never create a directory
    for a mistyped path (the default store is ours to create).
    """
    url = store_url(args)
    if existing and url != default_store_url():
        parsed = StoreURL.parse(url)
        if parsed.scheme == "file":
            return JobTracker(FileStore.from_url(parsed.with_option("create", "false")))
    return JobTracker(url)


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
