"""The PostgreSQL store's push: updates send ``NOTIFY``; a :class:`PostgresFeed` listens.

``pg_notify`` is called in the transaction of the update (or deletion)
itself, so the notification goes out when, and only if, it commits: by
``add_all`` (the statement that moves a job's beat to another second or
completes it), by ``jobtrack_apply`` when it does either (``apply.sql``), and
by ``delete``. So at most once a second per running job, and at once when
it completes. The hot ``add`` statement (counters within the same second)
sends none: a ``NOTIFY`` takes a global lock at commit, and one on every
update cost ``record`` 10 % (``docs/postgres.md``). Watchers see a running
job's progress at least once a second, its completion at once.

The channel is per schema: ``jobtrack_<schema>`` (cut to PostgreSQL's 63
bytes); the payload names the job, ``<namespace> <job_id>`` (names hold no
space).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..push import CHANGED, READY, Key

__all__ = ["APPLICATION", "CHANNEL", "NOTIFY", "PostgresFeed", "notifying"]

CHANNEL = "left('jobtrack_' || current_schema(), 63)"
"""The channel of the schema the connection's ``search_path`` finds the tables in (SQL)."""

NOTIFY = f"pg_notify({CHANNEL}, {{ns}} || ' ' || {{id}})"
"""The SQL that notifies a job's change (``{ns}`` and ``{id}``: SQL naming the job)."""


def notifying(statement: str, keys: str) -> str:
    """*statement* (``… RETURNING <keys>, …``), notifying each row it returns (same transaction)."""
    namespace, job_id = keys.split(", ")[:2]
    notify = NOTIFY.format(ns=f"u.{namespace}", id=f"u.{job_id}")
    return f"WITH u AS ({statement}) SELECT u.* FROM u CROSS JOIN LATERAL (SELECT {notify}) n"


APPLICATION = "jobtrack-listen"
"""The ``application_name`` of the listening connection (seen in ``pg_stat_activity``)."""


class PostgresFeed:
    """One autocommit connection, listening to the schema's channel while jobs are waited on.

    Every notification of the schema reaches it; those of subscribed jobs
    are reported.
    """

    def __init__(self, psycopg: Any, conninfo: str) -> None:
        self.errors: tuple[type[BaseException], ...] = (psycopg.Error,)
        self._sql = psycopg.sql
        conninfo = psycopg.conninfo.make_conninfo(conninfo, application_name=APPLICATION)
        self._conn = psycopg.Connection.connect(conninfo, autocommit=True)
        row = self._conn.execute(f"SELECT {CHANNEL}").fetchone()
        self._channel = self._sql.Identifier(row[0])
        self._keys: set[Key] = set()
        self._ready: list[tuple[str, Key]] = []

    def subscribe(self, keys: Iterable[Key]) -> None:
        """``LISTEN`` (if not yet): the jobs are subscribed once it has run."""
        if not self._keys:
            self._conn.execute(self._sql.SQL("LISTEN {}").format(self._channel))
        for key in keys:
            self._keys.add(key)
            self._ready.append((READY, key))

    def unsubscribe(self, keys: Iterable[Key]) -> None:
        """Forget the jobs; ``UNLISTEN`` once none is left."""
        self._keys.difference_update(keys)
        if not self._keys:
            self._conn.execute(self._sql.SQL("UNLISTEN {}").format(self._channel))

    def receive(self, timeout: float) -> list[tuple[str, Key]]:
        """Confirmations, and the subscribed jobs notified within *timeout* s."""
        got, self._ready = self._ready, []
        if got:
            timeout = 0.0
        for notify in self._conn.notifies(timeout=timeout, stop_after=1):
            namespace, _, job_id = notify.payload.partition(" ")
            if (namespace, job_id) in self._keys:
                got.append((CHANGED, (namespace, job_id)))
        return got

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
