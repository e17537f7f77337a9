"""Live suite: many event streams and long-polls of one job on one server process.

For each store (memory, SQLite, Redis), one uvicorn process serves the
status routes over a store that counts its calls (``benchmarks.live_apps``);
the clients are raw asyncio streams in two processes of their own
(``benchmarks.live_clients``):

* idle: half event streams, half long-polls (``?wait=60``, ``If-None-Match``)
  of a job that does not change, held for a few seconds: the store calls the
  server made meanwhile, per second (the process's one watch of the job, not
  one per client);
* events: that many event streams of a job, then a writer in the server
  process records one item every *gap* ms until the job completes. For each
  client and update, the latency from the writer's ``record`` call to the
  receipt of the event carrying it (p50, p99, max); whether every client got
  every update and the completed document; the store calls per update.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from .common import ROOT, Row, serving
from .live_apps import BARE_JOB, NS, SSE_JOB
from .redis_suite import throwaway_redis

PROCESSES = 2  # client processes: 2 cores, and the server beside them
LATENCY_LIMIT_MS = 100.0
GAP_MS = 100.0  # between two updates: every client must see each


def _ask(port: int, path: str, method: str = "GET") -> object:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def _calls(port: int) -> collections.Counter[str]:
    counts = _ask(port, "/bench/calls")
    assert isinstance(counts, dict)
    return collections.Counter(counts)


def _clients(port: int, mode: str, count: int) -> list[subprocess.Popen[str]]:
    """PROCESSES client processes of *count* clients in all, once each says ``ready``."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.live_clients", str(port), mode, str(share)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for share in (count // PROCESSES + (i < count % PROCESSES) for i in range(PROCESSES))
    ]
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"live clients ({mode}) failed: exit {proc.wait()}")
    return procs


def _shown(calls: collections.Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(calls.items())) or "none"


def _idle(kind: str, port: int, clients: int, seconds: float) -> Row:
    procs = _clients(port, "idle", clients)
    try:
        time.sleep(0.5)  # let the server finish the requests it has read
        before = _calls(port)
        time.sleep(seconds)  # the span measured: nothing changes
        spent = _calls(port) - before
    finally:
        for proc in procs:
            proc.communicate(timeout=60)  # closes its stdin: it lets go of its clients
    per_s = sum(spent.values()) / seconds
    return Row(
        "live", f"{kind} idle {clients:,} clients: calls/s", per_s, 0,
        f"store calls/s while {clients // 2:,} event streams and {clients - clients // 2:,} "
        f"long-polls of one job wait {seconds:g} s",
        note=f"{_shown(spent)}", limit=2.0,
    )  # fmt: skip


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


Subscribers = Callable[[str], int]
"""How many subscribers the store's server counts on the channel of a job (by id)."""


def _follow(
    port: int,
    mode: str,
    job_id: str,
    clients: int,
    updates: int,
    gap_ms: float,
    subscribers: Subscribers | None = None,
) -> tuple[list[float], int, int, collections.Counter[str], int | None]:
    """Latencies (ms) of every client and update; clients with every update, with the last.

    Then the store calls made meanwhile, and the subscribers the store's server
    counts on the job's channel once every client follows it.
    """
    _ask(port, f"/bench/reset?job={job_id}", "POST")
    procs = _clients(port, mode, clients)
    before = _calls(port)
    subscribed = subscribers(job_id) if subscribers is not None else None
    commits = _ask(port, f"/bench/write?job={job_id}&n={updates}&gap={gap_ms:g}", "POST")
    assert isinstance(commits, list)
    received: list[list[list[float]]] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        received += json.loads(out)
    spent = _calls(port) - before
    latencies, whole = [], 0
    for events in received:
        seen = {int(processed): at for processed, at in events}
        latencies += [(seen[k] - commits[k - 1]) * 1000 for k in range(1, updates + 1) if k in seen]
        whole += all(k in seen for k in range(updates + 1))  # the first document too
    done = sum(1 for events in received if events and events[-1][0] == updates)
    return latencies, whole, done, spent, subscribed


