"""Each thread's own Redis connection, for the round trips of a RedisStore.

A store built from a URL owns its client, and runs its commands on a
connection per thread, made exactly as the client's pool makes its own
(same class, same options: timeouts, TLS, credentials, database, no retries)
and kept for the thread's next call. redis-py's ``execute_command`` takes a
connection from the pool and gives it back on every call, behind a retry
wrapper and metrics hooks; on a ~70 us loopback round trip that bookkeeping
costs about a tenth (``python -m benchmarks --only redis``).

What the pool's checkout also does is kept: before each command a
connection that has data waiting (a reply nobody read, or the server's
close) is dropped and made again, so a restarted server is reconnected to
without an error. A connection that fails mid-command is closed, never
reused with a reply unread. A thread's connection closes when the thread
ends (it is garbage) or when the store closes; a forked child makes its own
rather than share its parent's socket.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

__all__ = ["ThreadConnections"]

_generation = 0
"""Bumped in a forked child: connections of an older generation are the parent's."""


def _after_fork_in_child() -> None:
    global _generation
    _generation += 1


if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


class ThreadConnections:
    """One connection per thread, made like *pool*'s connections.

    *reply_error* is redis-py's ``ResponseError``: an error reply read whole,
    after which the connection is still clean. *dropped* are the errors that
    say a connection is gone (redis-py's ``ConnectionError`` and
    ``TimeoutError``, ``OSError``).
    """

    def __init__(
        self,
        pool: Any,
        reply_error: type[BaseException],
        dropped: tuple[type[BaseException], ...],
    ) -> None:
        self._pool = pool
        self._reply_error = reply_error
        self._dropped = dropped
        self._local = threading.local()
        self._lock = threading.Lock()
        self._made: weakref.WeakSet[Any] = weakref.WeakSet()

    def _connection(self) -> Any:
        """The calling thread's connection state: ``conn``, and ``live`` once it answered."""
        local = self._local
        if getattr(local, "generation", None) != _generation:  # new thread, or forked child
            pool = self._pool
            local.conn = pool.connection_class(**pool.connection_kwargs)
            local.generation = _generation
            local.live = False
            with self._lock:
                self._made.add(local.conn)
        return local

    def execute(self, *args: Any) -> Any:
        """Send one command on this thread's connection and return its reply.

        :raises redis.RedisError: as redis-py raises it (the store turns it
            into ``StoreUnavailable``).
        """
        local = self._connection()
        conn = local.conn
        if local.live:  # what the pool checks when it hands a connection out
            try:
                stale = conn.can_read()  # True: data nobody asked for is waiting
            except self._dropped:  # closed by the server (a restart, an idle timeout)
                stale = True
            if stale:
                conn.disconnect()  # send_command connects again
            local.live = False
        try:
            conn.send_command(*args)
            reply = conn.read_response()
        except self._reply_error:  # an error reply, read whole: the connection is clean
            local.live = True
            raise
        except BaseException:  # anything else may leave half a reply unread
            conn.disconnect()
            raise
        local.live = True
        return reply

    def close(self) -> None:
        """Close every thread's connection; a later call connects again."""
        with self._lock:
            made = list(self._made)
        for conn in made:
            conn.disconnect()
