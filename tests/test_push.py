"""Push on the network stores (SPEC section 8): Redis / Cluster pub/sub, PostgreSQL LISTEN/NOTIFY.

Each test runs against real servers: a waiter wakes on an update made over
another connection, reads nothing while nothing changes, many waiters of a
job share one subscription, which goes with the last of them, and a killed
subscriber connection neither hangs a waiter nor stops push for good.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from jobtrack import AsyncJobTracker, JobStatus, JobTracker
from jobtrack.clock import utc_now
from jobtrack.stores.sql.listen import APPLICATION

NS = "pushed"
KINDS = [
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis-cluster", marks=pytest.mark.redis),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


class Reads:
    """Counts a store's ``get`` calls, and lets a test wait for the n-th."""

    def __init__(self, store: Any) -> None:
        self.count = 0
        self._changed = threading.Condition()
        read = store.get

        def get(namespace: str, job_id: str) -> JobStatus | None:
            job: JobStatus | None = read(namespace, job_id)
            with self._changed:
                self.count += 1
                self._changed.notify_all()
            return job

        store.get = get

    def reach(self, n: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.count >= n, 30), self.count


def until(condition: Callable[[], bool]) -> None:
    """Wait for a server-side state (its own connection's count), for at most 30 s."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def factory(kind: str, request: pytest.FixtureRequest) -> Callable[[], Any]:
    return request.getfixturevalue(f"{kind.replace('-', '_')}_store_factory")  # type: ignore[no-any-return]


def subscribers(store: Any, job: JobStatus) -> int:
    """How many connections the server has subscribed to *job*'s channel."""
    if hasattr(store, "commands"):  # Redis: the channel is the job's key
        channel = store.commands.job_key(job.namespace_name, job.job_id)
        if store.cluster:
            node = store.client.get_node_from_key(channel)
            reply = node.redis_connection.execute_command("PUBSUB", "SHARDNUMSUB", channel)
        else:
            reply = store.client.execute_command("PUBSUB", "SHARDNUMSUB", channel)
        return int(reply[1] if isinstance(reply, list) else reply[channel])
    with psycopg.connect(store._conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
            "AND query LIKE 'LISTEN %%' AND datname = current_database() "
            "AND query LIKE '%%' || current_schema() || '%%'",
            [APPLICATION],
        ).fetchone()
    assert row is not None
    return int(row[0])


def kill_subscribers(store: Any) -> None:
    """Close the store's subscriber connection from the server's side."""
    if hasattr(store, "commands"):
        if store.cluster:
            for node in store.client.get_primaries():
                node.redis_connection.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        else:
            store.client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    else:
        with psycopg.connect(store._conninfo, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                [APPLICATION],
            )


def other_writer(factory: Callable[[], Any]) -> JobTracker:
    """A tracker over another store (its own connections) whose clock moves 2 s a call.

    So each update moves the job into another second: PostgreSQL notifies
    such updates, and completions (not those within a second; see listen.py).
    """
    ticks = itertools.count()
    start = utc_now()
    return JobTracker(factory(), clock=lambda: start + datetime.timedelta(seconds=2 * next(ticks)))


def waiting(store: Any, job: JobStatus, timeout: float) -> tuple[threading.Thread, list[float]]:
    """A thread in ``wait_change`` on *job*; the list gets how long it waited."""
    took: list[float] = []

    def run() -> None:
        began = time.monotonic()
        store.wait_change(NS, job.job_id, job, timeout)
        took.append(time.monotonic() - began)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, took


def test_a_waiter_wakes_on_an_update_made_elsewhere_and_reads_nothing_meanwhile(
    factory: Callable[[], Any],
) -> None:
    store, writer = factory(), other_writer(factory)
    job = writer.start(NS, 3)
    assert store.features.push
    reads = Reads(store)
    thread, took = waiting(store, job, 30)
    reads.reach(1)  # subscribed, then read once
    writer.record(NS, job.job_id, successful=1)
    thread.join(30)
    assert took and took[0] < 10 and reads.count == 1
    began = time.monotonic()
    store.wait_change(NS, job.job_id, writer.get(NS, job.job_id), 0.5)  # nothing changes
    assert time.monotonic() - began >= 0.5 and reads.count == 2  # one read in half a second


def test_many_waiters_share_one_subscription_that_goes_with_the_last(
    factory: Callable[[], Any],
) -> None:
    store, writer = factory(), other_writer(factory)
    job = writer.start(NS, 3)
    reads = Reads(store)
    threads = [waiting(store, job, 30) for _ in range(20)]
    reads.reach(20)
    assert subscribers(store, job) == 1 and store.push.subscribed == 1
    writer.record(NS, job.job_id, successful=1)
    for thread, took in threads:
        thread.join(30)
        assert took and took[0] < 10
    until(lambda: subscribers(store, job) == 0)
    assert store.push.subscribed == 0


def test_a_killed_subscriber_connection_does_not_hang_a_waiter_and_recovers(
    factory: Callable[[], Any],
) -> None:
    store, writer = factory(), other_writer(factory)
    job = writer.start(NS, 3)
    reads = Reads(store)
    thread, took = waiting(store, job, 5)
    reads.reach(1)
    kill_subscribers(store)
    thread.join(30)
    assert took and took[0] < 5  # woken by the loss: the caller reads again
    thread, took = waiting(store, job, 30)  # the feed is opened again
    until(lambda: subscribers(store, job) == 1 and reads.count >= 2)
    writer.record(NS, job.job_id, successful=1)
    thread.join(30)
    assert took and took[0] < 10


def test_async_watch_is_pushed(factory: Callable[[], Any]) -> None:
    other = other_writer(factory)
    job = other.start(NS, 2)

    async def main() -> list[JobStatus]:
        tracker = AsyncJobTracker(factory())
        seen = []
        try:
            async for status in tracker.watch(NS, job.job_id, timeout=60):
                seen.append(status)
                if len(seen) == 1:
                    await asyncio.to_thread(other.record, NS, job.job_id, successful=2)
        finally:
            await tracker.aclose()
        return seen

    seen = asyncio.run(main())
    assert seen[0] == job and seen[-1].is_finished


@pytest.fixture
def no_thread_left() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    left = [t for t in set(threading.enumerate()) - before if t.name.endswith("-push")]
    for thread in left:
        thread.join(5)
        assert not thread.is_alive()


def test_close_stops_the_listener(factory: Callable[[], Any], no_thread_left: None) -> None:
    store, writer = factory(), other_writer(factory)
    job = writer.start(NS, 3)
    store.wait_change(NS, job.job_id, job, 0.1)
    store.close()


@pytest.mark.postgres
def test_a_postgres_restart_does_not_hang_a_waiter_and_push_comes_back(
    postgres_server: Any, postgres_store_factory: Callable[[], Any]
) -> None:
    store, writer = postgres_store_factory(), other_writer(postgres_store_factory)
    job = writer.start(NS, 3)
    reads = Reads(store)
    thread, took = waiting(store, job, 5)
    reads.reach(1)
    postgres_server.stop()
    thread.join(30)
    assert took and took[0] < 5  # woken by the loss
    postgres_server.start()
    thread, took = waiting(store, job, 30)
    until(lambda: subscribers(store, job) == 1 and reads.count >= 2)
    writer.record(NS, job.job_id, successful=1)
    thread.join(30)
    assert took and took[0] < 10
