"""RedisStore: jobs in Redis, Valkey or a Redis Cluster, for pipelines on many hosts.

Each job is one hash; each namespace has one sorted set indexing its jobs by
start time. Both keys carry the namespace as hash tag, so every script
touches one Cluster slot only (see ``docs/redis.md``)::

    <prefix>:{<namespace>}:job:<job_id>   hash: t p s f e st up fin
    <prefix>:{<namespace>}:jobs           sorted set: job_id scored by started ms

Every update is one EVALSHA of ``lua/update.lua`` (a port of
:func:`jobtrack.rules.apply`): one round trip, atomic on the server, "now"
passed in from the tracker's clock. redis-py is imported only when a store is
built; without it a ``ConfigurationError`` names the extra to install.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.resources
import re
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ..clock import from_ms, to_ms
from ..errors import (
    ConfigurationError,
    InvalidUpdate,
    JobExists,
    JobFinished,
    JobNotFound,
    JobtrackError,
    StoreUnavailable,
)
from ..model import JobStatus, Status
from ..names import validate_name
from ..rules import Delta
from .protocol import ListKey
from .redis_connections import ThreadConnections
from .urls import display_url as _redact

__all__ = ["DEFAULT_PREFIX", "DEFAULT_TIMEOUT", "RedisStore", "Scripts"]

DEFAULT_PREFIX = "jobtrack"
DEFAULT_TIMEOUT = 5.0
"""Seconds before a connect, read or write to Redis gives up (``StoreUnavailable``)."""

_RUNNING = Status.RUNNING
_COMPLETED = Status.COMPLETED
_PREFIX_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_EXTRA = "pip install 'jobtrack[redis]'"


def import_redis() -> Any:
    """Import redis-py, or raise ``ConfigurationError`` naming the extra."""
    try:
        import redis  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigurationError(
            f"the Redis store needs redis-py, which is not installed: {_EXTRA}"
        ) from exc
    return redis


class Scripts:
    """The Lua scripts, read from the package with :mod:`importlib.resources`."""

    def __init__(self) -> None:
        folder = importlib.resources.files("jobtrack.stores") / "lua"
        self.create = (folder / "create.lua").read_text(encoding="utf-8")
        self.update = (folder / "update.lua").read_text(encoding="utf-8")
        self.delete = (folder / "delete.lua").read_text(encoding="utf-8")
        self.sha = {
            name: hashlib.sha1(getattr(self, name).encode(), usedforsecurity=False).hexdigest()
            for name in ("create", "update", "delete")
        }


SCRIPTS = Scripts()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _unexpected(what: str, reply: object) -> StoreUnavailable:
    shown = repr(reply)
    if len(shown) > 200:
        shown = shown[:200] + "..."
    return StoreUnavailable(f"unexpected reply from Redis to {what}: {shown}")


def job_from_update_reply(namespace: str, job_id: str, reply: Any) -> JobStatus:
    """Turn the reply of ``update.lua`` into the new status, or raise its error."""
    try:
        tag = reply[0]
        if type(tag) is not str:
            tag = _text(tag)
        if tag == "ok" and len(reply) == 9:
            _, total, processed, successful, failed, error, started, updated, finished = reply
            if type(updated) is not int:
                raise TypeError("times must be integers")
            return JobStatus(
                job_id,
                namespace,
                _RUNNING if finished is None else _COMPLETED,
                int(total),
                int(processed),
                int(successful),
                int(failed),
                None if error is None else _text(error),
                from_ms(int(started)),
                from_ms(updated),
                None if finished is None else from_ms(int(finished)),
            )
        if tag == "missing":
            raise JobNotFound(namespace, job_id)
        if tag == "finished":
            raise JobFinished(namespace, job_id)
        if tag == "invalid":
            what, value, total = _text(reply[1]), int(reply[2]), int(reply[3])
            raise InvalidUpdate(
                f"update rejected for job {job_id!r} in namespace {namespace!r}: "
                f"{what} would be {value}, more than total {total}"
            )
    except JobtrackError:
        raise
    except (TypeError, ValueError, IndexError, UnicodeDecodeError, OverflowError):
        pass
    raise _unexpected("an update", reply)


def results_from_replies(
    updates: Sequence[tuple[str, str, Delta]], replies: Sequence[Any]
) -> list[JobStatus | JobtrackError]:
    """Each update's new status, or the error that rejected it, from pipelined replies."""
    results: list[JobStatus | JobtrackError] = []
    for (ns, jid, _), reply in zip(updates, replies, strict=True):
        if isinstance(reply, Exception):
            results.append(StoreUnavailable(f"Redis update failed: {reply}"))
            continue
        try:
            results.append(job_from_update_reply(ns, jid, reply))
        except JobtrackError as exc:
            results.append(exc)
    return results


