"""The benchmark runner: ``python -m benchmarks`` or ``python benchmarks/run.py``.

Every operation is measured against the bare baseline of its medium in the
same run, and the table shows the ratio (these machines are noisy: ratios
hold, absolute numbers do not).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
from collections.abc import Callable

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

from benchmarks.common import Row, format_table

SUITES: dict[str, Callable[[bool], list[Row]]] = {}
ALIASES = {"file": "sqlite"}  # file:DIR is an SQLite store since 0.3


def _register() -> None:
    from benchmarks.http_suite import http_suite
    from benchmarks.items import items_suite
    from benchmarks.listing import listing_suite
    from benchmarks.live_suite import live_suite
    from benchmarks.local import flat_suite, memory_suite, sqlite_suite
    from benchmarks.postgres_suite import postgres_suite
    from benchmarks.redis_suite import redis_suite

    SUITES.update(
        memory=memory_suite,
        sqlite=sqlite_suite,
        postgres=postgres_suite,
        flat=flat_suite,
        listing=listing_suite,
        redis=redis_suite,
        items=items_suite,
        http=http_suite,
        live=live_suite,
    )


def command_line(argv: list[str] | None) -> str:
    """The command that started this run, as typed (``python -m benchmarks`` or the script)."""
    args = argv if argv is not None else sys.argv[1:]
    script = sys.argv[0] if argv is None else ""
    if script and not script.endswith("__main__.py"):
        prog = f"python {os.path.relpath(script)}"
    else:
        prog = "python -m benchmarks"
    return shlex.join([*prog.split(), *args])


def main(argv: list[str] | None = None) -> int:
    """Run the chosen suites and print the table."""
    _register()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--only", default=",".join(SUITES), help=f"comma list of {', '.join(SUITES)} (file: sqlite)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    named = (name.strip() for name in args.only.split(","))
    chosen = list(dict.fromkeys(ALIASES.get(name, name) for name in named if name))
    unknown = [name for name in chosen if name not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s): {', '.join(unknown)}")
    print(f"jobtrack benchmarks, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print("command: " + command_line(argv))
    print()
    rows: list[Row] = []
    for name in chosen:
        rows.extend(SUITES[name](args.quick))
        print(f"[{name} done]", file=sys.stderr, flush=True)
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([{**row.__dict__, "ratio": row.ratio} for row in rows], fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
