"""PostgresStore: every job in PostgreSQL tables, shared by processes on many hosts.

The store runs the SQL stores' schema and operations (:mod:`.schema`,
:mod:`.operations`) through psycopg 3 (``pip install 'jobtrack[postgres]'``),
over a bounded pool of connections: one runner here drives them with
:class:`psycopg_pool.ConnectionPool`, the other, in :class:`AsyncPostgresStore`,
awaits the same operations on a :class:`psycopg_pool.AsyncConnectionPool`.

What it relies on, and nothing more, so that PostgreSQL-compatible
distributed databases (CockroachDB, YugabyteDB) stay a path for users who
outgrow one server:

* **One statement per update.** Counters alone are one ``UPDATE … RETURNING``
  (``add``; ``add_all`` once a second per job and at completion). Every other
  update (items, errors, aborts, ``extend``, ``reap``'s conditional abort)
  is one call of the PL/pgSQL function ``jobtrack_apply`` (``apply.sql``, a
  port of :mod:`jobtrack.rules`). Each statement runs in its own transaction
  (autocommit), so no update's transaction spans a round trip. (Starting a
  job in place of a forgotten one is the exception: ``operations.create``
  deletes and inserts in one transaction.)
* **Row locks under READ COMMITTED, and nothing else.** ``jobtrack_apply``
  locks the job's row first (``FOR NO KEY UPDATE``); every writer of a job, its
  items and error groups does so, so they never interleave. No advisory
  locks, no sequences, no temporary tables (``LISTEN``/``NOTIFY`` serve only push:
  :mod:`.listen`). A statement that
  the server rolls back for a serialization failure or a deadlock (which
  SERIALIZABLE databases report where PostgreSQL's READ COMMITTED waits) is
  sent again: nothing of it was applied.
* **No server clock.** Every time is a number of milliseconds from the
  tracker's clock, passed as a parameter; ``now()`` is never called.
* What a port to another server must check: PL/pgSQL with ``%ROWTYPE`` and
  ``SELECT … INTO``, ``SELECT … FOR NO KEY UPDATE``, ``INSERT … ON CONFLICT
  DO UPDATE``, row-value comparisons, partial indexes, ``COLLATE "C"``,
  ``WITH (fillfactor = …)``, and pipeline mode for batches. Error texts are
  stored with NUL escaped (``text`` holds none: :func:`escaped`).
* Its tables live in one schema (the URL's ``?schema=``, made on first
  open, else the connection's default ``search_path``); the first open
  creates them, idempotently, and records the schema version in
  ``jobtrack_meta``, safely when several processes open at once (a process
  that loses the race to create them reads the winner's).

Batches (``update_many``) go in one round trip in pipeline mode, each update
its own ``jobtrack_apply`` call and transaction, in the order given. A server
that cannot be reached is ``StoreUnavailable`` within the URL's ``timeout``;
connections the server closed (a restart) are dropped before use, so the
store recovers by itself when it is back.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime as _dt
import importlib.resources
import math
import select
import threading
import urllib.parse
import weakref
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ...clock import to_ms
from ...errors import (
    ConfigurationError,
    JobNotFound,
    JobtrackError,
    StoreCorrupt,
    StoreUnavailable,
    shown,
)
from ...model import MAX_COUNT, ErrorCount, FailedItem, JobStatus, NamespaceCounts
from ...rules import MAX_ERROR_GROUPS, RATE_TAU_MS, Delta, apply, apply_item
from .. import forks
from ..protocol import BEAT_MS, Features, ListKey
from ..push import Subscriptions
from ..registry import Option, StoreURL, boolean, integer, seconds, text
from . import operations as ops
from .listen import NOTIFY, PostgresFeed, notifying
from .schema import JOB_COLUMNS, LAST_MS, SCHEMA_VERSION, Dialect, decode_job

if TYPE_CHECKING:
    from psycopg import AsyncConnection, Connection
    from psycopg_pool import AsyncConnectionPool, ConnectionPool

__all__ = ["AsyncPostgresStore", "PostgresStore"]

DIALECT = Dialect(
    "postgresql",
    named=False,
    jobs_options=" WITH (fillfactor = 80)",
    key='TEXT COLLATE "C"',
    real="DOUBLE PRECISION",
)

DEFAULT_POOL_SIZE = 10
DEFAULT_TIMEOUT = 5.0
"""Seconds to connect, or to wait for a free connection of the pool (``StoreUnavailable``)."""

SCHEMA_PATTERN = r"(?!pg_)[A-Za-z_][A-Za-z0-9_]{0,62}"
"""A schema name: an SQL identifier of at most 63 characters (``pg_`` is the server's)."""

_PATH = r"[^\x00-\x1f]{1,4096}"
OPTIONS: dict[str, Option] = {
    "schema": text(None, SCHEMA_PATTERN),
    "create": boolean(True),
    "pool_size": integer(DEFAULT_POOL_SIZE, 1, 1000),
    "timeout": seconds(DEFAULT_TIMEOUT),
    "statement_timeout": seconds(None),
    # passed on to libpq, checked here first
    "application_name": text("jobtrack", r"[ -~]{1,63}"),
    "host": text(None, _PATH),
    "sslmode": text(None, "disable|allow|prefer|require|verify-ca|verify-full"),
    "sslrootcert": text(None, _PATH),
    "sslcert": text(None, _PATH),
    "sslkey": text(None, _PATH),
    "sslcrl": text(None, _PATH),
    "channel_binding": text(None, "disable|prefer|require"),
    "target_session_attrs": text(None, "any|read-write|read-only|primary|standby|prefer-standby"),
}
"""The options of a PostgreSQL store URL: jobtrack's own, then the libpq ones it passes on."""

_JOBTRACK_OPTIONS = ("schema", "create", "pool_size", "timeout", "statement_timeout")

_EXTRA = "pip install 'jobtrack[postgres]'"

_SETUP_TRIES = 5
"""Opens that lose the race to create the schema, before giving up."""

_STATEMENT_TRIES = 5
"""Sends of a statement the server rolled back (serialization failure, deadlock)."""

_TUPLES_OK = 2
"""``psycopg.pq.ExecStatus.TUPLES_OK``: a result with rows (else the statement returned none)."""

_IDLE = 0
"""``psycopg.pq.TransactionStatus.IDLE``: no transaction open on the connection."""

APPLIED, MISSING = 0, 2
"""Outcomes ``jobtrack_apply`` returns (1: not applied; see ``apply.sql``)."""

Answer = ops.Rows | JobtrackError
Batch = Generator[builtins.list[ops.Query], builtins.list[Answer], builtins.list[Any]]


def import_psycopg() -> Any:
    """Import psycopg and psycopg_pool, or raise ``ConfigurationError`` naming the extra."""
    try:
        import psycopg  # noqa: PLC0415
        import psycopg_pool  # noqa: PLC0415, F401 (the pools)
    except ImportError as exc:
        raise ConfigurationError(
            f"the PostgreSQL store needs psycopg 3 and psycopg-pool, which are not installed: "
            f"{_EXTRA}"
        ) from exc
    return psycopg


_NUL, _ESCAPE = "\x00", "\x01"
_TEXTS = ("error", "last_error", "message")
"""The parameters and columns that hold error texts: any text but a lone surrogate."""

_APPLY_COLUMNS = ("outcome", *JOB_COLUMNS.split(", "), "item_state", "item_error")
"""What ``jobtrack_apply`` returns (see ``apply.sql``)."""


def escaped(text: str) -> str:
    r"""*text* as PostgreSQL can hold it: ``text`` takes no NUL.

    NUL becomes ``\x01 0`` and ``\x01`` itself ``\x01 1``: a text without
    either (every name and item, nearly every error) is stored as it is, and
    equal texts stay equal, so error groups are the same as on other stores.
    """
    if _NUL not in text and _ESCAPE not in text:
        return text
    return text.replace(_ESCAPE, _ESCAPE + "1").replace(_NUL, _ESCAPE + "0")


def unescaped(text: str) -> str:
    """The text :func:`escaped` stored as *text*."""
    if _ESCAPE not in text:
        return text
    return text.replace(_ESCAPE + "0", _NUL).replace(_ESCAPE + "1", _ESCAPE)


class Statements:
    """The store's statements by name, and which of their parameters and columns are texts.

    ``sql``: every statement the store runs, the shared ones and ``apply``;
    ``texts_in[name]``: the parameters of error texts a statement takes;
    ``texts_out[name]``: the positions of the error texts in its rows.
    """

    def __init__(self) -> None:
        shared = DIALECT.statements()
        self.sql = {
            **shared,
            "add_all": notifying(shared["add_all"], JOB_COLUMNS),
            "delete": notifying(
                shared["delete"].replace("RETURNING 1", "RETURNING namespace, job_id"),
                "namespace, job_id",
            ),
            "apply": (
                f"SELECT * FROM {DIALECT.prefix}apply(%(ns)s, %(id)s, %(item)s, %(processed)s, "
                "%(successful)s, %(failed)s, %(error)s, %(abort)s, %(more)s, %(if_updated)s, "
                "%(now)s, %(retain)s)"
            ),
            "begin": "BEGIN",
            "commit": "COMMIT",
        }
        self.texts_in: dict[str, tuple[str, ...]] = {}
        self.texts_out: dict[str, tuple[int, ...]] = {}
        for name, sql in self.sql.items():
            taken = tuple(key for key in _TEXTS if f"%({key})s" in sql)
            if taken:
                self.texts_in[name] = taken
            columns = _APPLY_COLUMNS if name == "apply" else _result_columns(sql)
            given = tuple(
                i for i, column in enumerate(columns) if column in (*_TEXTS, "item_error")
            )
            if given:
                self.texts_out[name] = given

    def outgoing(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """*params* with their error texts :func:`escaped`."""
        keys = self.texts_in.get(name)
        if keys is None:
            return params
        for key in keys:
            value = params.get(key)
            if value is not None:
                stored = escaped(value)
                if stored is not value:
                    params = {**params, key: stored}
        return params

    def incoming(self, name: str, rows: ops.Rows) -> ops.Rows:
        """*rows* with their error texts :func:`unescaped`."""
        positions = self.texts_out.get(name)
        if positions is None:
            return rows
        for n in range(len(rows)):
            for i in positions:
                value = rows[n][i]
                if value is not None and _ESCAPE in value:
                    rows[n] = (*rows[n][:i], unescaped(value), *rows[n][i + 1 :])
        return rows


def _result_columns(sql: str) -> builtins.list[str]:
    """The names of the columns a statement returns (``RETURNING`` or its first ``SELECT``)."""
    if " RETURNING " in sql:
        listed = sql.rpartition(" RETURNING ")[2]
    elif sql.startswith("SELECT "):
        listed = sql[len("SELECT ") :].partition(" FROM ")[0]
    else:
        return []
    return [column.strip().rpartition(".")[2] for column in listed.split(",")]


# -- the operations PostgreSQL adds: one update through jobtrack_apply, and batches ---------


def apply_function(
    namespace: str, job_id: str, delta: Delta, now: _dt.datetime
) -> ops.Op[JobStatus]:
    """Any update, in one call of ``jobtrack_apply`` (an :data:`.operations.Apply`).

    When the function does not apply the update, it returns the job (and the
    item) as it found them under its lock; :mod:`jobtrack.rules`, run on the
    same values, raise the error that says why, or find a redelivery.
    """
    retain = None if delta.retain is None else delta.retain[0]
    rows = yield (
        "apply",
        {
            "ns": namespace,
            "id": job_id,
            "item": delta.item,
            "processed": delta.processed,
            "successful": delta.successful,
            "failed": delta.failed,
            "error": delta.error,
            "abort": delta.abort,
            "more": delta.more,
            "if_updated": delta.if_updated,
            "now": to_ms(now),
            "retain": retain,
        },
    )
    outcome, *columns, state, error = rows[0]
    if outcome == MISSING:
        raise JobNotFound(namespace, job_id)
    job = decode_job(tuple(columns))  # StoreCorrupt for a row that is not a valid job
    if outcome == APPLIED:
        return job
    if delta.item is None:
        apply(job, delta, now)  # raises what the rules say
    elif apply_item(job, state, error, delta, now) is None:
        return job  # a redelivery: nothing changed
    raise StoreCorrupt(
        f"jobtrack_apply refused an update of job {job_id!r} in namespace {namespace!r} "
        "that jobtrack.rules accept: the database's function is not this jobtrack's"
    )


def lockstep(operations: Sequence[ops.Op[ops.R]]) -> Batch:
    """Drive *operations* side by side: their next statements go out together, a round each.

    Yields the statements of a round (one per operation still running) and
    is sent back each one's rows, or the ``JobtrackError`` that stopped it;
    returns, in order, each operation's result or error. Operations on one
    job apply in order only if each settles in one statement (as
    :func:`apply_function` does): a later one's first round would overtake
    an earlier one's second.
    """
    results: builtins.list[Any] = [None] * len(operations)
    pending: dict[int, ops.Query] = {}

    def advance(i: int, rows: ops.Rows | None) -> None:
        try:
            pending[i] = operations[i].send(rows)  # type: ignore[arg-type]
        except StopIteration as stop:
            results[i] = stop.value
        except JobtrackError as exc:
            results[i] = exc

    for i in range(len(operations)):
        advance(i, None)
    while pending:
        slots = builtins.list(pending)
        answers = yield [pending.pop(i) for i in slots]
        for i, answer in zip(slots, answers, strict=True):
            if isinstance(answer, JobtrackError):
                results[i] = answer
                operations[i].close()
            else:
                advance(i, answer)
    return results


# -- the sync store ------------------------------------------------------------------------


class PostgresStore(ops.StoreMethods):
    """Jobs in PostgreSQL: processes on many hosts may share them.

    *url* is ``postgresql://[user[:password]@][host][:port][/database][?options]``
    (``postgres://`` too), with the options of ``docs/stores.md``: ``schema``
    (the tables' schema, made if missing; default: the connection's
    ``search_path``), ``pool_size`` (connections at most, default 10),
    ``timeout`` (seconds to connect or wait for a connection, default 5),
    ``statement_timeout`` (seconds, default none), and libpq's
    ``application_name``, ``host``, ``sslmode``, ``sslrootcert``,
    ``sslcert``, ``sslkey``, ``sslcrl``, ``channel_binding`` and
    ``target_session_attrs``. *schema*, *pool_size* and *timeout* override the
    URL's. The server's tables and function are created on the first open.

    :raises ConfigurationError: for a bad URL or option, a database of a newer
        jobtrack, or a role that may not create what is missing.
    :raises StoreUnavailable: if the server cannot be reached within ``timeout``.
    """

    features = Features(
        processes=True,
        native_async=True,
        items=True,
        expiry=True,
        statuses=True,
        namespaces=True,
        push=True,
    )
    """Blocking (the async face has its own pool: :meth:`open_async`), shared by hosts."""

    scheme = "postgresql"
    _apply = staticmethod(apply_function)

    def __init__(
        self,
        url: str | StoreURL,
        *,
        schema: str | None = None,
        pool_size: int | None = None,
        timeout: float | None = None,
    ) -> None:
        psycopg = import_psycopg()
        parsed = url if isinstance(url, StoreURL) else StoreURL.parse(url)
        if parsed.scheme not in ("postgresql", "postgres"):
            raise ConfigurationError(
                f"{parsed.shown!r} is not a PostgreSQL URL (postgresql://user@host:port/database)"
            )
        for name, value, kinds, what in (
            ("schema", schema, (str,), "a str"),
            ("pool_size", pool_size, (int,), "an int"),
            ("timeout", timeout, (int, float), "a number of seconds"),
        ):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise ConfigurationError(f"{name} must be {what}, got {shown(value)}")
            parsed = parsed.with_option(
                name, repr(float(value)) if name == "timeout" else str(value)
            )
        options = parsed.options(**OPTIONS)
        self._parsed = parsed
        self.url: str = parsed.url
        """The URL that opens this store (in another process, say); it holds the password."""
        self.schema: str | None = options["schema"]
        self.create_tables: bool = options["create"] and parsed.create
        self.pool_size: int = options["pool_size"]
        self.timeout: float = options["timeout"]
        self._password = _password(parsed)
        self._conninfo = self._make_conninfo(psycopg, parsed, options)
        self._statements = Statements()
        errors = psycopg.errors
        self._errors: tuple[type[BaseException], ...] = (psycopg.Error,)
        self._retried: tuple[type[BaseException], ...] = (errors.TransactionRollback,)
        self._raced: tuple[type[BaseException], ...] = (
            errors.UniqueViolation,
            errors.DuplicateObject,
            errors.DuplicateTable,
            errors.DuplicateSchema,
            errors.DuplicateFunction,
            errors.InternalError_,  # "tuple concurrently updated": a function made twice
        )
        self._lock = threading.Lock()
        self._pool: ConnectionPool[Any] | None = None
        self._generation = forks.generation
        self.push = Subscriptions(lambda: PostgresFeed(psycopg, self._conninfo), "PostgreSQL")
        try:
            self._open_schema()
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_url(cls, url: StoreURL) -> PostgresStore:
        """The factory of ``postgresql://`` and ``postgres://``."""
        return cls(url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._parsed.shown!r})"

    # -- connections ---------------------------------------------------------------------

    def _make_conninfo(self, psycopg: Any, url: StoreURL, options: dict[str, Any]) -> str:
        """The libpq connection string: the URL without its query, and the options' settings."""
        settings = [] if self.schema is None else [f'-c search_path="{self.schema}"']
        if options["statement_timeout"] is not None:
            ms = max(1, round(options["statement_timeout"] * 1000))
            settings.append(f"-c statement_timeout={ms}")
        given = {
            name: value
            for name, value in options.items()
            if value is not None and name not in _JOBTRACK_OPTIONS
        }
        if settings:
            given["options"] = " ".join(settings)
        given["connect_timeout"] = max(2, math.ceil(self.timeout))  # libpq: whole seconds, >= 2
        try:
            return str(psycopg.conninfo.make_conninfo(url.url.partition("?")[0], **given))
        except psycopg.Error as exc:
            raise ConfigurationError(
                f"bad PostgreSQL URL {url.shown!r}: {self._scrub(str(exc))}"
            ) from None

    def _new_pool(self, asynchronous: bool = False, **options: Any) -> Any:
        """A pool of at most ``pool_size`` autocommit connections, opened by the caller.

        It holds no connection until one is asked for, drops connections idle
        for a minute, and gives up a connection it cannot make within
        ``timeout`` (a later request tries again at once).
        """
        import psycopg_pool  # noqa: PLC0415

        kind = psycopg_pool.AsyncConnectionPool if asynchronous else psycopg_pool.ConnectionPool
        return kind(
            self._conninfo,
            kwargs={"autocommit": True},
            min_size=0,
            max_size=self.pool_size,
            open=False,
            timeout=self.timeout,
            reconnect_timeout=self.timeout,
            max_idle=60.0,
            name="jobtrack",
            **options,
        )

    def _pool_now(self) -> ConnectionPool[Any]:
        """The pool of this process, made (and opened) on first use, and after :meth:`close`."""
        pool = self._pool
        if pool is not None and self._generation == forks.generation:
            return pool
        with self._lock:
            if self._generation != forks.generation:  # a forked child: not the parent's
                self._pool, self._generation = None, forks.generation
            if self._pool is None:
                pool = self._new_pool()
                pool.open()
                self._pool = pool
            return self._pool

    def _getconn(self, pool: ConnectionPool[Any]) -> tuple[Connection[Any], Any]:
        """A connection of *pool* that its server has not closed, and its cursor.

        :raises StoreUnavailable: when none comes within ``timeout``.
        """
        try:
            while True:
                conn: Connection[Any] = pool.getconn()
                cursor = _sound(conn)
                if cursor is not None:
                    return conn, cursor
                conn.close()  # the server closed it (a restart): the pool makes another
                pool.putconn(conn)
        except self._errors as exc:
            raise self._translated(exc) from exc

    def _open_schema(self) -> None:
        """Check the schema version; on a database without it, make the tables and function."""
        pool = self._pool_now()
        conn, _ = self._getconn(pool)
        try:
            for attempt in range(_SETUP_TRIES):
                try:
                    if self._version(conn) is None:
                        if not self.create_tables:
                            where = f"schema {self.schema!r}" if self.schema else "its search_path"
                            raise ConfigurationError(
                                f"no jobtrack tables in {where} at {self._parsed.shown!r}, "
                                "and the store may not make them (create=false)"
                            )
                        self._create_schema(conn)
                    return
                except self._raced:  # another process made them meanwhile: read its version
                    if attempt == _SETUP_TRIES - 1:
                        raise
        except self._errors as exc:
            raise self._translated(exc, opening=True) from exc
        finally:
            pool.putconn(conn)

    def _version(self, conn: Connection[Any]) -> str | None:
        """The database's schema version (None: none recorded, or no tables yet).

        :raises ConfigurationError: for a version that is not this jobtrack's.
        """
        import psycopg.errors  # noqa: PLC0415

        try:
            row = conn.execute(self._statements.sql["version"]).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        if row is not None and row[0] != str(SCHEMA_VERSION):
            raise ConfigurationError(
                f"{self._parsed.shown!r} has jobtrack schema version {row[0]!r}; this jobtrack "
                f"reads version {SCHEMA_VERSION}: upgrade jobtrack"
            )
        return None if row is None else str(row[0])

    def _create_schema(self, conn: Connection[Any]) -> None:
        """Make the schema, tables, indexes and function and record the version: one transaction."""
        with conn.transaction():
            if self.schema is not None:
                found = conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", [self.schema]
                ).fetchone()
                if found is None:  # (only then: CREATE needs a privilege even IF NOT EXISTS)
                    conn.execute(f'CREATE SCHEMA "{self.schema}"')
            for statement in DIALECT.schema():
                conn.execute(statement)
            function = importlib.resources.files(__package__).joinpath("apply.sql")
            conn.execute(  # CREATE OR REPLACE FUNCTION jobtrack_apply
                function.read_text("utf-8").format(
                    p=DIALECT.prefix,
                    max_count=MAX_COUNT,
                    max_groups=MAX_ERROR_GROUPS,
                    tau_ms=RATE_TAU_MS,
                    beat_ms=BEAT_MS,
                    last_ms=LAST_MS,
                    notify=NOTIFY.format(ns="p_ns", id="p_id"),
                )
            )
            if self._version(conn) is None:
                conn.execute(self._statements.sql["set_version"], {"version": str(SCHEMA_VERSION)})

    # -- the runner ------------------------------------------------------------------------

    def _run(self, op: ops.Op[ops.R]) -> ops.R:
        """Execute the statements *op* yields, on one connection of the pool, until it returns."""
        pool = self._pool_now()
        conn, cursor = self._getconn(pool)
        try:
            statements = self._statements
            sql = statements.sql
            query = next(op)
            tries = 0
            while True:
                name, params = query
                try:
                    cursor.execute(sql[name], statements.outgoing(name, params))
                except self._retried:
                    tries += 1  # (not in a transaction: the rollback took its earlier statements)
                    if tries == _STATEMENT_TRIES or conn.pgconn.transaction_status != _IDLE:
                        raise
                    continue
                tries = 0
                query = op.send(statements.incoming(name, _rows(cursor)))
        except StopIteration as stop:
            done: ops.R = stop.value
            return done
        except self._errors as exc:
            raise self._translated(exc) from exc
        finally:
            if conn.pgconn.transaction_status != _IDLE:  # an operation that stopped midway
                try:
                    conn.rollback()
                except Exception:  # (psycopg.Error: the connection is gone; the pool replaces it)
                    conn.close()
            pool.putconn(conn)

    def _run_batch(self, batch: Batch) -> builtins.list[Any]:
        """Run a :func:`lockstep` batch: each round of statements in one pipeline (a round trip)."""
        statements = self._statements
        pool = self._pool_now()
        conn, _ = self._getconn(pool)
        try:
            queries = next(batch)
            while True:
                cursors = []
                failures: builtins.list[BaseException] = []
                try:
                    with conn.pipeline() as pipeline:
                        for name, params in queries:
                            cursor = conn.cursor()
                            cursors.append(cursor)
                            try:
                                cursor.execute(
                                    statements.sql[name], statements.outgoing(name, params)
                                )
                            except self._errors as exc:  # (an earlier statement's, seen now)
                                failures.append(exc)
                            # a Sync after each: each statement its own transaction, whose
                            # failure stops no other (psycopg's Pipeline.sync() would wait)
                            pipeline._enqueue_sync()
                except self._errors as exc:
                    failures.append(exc)
                answers: builtins.list[Answer] = []
                for (name, _), (error, cursor) in zip(
                    queries, self._answers(cursors, failures), strict=True
                ):
                    answers.append(error or statements.incoming(name, _rows(cursor)))
                queries = batch.send(answers)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        except self._errors as exc:  # (reading a result that was there: not seen)
            raise self._translated(exc) from exc
        finally:
            pool.putconn(conn)

    def _answers(
        self, cursors: builtins.list[Any], failures: builtins.list[BaseException]
    ) -> builtins.list[tuple[JobtrackError | None, Any]]:
        """Each pipelined statement's cursor, or the error that stopped it.

        A statement whose cursor has no result failed. When as many errors were
        raised as statements failed, they are theirs in order; otherwise (two
        failures surfaced as one) each failed statement gets the first.
        """
        failed = [cursor for cursor in cursors if cursor.pgresult is None]
        if not failed:
            return [(None, cursor) for cursor in cursors]
        errors = [self._translated(exc) for exc in failures]
        if not errors:  # (psycopg raises for a statement without a result: not seen)
            errors = [StoreUnavailable(f"PostgreSQL store {self._parsed.shown}: no result")]
        if len(errors) != len(failed):
            errors = [errors[0]] * len(failed)
        mine = dict(zip(map(id, failed), errors, strict=True))
        return [(mine.get(id(cursor)), cursor) for cursor in cursors]

    def _translated(self, exc: BaseException, opening: bool = False) -> JobtrackError:
        """The jobtrack error for a psycopg error (*opening*: while making the tables).

        Data the store did not write (a value out of range, a broken constraint),
        tables or a function gone or altered: ``StoreCorrupt``. A role that may not
        do what the store needs: ``ConfigurationError``. Anything else (the server
        down, unreachable or shutting down, no free connection, a timeout):
        ``StoreUnavailable``.
        """
        psycopg = import_psycopg()
        import psycopg_pool  # noqa: PLC0415

        head = f"PostgreSQL store {self._parsed.shown}"
        detail = self._scrub(f"{type(exc).__name__}: {exc}".strip())
        if isinstance(exc, psycopg_pool.PoolTimeout):
            return StoreUnavailable(
                f"{head}: no connection within {self.timeout:g} s (is the server down or "
                f"unreachable, or are all {self.pool_size} connections of the pool busy?)"
            )
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            what = "create jobtrack's tables" if opening else "use jobtrack's tables"
            return ConfigurationError(f"{head}: the role may not {what}: {detail}")
        if isinstance(exc, (psycopg.DataError, psycopg.IntegrityError)):
            return StoreCorrupt(f"{head} holds data jobtrack did not write: {detail}")
        if isinstance(exc, psycopg.ProgrammingError):
            return StoreCorrupt(
                f"{head}: jobtrack's tables or function are missing or altered: {detail}"
            )
        return StoreUnavailable(f"{head}: {detail}")

    def _scrub(self, message: str) -> str:
        """*message* without the password, should a driver ever echo it."""
        for secret in self._password:
            message = message.replace(secret, "***")
        return message

    # -- the protocol ----------------------------------------------------------------------

    def update_many(
        self, updates: Sequence[tuple[str, str, Delta]], now: _dt.datetime
    ) -> builtins.list[JobStatus | JobtrackError]:
        """Apply each update in its own transaction, all in one round trip (pipeline mode).

        Every update goes through ``jobtrack_apply`` (counters alone too): one
        statement that settles it, so the updates of one job apply in the order
        given. (``add`` may need a second statement, ``add_all``, which a later
        update of the same job in the batch would overtake.)
        """
        if not updates:
            return []
        return self._run_batch(
            lockstep([apply_function(ns, jid, d, now) for ns, jid, d in updates])
        )

    def purge(self, expired_before: _dt.datetime) -> int:
        """Remove every job expired at or before *expired_before* (autovacuum reclaims space)."""
        return self._run(ops.purge(expired_before))

    def wait_change(
        self, namespace: str, job_id: str, seen: JobStatus | None, timeout: float
    ) -> None:
        """Return once the job may differ from *seen*, or after *timeout* s (see :mod:`.listen`).

        One connection per store and process listens; the job is read once,
        then again only when it is notified.
        """
        self.push.wait((namespace, job_id), timeout, lambda: self.get(namespace, job_id) != seen)

    def open_async(self) -> AsyncPostgresStore:
        """The native async view of this store: the same operations, on its own pools."""
        return AsyncPostgresStore(self)

    def close(self) -> None:
        """Close the pool's connections (the store opens a new pool if used again)."""
        self.push.close()
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._generation == forks.generation:
            pool.close()