def job_from_hash(
    namespace: str, job_id: str, fields: Mapping[Any, Any] | list[Any]
) -> JobStatus | None:
    """Turn ``HGETALL`` of a job's hash into a status (None if there is no job).

    *fields* is a mapping, or the flat ``[name, value, ...]`` list of a RESP2
    reply read without the client's reply callbacks.
    """
    if not fields:
        return None
    if isinstance(fields, list):
        if len(fields) % 2:
            raise _unexpected("a read", fields)
        fields = dict(zip(fields[::2], fields[1::2], strict=True))
    try:
        if isinstance(next(iter(fields)), bytes):  # a client without decode_responses
            fields = {key.decode(): value for key, value in fields.items()}
        finished: Any = fields.get("fin")
        error: Any = fields.get("e")
        done = finished is not None
        return JobStatus(
            job_id,
            namespace,
            Status.COMPLETED if done else Status.RUNNING,
            int(fields["t"]),
            int(fields["p"]),
            int(fields["s"]),
            int(fields["f"]),
            None if error is None or error in (b"", "") else _text(error),
            from_ms(int(fields["st"])),
            from_ms(int(fields["up"])),
            from_ms(int(finished)) if done else None,
        )
    except (TypeError, ValueError, KeyError, UnicodeDecodeError, OverflowError):
        raise _unexpected("a read", fields) from None


_KEY_CACHE_SIZE = 4096

UNBOUNDED = 2**31
"""``max_connections`` of the pools of a client built from a URL that does not set
it (redis-py's own default before 8.0; 8.x caps a pool at 100, and a call
beyond that fails at once with ``MaxConnectionsError``)."""


