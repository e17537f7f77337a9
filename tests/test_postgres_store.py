"""The PostgreSQL store beyond the contract: its URL, its pool, its server going away.

Every failure ends in a clear error — ``StoreCorrupt`` for data that is not
jobtrack's (retrying will not help), ``StoreUnavailable`` for a server that
cannot serve now, ``ConfigurationError`` for a URL or role that cannot work —
within a bounded time, with nothing acknowledged lost and no password shown.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from jobtrack import (
    AsyncJobTracker,
    ConfigurationError,
    JobFinished,
    JobTracker,
    PostgresStore,
    StoreCorrupt,
    StoreUnavailable,
    Update,
    open_store,
)
from jobtrack.rules import Delta, add_rate
from jobtrack.stores.sql.postgres import escaped, unescaped
from jobtrack.testing.reference import ManualClock
from tests.helpers import rate_waits_a_second
from tests.pg_server import PgServer, free_port

pytestmark = pytest.mark.postgres

NS = "docs"
BOUND = 10.0
"""Seconds within which a call on a server that is gone must have failed."""


def schema_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["schema"][0]


@pytest.fixture
def url(postgres_schema_url: str) -> str:
    return postgres_schema_url


@pytest.fixture
def store(url: str) -> Iterator[PostgresStore]:
    store = PostgresStore(url)
    yield store
    store.close()


@pytest.fixture
def tracker(store: PostgresStore) -> JobTracker:
    return JobTracker(store, clock=ManualClock())


@pytest.fixture
def admin(postgres_server: PgServer, url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection of our own, in the test's schema."""
    with postgres_server.connect(options=f"-c search_path={schema_of(url)}") as conn:
        yield conn


def connections(admin: psycopg.Connection[Any], application: str) -> int:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [application]
    ).fetchone()
    assert row is not None
    return int(row[0])


def all_closed(admin: psycopg.Connection[Any], application: str) -> bool:
    """Whether the server has let go of every connection of *application*.

    A backend leaves ``pg_stat_activity`` a moment after its client closed
    the connection: the server is asked again until then (or BOUND).
    """
    deadline = time.monotonic() + BOUND
    while connections(admin, application):
        if time.monotonic() > deadline:
            return False
    return True


# -- URLs and options -------------------------------------------------------------------


def test_urls_open_the_same_tables(url: str) -> None:
    first = open_store(url)
    assert isinstance(first, PostgresStore)
    second = open_store(first.url.replace("postgresql://", "postgres://", 1))
    JobTracker(first).start(NS, 1, job_id="a")
    assert JobTracker(second).get(NS, "a").total == 1
    assert first.url == url
    assert repr(first) == f"PostgresStore({url!r})"
    for store in (first, second):
        store.close()