# -- the async view ------------------------------------------------------------------------


class AsyncPostgresStore:
    """Awaitable twin of a :class:`PostgresStore`: the same operations, awaited on psycopg.

    A psycopg async pool belongs to the event loop it was opened in, so each
    running loop gets its own (of at most ``pool_size`` connections), opened
    on first use there. It is closed by :meth:`aclose`, or when its loop
    ends cancelling the tasks it still runs (``asyncio.run`` does).
    """

    def __init__(self, store: PostgresStore) -> None:
        self.sync = store
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPool] = (
            weakref.WeakKeyDictionary()
        )

    async def _pool_now(self) -> AsyncConnectionPool[Any]:
        loop = asyncio.get_running_loop()
        mine = self._pools.get(loop)
        if mine is None:
            made: weakref.WeakSet[AsyncConnection[Any]] = weakref.WeakSet()

            async def keep(conn: AsyncConnection[Any]) -> None:
                made.add(conn)

            mine = _LoopPool(self.sync._new_pool(asynchronous=True, configure=keep), made)
            self._pools[loop] = mine
            mine.guard = loop.create_task(self._guard(loop, mine), name="jobtrack pool guard")
        if not mine.opened:  # (open is idempotent: tasks that came meanwhile wait for it too)
            await mine.pool.open()
            mine.opened = True
        return mine.pool

    async def _getconn(self, pool: AsyncConnectionPool[Any]) -> tuple[AsyncConnection[Any], Any]:
        try:
            while True:
                conn: AsyncConnection[Any] = await pool.getconn()
                cursor = _sound(conn)
                if cursor is not None:
                    return conn, cursor
                await conn.close()
                await pool.putconn(conn)
        except self.sync._errors as exc:
            raise self.sync._translated(exc) from exc

    async def _run(self, op: ops.Op[ops.R]) -> ops.R:
        """The sync store's runner, awaited."""
        store = self.sync
        pool = await self._pool_now()
        conn, cursor = await self._getconn(pool)
        try:
            statements = store._statements
            sql = statements.sql
            query = next(op)
            tries = 0
            while True:
                name, params = query
                try:
                    await cursor.execute(sql[name], statements.outgoing(name, params))
                except store._retried:
                    tries += 1  # (not in a transaction: the rollback took its earlier statements)
                    if tries == _STATEMENT_TRIES or conn.pgconn.transaction_status != _IDLE:
                        raise
                    continue
                tries = 0
                query = op.send(statements.incoming(name, await _arows(cursor)))
        except StopIteration as stop:
            done: ops.R = stop.value
            return done
        except store._errors as exc:
            raise store._translated(exc) from exc
        finally:
            if conn.pgconn.transaction_status != _IDLE:
                with contextlib.suppress(*store._errors):
                    await conn.rollback()
            await pool.putconn(conn)

    async def _run_batch(self, batch: Batch) -> builtins.list[Any]:
        """The sync store's batch runner, awaited."""
        store = self.sync
        statements = store._statements
        pool = await self._pool_now()
        conn, _ = await self._getconn(pool)
        try:
            queries = next(batch)
            while True:
                cursors = []
                failures: builtins.list[BaseException] = []
                try:
                    async with conn.pipeline() as pipeline:
                        for name, params in queries:
                            cursor = conn.cursor()
                            cursors.append(cursor)
                            try:
                                await cursor.execute(
                                    statements.sql[name], statements.outgoing(name, params)
                                )
                            except store._errors as exc:
                                failures.append(exc)
                            pipeline._enqueue_sync()
                except store._errors as exc:
                    failures.append(exc)
                answers: builtins.list[Answer] = []
                for (name, _), (error, cursor) in zip(
                    queries, store._answers(cursors, failures), strict=True
                ):
                    answers.append(error or statements.incoming(name, await _arows(cursor)))
                queries = batch.send(answers)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        except store._errors as exc:
            raise store._translated(exc) from exc
        finally:
            await pool.putconn(conn)

    async def create(self, job: JobStatus, forgotten_before: _dt.datetime | None = None) -> None:
        """See :meth:`PostgresStore.create`."""
        await self._run(ops.create(job, forgotten_before))

    async def update(
        self, namespace: str, job_id: str, delta: Delta, now: _dt.datetime
    ) -> JobStatus:
        """See :meth:`PostgresStore.update`."""
        return await self._run(ops.update(namespace, job_id, delta, now, apply_function))

    async def update_many(
        self, updates: Sequence[tuple[str, str, Delta]], now: _dt.datetime
    ) -> builtins.list[JobStatus | JobtrackError]:
        """See :meth:`PostgresStore.update_many`."""
        if not updates:
            return []
        return await self._run_batch(
            lockstep([apply_function(ns, jid, d, now) for ns, jid, d in updates])
        )

    async def get(self, namespace: str, job_id: str) -> JobStatus | None:
        """See :meth:`PostgresStore.get`."""
        return await self._run(ops.get(namespace, job_id))

    async def delete(self, namespace: str, job_id: str) -> bool:
        """See :meth:`PostgresStore.delete`."""
        return await self._run(ops.delete(namespace, job_id))

    async def list(
        self, namespace: str, limit: int, before: ListKey | None
    ) -> builtins.list[JobStatus]:
        """See :meth:`PostgresStore.list`."""
        return await self._run(ops.list_jobs(namespace, None, limit, before, None))

    async def list_status(
        self, namespace: str, status: str, limit: int, before: ListKey | None, cutoff: int | None
    ) -> builtins.list[JobStatus]:
        """See :meth:`PostgresStore.list_status`."""
        return await self._run(ops.list_jobs(namespace, status, limit, before, cutoff))

    async def failed_items(
        self, namespace: str, job_id: str, limit: int, after: int | None
    ) -> builtins.list[tuple[int, FailedItem]] | None:
        """See :meth:`PostgresStore.failed_items`."""
        return await self._run(ops.failed_items(namespace, job_id, limit, after))

    async def namespaces(
        self, limit: int, after: str | None, now: int, beat: int | None
    ) -> builtins.list[NamespaceCounts]:
        """See :meth:`PostgresStore.namespaces`."""
        return await self._run(ops.namespaces(limit, after, now, beat))

    async def errors(self, namespace: str, job_id: str) -> builtins.list[ErrorCount] | None:
        """See :meth:`PostgresStore.errors`."""
        return await self._run(ops.errors(namespace, job_id))

    async def purge(self, expired_before: _dt.datetime) -> int:
        """See :meth:`PostgresStore.purge`."""
        return await self._run(ops.purge(expired_before))

    async def wait_change(
        self, namespace: str, job_id: str, seen: JobStatus | None, timeout: float
    ) -> None:
        """See :meth:`PostgresStore.wait_change`: the same listener, awaited."""
        await self.sync.push.wait_job(self.get, (namespace, job_id), seen, timeout)

    async def aclose(self) -> None:
        """Close the running loop's pool, if one was opened."""
        mine = self._pools.pop(asyncio.get_running_loop(), None)
        if mine is not None:
            try:
                await mine.pool.close()
            finally:
                mine.made.clear()  # (connections still in use close when given back)
                if mine.guard is not None:
                    mine.guard.cancel()

    async def _guard(self, loop: asyncio.AbstractEventLoop, mine: _LoopPool) -> None:
        """Wait until cancelled, then close the loop's pool and every connection it made.

        ``asyncio.run`` (and the runners built like it) cancels the tasks left
        when its coroutine returns. psycopg_pool's tasks survive a cancellation
        that finds them making a connection: a pool left open would make
        ``asyncio.run`` wait for them forever. Cancelled with them, this task
        closes the pool, so they end; its connections are closed here, because
        the pool's own ``close()`` stops short when its tasks were cancelled.
        The loop is then forgotten (it was kept alive by this very task).
        """
        try:
            await asyncio.Event().wait()
        finally:
            if self._pools.get(loop) is mine:
                del self._pools[loop]
            with contextlib.suppress(asyncio.CancelledError):  # its tasks', cancelled with ours
                await mine.pool.close()
            for conn in builtins.list(mine.made):
                if not conn.closed:
                    await conn.close()