class RedisStore:
    """Jobs in Redis (or Valkey, or a Redis Cluster): many hosts may share them.

    *client* is a redis-py ``Redis`` or ``RedisCluster`` client, or a URL
    (``redis://``, ``rediss://``, ``unix://``, ``redis+cluster://h1:p1,h2:p2``).
    Clients built from a URL time out after *timeout* seconds and never retry
    on their own: a retried update whose first reply was lost could count
    twice; each thread keeps one connection of their pool for its calls until
    it ends (see :mod:`.redis_connections`). A client you pass is used as it
    is, through its ``execute_command``; give it timeouts and no retries on
    timeouts for the same guarantees. *prefix* starts every key.
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        redis = import_redis()
        if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix):
            raise ConfigurationError(
                f"invalid Redis key prefix {prefix!r}: use 1-64 of A-Z a-z 0-9 _ . : -"
            )
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigurationError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        self.prefix = prefix
        self.timeout = float(timeout)
        if isinstance(client, str):
            self.url: str | None = client
            self.client: Any = connect(client, self.timeout)
        elif isinstance(client, (redis.Redis, redis.RedisCluster)):
            self.url = None
            self.client = client
        else:
            raise ConfigurationError(
                f"RedisStore needs a redis.Redis / redis.RedisCluster client or a URL, "
                f"got {type(client).__name__}"
            )
        self.cluster = isinstance(self.client, redis.RedisCluster)
        self._redis = redis
        self._errors: tuple[type[BaseException], ...] = (
            redis.RedisError,
            redis.exceptions.RedisClusterException,
        )
        self._noscript = redis.exceptions.NoScriptError
        self._redirect = (redis.exceptions.MovedError, redis.exceptions.AskError)
        self._job_keys: dict[tuple[str, str], str] = {}
        # A store built from a URL owns its client (no retries, nothing shared), so
        # its commands go over a connection per thread (see redis_connections),
        # unless its URL caps the pool's connections (?max_connections=N): a
        # thread keeps its connection while it lives, so it checks one out per call.
        pool = None if self.url is None or self.cluster else self.client.connection_pool
        self._threads = (
            ThreadConnections(
                pool, redis.ResponseError, (redis.ConnectionError, redis.TimeoutError, OSError)
            )
            if pool is not None and pool.max_connections >= UNBOUNDED
            else None
        )

    def __repr__(self) -> str:
        where = _redact(self.url) if self.url else type(self.client).__name__
        return f"RedisStore({where!r}, prefix={self.prefix!r})"

    # -- keys --------------------------------------------------------------

    def job_key(self, namespace: str, job_id: str) -> str:
        """The key of a job's hash (names are re-checked: no key outside the prefix).

        Keys of recently used jobs are remembered (a few thousand): workers
        update the same jobs over and over.
        """
        try:
            key = self._job_keys.get((namespace, job_id))
        except TypeError:  # unhashable, so not a name: validate_name says why
            key = None
        if key is None:
            validate_name(namespace, "namespace")
            validate_name(job_id, "job id")
            key = f"{self.prefix}:{{{namespace}}}:job:{job_id}"
            if len(self._job_keys) >= _KEY_CACHE_SIZE:
                self._job_keys.clear()
            self._job_keys[namespace, job_id] = key
        return key

    def index_key(self, namespace: str) -> str:
        """The key of a namespace's index (a sorted set of job ids by start time)."""
        validate_name(namespace, "namespace")
        return f"{self.prefix}:{{{namespace}}}:jobs"

    # -- plumbing ----------------------------------------------------------

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except JobtrackError:
            raise
        except self._errors as exc:
            raise StoreUnavailable(f"Redis {what} failed: {type(exc).__name__}: {exc}") from exc

    def _execute(self, *args: Any) -> Any:
        """One command, one reply.

        On this thread's connection when the store was built from a URL (see
        :mod:`.redis_connections`), else through the client's own
        ``execute_command``, with whatever retries, locks or single connection
        you gave it.
        """
        if self._threads is None:
            return self.client.execute_command(*args)
        return self._threads.execute(*args)

    def _evalsha(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        sha = SCRIPTS.sha[name]
        execute = self._execute
        try:
            return execute("EVALSHA", sha, len(keys), *keys, *args)
        except self._noscript:
            self.client.script_load(getattr(SCRIPTS, name))
            return execute("EVALSHA", sha, len(keys), *keys, *args)

    # -- the protocol ------------------------------------------------------

    def create(self, job: JobStatus) -> None:
        """Run ``create.lua``: the job's hash and index entry appear together."""
        ns, jid = job.namespace_name, job.job_id
        keys = (self.job_key(ns, jid), self.index_key(ns))
        with self._guard("create"):
            created = self._evalsha("create", keys, (jid, job.total, to_ms(job.started_at)))
        if created == 0:
            raise JobExists(ns, jid)
        if created != 1:
            raise _unexpected("a create", created)

    def update(self, namespace: str, job_id: str, delta: Delta, now: _dt.datetime) -> JobStatus:
        """Run ``update.lua``: one round trip, atomic on the server."""
        key = self.job_key(namespace, job_id)
        try:
            reply = self._evalsha("update", (key,), update_args(delta, now))
        except self._errors as exc:
            raise StoreUnavailable(f"Redis update failed: {type(exc).__name__}: {exc}") from exc
        return job_from_update_reply(namespace, job_id, reply)

    def update_many(
        self, updates: Sequence[tuple[str, str, Delta]], now: _dt.datetime
    ) -> list[JobStatus | JobtrackError]:
        """Apply many updates as pipelined EVALSHAs: one round trip per server.

        Each update is atomic on its own. Returns, in order, each new status
        or the error that rejected it.
        """
        if not updates:
            return []
        keys = [self.job_key(ns, jid) for ns, jid, _ in updates]
        calls = [
            (key, update_args(delta, now)) for key, (_, _, delta) in zip(keys, updates, strict=True)
        ]
        replies: list[Any] = [None] * len(calls)
        with self._guard("update"):
            for client, indexes in self._by_node(keys):
                batch = [calls[i] for i in indexes]
                for i, reply in zip(indexes, self._pipelined_updates(client, batch), strict=True):
                    replies[i] = reply
        return results_from_replies(updates, replies)

    def _by_node(self, keys: Sequence[str]) -> list[tuple[Any, list[int]]]:
        """Group key positions by the server holding them (one group without a cluster)."""
        if not self.cluster:
            return [(self.client, list(range(len(keys))))]
        groups: dict[str, tuple[Any, list[int]]] = {}
        for i, key in enumerate(keys):
            node = self.client.get_node_from_key(key)
            if node.redis_connection is None:  # not connected yet
                self.client.get_redis_connection(node)
            groups.setdefault(node.name, (node.redis_connection, []))[1].append(i)
        return list(groups.values())

    def _pipelined_updates(
        self, client: Any, calls: Sequence[tuple[str, tuple[Any, ...]]]
    ) -> list[Any]:
        sha = SCRIPTS.sha["update"]
        pipe = client.pipeline(transaction=False)
        for key, args in calls:
            pipe.evalsha(sha, 1, key, *args)
        replies: list[Any] = pipe.execute(raise_on_error=False)
        missing = [i for i, r in enumerate(replies) if isinstance(r, self._noscript)]
        if missing:  # NOSCRIPT: nothing of those ran; load the script and run them again
            client.script_load(SCRIPTS.update)
            pipe = client.pipeline(transaction=False)
            for i in missing:
                key, args = calls[i]
                pipe.evalsha(sha, 1, key, *args)
            for i, reply in zip(missing, pipe.execute(raise_on_error=False), strict=True):
                replies[i] = reply
        moved = [i for i, r in enumerate(replies) if isinstance(r, self._redirect)]
        for i in moved:  # the cluster was resharded under us: nothing ran; go the long way
            key, args = calls[i]
            try:
                replies[i] = self._evalsha("update", (key,), args)
            except self._errors as exc:
                replies[i] = exc
        return replies

    def get(self, namespace: str, job_id: str) -> JobStatus | None:
        """One HGETALL of the job's hash."""
        key = self.job_key(namespace, job_id)
        try:
            fields = self._execute("HGETALL", key)
        except self._errors as exc:
            raise StoreUnavailable(f"Redis read failed: {type(exc).__name__}: {exc}") from exc
        return job_from_hash(namespace, job_id, fields)

    def delete(self, namespace: str, job_id: str) -> bool:
        """Run ``delete.lua``: the hash and its index entry go together."""
        keys = (self.job_key(namespace, job_id), self.index_key(namespace))
        with self._guard("delete"):
            deleted = self._evalsha("delete", keys, (job_id,))
        if deleted not in (0, 1):
            raise _unexpected("a delete", deleted)
        return bool(deleted == 1)

    def list(self, namespace: str, limit: int, before: ListKey | None) -> list[JobStatus]:
        """Page through the namespace's index, then read the jobs: two round trips."""
        index = self.index_key(namespace)
        with self._guard("list"):
            pipe = self.client.pipeline(transaction=False)
            queue_index_reads(pipe, index, limit, before)
            entries = index_entries(pipe.execute(), limit, before)
            if not entries:
                return []
            pipe = self.client.pipeline(transaction=False)
            for _, jid in entries:
                pipe.hgetall(self.job_key(namespace, jid))
            rows = pipe.execute()
        return jobs_from_rows(namespace, entries, rows)

    def memory_usage(self, namespace: str, job_id: str) -> int:
        """Bytes Redis holds for the job's hash (``MEMORY USAGE``), 0 if absent."""
        with self._guard("read"):
            used = self.client.memory_usage(self.job_key(namespace, job_id), samples=0)
        return int(used or 0)

    def asyncio(self) -> Any:
        """The native async view of this store (``redis.asyncio``, same scripts).

        Built from the store's URL; a store made from a client you passed has
        none (None), and async callers then run it in a worker thread.
        """
        if self.url is None:
            return None
        from .redis_async import AsyncRedisStore  # noqa: PLC0415

        return AsyncRedisStore(self)

    def close(self) -> None:
        """Close the client's connections (also a client you passed in)."""
        with self._guard("close"):
            self.client.close()


def queue_index_reads(pipe: Any, index: str, limit: int, before: ListKey | None) -> None:
    """Queue the index reads of one page on *pipe* (sync or async pipeline)."""
    if before is None:
        pipe.zrevrangebyscore(index, "+inf", "-inf", start=0, num=limit, withscores=True)
    else:
        ms = before[0]
        pipe.zrevrangebyscore(index, f"({ms}", "-inf", start=0, num=limit, withscores=True)
        pipe.zrangebyscore(index, ms, ms, withscores=True)  # ties on the cursor's millisecond


def index_entries(replies: Sequence[Any], limit: int, before: ListKey | None) -> list[ListKey]:
    """The page's ``(started ms, job id)`` keys, newest first, from the index reads."""
    try:
        entries = [(int(score), _text(member)) for member, score in replies[0]]
        if before is not None:
            ties = [(int(score), _text(member)) for member, score in replies[1]]
            entries += [entry for entry in ties if entry < before]
    except (TypeError, ValueError, IndexError, UnicodeDecodeError, OverflowError):
        raise _unexpected("a listing", replies) from None
    entries.sort(reverse=True)
    return entries[:limit]


def jobs_from_rows(
    namespace: str, entries: Sequence[ListKey], rows: Sequence[Any]
) -> list[JobStatus]:
    """The jobs read for a page (those deleted meanwhile are left out)."""
    jobs = [job_from_hash(namespace, jid, row) for (_, jid), row in zip(entries, rows, strict=True)]
    return [job for job in jobs if job is not None]


def update_args(delta: Delta, now: _dt.datetime) -> tuple[Any, ...]:
    """ARGV of ``update.lua`` for *delta* at *now* (the optional tail only when needed)."""
    ms = to_ms(now)
    if delta.abort:
        return (ms, 0, 0, 0, delta.error or "", 1)
    if delta.error is not None:
        return (ms, delta.processed, delta.successful, delta.failed, delta.error)
    return (ms, delta.processed, delta.successful, delta.failed)


def client_options(timeout: float) -> dict[str, Any]:
    from redis.backoff import NoBackoff  # noqa: PLC0415
    from redis.retry import Retry  # noqa: PLC0415

    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": True,
    }


