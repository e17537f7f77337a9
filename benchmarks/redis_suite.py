"""Redis suite: RedisStore against raw redis-py on the same throwaway server."""

from __future__ import annotations

import contextlib
import itertools
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

from jobtrack import MAX_COUNT, JobTracker, RedisStore, Update
from jobtrack.rules import Delta

from .common import Row, free_port, paired, wait_for_port


@contextlib.contextmanager
def throwaway_redis() -> Iterator[str]:
    """A redis-server of our own on a free loopback port; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not on the PATH")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="jobtrack-bench-redis-") as workdir:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for_port(port, lambda: proc.poll() is None)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait()


def redis_suite(quick: bool, url: str | None = None) -> list[Row]:
    """record vs HINCRBY, get vs HGETALL, record_many vs pipelined EVALSHA, memory."""
    if url is None:
        with throwaway_redis() as own:
            return _measure(own, quick)
    return _measure(url, quick)


def _measure(url: str, quick: bool) -> list[Row]:
    import redis

    n, rounds = (1_000, 3) if quick else (5_000, 5)
    store = RedisStore(url, prefix="bench")
    tracker = JobTracker(store)
    raw = redis.Redis.from_url(url, decode_responses=True)
    job = tracker.start("bench", MAX_COUNT)
    jid = job.job_id
    key = store.commands.job_key("bench", jid)
    raw.hset("raw:job", mapping={"t": 10, "p": 0, "s": 0, "f": 0, "st": 1, "up": 1})
    rows = []

    ours, base = paired(
        lambda: tracker.record("bench", jid, processed=1),
        lambda: raw.hincrby("raw:job", "p", 1),
        n,
        rounds,
    )
    rows.append(Row("redis", "record", ours, base, "raw HINCRBY", 0.9))
    items = (f"s3://bucket/doc-{i:025d}" for i in itertools.count())  # 40 characters
    ours, base = paired(
        lambda: tracker.record("bench", jid, processed=1, successful=1, item=next(items)),
        lambda: raw.hincrby("raw:job", "p", 1),
        n,
        rounds,
    )
    rows.append(Row("redis", "record, new item each", ours, base, "raw HINCRBY", 0.85))
    ours, base = paired(lambda: tracker.get("bench", jid), lambda: raw.hgetall(key), n, rounds)
    rows.append(Row("redis", "get", ours, base, "raw HGETALL", 0.9))

    batch = 100
    updates = [Update("bench", jid, processed=1)] * batch
    from jobtrack.clock import utc_now

    def raw_pipeline() -> None:
        pipe = raw.pipeline(transaction=False)
        args = store.commands.update("bench", jid, Delta(1), utc_now()).args  # EVALSHA ...
        for _ in range(batch):
            pipe.execute_command(*args)  # type: ignore[no-untyped-call]
        pipe.execute()

    ours, base = paired(
        lambda: tracker.record_many(updates), raw_pipeline, max(20, n // 50), rounds
    )
    rows.append(
        Row("redis", f"record_many ({batch} updates)", ours * batch, base * batch,
            f"raw pipelined EVALSHA x{batch}", 0.7, note="updates/s")
    )  # fmt: skip

    # memory per job: a typical job (part done, one error), hash + its index entry
    jobs = 1_000
    for i in range(jobs):
        tracker.start("mem", 10_000, job_id=f"job-{i:032x}")
        tracker.record("mem", f"job-{i:032x}", processed=5, successful=4, failed=1,
                       error="embedding service timed out")  # fmt: skip
    per_hash = sum(store.memory_usage("mem", f"job-{i:032x}") for i in range(jobs)) / jobs
    # a running job is in three indexes: every job, the running ones, the stalled index
    index = (
        sum(
            raw.memory_usage(store.commands.index_key("mem", status), samples=0) or 0
            for status in (None, "running", "stalled")
        )
        / jobs
    )
    counts = sum(store.memory_usage("mem", f"job-{i:032x}", "errors") for i in range(jobs)) / jobs
    rows.append(
        Row("redis", "memory per job (bytes)", per_hash, 0, "MEMORY USAGE of the job's hash",
            note=f"+ {index:.0f} B in 3 indexes = {per_hash + index:.0f} B; target <= 300 "
                 f"(hash); + {counts:.0f} B of error counts for a job with errors")
    )  # fmt: skip
    raw.close()
    tracker.close()
    return rows
