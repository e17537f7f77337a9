"""Timing helpers shared by the benchmark suites.

Each operation is measured against the bare baseline of its medium in the same
run: the two are timed alternately, several rounds, and the best round of
each is kept, so that noise from a busy machine hits both alike.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass
class Row:
    """One line of the results table."""

    suite: str
    operation: str
    ours: float  # operations per second
    baseline: float  # operations per second of the bare baseline (0: none)
    baseline_name: str
    target: float | None = None  # minimum ours/baseline ratio
    note: str = ""
    limit: float | None = None  # maximum of ours itself (a latency, a count)

    @property
    def ratio(self) -> float | None:
        """ours / baseline throughput."""
        return self.ours / self.baseline if self.baseline else None

    @property
    def verdict(self) -> str:
        """ "ok" or "MISS" against the target (or the limit), or "" without one."""
        if self.limit is not None:
            return "ok" if self.ours <= self.limit else "MISS"
        if self.target is None or self.ratio is None:
            return ""
        return "ok" if self.ratio >= self.target else "MISS"


def skipped(suite: str, operation: str, why: str) -> Row:
    """A row for an operation that could not be measured here, saying why (also on stderr)."""
    print(f"[{suite}] {operation}: skipped: {why}", file=sys.stderr, flush=True)
    return Row(suite, operation, 0.0, 0.0, f"skipped: {why}")


def rate(fn: Callable[[], object], n: int) -> float:
    """Operations per second of *n* calls of *fn* (one round)."""
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def paired(
    ours: Callable[[], object],
    baseline: Callable[[], object],
    n: int,
    rounds: int,
    block: int = 25,
) -> tuple[float, float]:
    """Throughput of *ours* and *baseline*, interleaved in small blocks.

    Each round alternates blocks of *block* calls of one and the other, so a
    slow spell of the machine hits both alike; the best round of each is kept.
    """
    rate(ours, max(1, n // 10))  # warm up
    rate(baseline, max(1, n // 10))
    clock = time.perf_counter
    best_ours = best_base = 0.0
    blocks = max(1, n // block)
    for _ in range(rounds):
        spent_ours = spent_base = 0.0
        for _ in range(blocks):
            start = clock()
            for _ in range(block):
                ours()
            middle = clock()
            for _ in range(block):
                baseline()
            spent_ours += middle - start
            spent_base += clock() - middle
        best_ours = max(best_ours, blocks * block / spent_ours)
        best_base = max(best_base, blocks * block / spent_base)
    return best_ours, best_base


def format_table(rows: list[Row]) -> str:
    """The results as a fixed-width table."""
    header = (
        f"{'suite':<8} {'operation':<34} {'ours/s':>11} {'baseline/s':>11} "
        f"{'ratio':>7} {'target':>7}  {'':4} baseline / note"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        target = f">={row.target:.2f}" if row.target is not None else ""
        if row.limit is not None:
            target = f"<={row.limit:g}"
        base = f"{row.baseline:,.0f}" if row.baseline else "-"
        ours = f"{row.ours:,.0f}" if row.ours else "-"
        if row.limit is not None:  # a latency or a count: small numbers matter
            ours = f"{row.ours:,.1f}"
        tail = row.baseline_name + (f"; {row.note}" if row.note else "")
        lines.append(
            f"{row.suite:<8} {row.operation:<34} {ours:>11} {base:>11} "
            f"{ratio:>7} {target:>7}  {row.verdict:4} {tail}"
        )
    return "\n".join(lines)


def wait_for_port(port: int, alive: Callable[[], bool], seconds: float = 30) -> None:
    """Wait until something accepts connections on 127.0.0.1:*port*.

    *alive* tells whether the process that should listen there still runs.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline or not alive():
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.02)  # a server process starting up: not test state


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The project's directory: the benchmarks' processes run there."""


def free_port() -> int:
    """A free loopback port (never the developer's 6379, which is taken)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(module: str, *args: str) -> Iterator[int]:
    """Run ``python -m benchmarks.<module> PORT *args`` (an app under uvicorn) in a process
    of its own; yield its port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", f"benchmarks.{module}", str(port), *args], cwd=ROOT
    )
    try:
        wait_for_port(port, lambda: proc.poll() is None)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