def connect(url: str, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """A redis-py client for *url* with jobtrack's timeouts and no automatic retries."""
    redis = import_redis()
    options = client_options(timeout)
    try:
        if url.startswith("redis+cluster://"):
            nodes, kwargs = cluster_nodes(url)
            return redis.RedisCluster(
                startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in nodes],
                max_connections=UNBOUNDED,
                **kwargs,
                **options,
            )
        return redis.Redis.from_url(url, **{"max_connections": UNBOUNDED, **options})
    except (ValueError, redis.RedisError) as exc:
        raise ConfigurationError(f"cannot connect to {_redact(url)!r}: {exc}") from exc


def cluster_nodes(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """Parse ``redis+cluster://[user:pass@]h1:p1,h2:p2`` into nodes and auth options."""
    rest = url[len("redis+cluster://") :]
    netloc, _, path = rest.partition("/")
    if path.strip("/"):
        raise ConfigurationError("a Redis Cluster has only database 0: drop the path")
    userinfo, _, hosts = netloc.rpartition("@")
    kwargs: dict[str, Any] = {}
    if userinfo:
        user, _, password = userinfo.partition(":")
        if user:
            kwargs["username"] = urllib.parse.unquote(user)
        if password:
            kwargs["password"] = urllib.parse.unquote(password)
    nodes = []
    for item in hosts.split(","):
        host, sep, port = item.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(
                f"bad node {item!r} in {_redact(url)!r}: use redis+cluster://host1:port1,host2:port2"
            )
        nodes.append((host, int(port)))
    return nodes, kwargs


def open_redis(url: str) -> RedisStore:
    """Factory behind the ``redis``, ``rediss``, ``unix`` and ``redis+cluster`` schemes.

    jobtrack's own options ride in the query and are removed before redis-py
    sees the URL: ``prefix`` (key prefix) and ``timeout`` (seconds).
    """
    import_redis()
    scheme, _, _ = url.partition("://")
    query = url.partition("?")[2]
    options = urllib.parse.parse_qs(query, keep_blank_values=True)
    prefix = options.pop("prefix", [DEFAULT_PREFIX])[-1]
    timeout_text = options.pop("timeout", [str(DEFAULT_TIMEOUT)])[-1]
    try:
        timeout = float(timeout_text)
    except ValueError:
        raise ConfigurationError(f"timeout={timeout_text!r} in store URL is not a number") from None
    base = url.partition("?")[0]
    if scheme == "redis+cluster":
        if options:
            raise ConfigurationError(
                f"unknown option(s) {', '.join(sorted(options))} in {_redact(url)!r}"
            )
    elif options:
        base += "?" + urllib.parse.urlencode(options, doseq=True)
    return RedisStore(base, prefix=prefix, timeout=timeout)
