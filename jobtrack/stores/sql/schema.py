"""The SQL stores' schema and statements, written once for SQLite and PostgreSQL.

Statements use ``:name`` placeholders (SQLite's own); :class:`Dialect`
turns them into psycopg's ``%(name)s``. Where the two dialects differ (a
table option, an integer type), the difference is a ``{word}`` filled in
per dialect; nothing else differs.

Tables (``<p>`` is the store's table prefix, ``jobtrack_``)::

    <p>meta    key -> value: the schema version (SCHEMA_VERSION), the import marker
    <p>jobs    one row a job: its counters, times (ms since the epoch), its
               smoothed rate (rate, rate_at: jobtrack.rules.add_rate; rate_done
               the items done it holds: the fast path leaves it behind), and
               beat_ms (updated_ms rounded down to the second: the stalled
               index moves at most once a second), listed (failed-item
               positions handed out)
    <p>items   one row an item named in a job: its state bits, its error,
               and while it is a failed item its position and failed_ms
    <p>errors  a job's error groups: grp 1..100 by first appearance, grp 0
               the overflow group (message NULL)

Items and error groups reference their job ``ON DELETE CASCADE``: deleting
or purging a job is one statement. Indexes serve every listing with a page
that costs O(limit): partial indexes for running and completed jobs, the
beat index for stalled ones, ``expires_ms`` for purges, and item positions
for failed-item pages. No indexed column changes on an ordinary update
(counters and ``updated_ms`` are not indexed), so PostgreSQL updates stay
HOT and SQLite writes no index page for them.
"""

from __future__ import annotations

import math
import re

import attrs

from ...clock import from_ms
from ...errors import StoreCorrupt
from ...model import MAX_COUNT, JobStatus, Status
from ...rules import RATE_TAU_MS

__all__ = [
    "JOB_COLUMNS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "Dialect",
    "decode_job",
]

SCHEMA_VERSION = 1
"""Recorded in ``<p>meta``; a later release migrates from it."""

LAST_MS = 253402300799999
"""9999-12-31T23:59:59.999Z: an expiry beyond it is never."""

JOB_COLUMNS = (
    "namespace, job_id, total, processed, successful, failed, last_error, "
    "started_ms, updated_ms, finished_ms, expires_ms, rate, rate_at, rate_done"
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS {p}meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS {p}jobs (
    namespace {key} NOT NULL,
    job_id {key} NOT NULL,
    total BIGINT NOT NULL,
    processed BIGINT NOT NULL,
    successful BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    last_error TEXT,
    started_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    finished_ms BIGINT,
    expires_ms BIGINT,
    rate {real} NOT NULL DEFAULT 0,
    rate_at BIGINT NOT NULL DEFAULT 0,
    rate_done BIGINT NOT NULL DEFAULT 0,
    beat_ms BIGINT NOT NULL,
    listed BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, job_id)
){jobs_options};
CREATE INDEX IF NOT EXISTS {p}jobs_started ON {p}jobs (namespace, started_ms, job_id);
CREATE INDEX IF NOT EXISTS {p}jobs_running ON {p}jobs (namespace, started_ms, job_id)
    WHERE finished_ms IS NULL;
CREATE INDEX IF NOT EXISTS {p}jobs_completed ON {p}jobs (namespace, started_ms, job_id)
    WHERE finished_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS {p}jobs_beat ON {p}jobs (namespace, beat_ms, job_id)
    WHERE finished_ms IS NULL;
CREATE INDEX IF NOT EXISTS {p}jobs_expiring ON {p}jobs (expires_ms)
    WHERE expires_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS {p}items (
    namespace {key} NOT NULL,
    job_id {key} NOT NULL,
    item {key} NOT NULL,
    state INTEGER NOT NULL,
    error TEXT,
    position BIGINT,
    failed_ms BIGINT,
    PRIMARY KEY (namespace, job_id, item),
    FOREIGN KEY (namespace, job_id) REFERENCES {p}jobs ON DELETE CASCADE
){rows_options};
CREATE INDEX IF NOT EXISTS {p}items_failed ON {p}items (namespace, job_id, position)
    WHERE position IS NOT NULL;
