"""RedisStore: jobs in Redis, Valkey or a Redis Cluster, for pipelines on many hosts.

Every operation is described once in :mod:`.commands` and sent by the sync
runner here, or by the async runner of :class:`AsyncRedisStore`. redis-py is
imported only when a store is built; without it a ``ConfigurationError``
names the extra to install.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime as _dt
import warnings
import weakref
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from ...clock import to_ms
from ...errors import ConfigurationError, JobtrackError, JobtrackWarning, shown
from ...model import ErrorCount, FailedItem, JobStatus, NamespaceCounts
from ...rules import Delta
from ..protocol import Features, ListKey
from ..push import Subscriptions
from ..registry import MAX_SECONDS, StoreURL
from .client import OPTIONS, UNBOUNDED, connect, import_redis
from .commands import Call, Commands, driver_error, pipelined
from .connections import ThreadConnections
from .feed import RedisFeed
from .runner import AsyncRunner, SyncRunner

__all__ = ["AsyncRedisStore", "RedisStore"]


class RedisStore:
    """Jobs in Redis (or Valkey, or a Redis Cluster): many hosts may share them.

    *client* is a redis-py ``Redis`` or ``RedisCluster`` client, or a URL
    (``redis://``, ``rediss://``, ``unix://``, ``redis+cluster://h1:p1,h2:p2``,
    with the options of ``docs/redis.md``, checked here). Clients built from
    a URL time out after *timeout* seconds and never retry on their own: a
    retried update whose first reply was lost could count twice; each thread
    keeps one connection of their pool for its calls until it ends (see
    :mod:`.connections`). A client you pass is used as it is, through its
    ``execute_command``; give it timeouts and no retries on timeouts for the
    same guarantees. *prefix* starts every key; *prefix* and *timeout*
    override the URL's ``?prefix=`` and ``?timeout=``.
    """

    def __init__(
        self, client: Any, *, prefix: str | None = None, timeout: float | None = None
    ) -> None:
        redis = import_redis()
        if prefix is not None:
            Commands(prefix)  # checked before it goes in the URL
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout <= MAX_SECONDS
        ):
            raise ConfigurationError(
                f"timeout must be a number of seconds > 0, at most {MAX_SECONDS:g} (a year), "
                f"got {shown(timeout)}"
            )
        self.url: str | None = None
        self._parsed: StoreURL | None = None
        if isinstance(client, (str, StoreURL)):
            url = client if isinstance(client, StoreURL) else StoreURL.parse(client)
            options = url.options(**OPTIONS)
            if prefix is not None:  # the URL says it too: other processes open it
                url = url.with_option("prefix", prefix)
            if timeout is not None:
                url = url.with_option("timeout", repr(float(timeout)))
            prefix = options["prefix"] if prefix is None else prefix
            timeout = options["timeout"] if timeout is None else timeout
            self.url, self._parsed = url.url, url
            client = connect(url, float(timeout))
        elif not isinstance(client, (redis.Redis, redis.RedisCluster)):
            raise ConfigurationError(
                f"RedisStore needs a redis.Redis / redis.RedisCluster client or a URL, "
                f"got {type(client).__name__}"
            )
        self.commands = Commands(OPTIONS["prefix"].default if prefix is None else prefix)
        self.prefix = self.commands.prefix
        self.timeout = float(OPTIONS["timeout"].default if timeout is None else timeout)
        self.client: Any = client
        self.cluster = isinstance(client, redis.RedisCluster)
        self.features = Features(
            native_async=self.url is not None,
            processes=True,
            items=True,
            expiry=True,
            statuses=True,
            checks=True,
            namespaces=True,
            push=True,
        )
        self._policy_checked = False
        # A store built from a URL owns its client (no retries, nothing shared), so
        # its commands go over a connection per thread (see connections.py),
        # unless its URL caps the pool's connections (?max_connections=N): a
        # thread keeps its connection while it lives, so it checks one out per call.
        pool = None if self.url is None or self.cluster else client.connection_pool
        self._threads = (
            ThreadConnections(
                pool, redis.ResponseError, (redis.ConnectionError, redis.TimeoutError, OSError)
            )
            if pool is not None and pool.max_connections >= UNBOUNDED
            else None
        )
        if self._threads is None:
            self._runner = SyncRunner(client, client.execute_command)
        else:  # our own connections take commands packed ahead (update.lua's keys, once a job)
            self._runner = SyncRunner(client, self._threads.execute, prepacked=True)
        self.push = Subscriptions(
            lambda: RedisFeed(client, self.commands, self.cluster, self._runner.errors), "Redis"
        )

    @classmethod
    def from_url(cls, url: StoreURL) -> RedisStore:
        """The factory of ``redis://``, ``rediss://``, ``unix://`` and ``redis+cluster://``."""
        return cls(url)

    def __repr__(self) -> str:
        where = self._parsed.shown if self._parsed else type(self.client).__name__
        return f"RedisStore({where!r}, prefix={self.prefix!r})"

    def create(self, job: JobStatus, forgotten_before: _dt.datetime | None = None) -> None:
        """Run ``create.lua``: the job's hash and index entry appear together.

        The first job a store starts also checks the server's eviction policy.
        """
        if not self._policy_checked:
            self.check_setup()
        self._runner.drive(self.commands.create(job, forgotten_before))

    def check_setup(self) -> str | None:
        """Warn (``JobtrackWarning``) if the server may evict keys; return the warning (checks).

        Under any ``maxmemory-policy`` but ``noeviction`` Redis silently drops
        keys when it is full: jobs would vanish. Where ``CONFIG`` is refused
        (some managed services), nothing can be told and nothing is said.
        """
        self._policy_checked = True
        try:
            policy = self._runner.run(self.commands.eviction_policy())
        except JobtrackError:
            return None
        return _warn_if_evicting(policy, self)

    def update(self, namespace: str, job_id: str, delta: Delta, now: _dt.datetime) -> JobStatus:
        """Run ``update.lua``: one round trip, atomic on the server."""
        return self._runner.run(self.commands.update(namespace, job_id, delta, now))

    def update_many(
        self, updates: Sequence[tuple[str, str, Delta]], now: _dt.datetime
    ) -> list[JobStatus | JobtrackError]:
        """Pipelined EVALSHAs: one round trip per server (redis-py groups them by node)."""
        commands = self.commands
        return self._runner.drive(
            pipelined([commands.update(ns, j, d, now) for ns, j, d in updates])
        )

    def get(self, namespace: str, job_id: str) -> JobStatus | None:
        """One HGETALL of the job's hash."""
        return self._runner.run(self.commands.get(namespace, job_id))

    def delete(self, namespace: str, job_id: str) -> bool:
        """Run ``delete.lua``: the hash and its index entry go together."""
        return self._runner.drive(self.commands.delete(namespace, job_id))

    def list(self, namespace: str, limit: int, before: ListKey | None) -> list[JobStatus]:
        """Page through the namespace's index, then read the jobs: two round trips."""
        return self._runner.drive(self.commands.list_status(namespace, None, limit, before, None))

    def list_status(
        self, namespace: str, status: str, limit: int, before: ListKey | None, cutoff: int | None
    ) -> builtins.list[JobStatus]:
        """Page through the namespace's index of *status*, then read the jobs."""
        return self._runner.drive(
            self.commands.list_status(namespace, status, limit, before, cutoff)
        )

    def namespaces(
        self, limit: int, after: str | None, now: int, beat: int | None
    ) -> builtins.list[NamespaceCounts]:
        """A page of the list of namespaces, then their counts: two round trips."""
        return self._runner.drive(self.commands.namespaces(limit, after, now, beat))

    def purge(self, expired_before: _dt.datetime) -> int:
        """Delete the expired jobs of every namespace (found with ``SCAN``, on every primary).

        Key TTLs reclaim them anyway, by the server's clock; this does it now,
        by the tracker's.
        """
        before = to_ms(expired_before)
        try:
            keys = builtins.list(
                self.client.scan_iter(match=self.commands.expiring_pattern, count=1000)
            )
        except self._runner.errors as exc:
            raise driver_error(exc) from exc
        return self._runner.drive(self.commands.purge(keys, before))

    def failed_items(
        self, namespace: str, job_id: str, limit: int, after: int | None
    ) -> builtins.list[tuple[int, FailedItem]] | None:
        """Run ``failed.lua``: one round trip."""
        return self._runner.run(self.commands.failed_items(namespace, job_id, limit, after))

    def errors(self, namespace: str, job_id: str) -> builtins.list[ErrorCount] | None:
        """Run ``errors.lua``: one round trip."""
        return self._runner.run(self.commands.errors(namespace, job_id))

    def memory_usage(self, namespace: str, job_id: str, what: str = "job") -> int:
        """Bytes Redis holds for the job's hash (``MEMORY USAGE``), 0 if absent.

        *what* ``"items"``, ``"failed"`` or ``"errors"`` measures the job's
        other keys instead.
        """
        commands = self.commands
        mine = (commands.job_key(namespace, job_id), *commands.item_keys(namespace, job_id))
        key = dict(zip(("job", "items", "failed", "errors"), mine, strict=True))[what]
        used = self._runner.run(Call(("MEMORY", "USAGE", key, "SAMPLES", "0"), lambda n: n))
        return int(used or 0)

    def wait_change(
        self, namespace: str, job_id: str, seen: JobStatus | None, timeout: float
    ) -> None:
        """Return once the job may differ from *seen*, or after *timeout* s (see :mod:`.feed`).

        The job's channel is subscribed once per process however many wait;
        the job is read once, then again only when a message comes.
        """
        self.push.wait((namespace, job_id), timeout, lambda: self.get(namespace, job_id) != seen)

    def open_async(self) -> AsyncRedisStore:
        """The native async view of this store (``redis.asyncio``, same commands).

        Only for a store built from a URL (``features.native_async``).
        """
        if self.url is None:
            raise ConfigurationError("only a RedisStore built from a URL has an async view")
        return AsyncRedisStore(self)

    def close(self) -> None:
        """Close the client's connections (also a client you passed in)."""
        self.push.close()
        try:
            self.client.close()
        except self._runner.errors as exc:
            raise driver_error(exc) from exc


