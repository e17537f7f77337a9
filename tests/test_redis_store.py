"""RedisStore specifics, on real throwaway servers: keys, cluster slots, faults, URLs."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from pytest_redis import factories

from jobtrack import (
    AsyncJobTracker,
    ConfigurationError,
    InvalidName,
    InvalidUpdate,
    JobFinished,
    JobNotFound,
    JobTracker,
    JobtrackWarning,
    RedisStore,
    StoreCorrupt,
    StoreUnavailable,
    open_store,
)
from jobtrack.clock import to_ms
from jobtrack.rules import add_rate
from jobtrack.stores.redis.client import UNBOUNDED
from jobtrack.stores.redis.commands import SCRIPTS, job_from_hash, job_from_update_reply
from jobtrack.testing.reference import ManualClock
from tests import workers
from tests.helpers import rate_waits_a_second
from tests.redis_fixtures import Cluster, redis_url

pytestmark = pytest.mark.redis

fault_server = factories.redis_proc(port=None, save="3600 1")  # type: ignore[arg-type]
"""A server of its own for the fault tests, which stop and restart it."""


@pytest.fixture
def store(redis_server: Any, redis_prefix: str) -> Iterator[RedisStore]:
    s = RedisStore(redis_url(redis_server), prefix=redis_prefix, timeout=5)
    yield s
    s.close()


@pytest.fixture(params=["redis", pytest.param("cluster", marks=pytest.mark.cluster)])
def either(request: pytest.FixtureRequest) -> RedisStore:
    """A store on the single server, then on the cluster (each test's own prefix)."""
    kind = "redis_store_factory" if request.param == "redis" else "redis_cluster_store_factory"
    store: RedisStore = request.getfixturevalue(kind)()
    return store


def _key(store: RedisStore, namespace: str, name: str) -> str:
    """A key of the layout in docs/redis.md, spelled out here rather than asked of the store."""
    return f"{store.prefix}:{{{namespace}}}:{name}"


def _ours(store: RedisStore, namespace: str = "*") -> list[str]:
    """Every key of the store's prefix (of one namespace, or of all), on every primary."""
    match = f"{store.prefix}:*" if namespace == "*" else f"{store.prefix}:{{{namespace}}}:*"
    return sorted(store.client.scan_iter(match=match, count=1000))


def _server_of(store: RedisStore, key: str) -> redis.Redis:
    """A plain client of the server holding *key* (its primary, on a cluster)."""
    if not store.cluster:
        return store.client  # type: ignore[no-any-return]
    node = store.client.get_node_from_key(key)
    return redis.Redis(node.host, node.port, decode_responses=True)


def test_key_layout(store: RedisStore) -> None:
    clock = ManualClock()
    tracker = JobTracker(store, clock=clock)
    job = tracker.start("docs", 3, job_id="j1")
    clock.advance(milliseconds=1500)  # into another second: the rate moves
    tracker.record("docs", "j1", processed=1, failed=1, error="bad")
    p = store.prefix
    keys = sorted(store.client.scan_iter(match=f"{p}:*"))
    assert keys == [f"{p}:{{:namespaces}}:names"] + [  # the list of namespaces (its own slot)
        f"{p}:{{docs}}:{name}"
        for name in ("beat", "errors:j1", "indexed", "job:j1", "jobs", "running")
    ]
    assert store.client.zrange(f"{p}:{{:namespaces}}:names", 0, -1) == ["docs"]
    fields = store.client.hgetall(f"{p}:{{docs}}:job:j1")
    assert set(fields) == {"t", "p", "s", "f", "e", "st", "up", "r", "ra", "rd"}
    assert fields["e"] == "bad" and fields["t"] == "3"
    # the smoothed rate (1 item, at most 1/60 per s) as of the update, '%.17g' (all 17 digits)
    assert fields["r"] == f"{float(fields['r']):.17g}" and 0 < float(fields["r"]) <= 1 / 60
    assert fields["ra"] == fields["up"] and fields["rd"] == "1"
    assert store.client.zscore(f"{p}:{{docs}}:jobs", "j1") == float(fields["st"])
    assert store.client.zscore(f"{p}:{{docs}}:running", "j1") == float(fields["st"])
    up = int(fields["up"])
    assert store.client.zscore(f"{p}:{{docs}}:beat", "j1") == up - up % 1000
    assert store.client.hgetall(f"{p}:{{docs}}:errors:j1") == {
        "bad": f"1 {fields['up']} {fields['up']}"
    }
    assert job.job_id == "j1"
    # items: a state per item (short names as they are, long ones as a 12-byte digest)
    tracker.record("docs", "j1", successful=1, item="a.pdf")
    done = tracker.record("docs", "j1", failed=1, item="s3://bucket/" + "x" * 30, error="too big")
    assert store.client.hget(f"{p}:{{docs}}:items:j1", "a.pdf") == "4"
    assert store.client.hlen(f"{p}:{{docs}}:items:j1") == 2
    assert store.client.hget(f"{p}:{{docs}}:job:j1", "q") == "1"  # failed-item positions
    assert store.client.zcard(f"{p}:{{docs}}:failed:j1") == 1
    # completion: running -> done, an expiry ('x', the expiring index) and TTLs on its keys
    assert done.is_finished and done.expires_at is not None
    fields = store.client.hgetall(f"{p}:{{docs}}:job:j1")
    assert int(fields["x"]) == to_ms(done.expires_at) == int(fields["fin"]) + 7 * 86_400_000
    assert sorted(store.client.scan_iter(match=f"{p}:{{docs}}:[bdrej]*[a-z]")) == [
        f"{p}:{{docs}}:{name}" for name in ("done", "expiring", "jobs")
    ]
    assert store.client.zscore(f"{p}:{{docs}}:expiring", "j1") == int(fields["x"])
    keep = 37 * 86_400_000  # retain + remember_expired
    for name in ("job", "items", "failed", "errors"):
        assert keep - 60_000 < store.client.pttl(f"{p}:{{docs}}:{name}:j1") <= keep
    # no job runs: the namespace's own keys expire with its longest-lived job, noted in
    # the marker (ms by the server's clock)
    ends = int(store.client.get(f"{p}:{{docs}}:indexed"))
    for name in ("done", "expiring", "jobs", "indexed"):
        assert store.client.pexpiretime(f"{p}:{{docs}}:{name}") == ends
    assert keep - 60_000 < store.client.pttl(f"{p}:{{docs}}:jobs") <= keep
    assert tracker.delete("docs", "j1")
    assert list(store.client.scan_iter(match=f"{p}:*")) == []  # its last job: nothing stays


@pytest.mark.parametrize(
    ("namespace", "job_id"),
    [("ns", "../x"), ("ns", "a:b"), ("{ns}", "j"), (["ns"], "j"), ("ns", b"j"), ("", "j")],
)
def test_keys_are_only_built_from_names(store: RedisStore, namespace: Any, job_id: Any) -> None:
    for _ in range(2):  # a rejected name is never remembered as a key
        with pytest.raises(InvalidName):
            store.commands.job_key(namespace, job_id)
    assert store.commands.job_key("ns", "j") == _key(store, "ns", "job:j")
    assert not hasattr(store, "job_key") and not hasattr(store, "index_key")  # (were tests-only)


def test_prefixes_are_separate_spaces(redis_server: Any) -> None:
    a = JobTracker(RedisStore(redis_url(redis_server), prefix="app-a"))
    b = JobTracker(RedisStore(redis_url(redis_server), prefix="app-b"))
    a.start("ns", 1, job_id="same")
    with pytest.raises(JobNotFound):
        b.get("ns", "same")
    b.start("ns", 2, job_id="same")
    assert a.get("ns", "same").total == 1
    a.close()
    b.close()


@pytest.mark.parametrize("prefix", ["", "a{b}", "has space", "x" * 65, 5])
def test_bad_prefix(redis_server: Any, prefix: Any) -> None:
    with pytest.raises(ConfigurationError, match="prefix"):
        RedisStore(redis_url(redis_server), prefix=prefix)


@pytest.mark.cluster
def test_every_script_touches_one_slot(redis_cluster: Cluster) -> None:
    store = RedisStore(redis_cluster.url, prefix="slots")
    client = store.client
    slots = set()
    for ns in ("a", "b", "my-documents", "zz_9"):
        job_key, index_key = _key(store, ns, "job:j1"), _key(store, ns, "jobs")
        assert client.keyslot(job_key) == client.keyslot(index_key)
        slots.add(client.keyslot(job_key))
    assert len(slots) == 4  # namespaces spread over the cluster
    nodes = {client.get_node_from_key(_key(store, ns, "jobs")).name for ns in "abcdefghij"}
    assert len(nodes) >= 2
    store.close()


def test_scripts_come_from_the_package_and_reload_after_flush(store: RedisStore) -> None:
    assert "KEYS[1]" in SCRIPTS["update"].text and "ARGV[1]" in SCRIPTS["update"].text
    tracker = JobTracker(store)
    job = tracker.start("ns", 5)
    store.client.script_flush()
    assert tracker.record("ns", job.job_id, processed=1).processed == 1
    store.client.script_flush()
    assert store.update_many([("ns", job.job_id, _delta(1))], _now())[0].processed == 2  # type: ignore[union-attr]


def _delta(processed: int = 0, successful: int = 0, failed: int = 0) -> Any:
    from jobtrack.rules import Delta

    return Delta(processed, successful, failed)


def _now() -> Any:
    from jobtrack.clock import utc_now

    return utc_now()


def test_the_rate_moves_once_a_second_and_at_completion(either: RedisStore) -> None:
    # update.lua folds the items done into the rate (three more fields and a '%.17g') only
    # when an update moves the job into another second or completes it: the items of the
    # updates before as of the last one (as progress() folds them meanwhile), then its own
    clock = ManualClock()
    tracker = JobTracker(either, clock=clock)
    first, folded = rate_waits_a_second(tracker, clock)
    at_fast, at_folded = first.rate_at + 300, folded.rate_at
    expected = add_rate(*add_rate(first.rate, first.rate_at, 2, at_fast), 3, at_folded)
    assert (folded.rate, folded.rate_at) == pytest.approx(expected, rel=1e-12)
    fast = tracker.record("docs", "job", processed=1, successful=1, item="a")  # the same second
    assert (fast.rate, fast.rate_at, fast.rate_done, fast.done) == (folded.rate, at_folded, 9, 10)
    assert either.get("docs", "job") == fast
    clock.advance(milliseconds=100)
    aborted = tracker.abort("docs", "job", "gave up")  # still that second: it completes
    # the item done before folds in as of its update; the items the abort fails never do
    expected = add_rate(fast.rate, at_folded, 1, at_folded)
    assert (aborted.rate, aborted.rate_at) == pytest.approx(expected, rel=1e-12)
    assert (aborted.rate_done, aborted.done) == (100, 100)
    read = tracker.get("docs", "job")
    assert (read.rate, read.rate_at, read.rate_done) == (aborted.rate, aborted.rate_at, 100)


def test_update_many_applies_each_atomically_and_reports_each(store: RedisStore) -> None:
    tracker = JobTracker(store)
    a = tracker.start("ns", 3, job_id="a")
    tracker.start("ns", 1, job_id="b")
    results = store.update_many(
        [
            ("ns", "a", _delta(1, 1)),
            ("ns", "missing", _delta(1)),
            ("ns", "a", _delta(5)),
            ("ns", "b", _delta(0, 1)),
            ("ns", "b", _delta(0, 1)),
            ("ns", "a", _delta(1, 0, 1)),
        ],
        _now(),
    )
    kinds = [type(r).__name__ for r in results]
    assert kinds == [
        "JobStatus",
        "JobNotFound",
        "InvalidUpdate",
        "JobStatus",
        "JobFinished",
        "JobStatus",
    ]
    assert isinstance(results[2], InvalidUpdate) and isinstance(results[4], JobFinished)
    final = tracker.get("ns", "a")
    assert (final.processed, final.successful, final.failed) == (2, 1, 1)
    assert final == results[5]
    assert a.total == 3


def test_corrupt_hash_is_a_clear_error_and_changes_nothing(store: RedisStore) -> None:
    tracker = JobTracker(store)
    job = tracker.start("ns", 5)
    key = _key(store, "ns", f"job:{job.job_id}")
    store.client.hset(key, "p", "not-a-number")
    before = store.client.hgetall(key)
    with pytest.raises(StoreCorrupt, match="not a job"):
        tracker.record("ns", job.job_id, processed=1)
    assert store.client.hgetall(key) == before
    with pytest.raises(StoreCorrupt, match="unexpected reply"):
        tracker.get("ns", job.job_id)
    assert tracker.list("ns").items == ()  # skipped with a warning, never a failed listing
    store.client.delete(key)
    store.client.set(key, "a string")
    with pytest.raises(StoreCorrupt, match="WRONGTYPE"):
        tracker.record("ns", job.job_id, processed=1)
    with pytest.raises(StoreCorrupt, match="WRONGTYPE"):
        tracker.get("ns", job.job_id)


@pytest.mark.parametrize(
    "reply",
    [
        None,
        [],
        ["ok"],
        ["what"],
        ["ok", 1, 2, 3, "x", None, 5, 6, None],
        ["ok", "1.5", 1, 0, 0, None, "5", 6, None],
        ["ok", None, 1, 0, 0, None, "5", 6, None],
        ["ok", "9", 1, 0, 0, None, "5", "6", None],
        ["invalid", "p"],
        ["ok", 1, 1, 1, 0, None, "5", 6, None, None, "0", "0", 2],  # more folded than done
        ["ok", 1, 1, 1, 0, None, "5", 6, None, None, "0", "0", -1],
        7,
        [b"\xff"],
    ],
)
def test_unexpected_update_replies_are_errors_never_counts(reply: Any) -> None:
    with pytest.raises(StoreCorrupt, match="unexpected reply"):
        job_from_update_reply("ns", "j", reply)


@pytest.mark.parametrize(
    "fields",
    [
        {"t": "1", "p": "x", "s": "0", "f": "0", "st": "5", "up": "5"},
        {"t": "1", "p": "0", "s": "0", "f": "0", "st": "5"},
        {"t": "1", "p": "1", "s": "1", "f": "0", "st": "5", "up": "5", "rd": "2"},
        {b"t": b"\xff"},
    ],
)
def test_unexpected_read_reply_is_an_error(fields: Any) -> None:
    with pytest.raises(StoreCorrupt, match="unexpected reply"):
        job_from_hash("ns", "j", fields)


def test_empty_hash_is_no_job() -> None:
    assert job_from_hash("ns", "j", {}) is None
    assert job_from_hash("ns", "j", []) is None


def test_a_resp2_flat_reply_reads_like_a_mapping() -> None:
    fields = {"t": "3", "p": "2", "s": "1", "f": "1", "e": "bad", "st": "5", "up": "6"}
    flat = [item for pair in fields.items() for item in pair]
    assert job_from_hash("ns", "j", flat) == job_from_hash("ns", "j", fields)
    assert job_from_hash("ns", "j", [k.encode() for k in flat]) == job_from_hash("ns", "j", fields)
    with pytest.raises(StoreCorrupt, match="unexpected reply"):
        job_from_hash("ns", "j", flat[:-1])


class TestThreadConnections:
    """A store built from a URL keeps one connection per thread (redis_connections)."""

    DB = 7  # the store's connections are the clients CLIENT LIST shows on this db

    def _open(self, raw: redis.Redis) -> int:
        return sum(1 for client in raw.client_list() if client["db"] == str(self.DB))

    def test_threads_each_keep_one_and_lose_nothing(self, redis_server: Any) -> None:
        url = f"redis://{redis_server.host}:{redis_server.port}/{self.DB}"
        raw = redis.Redis(redis_server.host, redis_server.port, decode_responses=True)
        store = RedisStore(url, prefix="threads")
        tracker = JobTracker(store)
        threads, each = 8, 300
        job = tracker.start("ns", 2 * threads * each)
        tracker.record("ns", job.job_id)  # scripts loaded before the threads
        before = self._open(raw)  # the main thread's, and any the client's pool holds
        completions: list[int] = []
        seen_open: list[int] = []

        def batch() -> None:
            barrier = threading.Barrier(threads)

            def work() -> None:
                barrier.wait()
                done = 0
                for _ in range(each):
                    done += tracker.record("ns", job.job_id, processed=1, successful=1).is_finished
                completions.append(done)
                barrier.wait()  # every thread still holds its connection here
                seen_open.append(self._open(raw))

            pool = [threading.Thread(target=work) for _ in range(threads)]
            for thread in pool:
                thread.start()
            for thread in pool:
                thread.join()
            gc.collect()  # the threads are gone: their connections are back in the pool

        batch()
        first = max(seen_open)
        # one per worker (a connection idle in the pool may be one of them), and the main thread's
        assert threads + 1 <= first <= before + threads
        seen_open.clear()
        batch()  # new threads take the connections the first ones gave back
        assert max(seen_open) == first
        final = tracker.get("ns", job.job_id)
        assert final.processed == final.successful == 2 * threads * each
        assert sum(completions) == 1
        tracker.close()
        assert self._open(raw) == 0
        assert tracker.get("ns", job.job_id).is_finished  # connects again after close
        tracker.close()
        raw.close()

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
    @pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
    def test_a_forked_child_makes_its_own(self, redis_server: Any) -> None:
        url = f"redis://{redis_server.host}:{redis_server.port}/{self.DB}"
        tracker = JobTracker(RedisStore(url, prefix="forked"))
        job = tracker.start("ns", 10_000)
        tracker.record("ns", job.job_id, processed=1)  # the parent's connection exists
        ctx = multiprocessing.get_context("fork")
        child = ctx.Process(target=workers.record_n, args=(tracker, "ns", job.job_id, 500))
        child.start()
        mine = [tracker.record("ns", job.job_id, processed=1).processed for _ in range(500)]
        child.join(timeout=60)
        assert child.exitcode == 0
        assert mine == sorted(mine) and len(set(mine)) == 500  # replies are our own
        assert tracker.get("ns", job.job_id).processed == 1001
        tracker.close()

    def test_an_interrupted_read_never_leaves_a_reply_for_the_next_call(
        self, redis_server: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store = RedisStore(redis_url(redis_server), prefix="interrupted")
        tracker = JobTracker(store)
        job = tracker.start("ns", 100)
        tracker.record("ns", job.job_id, processed=1)

        def interrupt() -> None:
            raise KeyboardInterrupt  # sent, reply not read: Ctrl-C at the worst moment

        _on_next_read(store, monkeypatch, interrupt)
        with pytest.raises(KeyboardInterrupt):
            tracker.record("ns", job.job_id, processed=1)
        held = int(str(store.client.hget(_key(store, "ns", f"job:{job.job_id}"), "p")))
        assert held == 2  # the interrupted update landed; its reply was never read
        assert tracker.record("ns", job.job_id, processed=1).processed == held + 1
        tracker.close()

    def test_a_call_from_a_signal_handler_mid_command_gets_its_own_reply(
        self, redis_server: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store = RedisStore(redis_url(redis_server), prefix="reentrant")
        tracker = JobTracker(store)
        job = tracker.start("ns", 100)
        other = tracker.start("ns", 7)
        tracker.record("ns", job.job_id, processed=1)
        seen: list[Any] = []
        # what a signal handler on this thread would do while the update is on the wire
        _on_next_read(store, monkeypatch, lambda: seen.append(tracker.get("ns", other.job_id)))
        after = tracker.record("ns", job.job_id, processed=1)
        assert (after.job_id, after.processed) == (job.job_id, 2)
        assert [(j.job_id, j.total) for j in seen] == [(other.job_id, 7)]
        assert tracker.record("ns", job.job_id, processed=1).processed == 3  # still in step
        tracker.close()

    def test_a_capped_pool_checks_out_per_call(self, redis_server: Any) -> None:
        url = f"{redis_url(redis_server)}?max_connections=2"
        store = RedisStore(url, prefix="capped")
        assert store._threads is None  # threads keeping connections would exhaust it
        tracker = JobTracker(store)
        job = tracker.start("ns", 30)
        recorded, finish = threading.Event(), threading.Event()

        def idle_worker() -> None:  # records, then lives on without using the store
            tracker.record("ns", job.job_id, processed=1, successful=1)
            recorded.set()
            finish.wait(30)

        workers_ = [threading.Thread(target=idle_worker) for _ in range(3)]
        for thread in workers_:
            thread.start()
            assert recorded.wait(30)
            recorded.clear()
        # three threads have used the store and still live; the cap is 2
        assert tracker.record("ns", job.job_id, processed=1, successful=1).processed == 4
        assert [j.job_id for j in tracker.list("ns").items] == [job.job_id]
        finish.set()
        for thread in workers_:
            thread.join()
        tracker.close()

    def test_connections_are_left_alone_at_exit(self, redis_server: Any) -> None:
        # daemon threads still record while an atexit handler reads: the handler
        # must not be handed a connection a daemon thread is using
        result = subprocess.run(
            [sys.executable, "-c", _AT_EXIT, redis_url(redis_server)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "2001 reads, 0 wrong", result.stdout + result.stderr

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
    @pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
    def test_fork_while_another_thread_holds_the_pool_lock(self, redis_server: Any) -> None:
        store = RedisStore(redis_url(redis_server), prefix="forklock")
        tracker = JobTracker(store)
        job = tracker.start("ns", 10)
        used, finish = threading.Event(), threading.Event()

        def worker() -> None:  # has used the store, and lives on
            tracker.record("ns", job.job_id, processed=1)
            used.set()
            finish.wait(30)

        thread = threading.Thread(target=worker)
        thread.start()
        used.wait(30)
        locked, unlock = threading.Event(), threading.Event()

        def inside_the_pool() -> None:  # a thread inside the pool at the moment of the fork
            with store.client.connection_pool._lock:
                locked.set()
                unlock.wait(30)

        holder = threading.Thread(target=inside_the_pool)
        holder.start()
        locked.wait(30)
        pid = os.fork()
        if pid == 0:  # the child: its copy of the worker's connection is freed
            os._exit(0)
        began = time.monotonic()
        while time.monotonic() - began < 10:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.01)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung on its parent's pool lock")
        assert os.waitstatus_to_exitcode(status) == 0
        unlock.set()
        finish.set()
        holder.join()
        thread.join()
        tracker.close()


def _on_next_read(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch, first: Callable[[], object]
) -> None:
    """Run *first* once, when this thread's connection next reads a reply, then read it."""
    assert store._threads is not None
    conn = store._threads._held().conn
    real = conn.read_response

    def read(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(conn, "read_response", real)
        first()
        return real(*args, **kwargs)

    monkeypatch.setattr(conn, "read_response", read)


_AT_EXIT = """
import atexit, sys, threading
from jobtrack import JobTracker
url = sys.argv[1]
tracker = JobTracker(url + "?prefix=atexit")
wrong = []
def read(n):
    bad = 0
    for _ in range(n):
        try:
            bad += tracker.get("ns", "b").processed != 0
        except Exception:
            bad += 1
    wrong.append(bad)
def read_at_exit():  # new threads: they take connections from the pool
    readers = [threading.Thread(target=read, args=(667,)) for _ in range(3)]
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join()
    print(f"{3 * 667} reads, {sum(wrong)} wrong")
atexit.register(read_at_exit)
tracker.start("ns", 10**9, job_id="a")
tracker.start("ns", 10, job_id="b")
running = threading.Semaphore(0)
def loop():
    tracker.record("ns", "a", processed=1)  # holds its connection from here on
    running.release()
    while True:
        tracker.record("ns", "a", processed=1)
for _ in range(2):
    threading.Thread(target=loop, daemon=True).start()
running.acquire()
running.acquire()
"""


class TestFaults:
    def test_paused_server_times_out_then_recovers(self, fault_server: Any) -> None:
        tracker = JobTracker(RedisStore(redis_url(fault_server), timeout=0.5))
        job = tracker.start("ns", 10)
        os.kill(fault_server.process.pid, signal.SIGSTOP)
        try:
            for call in (
                lambda: tracker.record("ns", job.job_id, processed=1),
                lambda: tracker.get("ns", job.job_id),
                lambda: tracker.start("ns", 1),
                lambda: tracker.list("ns"),
                lambda: tracker.delete("ns", "another-job"),  # may land later: not our job
            ):
                began = time.monotonic()
                with pytest.raises(StoreUnavailable, match=r"Timeout|timed out|Connection"):
                    call()
                assert time.monotonic() - began < 3  # bounded by the timeout, not hanging
        finally:
            os.kill(fault_server.process.pid, signal.SIGCONT)
        # the same tracker works again without a restart; the timed-out update
        # may or may not have landed (at most once), nothing else did
        after = tracker.record("ns", job.job_id, processed=1)
        assert after.processed in (1, 2)
        # and its replies are its own: a connection that timed out was closed,
        # not pooled with the late replies of the paused commands still unread
        store = tracker.store
        assert isinstance(store, RedisStore)
        raw = redis.Redis(fault_server.host, fault_server.port, decode_responses=True)
        for _ in range(3):
            held = int(str(raw.hget(_key(store, "ns", f"job:{job.job_id}"), "p")))
            assert tracker.get("ns", job.job_id).processed == held
            assert tracker.record("ns", job.job_id, processed=1).processed == held + 1
        raw.close()
        tracker.close()

    def test_stopped_server_fails_fast_then_recovers(self, fault_server: Any) -> None:
        tracker = JobTracker(RedisStore(redis_url(fault_server), timeout=1))
        job = tracker.start("ns", 10)
        tracker.record("ns", job.job_id, processed=2)
        fault_server.stop()  # SIGTERM: redis saves its data (save "3600 1") and exits
        try:
            began = time.monotonic()
            with pytest.raises(StoreUnavailable) as info:
                tracker.record("ns", job.job_id, processed=1)
            assert time.monotonic() - began < 3
            assert "Traceback" not in str(info.value)
            with pytest.raises(StoreUnavailable):
                tracker.get("ns", job.job_id)
        finally:
            fault_server.start()
        assert tracker.record("ns", job.job_id, processed=1).processed == 3
        tracker.close()

    def test_a_restart_between_calls_is_not_an_error(self, fault_server: Any) -> None:
        tracker = JobTracker(RedisStore(redis_url(fault_server), timeout=1))
        job = tracker.start("ns", 10)
        tracker.record("ns", job.job_id, processed=2)
        fault_server.stop()  # the store's idle connection is closed by the server...
        fault_server.start()
        # ...and the next call notices before sending, and connects again
        assert tracker.record("ns", job.job_id, processed=1).processed == 3
        assert tracker.get("ns", job.job_id).processed == 3
        tracker.close()

    def test_nothing_listening_is_unavailable(self) -> None:
        import port_for

        port = port_for.select_random()
        tracker = JobTracker(f"redis://127.0.0.1:{port}/0?timeout=1")
        with pytest.raises(StoreUnavailable, match="Connection"):
            tracker.start("ns", 1)


class TestUrls:
    def test_options_are_taken_from_the_query(self, redis_server: Any) -> None:
        store = open_store(f"{redis_url(redis_server)}?prefix=my.app&timeout=2.5")
        assert isinstance(store, RedisStore)
        assert (store.prefix, store.timeout, store.cluster) == ("my.app", 2.5, False)
        assert store.client.connection_pool.connection_kwargs["socket_timeout"] == 2.5
        store.close()

    def test_unix_socket(self, redis_server: Any) -> None:
        store = open_store(f"unix://{redis_server.unixsocket}?db=0&prefix=unixtest")
        tracker = JobTracker(store)
        assert tracker.record("ns", tracker.start("ns", 1).job_id, successful=1).is_finished
        tracker.close()

    def test_existing_client(self, redis_server: Any) -> None:
        client = redis.Redis(redis_server.host, redis_server.port)  # bytes replies
        tracker = JobTracker(RedisStore(client, prefix="byteclient"))
        job = tracker.start("ns", 2)
        tracker.record("ns", job.job_id, failed=1, error="é")
        assert tracker.get("ns", job.job_id).last_error == "é"
        assert [j.job_id for j in tracker.list("ns").items] == [job.job_id]
        tracker.close()

    @pytest.mark.cluster
    def test_cluster_url(self, redis_cluster: Cluster) -> None:
        store = open_store(redis_cluster.url + "?prefix=c1")
        assert isinstance(store, RedisStore) and store.cluster
        JobTracker(store).start("ns", 1)
        pools = [node.redis_connection.connection_pool for node in store.client.get_nodes()]
        assert pools and all(pool.max_connections == UNBOUNDED for pool in pools)  # not 100
        store.close()

    def test_pools_are_unbounded_unless_the_url_caps_them(self, redis_server: Any) -> None:
        store = open_store(redis_url(redis_server))
        assert isinstance(store, RedisStore)
        assert store.client.connection_pool.max_connections == UNBOUNDED
        store.close()
        capped = open_store(f"{redis_url(redis_server)}?max_connections=7")
        assert isinstance(capped, RedisStore)
        assert capped.client.connection_pool.max_connections == 7
        capped.close()

    def test_password_is_not_shown(self) -> None:
        store = RedisStore("redis://user:s3cret@127.0.0.1:1/0")
        assert "s3cret" not in repr(store) and "***" in repr(store)

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("redis+cluster://", "bad node"),
            ("redis+cluster://h1", "bad node"),
            ("redis+cluster://h1:0", "bad node"),
            ("redis+cluster://h1:1/3", "database 0"),
            ("redis+cluster://h1:1?color=red", "unknown option"),
            ("redis://127.0.0.1:1/0?timeout=soon", "not a number"),
            ("redis://127.0.0.1:1/0?timeout=-1", "timeout"),
            ("redis://127.0.0.1:1/0?prefix=a{b}", "prefix"),
        ],
    )
    def test_bad_urls(self, url: str, message: str) -> None:
        with pytest.raises(ConfigurationError, match=message):
            open_store(url)

    def test_bad_client(self) -> None:
        with pytest.raises(ConfigurationError, match="client or a URL"):
            RedisStore(42)

    @pytest.mark.parametrize("timeout", [0, -1, 1e10, 10**400, float("inf"), float("nan"), True])
    def test_bad_timeouts(self, timeout: object) -> None:
        with pytest.raises(ConfigurationError, match="timeout must be a number of seconds > 0"):
            RedisStore("redis://127.0.0.1:1/0", timeout=timeout)  # type: ignore[arg-type]


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'jobtrack\[redis\]'"):
        open_store("redis://127.0.0.1:1/0")


def test_memory_usage_is_reported(store: RedisStore) -> None:
    tracker = JobTracker(store)
    job = tracker.start("ns", 100)
    tracker.record("ns", job.job_id, processed=50, successful=40, failed=10, error="timeout")
    assert 0 < store.memory_usage("ns", job.job_id) < 1000
    assert store.memory_usage("ns", "nope") == 0


@pytest.mark.cluster
def test_update_many_spans_cluster_nodes(redis_cluster: Cluster, redis_prefix: str) -> None:
    from jobtrack import Update

    store = RedisStore(redis_cluster.url, prefix=redis_prefix)
    tracker = JobTracker(store)
    namespaces = [f"ns{i}" for i in range(12)]
    nodes = {store.client.get_node_from_key(_key(store, ns, "jobs")).name for ns in namespaces}
    assert len(nodes) >= 2
    for ns in namespaces:
        tracker.start(ns, 2, job_id="j")
    store.client.script_flush()  # every node must load the script again
    results = tracker.record_many([Update(ns, "j", successful=1) for ns in namespaces] * 2)
    assert all(r.successful in (1, 2) for r in results)  # type: ignore[union-attr]
    assert all(tracker.get(ns, "j").is_finished for ns in namespaces)
    tracker.close()


@pytest.mark.parametrize("kind", ["redis", pytest.param("cluster", marks=pytest.mark.cluster)])
def test_listing_skips_and_tidies_index_entries_whose_job_is_gone(
    kind: str, request: pytest.FixtureRequest
) -> None:
    factory = request.getfixturevalue(
        "redis_store_factory" if kind == "redis" else "redis_cluster_store_factory"
    )
    store = factory()
    tracker = JobTracker(store)
    for i in range(9):
        tracker.start("ns", 1, job_id=f"j{i}")
    for gone in ("j7", "j6", "j5", "j2"):  # evicted, or a DEL by hand: the index still names them
        store.client.delete(_key(store, "ns", f"job:{gone}"))
    seen: list[str] = []
    cursor = None
    while True:
        page = tracker.list("ns", limit=2, cursor=cursor)
        assert len(page.items) == 2 or page.next_cursor is None  # never a short page mid-way
        seen += [job.job_id for job in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["j8", "j4", "j3", "j1", "j0"]
    assert store.client.zcard(_key(store, "ns", "jobs")) == 5  # tidied
    tracker.start("ns", 1, job_id="j5")  # an id may be started again
    assert "j5" in [job.job_id for job in tracker.list("ns").items]


def test_an_evicting_server_is_warned_about_once(redis_server: Any, redis_prefix: str) -> None:
    raw = redis.Redis(redis_server.host, redis_server.port)
    raw.config_set("maxmemory-policy", "allkeys-lru")
    try:
        tracker = JobTracker(f"{redis_url(redis_server)}?prefix={redis_prefix}")
        with pytest.warns(JobtrackWarning, match="maxmemory-policy 'allkeys-lru'.*noeviction"):
            tracker.start("ns", 1)
        tracker.start("ns", 1)  # once per store: filterwarnings=error would fail here otherwise
        tracker.close()

        async def main() -> None:
            async with AsyncJobTracker(f"{redis_url(redis_server)}?prefix={redis_prefix}") as t:
                with pytest.warns(JobtrackWarning, match="allkeys-lru"):
                    await t.start("ns", 1)

        asyncio.run(main())
    finally:
        raw.config_set("maxmemory-policy", "noeviction")
        raw.close()
    with JobTracker(f"{redis_url(redis_server)}?prefix={redis_prefix}") as quiet:
        quiet.start("ns", 1)  # noeviction: nothing to say


def test_a_flood_of_readers_never_starves_the_writers(fault_server: Any, redis_prefix: str) -> None:
    """1,500 concurrent GETs while Redis is paused took 1,478 connections in 0.1 (issue 10)."""
    import httpx

    from jobtrack.asgi import status_app

    url = f"{redis_url(fault_server)}?prefix={redis_prefix}&timeout=5"
    admin = redis.Redis(fault_server.host, fault_server.port, decode_responses=True)
    admin.config_set("maxclients", "30")
    writer = JobTracker(url)
    job = writer.start("ns", 1000)
    app = status_app(AsyncJobTracker(url), max_store_calls=8, store_wait=0.3)
    route = f"/namespaces/ns/upload-jobs/{job.job_id}"
    done: list[int] = []
    failures: list[BaseException] = []

    def pipeline() -> None:  # a worker recording while the route is flooded
        try:
            done.extend(writer.record("ns", job.job_id, processed=1).processed for _ in range(20))
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    async def flood() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get(route)).status_code == 200
            os.kill(fault_server.process.pid, signal.SIGSTOP)
            loop = asyncio.get_running_loop()
            loop.call_later(1.0, os.kill, fault_server.process.pid, signal.SIGCONT)
            worker = loop.run_in_executor(None, pipeline)
            replies = await asyncio.gather(*(client.get(route) for _ in range(400)))
            await worker
            clients = await loop.run_in_executor(None, admin.client_list)
            readers = [c for c in clients if c["cmd"] == "hgetall"]  # the route's
            assert len(readers) <= 8, readers
            assert len(clients) <= 8 + 3 + 1  # + the writer's (2 threads, a script load), admin
            after = await client.get(route)
            assert after.status_code == 200 and after.json()["processed"] == 20
            await app.tracker.aclose()
            return [reply.status_code for reply in replies]

    try:
        statuses = asyncio.run(flood())
    finally:
        os.kill(fault_server.process.pid, signal.SIGCONT)
        admin.config_set("maxclients", "10000")
        admin.close()
        writer.close()
    assert failures == [] and done == list(range(1, 21))  # every update landed, in order
    assert set(statuses) <= {200, 503} and statuses.count(503) > 300  # busy: told, not queued


def _owner_and_replica(cluster: Cluster, key: str) -> tuple[tuple[str, int], tuple[str, int]]:
    """The master holding *key*'s slot, and its replica (CLUSTER NODES, as redis-py parses it)."""
    host, port = cluster.nodes[0]
    with redis.Redis(host, port, decode_responses=True) as client:
        slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
        nodes = client.execute_command("CLUSTER NODES")
    master = next(
        (address, info["node_id"])
        for address, info in nodes.items()
        if any(int(low) <= slot <= int(high) for low, high in info["slots"])
    )
    replica = next(address for address, info in nodes.items() if info["master_id"] == master[1])

    def split(address: str) -> tuple[str, int]:
        h, _, p = address.rpartition(":")
        return h, int(p)

    return split(master[0]), split(replica)


@pytest.mark.cluster
@pytest.mark.slow
def test_updates_go_on_through_a_cluster_failover(
    tmp_path_factory: pytest.TempPathFactory, redis_prefix: str
) -> None:
    cluster = Cluster(tmp_path_factory.mktemp("failover"), replicas=1)
    try:
        tracker = JobTracker(f"{cluster.url}?prefix={redis_prefix}&timeout=5")
        job = tracker.start("ns", 10_000)
        store = tracker.store
        assert isinstance(store, RedisStore)
        _, (host, port) = _owner_and_replica(cluster, _key(store, "ns", f"job:{job.job_id}"))
        acked = sum(tracker.record("ns", job.job_id, processed=1).processed > 0 for _ in range(200))
        with redis.Redis(host, port, decode_responses=True) as replica:
            deadline = time.monotonic() + 30
            while replica.info("replication").get("master_link_status") != "up":
                assert time.monotonic() < deadline, "the replica never synced"
                time.sleep(0.05)  # waiting on the servers' own replication
            replica.execute_command("CLUSTER", "FAILOVER")  # the replica takes over the slot
            while replica.info("replication")["role"] != "master":
                assert time.monotonic() < deadline, "the failover did not happen"
                time.sleep(0.05)  # waiting on the servers' own failover, not on our state
        refused = 0
        for _ in range(300):
            try:
                tracker.record("ns", job.job_id, processed=1)
                acked += 1
            except StoreUnavailable:  # a call that met the moved slot: applied at most once
                refused += 1
        final = tracker.get("ns", job.job_id)
        assert acked <= final.processed <= acked + refused  # none lost, none counted twice
        assert refused <= 3  # the client follows the new owner at once
        tracker.close()
    finally:
        cluster.stop()


def test_a_database_the_server_lacks_is_a_configuration_error(redis_server: Any) -> None:
    tracker = JobTracker(f"redis://{redis_server.host}:{redis_server.port}?db=99")
    with pytest.raises(ConfigurationError, match="database does not exist"):  # not "retry later"
        tracker.start("ns", 1)
    tracker.close()


def test_pages_read_only_their_own_entries_when_many_share_a_time(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs started in one millisecond (or last updated in one second, for the stalled
    index) share a score: a page resumes by the rank of its cursor's entry, and reads
    only a page's worth, however many tie (helper-found: it read every tie)."""
    from jobtrack.stores.redis import commands

    replies: list[int] = []
    real = commands._flat_pairs

    def counting(reply: Any) -> Any:
        replies.append(len(reply) // 2)
        return real(reply)

    monkeypatch.setattr(commands, "_flat_pairs", counting)
    clock = ManualClock()
    tracker = JobTracker(store, clock=clock, stall_after=dt.timedelta(minutes=1))
    for i in range(300):
        tracker.start("ties", 2, job_id=f"t{i:03}")
    clock.advance(minutes=2)
    assert store.client.exists(f"{store.prefix}:{{ties}}:indexed")  # from its first job
    for status in (None, "running", "stalled"):
        replies.clear()
        seen, cursor = [], None
        while True:
            page = tracker.list("ties", status=status, limit=10, cursor=cursor)
            seen += [job.job_id for job in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == [f"t{i:03}" for i in range(299, -1, -1)], status
        assert max(replies) <= 11, status  # a page and one more, never the 300 ties
    # the cursor's own entry gone (its job deleted): the next page is still right
    page = tracker.list("ties", limit=5)
    assert tracker.delete("ties", page.items[-1].job_id)
    after = tracker.list("ties", limit=5, cursor=page.next_cursor)
    assert [job.job_id for job in after.items] == [f"t{i:03}" for i in range(294, 289, -1)]


def test_a_namespace_of_jobtrack_0_1_gets_its_status_indexes_once(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobtrack.stores.redis.commands import Commands

    builds: list[str] = []
    build = Commands._build_indexes

    def counted(self: Commands, namespace: str) -> Any:
        builds.append(namespace)
        return build(self, namespace)

    monkeypatch.setattr(Commands, "_build_indexes", counted)
    clock = ManualClock()
    tracker = JobTracker(store, clock=clock, stall_after=dt.timedelta(minutes=1))
    for i in range(5):
        tracker.start("old", 2, job_id=f"o{i}")
        clock.advance(seconds=1)
    tracker.record("old", "o1", successful=2)
    p = store.prefix
    for name in ("running", "done", "beat", "expiring", "indexed"):  # as 0.1 left it
        store.client.delete(f"{p}:{{old}}:{name}")
    fresh = RedisStore(store.client, prefix=p)  # a process that has not seen it yet
    later = JobTracker(fresh, clock=clock, stall_after=dt.timedelta(minutes=1))
    clock.advance(minutes=2)
    assert [j.job_id for j in later.list("old", status="running").items] == [
        "o4", "o3", "o2", "o0",
    ]  # fmt: skip
    assert [j.job_id for j in later.list("old", status="completed").items] == ["o1"]
    assert [j.job_id for j in later.list("old", status="stalled").items] == [
        "o4", "o3", "o2", "o0",
    ]  # fmt: skip
    assert builds == ["old"]  # once: the marker says so from then on, to every process
    assert store.client.get(f"{p}:{{old}}:indexed") == "1"  # kept: 0.1 kept its jobs
    assert store.client.zcard(f"{p}:{{old}}:running") == 4
    assert {store.client.pttl(key) for key in _namespace_keys(store, "old")} == {-1}
    # a namespace of 0.1 whose jobs are all gone: built from nothing, so nothing stays
    tracker.start("gone", 1, job_id="g")
    for name in ("running", "done", "beat", "expiring", "indexed", "job:g"):
        store.client.delete(f"{p}:{{gone}}:{name}")
    assert _ours(store, "gone") == [f"{p}:{{gone}}:jobs"]
    assert later.list("gone", status="running").items == ()
    assert builds == ["old", "gone"] and _ours(store, "gone") == []


# -- issue 19: no read that writes, O(limit) pages, nothing that grows without bound ----------


def test_reads_of_namespaces_that_never_existed_leave_nothing_behind(either: RedisStore) -> None:
    """5,000 GETs of unknown namespaces wrote 5,000 never-expiring keys and 5,000 names
    held in-process (issue 19): listing, reaping and HTTP reads now write nothing."""
    import httpx

    from jobtrack.asgi import status_app
    from jobtrack.stores.redis.commands import _KEY_CACHE_SIZE

    store = either
    tracker = JobTracker(store, stall_after=dt.timedelta(minutes=1))
    size = store.client.dbsize()
    names = [f"nobody-{i}" for i in range(5_000)]
    for ns in names:
        assert tracker.list(ns, status="running").items == ()
    for ns in names[:40]:
        for status in (None, "completed", "stalled"):
            assert tracker.list(ns, status=status).items == ()
        assert tracker.reap(ns) == []
        for read in (tracker.get, tracker.failed_items, tracker.errors):
            with pytest.raises(JobNotFound):
                read(ns, "j")

    async def over_http() -> list[int]:
        assert store.url is not None
        app = status_app(AsyncJobTracker(store.url), stall_after=dt.timedelta(minutes=1))
        transport = httpx.ASGITransport(app=app)
        codes = []
        base = "/namespaces"
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for ns in names[:40]:
                for path in ("?status=running", "?status=stalled", "?status=completed", ""):
                    codes.append((await client.get(f"{base}/{ns}/upload-jobs{path}")).status_code)
                for path in ("/j", "/j/failed-items", "/j/errors"):
                    codes.append((await client.get(f"{base}/{ns}/upload-jobs{path}")).status_code)
        await app.tracker.aclose()
        return codes

    codes = asyncio.run(over_http())
    assert codes == ([200] * 4 + [404] * 3) * 40
    assert _ours(store) == [] and store.client.dbsize() <= size  # no key, anywhere
    held = {
        name: len(value)
        for name, value in vars(store.commands).items()
        if isinstance(value, (set, dict, list))
    }
    assert all(n <= _KEY_CACHE_SIZE for n in held.values()), held  # no entry per namespace read


def test_a_page_whose_cursor_job_moved_reads_a_page_not_every_tie(
    either: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30,000 jobs stalled in one second: the page after a cursor whose job moved read all
    29,999 ties (issue 19). A page now reads at most its limit and a constant."""
    from jobtrack.stores.redis import commands

    store = either
    returned: list[int] = []  # entries each page.lua reply held
    read: list[int] = []  # entries each page.lua call read, as it says: the page and probes
    real = commands._index_reply

    def counting(reply: Any) -> Any:
        read.append(reply[0])
        returned.append(len(reply[1]) // 2)
        return real(reply)

    monkeypatch.setattr(commands, "_index_reply", counting)
    clock = ManualClock()
    tracker = JobTracker(store, clock=clock, stall_after=dt.timedelta(minutes=1))
    n = 3_000
    for i in range(n):  # one millisecond: every job ties in `jobs`, `running` and `beat`
        tracker.start("ties", 2, job_id=f"t{i:04}")
    clock.advance(minutes=2)
    ids = [f"t{i:04}" for i in range(n - 1, -1, -1)]  # newest first: by id among ties
    deleted: set[str] = set()
    recorded: set[str] = set()
    for status in ("stalled", "running", None):
        gone = deleted | (recorded if status == "stalled" else set())
        listed = [i for i in ids if i not in gone]
        first = tracker.list("ties", status=status, limit=100)
        assert [job.job_id for job in first.items] == listed[:100], status
        moved = first.items[-1].job_id
        if status == "stalled":  # its beat moves to this second: out of the stalled index
            tracker.record("ties", moved, processed=1)
            recorded.add(moved)
        else:  # gone from every index
            tracker.delete("ties", moved)
            deleted.add(moved)
        returned.clear()
        read.clear()
        second = tracker.list("ties", status=status, limit=100, cursor=first.next_cursor)
        assert [job.job_id for job in second.items] == listed[100:200], status
        assert max(returned) <= 101, (status, returned)  # limit + 1 asked, not 2,900 ties
        assert 101 < max(read) <= 101 + 13, (status, read)  # + a binary search of 3,000 ties


def _namespace_keys(store: RedisStore, namespace: str) -> list[str]:
    """The namespace's own keys (not its jobs'): the five indexes and the marker."""
    names = ("jobs", "running", "done", "beat", "expiring", "indexed")
    return [_key(store, namespace, name) for name in names]


def test_index_keys_live_as_long_as_the_longest_lived_job(
    either: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Index entries outlived their jobs: 20,000 short-retention jobs expired by TTL left
    10,500 entries in each of three sorted sets (issue 19). The namespace's keys now
    expire with its last job, by Redis's clock, with no further call."""
    store = either
    client = store.client
    clock = ManualClock()
    day = dt.timedelta(days=1)
    short = JobTracker(store, clock=clock, retain=day, remember_expired=day)
    long = JobTracker(store, clock=clock, retain=5 * day, remember_expired=5 * day)
    for jid in ("long", "short", "running"):
        short.start("ns", 1, job_id=jid)
    long.record("ns", "long", successful=1)
    short.record("ns", "short", successful=1)
    keys = [key for key in _namespace_keys(store, "ns") if client.exists(key)]
    assert len(keys) == 6
    assert [client.pttl(key) for key in keys] == [-1] * 6  # a running job holds them all
    short.record("ns", "running", successful=1)  # the last running job completes
    assert client.pttl(_key(store, "ns", "job:long")) > 10 * 86_400_000 - 60_000
    longest = client.pexpiretime(_key(store, "ns", "job:long"))  # ms by the server's clock
    keys = [key for key in _namespace_keys(store, "ns") if client.exists(key)]
    left = sorted(_key(store, "ns", n) for n in ("jobs", "done", "expiring", "indexed"))
    assert sorted(keys) == left
    for key in keys:  # as long as the longest-lived job's keys, not the last one's
        assert longest <= client.pexpiretime(key) <= longest + 60_000, key
    short.start("ns", 1, job_id="again")  # a running job again: they wait for it
    assert {client.pttl(key) for key in keys} == {-1}

    # real TTLs: jobs kept a few ms, with items and errors; then nothing of them stays
    quick = JobTracker(
        store,
        retain=dt.timedelta(milliseconds=20),
        remember_expired=dt.timedelta(milliseconds=20),
    )
    spaces = [f"quick{i}" for i in range(3)]
    for ns in spaces:
        for i in range(100):
            quick.start(ns, 2, job_id=f"j{i}")
            quick.record(ns, f"j{i}", item="a", successful=1)
            quick.record(ns, f"j{i}", item="b", failed=1, error="bad")
    deadline = time.monotonic() + 20
    while any(_ours(store, ns) for ns in spaces):  # Redis expires them by itself
        assert time.monotonic() < deadline, [_ours(store, ns)[:8] for ns in spaces]
        time.sleep(0.02)  # polling a condition: the server's own clock decides
    for ns in spaces:
        assert quick.list(ns, limit=10).items == ()
    assert _ours(store, "ns")  # the long-lived namespace is still there

    # meanwhile, in a namespace a running job holds, the entries of jobs whose keys
    # expired are removed by the first page that meets them, reading twice as far each
    # round (6 rounds for 500, not 46), and cost the next page nothing
    from jobtrack.stores.redis import commands

    held = JobTracker(
        store,
        clock=ManualClock(),  # (its clock stands still: no completion drops an entry)
        retain=dt.timedelta(milliseconds=20),
        remember_expired=dt.timedelta(milliseconds=20),
    )
    held.start("held", 1, job_id="runs")
    for i in range(500):
        held.start("held", 1, job_id=f"q{i:03}")
        held.record("held", f"q{i:03}", successful=1)
    while any(":job:q" in key for key in _ours(store, "held")):
        assert time.monotonic() < deadline + 20
        time.sleep(0.02)  # Redis expires the jobs' keys by itself
    assert client.zcard(_key(store, "held", "jobs")) == 501
    pages: list[int] = []
    real = commands._index_reply

    def counting(reply: Any) -> Any:
        pages.append(len(reply[1]) // 2)
        return real(reply)

    monkeypatch.setattr(commands, "_index_reply", counting)
    assert [job.job_id for job in held.list("held", limit=10).items] == ["runs"]
    assert pages == [11, 22, 44, 88, 176, 501 - 341], pages  # (the tracker asks for 10 + 1)
    assert client.zcard(_key(store, "held", "jobs")) == 1
    pages.clear()
    assert [job.job_id for job in held.list("held", limit=10).items] == ["runs"]
    assert pages == [1]


def test_a_namespace_leaves_nothing_behind_after_its_last_job(either: RedisStore) -> None:
    """After purging every job, 500 tenants left 500 Redis keys (issue 19)."""
    store = either
    clock = ManualClock()
    tracker = JobTracker(store, clock=clock)
    tenants = [f"tenant{t}" for t in range(40)]
    for ns in tenants:
        tracker.start(ns, 3, job_id="a")
        tracker.record(ns, "a", item="x", failed=1, error="bad")  # items, failed and errors
        tracker.start(ns, 1, job_id="b")
        tracker.record(ns, "b", successful=1)  # done, expiring
        tracker.start(ns, 0, job_id="c")  # completed at once
    assert all(_ours(store, ns) for ns in tenants)
    for ns in tenants[:20]:  # deleted
        for jid in "abc":
            assert tracker.delete(ns, jid)
    assert [ns for ns in tenants[:20] if _ours(store, ns)] == []
    for ns in tenants[20:]:  # completed, expired, forgotten, purged
        tracker.record(ns, "a", item="y", successful=1)
        tracker.record(ns, "a", item="z", successful=1)
    clock.advance(days=38)
    assert tracker.purge() == 60
    assert _ours(store) == []


def test_a_big_job_is_freed_without_blocking_the_server(either: RedisStore) -> None:
    """Deleting a job of 1,000,000 items DEL'd its hash: 411 ms during which another
    client's PING waited (issue 19). Its keys now go by UNLINK: freed in the background."""
    store = either
    clock = ManualClock()
    tracker = JobTracker(store, clock=clock)

    def big(jid: str) -> None:
        tracker.start("big", 3, job_id=jid)
        tracker.record("big", jid, item="a", failed=1, error="bad")
        tracker.record("big", jid, item="b", successful=1)
        items = _key(store, "big", f"items:{jid}")
        pipe = store.client.pipeline(transaction=False)
        for chunk in range(20):  # 200,000 items, written straight into the job's items hash
            pipe.hset(items, mapping={f"{chunk}-{i}": "5" for i in range(10_000)})
        pipe.execute()
        assert store.client.hlen(items) == 200_002

    def freed(server: redis.Redis) -> int:
        """Objects the server freed in its background thread, once none is pending."""
        deadline = time.monotonic() + 20
        while int((info := server.info("all"))["lazyfree_pending_objects"]):
            assert time.monotonic() < deadline
            time.sleep(0.01)  # the server's background thread is still freeing
        return int(info["lazyfreed_objects"])

    server = _server_of(store, _key(store, "big", "jobs"))  # the namespace's, on a cluster
    big("deleted")
    assert server.config_get("lazyfree-lazy-user-del")["lazyfree-lazy-user-del"] == "no"
    before = freed(server)
    assert tracker.delete("big", "deleted")
    assert freed(server) >= before + 1  # the items hash went lazily, not in the call
    big("purged")
    tracker.record("big", "purged", item="c", successful=1)  # completed
    before = freed(server)
    clock.advance(days=38)
    assert tracker.purge() == 1
    assert freed(server) >= before + 1
    assert _ours(store, "big") == []
    if store.cluster:
        server.close()


def test_a_listed_failed_item_without_its_value_is_corrupt(store: RedisStore) -> None:
    tracker = JobTracker(store)
    job = tracker.start("ns", 3)
    tracker.record("ns", job.job_id, item="a", failed=1, error="bad")
    store.client.hdel(_key(store, "ns", f"items:{job.job_id}"), "a")  # its value, gone by hand
    with pytest.raises(StoreCorrupt, match="failed-items page"):
        tracker.failed_items("ns", job.job_id)


def test_a_namespaces_page_reads_its_names_only(
    either: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page of namespaces reads a page of names (``ZRANGEBYLEX … LIMIT``), then four
    counts of each: never the names after it (issue 19's pager rule, for issue 20's list)."""
    from jobtrack.stores.redis import commands

    replies: list[int] = []
    real = commands._names

    def counting(reply: Any) -> Any:
        replies.append(len(reply))
        return real(reply)

    monkeypatch.setattr(commands, "_names", counting)
    tracker = JobTracker(either, clock=ManualClock())
    for n in range(300):
        tracker.start(f"pg{n:03}", 1, job_id="j")
    page = tracker.namespaces(limit=10)
    assert [counts.name for counts in page.items][:10] == [f"pg{n:03}" for n in range(10)]
    page = tracker.namespaces(limit=10, cursor=page.next_cursor)
    assert [counts.name for counts in page.items] == [f"pg{n:03}" for n in range(10, 20)]
    assert replies and max(replies) <= 10 + 1  # not the 280 names after the page
