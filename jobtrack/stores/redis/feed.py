"""The Redis store's push: ``update.lua`` publishes each change; a :class:`RedisFeed` subscribes.

The channel of a job is named as its hash, ``<prefix>:{<namespace>}:job:<job_id>``:
it carries the job's hash tag. On Redis >= 7 (and Valkey) the scripts
``SPUBLISH`` to it (sharded pub/sub: on a cluster the message stays on the
shard that holds the job, where the feed ``SSUBSCRIBE`` it), on older
servers they ``PUBLISH`` (on a cluster, sent to every node) and the feed
``SUBSCRIBE``. The message is the job's ``updated_at`` ms; waiters read the
job again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from ..push import CHANGED, READY, Key
from .commands import Commands

__all__ = ["RedisFeed"]

_KINDS = {"subscribe": READY, "ssubscribe": READY, "message": CHANGED, "smessage": CHANGED}


class RedisFeed:
    """The subscriptions of one store, over redis-py ``PubSub`` connections (one per node).

    On a single server, one connection; on a cluster with sharded pub/sub,
    one per node that holds a subscribed job (found by its key's slot).
    """

    def __init__(self, client: Any, commands: Commands, cluster: bool, errors: tuple[Any, ...]):
        self.errors = errors
        self._client = client
        self._commands = commands
        self._cluster = cluster
        self._pubsubs: dict[Any, Any] = {}  # by the node's connection pool
        self._channels: dict[str, Key] = {}
        info = self._node_client(None).info("server")
        self._sharded = int(str(info["redis_version"]).split(".")[0]) >= 7

    def _node_client(self, channel: str | None) -> Any:
        """The client of the node that serves *channel* (any node when None)."""
        if not self._cluster:
            return self._client
        if channel is None or not self._sharded:
            return self._client.get_default_node().redis_connection
        return self._client.get_node_from_key(channel).redis_connection

    def _pubsub(self, channel: str) -> Any:
        """The ``PubSub`` of the node that serves *channel*, made on first use."""
        pool = self._node_client(channel).connection_pool
        pubsub = self._pubsubs.get(pool)
        if pubsub is None:
            pubsub = self._pubsubs[pool] = self._node_client(channel).pubsub()
        return pubsub

    def subscribe(self, keys: Iterable[Key]) -> None:
        """``SSUBSCRIBE`` (``SUBSCRIBE`` before Redis 7) each job's channel."""
        for key in keys:
            channel = self._commands.job_key(*key)
            self._channels[channel] = key
            pubsub = self._pubsub(channel)
            if self._sharded:
                pubsub.ssubscribe(channel)
            else:
                pubsub.subscribe(channel)

    def unsubscribe(self, keys: Iterable[Key]) -> None:
        """Unsubscribe each job's channel."""
        for key in keys:
            channel = self._commands.job_key(*key)
            self._channels.pop(channel, None)
            pubsub = self._pubsub(channel)
            if self._sharded:
                pubsub.sunsubscribe(channel)
            else:
                pubsub.unsubscribe(channel)

    def receive(self, timeout: float) -> list[tuple[str, Key]]:
        """Confirmations and changes that came within *timeout* s (shared among the nodes)."""
        got: list[tuple[str, Key]] = []
        pubsubs = list(self._pubsubs.values())
        for pubsub in pubsubs:
            wait = timeout / len(pubsubs)
            while (message := pubsub.get_message(timeout=wait)) is not None:
                wait = 0.0
                kind = _KINDS.get(message["type"])
                key = self._channels.get(message["channel"])
                if kind is not None and key is not None:
                    got.append((kind, key))
        return got

    def close(self) -> None:
        """Close every connection."""
        for pubsub in self._pubsubs.values():
            with contextlib.suppress(*self.errors):
                pubsub.close()
        self._pubsubs.clear()
