"""The native async view of a RedisStore: ``redis.asyncio`` with the same Lua scripts."""

from __future__ import annotations

import asyncio
import datetime as _dt
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ..clock import to_ms
from ..errors import JobExists, JobtrackError, StoreUnavailable
from ..model import JobStatus
from ..rules import Delta
from .protocol import ListKey
from .redis import (
    SCRIPTS,
    UNBOUNDED,
    RedisStore,
    _unexpected,
    client_options,
    cluster_nodes,
    import_redis,
    index_entries,
    job_from_hash,
    job_from_update_reply,
    jobs_from_rows,
    queue_index_reads,
    results_from_replies,
    update_args,
)

__all__ = ["AsyncRedisStore"]


class AsyncRedisStore:
    """Awaitable twin of a :class:`RedisStore`: same keys, scripts and replies.

    Its client is built from the store's URL on first use (it must be created
    inside the running event loop) and closed by :meth:`aclose`.
    """

    def __init__(self, store: RedisStore, client: Any = None) -> None:
        if client is None and store.url is None:
            raise ValueError("an AsyncRedisStore needs the store's URL or an async client")
        self.sync = store
        self._client = client
        self._own_client = client is None
        redis = import_redis()
        self._errors: tuple[type[BaseException], ...] = (
            redis.RedisError,
            redis.exceptions.RedisClusterException,
            OSError,
        )
        self._noscript = redis.exceptions.NoScriptError

    @property
    def client(self) -> Any:
        """The ``redis.asyncio`` client (built on first use)."""
        if self._client is None:
            self._client = _connect_async(self.sync.url or "", self.sync.timeout)
        return self._client

    @asynccontextmanager
    async def _guard(self, what: str) -> AsyncIterator[None]:
        try:
            yield
        except JobtrackError:
            raise
        except self._errors as exc:
            raise StoreUnavailable(f"Redis {what} failed: {type(exc).__name__}: {exc}") from exc

    async def _evalsha(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        sha = SCRIPTS.sha[name]
        try:
            return await self.client.evalsha(sha, len(keys), *keys, *args)
        except self._noscript:
            await self.client.script_load(getattr(SCRIPTS, name))
            return await self.client.evalsha(sha, len(keys), *keys, *args)

    async def create(self, job: JobStatus) -> None:
        """Run ``create.lua``."""
        ns, jid = job.namespace_name, job.job_id
        keys = (self.sync.job_key(ns, jid), self.sync.index_key(ns))
        async with self._guard("create"):
            created = await self._evalsha("create", keys, (jid, job.total, to_ms(job.started_at)))
        if created == 0:
            raise JobExists(ns, jid)
        if created != 1:
            raise _unexpected("a create", created)

    async def update(
        self, namespace: str, job_id: str, delta: Delta, now: _dt.datetime
    ) -> JobStatus:
        """Run ``update.lua``: one round trip."""
        key = self.sync.job_key(namespace, job_id)
        async with self._guard("update"):
            reply = await self._evalsha("update", (key,), update_args(delta, now))
        return job_from_update_reply(namespace, job_id, reply)

    async def update_many(
        self, updates: Sequence[tuple[str, str, Delta]], now: _dt.datetime
    ) -> list[JobStatus | JobtrackError]:
        """Pipelined EVALSHAs (one round trip); on a cluster, jobs concurrently."""
        if not updates:
            return []
        if self.sync.cluster:
            return await self._per_job(updates, now)
        sha = SCRIPTS.sha["update"]
        calls = [(self.sync.job_key(ns, jid), update_args(d, now)) for ns, jid, d in updates]
        async with self._guard("update"):
            replies = await self._pipeline(sha, calls)
            missing = [i for i, r in enumerate(replies) if isinstance(r, self._noscript)]
            if missing:  # NOSCRIPT: nothing of those ran; load and run them again
                await self.client.script_load(SCRIPTS.update)
                again = await self._pipeline(sha, [calls[i] for i in missing])
                for i, reply in zip(missing, again, strict=True):
                    replies[i] = reply
        return results_from_replies(updates, replies)

    async def _pipeline(self, sha: str, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for key, args in calls:
            pipe.evalsha(sha, 1, key, *args)
        return list(await pipe.execute(raise_on_error=False))

    async def _per_job(
        self, updates: Sequence[tuple[str, str, Delta]], now: _dt.datetime
    ) -> list[JobStatus | JobtrackError]:
        """On a cluster: the jobs concurrently, each job's updates in their order."""
        results: list[JobStatus | JobtrackError | None] = [None] * len(updates)
        by_job: dict[tuple[str, str], list[int]] = {}
        for i, (ns, jid, _) in enumerate(updates):
            by_job.setdefault((ns, jid), []).append(i)

        async def run(indexes: list[int]) -> None:
            for i in indexes:
                ns, jid, delta = updates[i]
                try:
                    results[i] = await self.update(ns, jid, delta, now)
                except JobtrackError as exc:
                    results[i] = exc

        await asyncio.gather(*(run(indexes) for indexes in by_job.values()))
        return [result for result in results if result is not None]

    async def get(self, namespace: str, job_id: str) -> JobStatus | None:
        """One HGETALL."""
        key = self.sync.job_key(namespace, job_id)
        async with self._guard("read"):
            fields = await self.client.hgetall(key)
        return job_from_hash(namespace, job_id, fields)

    async def delete(self, namespace: str, job_id: str) -> bool:
        """Run ``delete.lua``."""
        keys = (self.sync.job_key(namespace, job_id), self.sync.index_key(namespace))
        async with self._guard("delete"):
            deleted = await self._evalsha("delete", keys, (job_id,))
        if deleted not in (0, 1):
            raise _unexpected("a delete", deleted)
        return bool(deleted == 1)

    async def list(self, namespace: str, limit: int, before: ListKey | None) -> list[JobStatus]:
        """Index page, then the jobs: two round trips."""
        index = self.sync.index_key(namespace)
        async with self._guard("list"):
            pipe = self.client.pipeline(transaction=False)
            queue_index_reads(pipe, index, limit, before)
            entries = index_entries(await pipe.execute(), limit, before)
            if not entries:
                return []
            pipe = self.client.pipeline(transaction=False)
            for _, jid in entries:
                pipe.hgetall(self.sync.job_key(namespace, jid))
            rows = await pipe.execute()
        return jobs_from_rows(namespace, entries, rows)

    async def aclose(self) -> None:
        """Close the async client if this view built it."""
        client, self._client = self._client, None
        if client is not None and self._own_client:
            async with self._guard("close"):
                await client.aclose()


def _connect_async(url: str, timeout: float) -> Any:
    redis = import_redis()
    import redis.asyncio as aredis  # noqa: PLC0415

    options = client_options(timeout)
    if url.startswith("redis+cluster://"):
        nodes, kwargs = cluster_nodes(url)
        return aredis.RedisCluster(
            startup_nodes=[aredis.cluster.ClusterNode(h, p) for h, p in nodes],
            max_connections=UNBOUNDED,
            **kwargs,
            **_async_retry(options, redis),
        )
    return aredis.Redis.from_url(
        url, **{"max_connections": UNBOUNDED, **_async_retry(options, redis)}
    )


def _async_retry(options: dict[str, Any], redis: Any) -> dict[str, Any]:
    from redis.asyncio.retry import Retry  # noqa: PLC0415
    from redis.backoff import NoBackoff  # noqa: PLC0415

    return {**options, "retry": Retry(NoBackoff(), 0)}
