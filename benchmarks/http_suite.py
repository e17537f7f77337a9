"""HTTP suite: the status route under uvicorn against a bare app and a Starlette route.

Each app runs in its own uvicorn process; the load comes from another process
(``benchmarks.load``). The apps are loaded in turn, several rounds, best kept.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile

from jobtrack import JobTracker

from .common import ROOT, Row, serving
from .redis_suite import throwaway_redis

JOB = "job-0123456789abcdef0123456789abcdef"
PATH = f"/namespaces/bench/upload-jobs/{JOB}"


def _served(kind: str, store_url: str) -> contextlib.AbstractContextManager[int]:
    """The app of *kind* (:mod:`benchmarks.http_apps`) over *store_url*, served: its port."""
    return serving("http_apps", kind, store_url, JOB)


def load(port: int, seconds: float, connections: int = 16) -> float:
    """Requests/s that a separate load process gets from *port*."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.load", str(port), PATH, str(seconds), str(connections)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


def _best(ports: dict[str, int], seconds: float, rounds: int) -> dict[str, float]:
    best = dict.fromkeys(ports, 0.0)
    for port in ports.values():
        load(port, 0.5)  # warm up
    for _ in range(rounds):
        for kind, port in ports.items():
            best[kind] = max(best[kind], load(port, seconds))
    return best


def http_suite(quick: bool) -> list[Row]:
    """The route on memory vs bare and Starlette; then on SQLite and Redis vs their raw reads."""
    seconds, rounds = (1.0, 2) if quick else (1.5, 6)  # short turns: more chances at a calm spell
    rows = []
    with contextlib.ExitStack() as stack:
        ports = {
            kind: stack.enter_context(_served(kind, "memory://"))
            for kind in ("jobtrack", "bare", "starlette")
        }
        best = _best(ports, seconds, rounds)
    rows.append(Row("http", "route, memory store", best["jobtrack"], best["bare"],
                    "bare ASGI app, constant body", 0.85))  # fmt: skip
    rows.append(Row("http", "route, memory store", best["jobtrack"], best["starlette"],
                    "hand-written Starlette route", 1.1))  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="jobtrack-bench-http-") as root,
        throwaway_redis() as redis_url,
    ):
        sqlite_url = f"sqlite://{root}/http.sqlite3"
        JobTracker(sqlite_url).start("bench", 1000, job_id=JOB)
        JobTracker(redis_url).start("bench", 1000, job_id=JOB)
        with contextlib.ExitStack() as stack:
            ports = {
                "sqlite": stack.enter_context(_served("jobtrack", sqlite_url)),
                "select": stack.enter_context(_served("select", sqlite_url)),
                "redis": stack.enter_context(_served("jobtrack", redis_url)),
                "hgetall": stack.enter_context(_served("hgetall", redis_url)),
                "timed": stack.enter_context(_served("hgetall-timeout", redis_url)),
                "bare": stack.enter_context(_served("bare", "memory://")),
            }
            best = _best(ports, seconds, rounds)
    rows.append(Row("http", "route, sqlite store", best["sqlite"], best["select"],
                    "bare ASGI app, one raw primary-key SELECT in a worker thread, "
                    "same pragmas", 0.85))  # fmt: skip
    rows.append(Row("http", "route, redis store", best["redis"], best["hgetall"],
                    "bare ASGI app, one raw HGETALL, a pool of 32", 0.85))  # fmt: skip
    rows.append(Row("http", "route, redis store", best["redis"], best["timed"],
                    "the same with the store's socket timeouts (5 s)"))  # fmt: skip
    rows.append(Row("http", "route, sqlite store", best["sqlite"], best["bare"],
                    "bare ASGI app, constant body"))  # fmt: skip
    rows.append(Row("http", "route, redis store", best["redis"], best["bare"],
                    "bare ASGI app, constant body"))  # fmt: skip
    return rows