def _figures(latencies: list[float]) -> tuple[float, float, float]:
    return (_percentile(latencies, 0.5), _percentile(latencies, 0.99), max(latencies))


def _events(
    kind: str,
    port: int,
    clients: int,
    updates: int,
    gap_ms: float,
    rounds: int,
    subscribers: Subscribers | None,
) -> list[Row]:
    """Bare and ours in turn, *rounds* times; the round of the lowest p99 of each is kept."""
    what = f"{updates} updates {gap_ms:g} ms apart, record() call to receipt"
    bare_runs, our_runs = [], []
    for _ in range(rounds):
        bare_runs.append(_follow(port, "bare", BARE_JOB, clients, updates, gap_ms))
        our_runs.append(_follow(port, "sse", SSE_JOB, clients, updates, gap_ms, subscribers))
    bare, bare_whole, *_ = min(bare_runs, key=lambda run: _figures(run[0])[1])
    ours, whole, done, spent, subscribed = min(our_runs, key=lambda run: _figures(run[0])[1])
    channel = "" if subscribed is None else f"; {subscribed} subscriber(s) of the job's channel"
    b50, b99, bmax = _figures(bare)
    p50, p99, worst = _figures(ours)
    worst99 = max(_figures(run[0])[1] for run in our_runs)
    got = f"{whole:,}/{clients:,} got all {updates} updates, {done:,}/{clients:,} the completed one"
    return [
        Row("live", f"{kind} {clients:,} streams: p99 ms", p99, 0, what,
            note=f"p50 {p50:.1f} ms, max {worst:.1f} ms; {got}; best of {rounds} "
                 f"(worst p99 {worst99:.1f} ms)", limit=LATENCY_LIMIT_MS),
        Row("live", f"{kind} {clients:,} bare streams: p99 ms", b99, 0,
            "bare ASGI event stream, one future wakes all (no store)",
            note=f"p50 {b50:.1f} ms, max {bmax:.1f} ms; {bare_whole:,}/{clients:,} got all"),
        Row("live", f"{kind} {clients:,} streams: calls/update", sum(spent.values()) / updates,
            0, "store calls of the server per update while they follow it",
            note=_shown(spent) + channel, limit=3.0),
    ]  # fmt: skip


def measure(
    kind: str,
    url: str,
    clients: int,
    updates: int,
    idle_s: float,
    rounds: int,
    subscribers: Subscribers | None = None,
) -> list[Row]:
    """The rows of one store: *clients* idle for *idle_s* s, then following *updates* updates."""
    with serving("live_apps", url, str(updates)) as port:
        return [
            _idle(kind, port, clients, idle_s),
            *_events(kind, port, clients, updates, GAP_MS, rounds, subscribers),
        ]


def redis_subscribers(url: str) -> Subscribers:
    """The subscribers Redis counts on a job's channel (shard channels and plain ones)."""
    import redis

    from jobtrack import RedisStore

    client = redis.Redis.from_url(url)
    job_key = RedisStore(url).commands.job_key

    def subscribers(job_id: str) -> int:
        channel, found = job_key(NS, job_id), 0
        for numsub in ("SHARDNUMSUB", "NUMSUB"):  # SSUBSCRIBE on Redis >= 7, else SUBSCRIBE
            reply: Any = client.execute_command("PUBSUB", numsub, channel)  # type: ignore[no-untyped-call]
            found += int(reply[1])
        return found

    return subscribers


def live_suite(quick: bool) -> list[Row]:
    """Idle clients and event streams of one job, over memory, SQLite and Redis."""
    sizes = (100, 5, 1.0, 1) if quick else (1000, 20, 5.0, 3)
    rows = measure("memory", "memory://", *sizes)
    with tempfile.TemporaryDirectory(prefix="jobtrack-bench-live-") as root:
        rows += measure("sqlite", f"sqlite://{root}/live.sqlite3", *sizes)
    with throwaway_redis() as url:
        rows += measure("redis", url, *sizes, redis_subscribers(url))
    return rows