@attrs.define(eq=False)
class _LoopPool:
    """An event loop's async pool, the connections it made, and the task that closes them."""

    pool: AsyncConnectionPool[Any]
    made: weakref.WeakSet[AsyncConnection[Any]]
    guard: asyncio.Task[None] | None = None
    opened: bool = False


# -- helpers -------------------------------------------------------------------------------


class _Kit:
    """What the store keeps with each connection: its cursor, and a poll of its socket.

    The cursor is made once: a cursor keeps what it learnt of the types it
    sends and reads (a new one per statement costs about as much as a
    loopback round trip's client side).
    """

    __slots__ = ("cursor", "waiting")

    def __init__(self, conn: Any) -> None:
        self.cursor = conn.cursor()
        fd = conn.pgconn.socket
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(fd, select.POLLIN | select.POLLPRI)
            self.waiting: Any = lambda: poller.poll(0)
        else:  # Windows: select() takes sockets, which this is
            self.waiting = lambda: select.select([fd], [], [], 0)[0]


def _rows(cursor: Any) -> ops.Rows:
    """The rows of the statement *cursor* ran (none for a statement that returns none)."""
    result = cursor.pgresult
    if result is None or result.status != _TUPLES_OK:
        return []
    rows: ops.Rows = cursor.fetchall()
    return rows


async def _arows(cursor: Any) -> ops.Rows:
    """:func:`_rows` of an async cursor."""
    result = cursor.pgresult
    if result is None or result.status != _TUPLES_OK:
        return []
    rows: ops.Rows = await cursor.fetchall()
    return rows


def _sound(conn: Any) -> Any:
    """The cursor of an idle connection of the pool, or None if its server has closed it.

    An idle connection has nothing to read; anything there (the end of the
    stream, a shutdown notice) means the server is gone or going. Costs one
    ``poll`` of its socket, no round trip.
    """
    if conn.pgconn.status != 0:  # CONNECTION_OK
        return None
    try:
        kit: _Kit = conn._jobtrack
    except AttributeError:
        try:
            kit = conn._jobtrack = _Kit(conn)
        except Exception:  # (psycopg.OperationalError: no socket)
            return None
    return None if kit.waiting() else kit.cursor


def _password(url: StoreURL) -> tuple[str, ...]:
    """The password in *url*, as written and decoded (what an error must never show)."""
    try:
        password = urllib.parse.urlsplit(url.url).password
    except ValueError:
        password = None
    if not password:
        return ()
    return tuple({password, urllib.parse.unquote(password)})