def test_keyword_options_go_into_the_url(url: str) -> None:
    store = PostgresStore(url, pool_size=3, timeout=2)
    assert (store.pool_size, store.timeout) == (3, 2.0)
    assert "pool_size=3" in store.url and "timeout=2.0" in store.url
    again = open_store(store.url)
    assert isinstance(again, PostgresStore) and (again.pool_size, again.timeout) == (3, 2.0)
    for each in (store, again):
        each.close()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("&journal=off", "unknown option 'journal'"),
        ("&pool_size=0", "bad option pool_size"),
        ("&pool_size=many", "bad option pool_size"),
        ("&timeout=0", "bad option timeout"),
        ("&timeout=soon", "bad option timeout"),
        ("&statement_timeout=-1", "bad option statement_timeout"),
        ("&sslmode=sometimes", "bad option sslmode"),
        ("&create=perhaps", "bad option create"),
        ("&options=-c%20search_path%3Dpublic", "unknown option 'options'"),
    ],
)
def test_bad_options_are_refused_at_open(url: str, query: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        open_store(url + query)


@pytest.mark.parametrize(
    "schema",
    ['x";drop table jobtrack_jobs;--', "x'", "a b", "1abc", "pg_catalog", "", "x" * 64, "ä"],
)
def test_a_schema_name_that_is_not_an_identifier_is_refused(
    postgres_server: PgServer, schema: str
) -> None:
    with pytest.raises(ConfigurationError, match="bad option schema"):
        PostgresStore(f"{postgres_server.url}?schema={schema}")
    with pytest.raises(ConfigurationError, match="bad option schema"):
        PostgresStore(postgres_server.url, schema=schema)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pool_size": True}, "pool_size must be an int"),
        ({"pool_size": 2.5}, "pool_size must be an int"),
        ({"timeout": "5"}, "timeout must be a number of seconds"),
        ({"schema": 7}, "schema must be a str"),
    ],
)
def test_bad_keyword_options_are_refused(
    postgres_server: PgServer, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        PostgresStore(postgres_server.url, **options)


def test_other_urls_are_refused(tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError, match="not a PostgreSQL URL"):
        PostgresStore(f"sqlite:///{tmp_path}/x.db")


def test_a_missing_psycopg_names_the_extra_and_import_still_works() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "import jobtrack\n"
        "try:\n"
        "    jobtrack.open_store('postgresql://nobody@127.0.0.1:1/db')\n"
        "except jobtrack.ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'jobtrack[postgres]'" in result.stdout


# -- the password is never shown --------------------------------------------------------


def test_the_password_is_never_shown(postgres_server: PgServer, url: str) -> None:
    secret = "s3cr%40t-Pa55"  # trust authentication: any password opens the store
    with_password = url.replace("postgres@", f"postgres:{secret}@", 1)
    store = PostgresStore(with_password)
    assert JobTracker(store).start(NS, 1).total == 1
    assert store.url == with_password  # what opens it elsewhere
    for text in (repr(store), str(JobTracker(store))):
        assert "s3cr" not in text and "***" in text
    store.close()
    with pytest.raises(ConfigurationError) as bad:
        PostgresStore(with_password + "&bogus=1")
    dead = f"postgresql://postgres:{secret}@127.0.0.1:{free_port()}/postgres?timeout=1"
    with pytest.raises(StoreUnavailable) as down:
        PostgresStore(dead)
    for error in (bad.value, down.value):
        shown = f"{error} {error.__cause__} {error.__context__}"
        assert "s3cr" not in shown and "Pa55" not in shown, shown


# -- the schema, made once --------------------------------------------------------------


def test_the_first_open_makes_schema_tables_and_function(
    postgres_server: PgServer, admin: psycopg.Connection[Any]
) -> None:
    schema = f"t_new_{uuid.uuid4().hex}"
    try:
        store = PostgresStore(postgres_server.url, schema=schema)
        store.close()
        tables = admin.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", [schema]
        ).fetchall()
        assert [t for (t,) in tables] == [
            "jobtrack_errors",
            "jobtrack_items",
            "jobtrack_jobs",
            "jobtrack_meta",
        ]
        functions = admin.execute(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = %s",
            [schema],
        ).fetchall()
        assert functions == [("jobtrack_apply",)]
        version = admin.execute(f'SELECT key, value FROM "{schema}".jobtrack_meta').fetchall()
        assert version == [("schema_version", "1")]
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_processes_opening_at_once_all_open_one_schema(
    postgres_server: PgServer, admin: psycopg.Connection[Any]
) -> None:
    schema = f"t_race_{uuid.uuid4().hex}"
    url = f"{postgres_server.url}?schema={schema}"
    gate = threading.Barrier(8)
    opened: list[PostgresStore] = []
    failed: list[BaseException] = []

    def open_one() -> None:
        gate.wait()
        try:
            opened.append(PostgresStore(url))
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failed == [] and len(opened) == 8
        for n, store in enumerate(opened):
            JobTracker(store).start(NS, 1, job_id=f"j{n}")
        assert len(JobTracker(opened[0]).list(NS).items) == 8
        assert admin.execute(f'SELECT count(*) FROM "{schema}".jobtrack_meta').fetchone() == (1,)
    finally:
        for store in opened:
            store.close()
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_create_false_makes_nothing(url: str, admin: psycopg.Connection[Any]) -> None:
    with pytest.raises(ConfigurationError, match="may not make them"):
        open_store(url, create=False)
    with pytest.raises(ConfigurationError, match="may not make them"):
        open_store(url + "&create=false")
    count = "SELECT count(*) FROM pg_tables WHERE schemaname = %s"
    assert admin.execute(count, [schema_of(url)]).fetchone() == (0,)
    PostgresStore(url).close()  # made now
    open_store(url, create=False).close()  # and opened to look


