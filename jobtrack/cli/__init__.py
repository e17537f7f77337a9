"""The ``jobtrack`` command: demo, serve, status, list, watch, abort, failures, reap, purge.

Exit statuses (also in ``docs/cli.md``):

* 0 - success (``watch``: the job completed with no failed item)
* 1 - ``watch``: the job completed with failed items
* 2 - bad command line (argparse)
* 3 - no such job, or it has expired (``JobExpired`` is a ``JobNotFound``)
* 4 - any other error: store unreachable, bad store URL, missing extra, bad argument
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

from ..errors import JobNotFound, JobtrackError
from .demo import DEMO_STOPPED
from .helpers import (
    EXIT_ERROR,
    EXIT_FAILED_ITEMS,
    EXIT_NOT_FOUND,
    EXIT_OK,
    CliError,
    default_store_url,
    printable,
    shown_store,
)
from .parser import build_parser

__all__ = [
    "DEMO_STOPPED",
    "EXIT_ERROR",
    "EXIT_FAILED_ITEMS",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "default_store_url",
    "main",
    "run",
]


def _on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        status: int = args.func(args)
    except JobNotFound as exc:
        where = printable(shown_store(args))  # (every command has --store)
        print(f"jobtrack: {printable(str(exc))} (store: {where})", file=sys.stderr)
        return EXIT_NOT_FOUND
    except CliError as exc:
        print(f"jobtrack: error: {printable(str(exc))}", file=sys.stderr)
        return exc.status
    except JobtrackError as exc:
        print(f"jobtrack: error: {printable(' '.join(str(exc).split()))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("jobtrack: stopped", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    return status


def run() -> NoReturn:
    """Entry point of the console script."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
