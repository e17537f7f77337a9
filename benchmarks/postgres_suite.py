"""PostgreSQL suite: PostgresStore against raw psycopg on the same throwaway server.

The server is one of our own (``tests/pg_server.py``: ``initdb`` in a
temporary directory, a free loopback port, ``fsync=off``; never a server on
5432). Its baselines are raw psycopg statements on one autocommit connection,
a table ``bare (id integer PRIMARY KEY, n bigint)`` of one row: psycopg
prepares a statement after its fifth run on a connection (its default
``prepare_threshold``), as it does the store's. The suite is skipped, with a
note, where psycopg or the PostgreSQL binaries are missing.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobtrack import MAX_COUNT, JobTracker, Update

from .common import Row, paired, skipped

if TYPE_CHECKING:
    from psycopg import Connection

    from tests.pg_server import PgServer

SCHEMA = "bench"
UPDATE = "UPDATE bare SET n = n + 1 WHERE id = %s RETURNING n"
SELECT = "SELECT n FROM bare WHERE id = %s"
BATCH = 100


class NoPostgres(Exception):
    """No throwaway PostgreSQL server here (psycopg or the binaries missing, or it failed)."""


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[PgServer]:
    """A PostgreSQL server of our own in a temporary directory, removed on exit.

    :raises NoPostgres: when psycopg or the PostgreSQL binaries are missing, or
        the server does not start (the reason in one line).
    """
    try:
        from tests.pg_server import PgServerError, start_postgres
    except ImportError as exc:
        raise NoPostgres(f"psycopg is not installed ({exc})") from exc
    # not a TemporaryDirectory of ours: as root, the server runs as the postgres user and
    # start_postgres hands it the directory (and removes it when it cannot start)
    directory = Path(tempfile.mkdtemp(prefix="jobtrack-bench-pg-"))
    try:
        server = start_postgres(directory)
    except (PgServerError, OSError, subprocess.SubprocessError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NoPostgres(f"no throwaway PostgreSQL server: {first}") from exc
    with server:
        yield server


def store_url(server: PgServer, schema: str = SCHEMA) -> str:
    """The URL of a PostgresStore in *schema* of *server* (the store makes it on first open)."""
    return f"{server.url}?schema={schema}"


def postgres_suite(quick: bool) -> list[Row]:
    """record, get and record_many against raw psycopg statements on the same server."""
    try:
        with throwaway_postgres() as server, pinned(server):
            return _measure(server, quick)
    except NoPostgres as exc:
        return [skipped("postgres", "(every row)", str(exc))]


@contextlib.contextmanager
def pinned(server: PgServer) -> Iterator[None]:
    """This process on the first CPU, the server (and the backends it forks) on the others.

    Unpinned, a loopback round trip costs 35 us when the kernel puts a
    connection's backend on the client's CPU and 120 us when on the other,
    and it places the raw connection's backend and the pool's as it likes:
    the same code read 0.3 or 1.3 of the baseline from one run to the next
    (measured 2026-12-05). Pinned, both connections cross CPUs alike, as
    they do to a server of its own. Where it cannot pin (one CPU, no
    ``sched_setaffinity``), nothing changes.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    process = server._process
    if len(cpus) < 2 or process is None:
        yield
        return
    pids = [process.pid]
    with contextlib.suppress(OSError):  # its helper processes (Linux: /proc)
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text()
        pids += [int(pid) for pid in children.split()]
    mine = set(cpus)
    try:
        for pid in pids:
            with contextlib.suppress(OSError):  # (a helper that just ended)
                os.sched_setaffinity(pid, cpus[1:])
        os.sched_setaffinity(0, cpus[:1])
        yield
    finally:
        os.sched_setaffinity(0, mine)


def _measure(server: PgServer, quick: bool) -> list[Row]:
    n, rounds = (1_000, 3) if quick else (10_000, 5)
    tracker = JobTracker(store_url(server))
    raw = server.connect()  # autocommit
    raw.execute("CREATE TABLE bare (id integer PRIMARY KEY, n bigint NOT NULL)")
    raw.execute("INSERT INTO bare VALUES (1, 0)")
    rows: list[Row] = []
    try:
        jid = tracker.start("bench", MAX_COUNT).job_id

        def raw_update() -> Any:
            return raw.execute(UPDATE, (1,)).fetchone()

        def raw_select() -> Any:
            return raw.execute(SELECT, (1,)).fetchone()

        record = functools.partial(tracker.record, "bench", jid, processed=1)
        ours, base = paired(record, raw_update, n, rounds)
        rows.append(Row("postgres", "record", ours, base, "raw UPDATE ... RETURNING", 0.9))
        get = functools.partial(tracker.get, "bench", jid)
        ours, base = paired(get, raw_select, n, rounds)
        rows.append(Row("postgres", "get", ours, base, "raw primary-key SELECT", 0.9))
        items = (f"s3://bucket/doc-{i:025d}" for i in itertools.count())  # 40 characters
        with_items = tracker.start("bench", MAX_COUNT).job_id

        def new_item() -> Any:
            return tracker.record("bench", with_items, processed=1, successful=1, item=next(items))

        ours, base = paired(new_item, raw_update, n, rounds)
        rows.append(
            Row("postgres", "record, new item each", ours, base, "raw UPDATE ... RETURNING")
        )

        updates = [Update("bench", jid, processed=1)] * BATCH
        many = functools.partial(tracker.record_many, updates)
        for sync_each, name in (
            (True, f"raw UPDATE ... RETURNING x{BATCH} in a pipeline, a Sync after each"),
            (False, f"raw UPDATE ... RETURNING x{BATCH} in a pipeline, one Sync"),
        ):
            ours, base = paired(
                many, functools.partial(_raw_pipeline, raw, sync_each), max(20, n // 50), rounds,
                block=5,
            )  # fmt: skip
            rows.append(
                Row("postgres", f"record_many ({BATCH} updates)", ours * BATCH, base * BATCH,
                    name, note="updates/s")
            )  # fmt: skip
    finally:
        raw.close()
        tracker.close()
    return rows


def _raw_pipeline(raw: Connection[Any], sync_each: bool) -> list[Any]:
    """*BATCH* raw updates in one round trip (psycopg's pipeline mode), and their rows.

    With *sync_each*, a Sync follows each statement, so each is its own
    transaction, whose failure stops no other (what ``record_many`` needs, and
    what the store sends); without, psycopg sends one Sync at the end of the
    pipeline: the server runs the whole batch as one transaction (one commit).
    """
    with raw.pipeline() as pipeline:
        cursors = []
        for _ in range(BATCH):
            cursors.append(raw.execute(UPDATE, (1,)))
            if sync_each:
                pipeline._enqueue_sync()  # psycopg's own step (sync() would wait for results)
    return [cursor.fetchone() for cursor in cursors]