def test_a_database_of_a_newer_jobtrack_is_refused(
    store: PostgresStore, url: str, admin: psycopg.Connection[Any]
) -> None:
    admin.execute("UPDATE jobtrack_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(ConfigurationError, match="schema version '99'"):
        PostgresStore(url)


def test_a_role_that_may_not_create_is_told_so(
    postgres_server: PgServer, admin: psycopg.Connection[Any]
) -> None:
    role = f"reader_{uuid.uuid4().hex[:12]}"
    admin.execute(f"CREATE ROLE {role} LOGIN")
    try:
        url = postgres_server.url.replace("postgres@", f"{role}@", 1)
        with pytest.raises(ConfigurationError, match="may not create"):
            PostgresStore(f"{url}?schema=t_{uuid.uuid4().hex}")
    finally:
        admin.execute(f"DROP ROLE {role}")


# -- data that is not jobtrack's --------------------------------------------------------


def test_a_row_broken_by_hand_is_corrupt_and_a_listing_skips_it(
    tracker: JobTracker, admin: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    tracker.start(NS, 5, job_id="bad")
    good = tracker.start(NS, 5, job_id="good")
    admin.execute("UPDATE jobtrack_jobs SET processed = 9 WHERE job_id = 'bad'")
    before = admin.execute("SELECT * FROM jobtrack_jobs WHERE job_id = 'bad'").fetchone()
    with pytest.raises(StoreCorrupt, match="not a valid job"):
        tracker.get(NS, "bad")
    updates: list[Callable[[], object]] = [
        lambda: tracker.record(NS, "bad", successful=1),
        lambda: tracker.record(NS, "bad", item="x", successful=1),
        lambda: tracker.record(NS, "bad", failed=1, error="e"),
        lambda: tracker.abort(NS, "bad", "gave up"),
    ]
    for update in updates:
        with pytest.raises(StoreCorrupt):
            update()
    results = tracker.record_many([Update(NS, "bad", successful=1), Update(NS, "good", failed=1)])
    assert isinstance(results[0], StoreCorrupt) and results[1] == tracker.get(NS, "good")
    with caplog.at_level(logging.WARNING, "jobtrack.stores.sql"):
        assert tracker.list(NS).items == (tracker.get(NS, "good"),)
    assert "skipped a job" in caplog.text
    # nothing of the refused updates was written: the row, its items and errors as they were
    assert admin.execute("SELECT * FROM jobtrack_jobs WHERE job_id = 'bad'").fetchone() == before
    assert admin.execute("SELECT count(*) FROM jobtrack_items").fetchone() == (0,)
    assert admin.execute("SELECT count(*) FROM jobtrack_errors").fetchone() == (0,)
    assert good.total == 5


@pytest.mark.parametrize(
    "drop",
    ["DROP TABLE jobtrack_jobs CASCADE", "DROP FUNCTION jobtrack_apply"],
)
def test_tables_or_function_gone_are_corrupt(
    tracker: JobTracker, admin: psycopg.Connection[Any], drop: str
) -> None:
    job = tracker.start(NS, 5)
    admin.execute(drop)
    with pytest.raises(StoreCorrupt, match="missing or altered"):
        tracker.record(NS, job.job_id, item="a", successful=1)
    if "TABLE" in drop:
        with pytest.raises(StoreCorrupt, match="missing or altered"):
            tracker.get(NS, job.job_id)


def test_error_texts_postgres_cannot_hold_come_back_as_they_were(
    tracker: JobTracker, admin: psycopg.Connection[Any]
) -> None:
    weird = ["nul \x00 here", "\x01", "\x010", "\x01\x00\x011", "plain"]
    job = tracker.start(NS, 20)
    for n, error in enumerate(weird):
        after = tracker.record(NS, job.job_id, item=f"i{n}", failed=1, error=error)
        assert after.last_error == error
        assert tracker.record(NS, job.job_id, failed=1, error=error).last_error == error
    assert tracker.get(NS, job.job_id).last_error == "plain"
    assert [item.error for item in tracker.failed_items(NS, job.job_id).items] == weird
    assert sorted((e.message, e.count) for e in tracker.errors(NS, job.job_id)) == sorted(
        (error, 2) for error in weird
    )
    # a redelivery of a failure with the same text changes nothing
    assert tracker.record(NS, job.job_id, item="i0", failed=1, error=weird[0]).failed == 10
    stored = admin.execute("SELECT count(*) FROM jobtrack_items WHERE error LIKE '%\x01%'")
    assert stored.fetchone() == (4,)
    for text in weird:
        assert "\x00" not in escaped(text) and unescaped(escaped(text)) == text


# -- the pool ---------------------------------------------------------------------------


def test_the_pool_never_holds_more_than_pool_size_connections(
    url: str, admin: psycopg.Connection[Any]
) -> None:
    application = f"jt_pool_{uuid.uuid4().hex[:8]}"
    store = PostgresStore(f"{url}&pool_size=3&application_name={application}")
    tracker = JobTracker(store)
    job = tracker.start(NS, 20 * 40)
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(40):
                tracker.record(NS, job.job_id, item=f"t{n}-{i}", processed=1, successful=1)
                tracker.get(NS, job.job_id)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    most = 0
    while any(thread.is_alive() for thread in threads):
        most = max(most, connections(admin, application))
    for thread in threads:
        thread.join()
    assert failures == []
    assert 1 <= most <= 3
    assert tracker.get(NS, job.job_id).successful == 800
    store.close()
    assert all_closed(admin, application)  # nothing left on the server


def test_a_caller_waits_at_most_timeout_for_a_busy_pool(
    url: str, admin: psycopg.Connection[Any]
) -> None:
    store = PostgresStore(f"{url}&pool_size=1&timeout=0.5")
    tracker = JobTracker(store)
    job = tracker.start(NS, 10)
    admin.execute("BEGIN")
    admin.execute("SELECT 1 FROM jobtrack_jobs FOR UPDATE")  # holds the job's row
    held = threading.Thread(target=tracker.record, args=(NS, job.job_id), kwargs={"failed": 1})
    held.start()  # takes the only connection, and waits for the row
    while not admin.execute(  # (the server tells when it waits: no sleep)
        "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    ).fetchone():
        pass
    start = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"no connection within 0\.5 s"):
        tracker.get(NS, job.job_id)
    assert time.monotonic() - start < BOUND
    admin.execute("ROLLBACK")
    held.join()
    assert tracker.get(NS, job.job_id).failed == 1
    store.close()


# -- the server going away --------------------------------------------------------------


def test_a_server_that_stops_is_unavailable_at_once_and_recovery_loses_nothing(
    postgres_server: PgServer, url: str
) -> None:
    store = PostgresStore(f"{url}&timeout=2")
    tracker = JobTracker(store)
    job = tracker.start(NS, 1_000)
    acked = 0
    for i in range(20):
        tracker.record(NS, job.job_id, item=f"i{i}", processed=1, successful=1)
        acked += 1
    postgres_server.stop()
    for call in (
        lambda: tracker.record(NS, job.job_id, processed=1, successful=1),
        lambda: tracker.get(NS, job.job_id),
        lambda: PostgresStore(url),
    ):
        start = time.monotonic()
        with pytest.raises(StoreUnavailable, match="PostgreSQL store"):
            call()
        assert time.monotonic() - start < BOUND
    postgres_server.start()
    after = tracker.get(NS, job.job_id)  # the store recovers by itself
    assert after.processed == after.successful == acked  # every acknowledged update, no more
    for i in range(20):  # redelivering is safe
        tracker.record(NS, job.job_id, item=f"i{i}", processed=1, successful=1)
    assert tracker.record(NS, job.job_id, processed=1).processed == acked + 1
    store.close()


def test_a_server_that_stops_mid_update_loses_nothing_acknowledged(
    postgres_server: PgServer, url: str
) -> None:
    store = PostgresStore(f"{url}&timeout=2")
    tracker = JobTracker(store)
    job = tracker.start(NS, 100)
    tracker.record(NS, job.job_id, processed=1, successful=1)
    admin = postgres_server.connect(options=f"-c search_path={schema_of(url)}")
    admin.execute("BEGIN")
    admin.execute("SELECT 1 FROM jobtrack_jobs FOR UPDATE")
    outcome: list[BaseException | object] = []

    def update() -> None:
        try:
            outcome.append(tracker.record(NS, job.job_id, item="x", processed=1, successful=1))
        except BaseException as exc:
            outcome.append(exc)

    writer = threading.Thread(target=update)
    writer.start()
    while not admin.execute(  # the update is on the server, waiting for the row
        "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    ).fetchone():
        pass
    start = time.monotonic()
    postgres_server.stop()  # immediate: a crash, as far as the clients can tell
    writer.join()
    assert time.monotonic() - start < BOUND
    admin.close()
    assert len(outcome) == 1 and isinstance(outcome[0], StoreUnavailable)
    postgres_server.start()
    after = tracker.get(NS, job.job_id)
    assert after.processed == after.successful == 1  # the unacknowledged one never landed
    assert tracker.record(NS, job.job_id, item="x", processed=1, successful=1).successful == 2
    store.close()


def test_the_async_view_is_unavailable_then_recovers(postgres_server: PgServer, url: str) -> None:
    store = PostgresStore(f"{url}&timeout=2")
    job = JobTracker(store).start(NS, 10)

    async def record() -> int:
        async with AsyncJobTracker(store) as tracker:
            return (await tracker.record(NS, job.job_id, processed=1)).processed

    assert asyncio.run(record()) == 1
    postgres_server.stop()
    start = time.monotonic()
    with pytest.raises(StoreUnavailable):
        asyncio.run(record())
    assert time.monotonic() - start < BOUND
    postgres_server.start()
    assert asyncio.run(record()) == 2  # a new loop, a new pool: both work
    store.close()


def test_the_async_view_keeps_a_pool_per_loop_and_closes_it(
    url: str, admin: psycopg.Connection[Any]
) -> None:
    application = f"jt_async_{uuid.uuid4().hex[:8]}"
    store = PostgresStore(f"{url}&application_name={application}")
    job = JobTracker(store).start(NS, 100)
    native = store.open_async()

    def update() -> Any:
        return native.update(NS, job.job_id, Delta(processed=1), _now())

    async def one_by_one() -> None:
        for _ in range(20):
            await update()

    async def together() -> None:
        await asyncio.gather(*(update() for _ in range(20)))
        await native.aclose()

    asyncio.run(one_by_one())  # no aclose: the loop's end closes its pool (no hang)
    assert not native._pools  # and the loop is not kept
    asyncio.run(together())  # a new loop: a pool of its own
    asyncio.run(one_by_one())
    assert JobTracker(store).get(NS, job.job_id).processed == 60
    store.close()
    assert all_closed(admin, application)


# -- batches ----------------------------------------------------------------------------


def test_update_many_is_one_round_trip(
    tracker: JobTracker, store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = tracker.start(NS, 60, job_id="a")
    tracker.start(NS, 1, job_id="b")
    counted = {"pipelines": 0, "syncs": 0, "alone": 0}
    pipeline, sync, execute = (
        psycopg.Connection.pipeline,
        psycopg.Pipeline.sync,
        psycopg.Cursor.execute,
    )

    def counting_pipeline(self: Any) -> Any:
        counted["pipelines"] += 1
        return pipeline(self)

    def counting_sync(self: Any) -> None:
        counted["syncs"] += 1
        sync(self)

    def counting_execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.connection._pipeline is None:  # a statement that waits for its answer
            counted["alone"] += 1
        return execute(self, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "pipeline", counting_pipeline)
    monkeypatch.setattr(psycopg.Pipeline, "sync", counting_sync)
    monkeypatch.setattr(psycopg.Cursor, "execute", counting_execute)
    results = tracker.record_many(
        [
            Update(NS, "a", processed=1, successful=1),
            Update(NS, "a", item="x", failed=1, error="bad"),
            Update(NS, "missing", processed=1),
            Update(NS, "b", successful=1),  # completes b
            Update(NS, "b", failed=1, error="late"),  # after it: JobFinished
            Update(NS, "a", processed=99),
            *[Update(NS, "a", item=f"more{i}", processed=1) for i in range(50)],
        ]
    )
    assert counted == {"pipelines": 1, "syncs": 0, "alone": 0}
    monkeypatch.undo()
    assert [type(result).__name__ for result in results[:6]] == [
        "JobStatus",
        "JobStatus",
        "JobNotFound",
        "JobStatus",
        "JobFinished",
        "InvalidUpdate",
    ]
    assert isinstance(results[4], JobFinished)
    final = tracker.get(NS, "a")
    assert (final.processed, final.successful, final.failed) == (51, 1, 1)
    assert results[-1] == final != a


def test_update_many_keeps_each_update_to_itself(url: str, admin: psycopg.Connection[Any]) -> None:
    store = PostgresStore(f"{url}&statement_timeout=0.3")
    tracker = JobTracker(store)
    for name in "abc":
        tracker.start(NS, 5, job_id=name)
    admin.execute("BEGIN")
    admin.execute("SELECT 1 FROM jobtrack_jobs WHERE job_id = 'b' FOR UPDATE")  # b waits
    results = tracker.record_many([Update(NS, name, processed=1) for name in "abc"])
    admin.execute("ROLLBACK")
    assert [type(result).__name__ for result in results] == [
        "JobStatus",
        "StoreUnavailable",
        "JobStatus",
    ]
    assert "statement timeout" in str(results[1])
    assert [tracker.get(NS, name).processed for name in "abc"] == [1, 0, 1]
    store.close()


# -- processes --------------------------------------------------------------------------


def test_a_forked_child_opens_its_own_connections(tracker: JobTracker) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    job = tracker.start(NS, 2)
    read, write = os.pipe()
    with warnings.catch_warnings():  # (3.12+: the pool's threads make fork() "deprecated")
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: record once on a pool of its own
        try:
            tracker.record(NS, job.job_id, successful=1)
            os.write(write, b"ok")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 10) == b"ok"
    # the parent's connection was not touched by the child: it still works
    assert tracker.record(NS, job.job_id, successful=1).successful == 2


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def test_the_fast_path_leaves_the_rate_to_the_next_second(store: PostgresStore) -> None:
    clock = ManualClock()
    first, folded = rate_waits_a_second(JobTracker(store, clock=clock), clock)
    # all 5 items as of the update that folds them ("add_all", at :now)
    assert folded.rate == add_rate(first.rate, first.rate_at, 5, folded.rate_at)[0]