class AsyncRedisStore:
    """Awaitable twin of a :class:`RedisStore`: the same commands, sent by ``redis.asyncio``.

    A ``redis.asyncio`` client belongs to the event loop it was first used
    in, so each running loop gets its own, built from the store's URL on
    first use there. It is closed by :meth:`aclose`, or when its loop shuts
    down its async generators (``asyncio.run`` does): a store used from one
    ``asyncio.run`` after another, or by a test client that runs each request
    in a new loop, works and leaves no connection open.
    """

    def __init__(self, store: RedisStore) -> None:
        self.sync = store
        self.commands = store.commands
        self._runners: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[AsyncRunner, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()

    @property
    def runner(self) -> AsyncRunner:
        """The runner over the running loop's ``redis.asyncio`` client (built on first use)."""
        loop = asyncio.get_running_loop()
        mine = self._runners.get(loop)
        if mine is None:
            assert self.sync._parsed is not None  # open_async() checked it
            runner = AsyncRunner(connect(self.sync._parsed, self.sync.timeout, asynchronous=True))
            mine = self._runners[loop] = (runner, _closed_with_its_loop(runner))
        return mine[0]

    async def create(self, job: JobStatus, forgotten_before: _dt.datetime | None = None) -> None:
        """Run ``create.lua`` (the first job also checks the eviction policy)."""
        if not self.sync._policy_checked:
            self.sync._policy_checked = True
            try:
                policy = await self.runner.run(self.commands.eviction_policy())
            except JobtrackError:
                policy = None
            _warn_if_evicting(policy, self.sync)
        await self.runner.drive(self.commands.create(job, forgotten_before))

    async def update(
        self, namespace: str, job_id: str, delta: Delta, now: _dt.datetime
    ) -> JobStatus:
        """Run ``update.lua``: one round trip."""
        return await self.runner.run(self.commands.update(namespace, job_id, delta, now))

    async def update_many(
        self, updates: Sequence[tuple[str, str, Delta]], now: _dt.datetime
    ) -> list[JobStatus | JobtrackError]:
        """Pipelined EVALSHAs, grouped by node by redis-py."""
        commands = self.commands
        calls = [commands.update(ns, jid, d, now) for ns, jid, d in updates]
        return await self.runner.drive(pipelined(calls))

    async def get(self, namespace: str, job_id: str) -> JobStatus | None:
        """One HGETALL."""
        return await self.runner.run(self.commands.get(namespace, job_id))

    async def delete(self, namespace: str, job_id: str) -> bool:
        """Run ``delete.lua``."""
        return await self.runner.drive(self.commands.delete(namespace, job_id))

    async def list(self, namespace: str, limit: int, before: ListKey | None) -> list[JobStatus]:
        """Index page, then the jobs: two round trips."""
        return await self.runner.drive(
            self.commands.list_status(namespace, None, limit, before, None)
        )

    async def list_status(
        self, namespace: str, status: str, limit: int, before: ListKey | None, cutoff: int | None
    ) -> builtins.list[JobStatus]:
        """Index page of *status*, then the jobs."""
        return await self.runner.drive(
            self.commands.list_status(namespace, status, limit, before, cutoff)
        )

    async def namespaces(
        self, limit: int, after: str | None, now: int, beat: int | None
    ) -> builtins.list[NamespaceCounts]:
        """See :meth:`RedisStore.namespaces`."""
        return await self.runner.drive(self.commands.namespaces(limit, after, now, beat))

    async def purge(self, expired_before: _dt.datetime) -> int:
        """See :meth:`RedisStore.purge`."""
        before = to_ms(expired_before)
        runner = self.runner
        try:
            keys = [
                key
                async for key in runner.client.scan_iter(
                    match=self.commands.expiring_pattern, count=1000
                )
            ]
        except runner.errors as exc:
            raise driver_error(exc) from exc
        return await runner.drive(self.commands.purge(keys, before))

    async def failed_items(
        self, namespace: str, job_id: str, limit: int, after: int | None
    ) -> builtins.list[tuple[int, FailedItem]] | None:
        """Run ``failed.lua``."""
        return await self.runner.run(self.commands.failed_items(namespace, job_id, limit, after))

    async def errors(self, namespace: str, job_id: str) -> builtins.list[ErrorCount] | None:
        """Run ``errors.lua``."""
        return await self.runner.run(self.commands.errors(namespace, job_id))

    async def wait_change(
        self, namespace: str, job_id: str, seen: JobStatus | None, timeout: float
    ) -> None:
        """See :meth:`RedisStore.wait_change`: the same subscription, awaited."""
        await self.sync.push.wait_job(self.get, (namespace, job_id), seen, timeout)

    async def aclose(self) -> None:
        """Close the running loop's async client, if one was built."""
        mine = self._runners.pop(asyncio.get_running_loop(), None)
        if mine is not None:
            runner, closer = mine
            try:
                await runner.client.aclose()
            except runner.errors as exc:
                raise driver_error(exc) from exc
            finally:
                await closer.aclose()  # its own close of the client is then a no-op


def _closed_with_its_loop(runner: AsyncRunner) -> AsyncGenerator[None, None]:
    """An async generator that closes *runner*'s client when the running loop shuts it down.

    Started here, it is tracked by the loop, whose ``shutdown_asyncgens()``
    (run by ``asyncio.run`` and every runner built on it) closes it while
    the loop still runs: the client's connections close cleanly instead of
    being left to a loop that is gone.
    """

    async def closer() -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with contextlib.suppress(*runner.errors):
                await runner.client.aclose()

    generator = closer()
    with contextlib.suppress(StopIteration):  # runs to its yield: no await before it
        generator.asend(None).send(None)
    return generator


def _warn_if_evicting(policy: str | None, store: RedisStore) -> str | None:
    if policy is None or policy == "noeviction":
        return None
    where = store._parsed.shown if store._parsed else type(store.client).__name__
    message = (
        f"Redis at {where} has maxmemory-policy {policy!r}: when it is full it silently "
        "drops keys, jobs included; set maxmemory-policy noeviction (docs/redis.md)"
    )
    warnings.warn(message, JobtrackWarning, stacklevel=3)
    return message