CREATE TABLE IF NOT EXISTS {p}errors (
    namespace {key} NOT NULL,
    job_id {key} NOT NULL,
    grp INTEGER NOT NULL,
    message TEXT,
    count BIGINT NOT NULL,
    first_ms BIGINT NOT NULL,
    last_ms BIGINT NOT NULL,
    PRIMARY KEY (namespace, job_id, grp),
    FOREIGN KEY (namespace, job_id) REFERENCES {p}jobs ON DELETE CASCADE
){rows_options};
"""

JOB_COLUMNS_OF_J = ", ".join(f"j.{name}" for name in JOB_COLUMNS.split(", "))

_NEW_UPDATED = "CASE WHEN updated_ms < :now THEN :now ELSE updated_ms END"
_COMPLETES = "successful + failed + :done = total"
# jobtrack.rules.fold (add_rate), step for step (the same operations in the same order: the
# same doubles): the items done since rate_done, at :now, with :tau = float(RATE_TAU_MS)
# (doubles from there on, on PostgreSQL too). Only "add_all" folds, once a second per job:
# "add" leaves rate_done behind, and jobtrack.rules.progress folds the rest as it reads
_PENDING = "(successful + failed + :done - rate_done)"
_SINCE = "CASE rate_at WHEN 0 THEN started_ms ELSE rate_at END"
_DT = f"(:now - {_SINCE})"
_MOST_DT = 700 * RATE_TAU_MS
_DECAY = f"exp(-(CASE WHEN {_DT} > {_MOST_DT} THEN {_MOST_DT} ELSE {_DT} END) / :tau)"
_FOLD = (
    f"rate = CASE WHEN {_PENDING} <= 0 THEN rate WHEN {_DT} <= 0 "
    f"THEN rate + {_PENDING} * 1000 / :tau "
    f"ELSE rate * {_DECAY} + {_PENDING} * 1000 * (1 - {_DECAY}) / {_DT} END, "
    f"rate_at = CASE WHEN {_PENDING} <= 0 THEN rate_at WHEN {_DT} <= 0 THEN {_SINCE} "
    "ELSE :now END, rate_done = successful + failed + :done"
)

STATEMENTS = {
    "version": "SELECT value FROM {p}meta WHERE key = 'schema_version'",
    "set_version": "INSERT INTO {p}meta (key, value) VALUES ('schema_version', :version)",
    "meta": "SELECT value FROM {p}meta WHERE key = :key",
    "set_meta": (
        "INSERT INTO {p}meta (key, value) VALUES (:key, :value) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    ),
    "create": (
        f"INSERT INTO {{p}}jobs ({JOB_COLUMNS}, beat_ms) VALUES (:namespace, :job_id, :total, "
        ":processed, :successful, :failed, :last_error, :started_ms, :updated_ms, :finished_ms, "
        ":expires_ms, :rate, :rate_at, :rate_done, :beat_ms) "
        "ON CONFLICT (namespace, job_id) DO NOTHING RETURNING 1"
    ),
    "get": f"SELECT {JOB_COLUMNS} FROM {{p}}jobs WHERE namespace = :ns AND job_id = :id",
    "get_for_update": (  # the job, what it listed, and the state of one of its items
        f"SELECT {JOB_COLUMNS_OF_J}, j.listed, i.state, i.error FROM {{p}}jobs j "
        "LEFT JOIN {p}items i ON i.namespace = j.namespace AND i.job_id = j.job_id "
        "AND i.item = :item WHERE j.namespace = :ns AND j.job_id = :id"
    ),
    "delete": "DELETE FROM {p}jobs WHERE namespace = :ns AND job_id = :id RETURNING 1",
    "forget": (
        "DELETE FROM {p}jobs WHERE namespace = :ns AND job_id = :id AND expires_ms <= :before"
    ),
    # counters only, the rules of jobtrack.rules.apply in SQL. "add": the hot path, for an
    # update that neither completes the job nor moves its beat to another second: it
    # writes no indexed column (no index page on SQLite; a HOT update on PostgreSQL)
    "add": (
        "UPDATE {p}jobs SET processed = processed + :processed, "
        "successful = successful + :successful, failed = failed + :failed, "
        f"updated_ms = {_NEW_UPDATED} "
        "WHERE namespace = :ns AND job_id = :id AND finished_ms IS NULL "
        "AND processed + :processed <= total AND successful + failed + :done < total "
        "AND (updated_ms >= :now OR beat_ms = :beat) "
        f"RETURNING {JOB_COLUMNS}"
    ),
    # "add_all": the same update, whatever it moves (once a second per job, and at completion)
    "add_all": (
        "UPDATE {p}jobs SET processed = processed + :processed, "
        "successful = successful + :successful, failed = failed + :failed, "
        f"updated_ms = {_NEW_UPDATED}, {_FOLD}, "
        "beat_ms = CASE WHEN updated_ms < :now THEN :beat ELSE beat_ms END, "
        f"finished_ms = CASE WHEN {_COMPLETES} THEN {_NEW_UPDATED} END, "
        f"expires_ms = CASE WHEN {_COMPLETES} AND {_NEW_UPDATED} <= :last_ms - :retain "
        f"THEN {_NEW_UPDATED} + :retain END "
        "WHERE namespace = :ns AND job_id = :id AND finished_ms IS NULL "
        "AND processed + :processed <= total AND successful + failed + :done <= total "
        f"RETURNING {JOB_COLUMNS}"
    ),
    # the other updates: the rules applied by the caller, the result written ("put": when
    # no indexed column moves; "put_all" otherwise)
    "put": (
        "UPDATE {p}jobs SET total = :total, processed = :processed, successful = :successful, "
        "failed = :failed, last_error = :last_error, updated_ms = :updated_ms, rate = :rate, "
        "rate_at = :rate_at, rate_done = :rate_done, listed = :listed "
        "WHERE namespace = :namespace AND job_id = :job_id"
    ),
    "put_all": (
        "UPDATE {p}jobs SET total = :total, processed = :processed, successful = :successful, "
        "failed = :failed, last_error = :last_error, updated_ms = :updated_ms, rate = :rate, "
        "rate_at = :rate_at, rate_done = :rate_done, beat_ms = :beat_ms, "
        "finished_ms = :finished_ms, expires_ms = :expires_ms, listed = :listed "
        "WHERE namespace = :namespace AND job_id = :job_id"
    ),
    "put_item": (
        "INSERT INTO {p}items (namespace, job_id, item, state, error, position, failed_ms) "
        "VALUES (:ns, :id, :item, :state, :error, :position, :failed_ms) "
        "ON CONFLICT (namespace, job_id, item) DO UPDATE SET state = excluded.state, "
        "error = excluded.error, "
        "position = CASE WHEN :keep THEN {p}items.position ELSE excluded.position END, "
        "failed_ms = CASE WHEN :keep THEN {p}items.failed_ms ELSE excluded.failed_ms END"
    ),
    "error_group": (
        "SELECT grp FROM {p}errors WHERE namespace = :ns AND job_id = :id AND message = :message"
    ),
    "error_groups": (
        "SELECT count(*) FROM {p}errors WHERE namespace = :ns AND job_id = :id AND grp > 0"
    ),
    "count_error": (
        "INSERT INTO {p}errors (namespace, job_id, grp, message, count, first_ms, last_ms) "
        "VALUES (:ns, :id, :grp, :message, :n, :at, :at) "
        "ON CONFLICT (namespace, job_id, grp) DO UPDATE SET "
        f"count = CASE WHEN {{p}}errors.count + :n > {MAX_COUNT} THEN {MAX_COUNT} "
        "ELSE {p}errors.count + :n END, last_ms = :at"
    ),
    "put_error": (  # (imports)
        "INSERT INTO {p}errors (namespace, job_id, grp, message, count, first_ms, last_ms) "
        "VALUES (:ns, :id, :grp, :message, :count, :first_ms, :last_ms)"
    ),
    "list": (
        f"SELECT {JOB_COLUMNS} FROM {{p}}jobs WHERE namespace = :ns{{where}} "
        "AND (started_ms, job_id) < (:ms, :key) "
        "ORDER BY started_ms DESC, job_id DESC LIMIT :limit"
    ),
    "stalled": (
        f"SELECT {JOB_COLUMNS} FROM {{p}}jobs WHERE namespace = :ns AND finished_ms IS NULL "
        "AND (beat_ms, job_id) < (:ms, :key) AND updated_ms < :cutoff "
        "ORDER BY beat_ms DESC, job_id DESC LIMIT :limit"
    ),
    "failed_items": (
        "SELECT i.position, i.item, i.error, i.failed_ms FROM {p}jobs j LEFT JOIN {p}items i "
        "ON i.namespace = j.namespace AND i.job_id = j.job_id AND i.position > :after "
        "WHERE j.namespace = :ns AND j.job_id = :id ORDER BY i.position LIMIT :limit"
    ),
    "errors": (
        "SELECT e.message, e.count, e.first_ms, e.last_ms FROM {p}jobs j LEFT JOIN {p}errors e "
        "ON e.namespace = j.namespace AND e.job_id = j.job_id "
        "WHERE j.namespace = :ns AND j.job_id = :id"
    ),
    # a page of namespaces: each name found by one index probe (a "loose index scan",
    # O(limit log n) whatever each namespace holds), then counted on the partial indexes
    "namespaces": (
        "WITH RECURSIVE names(ns, n) AS ("
        "SELECT (SELECT min(namespace) FROM {p}jobs WHERE namespace > :after), 1 "
        "UNION ALL SELECT (SELECT min(namespace) FROM {p}jobs WHERE namespace > names.ns), "
        "n + 1 FROM names WHERE names.ns IS NOT NULL AND n < :limit) "
        "SELECT ns, "
        "(SELECT count(*) FROM {p}jobs WHERE namespace = ns AND finished_ms IS NULL), "
        "(SELECT count(*) FROM {p}jobs WHERE namespace = ns AND finished_ms IS NULL "
        "AND beat_ms < :beat), "
        "(SELECT count(*) FROM {p}jobs WHERE namespace = ns AND finished_ms IS NOT NULL "
        "AND (expires_ms IS NULL OR expires_ms > :now)) "
        "FROM names WHERE ns IS NOT NULL ORDER BY ns"
    ),
    "purge": (
        "DELETE FROM {p}jobs WHERE (namespace, job_id) IN (SELECT namespace, job_id "
        "FROM {p}jobs WHERE expires_ms <= :before LIMIT :limit) RETURNING 1"
    ),
}
"""Every statement, by name."""

_LIST_FILTERS = {
    None: "",
    "running": " AND finished_ms IS NULL",
    "completed": " AND finished_ms IS NOT NULL",
}


@attrs.frozen
class Dialect:
    """What differs between the engines: placeholders and a few words of DDL."""

    name: str
    named: bool  # SQLite's :name placeholders as they are (else psycopg's %(name)s)
    jobs_options: str = ""
    rows_options: str = ""
    key: str = "TEXT"  # names and items: compared byte by byte, as Python compares them
    real: str = "REAL"  # a double
    prefix: str = "jobtrack_"

    def schema(self) -> list[str]:
        """The statements that create the schema (each idempotent)."""
        text = SCHEMA.format(
            p=self.prefix,
            jobs_options=self.jobs_options,
            rows_options=self.rows_options,
            key=self.key,
            real=self.real,
        )
        return [part.strip() for part in text.split(";") if part.strip()]

    def statements(self) -> dict[str, str]:
        """Every statement in this dialect, by name (listings: ``list`` + status or "all")."""
        done: dict[str, str] = {}
        for name, text in STATEMENTS.items():
            if name == "list":
                for status, where in _LIST_FILTERS.items():
                    done[f"list_{status or 'all'}"] = self._placeholders(
                        text.replace("{where}", where).format(p=self.prefix)
                    )
            else:
                done[name] = self._placeholders(text.format(p=self.prefix))
        return done

    def _placeholders(self, sql: str) -> str:
        if self.named:
            return sql
        return re.sub(r"(?<![:\w]):([a-z_]+)", r"%(\1)s", sql.replace("%", "%%"))


def decode_job(row: tuple[object, ...]) -> JobStatus:
    """The job a row of ``JOB_COLUMNS`` holds.

    :raises StoreCorrupt: when it is not a valid job (wrong types, broken
        invariants: a hand-edited or foreign database).
    """
    ns, jid, total, processed, successful, failed, error, started, updated, finished, expires = row[
        :11
    ]
    rate, rate_at, rate_done = row[11:]
    if (
        type(total) is not int
        or type(processed) is not int
        or type(successful) is not int
        or type(failed) is not int
        or type(started) is not int
        or type(updated) is not int
        or (finished is not None and type(finished) is not int)
        or (expires is not None and type(expires) is not int)
        or (error is not None and type(error) is not str)
        or not 0 <= processed <= total <= MAX_COUNT
        or successful < 0
        or failed < 0
        or successful + failed > total
        or (finished is None) != (successful + failed < total)
        or (finished is not None and finished != updated)
        or updated < started
        or error == ""
        or type(rate) not in (float, int)  # (RETURNING may give SQLite's REAL 0.0 as 0)
        or not 0.0 <= rate < math.inf  # type: ignore[operator]
        or type(rate_at) is not int
        or type(rate_done) is not int
        or not 0 <= rate_done <= successful + failed
    ):
        raise StoreCorrupt(f"the database holds a row that is not a valid job: {row!r:.300}")
    try:
        return JobStatus(
            jid,  # type: ignore[arg-type]
            ns,  # type: ignore[arg-type]
            Status.RUNNING if finished is None else Status.COMPLETED,
            total,
            processed,
            successful,
            failed,
            error,
            from_ms(started),
            from_ms(updated),
            None if finished is None else from_ms(finished),
            None if expires is None else from_ms(expires),
            float(rate),  # type: ignore[arg-type]
            rate_at,
            rate_done,
        )
    except (OverflowError, ValueError) as exc:
        raise StoreCorrupt(f"the database holds a job with impossible times: {row!r:.300}") from exc
