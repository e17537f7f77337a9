"""The commands that look at and change jobs: status, list, watch, abort."""

from __future__ import annotations

import argparse
import json
import sys
import time

from .common import EXIT_FAILED_ITEMS, EXIT_OK, CliError, need, program, summary
from .stores import open_tracker, store_flag

__all__ = ["DEFAULT_LIST_LIMIT", "cmd_abort", "cmd_list", "cmd_status", "cmd_watch"]

DEFAULT_LIST_LIMIT = 20


def cmd_status(args: argparse.Namespace) -> int:
    """Print one job's status."""
    with open_tracker(args, existing=True) as tracker:
        job = tracker.get(args.namespace, args.job_id)
    print(json.dumps(job.to_dict(), indent=2) if args.json else summary(job))
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    """Print a page of a namespace's jobs, newest first."""
    with open_tracker(args, existing=True) as tracker:
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
            f"more: {program()} list {args.namespace}{store_flag(args)}{limit}"
            f" --cursor {page.next_cursor}"
        )
    return EXIT_OK


def cmd_abort(args: argparse.Namespace) -> int:
    """Fail every remaining item of a job."""
    with open_tracker(args, existing=True) as tracker:
        job = tracker.abort(args.namespace, args.job_id, args.error)
    print(summary(job))
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    """Show a live progress bar until the job completes."""
    tqdm = need("tqdm", "watch").tqdm
    if args.interval <= 0:
        raise CliError("--interval must be > 0")
    with open_tracker(args, existing=True) as tracker:
        job = tracker.get(args.namespace, args.job_id)
        if job.is_finished:  # nothing to watch: a bar would show a meaningless rate
            print(summary(job))
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
    print(summary(job))
    return EXIT_FAILED_ITEMS if job.failed else EXIT_OK
