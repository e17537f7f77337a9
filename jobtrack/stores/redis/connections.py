"""Each thread's own Redis connection, for the round trips of a RedisStore.

A store built from a URL owns its client. Each thread that uses the store
takes a connection from the client's pool once, keeps it for its later calls,
and gives it back when the thread ends. redis-py's ``execute_command`` checks
a connection out of the pool and back in on every call, behind a retry
wrapper and metrics hooks; on a ~70 us loopback round trip that bookkeeping
costs about a tenth (``python -m benchmarks --only redis``).

What the pool's checkout guards against is still checked before each
command, the way the pool checks it: a connection the server closed (a
restart, an idle timeout) or marked for reconnection is dropped and made
again, so a restart between two calls is not an error, and one with data
nobody asked for is dropped too (unless maintenance notifications may be
waiting, which the pool leaves for the next read). A connection that fails
mid-command is closed, never reused with a reply unread; a call made on the
same thread while another is on the wire (from a signal handler) takes a
connection of its own for that one command. A forked child takes its own
connection rather than share its parent's socket, and never gives its
parent's connections back to the pool (redis-py itself resets the pool in the
child when the child first uses it). Closing the client's pool closes them
all.

Since a thread keeps its connection while it lives, this is only used with a
pool that has no connection limit (see ``RedisStore``).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from .. import forks
from .commands import Prepacked

__all__ = ["ThreadConnections"]


def _give_back(pool: Any, conn: Any, pid: int) -> None:
    """Finalizer of a thread's connection: back to the pool, in the process that took it.

    In a forked child the parent's threads are gone and their holders are
    freed, but the pool (and its lock, which a parent thread may have held at
    the fork) belongs to the parent: the child leaves it alone.
    """
    if os.getpid() == pid:
        pool.release(conn)


class _Held:
    """A thread's connection, and whether it has answered since it was checked.

    When the thread ends this is garbage, and a finalizer gives the
    connection back to the pool for the next thread.
    """

    __slots__ = ("__weakref__", "busy", "conn", "generation", "live")

    def __init__(self, conn: Any, generation: int) -> None:
        self.conn = conn
        self.generation = generation
        self.live = True  # the pool checked it when it handed it out
        self.busy = False  # a command is on the wire: a reentrant call must not use it


class ThreadConnections:
    """Commands over one connection per thread, taken from (and given back to) *pool*.

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
        # as the pool: with maintenance notifications on, waiting data may be a
        # push message that the next read handles, not a stale reply
        notifications = getattr(pool, "maint_notifications_enabled", None)
        self._pushes = bool(notifications()) if notifications is not None else False

    def _held(self) -> _Held:
        """The calling thread's connection, taken from the pool on its first call."""
        held: _Held | None = getattr(self._local, "held", None)
        if held is None or held.generation != forks.generation:  # new thread, or forked child
            pool = self._pool
            conn = pool.get_connection()
            finalizer = None
            try:
                held = _Held(conn, forks.generation)
                finalizer = weakref.finalize(held, _give_back, pool, conn, os.getpid())
                finalizer.atexit = False  # at exit other threads may still be using it
            except BaseException:  # an interrupt here: give it back exactly once
                if finalizer is not None:
                    finalizer()
                else:
                    pool.release(conn)
                raise
            self._local.held = held
        return held

    def _check(self, conn: Any) -> None:
        """Drop *conn* if the pool would not hand it out as it is (before a command)."""
        reconnect = getattr(conn, "should_reconnect", None)
        if reconnect is not None and reconnect():  # marked by a maintenance notification
            conn.disconnect()
            return
        if getattr(conn, "is_connected", True) is False:
            return  # send_command connects: no second attempt here
        try:
            waiting = conn.can_read()
        except self._dropped:  # closed by the server (a restart, an idle timeout)
            conn.disconnect()
            return
        if waiting and not self._pushes:  # a reply nobody read: never read it as ours
            conn.disconnect()

    def execute(self, *args: Any) -> Any:
        """Send one command on this thread's connection and return its reply.

        :raises redis.RedisError: as redis-py raises it (the store turns it
            into ``StoreUnavailable``).
        """
        held = self._held()
        if held.busy:  # called again on this thread mid-command (a signal handler): a one-off
            conn = self._pool.get_connection()
            try:
                return self._round_trip(conn, args)
            finally:
                self._pool.release(conn)
        conn = held.conn
        held.busy = True
        try:
            if held.live:
                held.live = False
                self._check(conn)
            reply = self._round_trip(conn, args)
        except self._reply_error:  # an error reply, read whole: the connection is clean
            held.live = True
            raise
        except BaseException:  # interrupted in the check: it may have left a handshake behind
            conn.disconnect()
            raise
        finally:
            held.busy = False
        held.live = True
        return reply

    def _round_trip(self, conn: Any, args: tuple[Any, ...]) -> Any:
        """Send *args* on *conn* and read the reply; close *conn* if that fails half-way."""
        try:
            if type(args[0]) is Prepacked:
                conn.send_packed_command([args[0]])
            else:
                conn.send_command(*args)
            return conn.read_response()
        except self._reply_error:  # read whole: the connection is clean
            raise
        except BaseException:  # may leave half a reply unread: never reuse it
            conn.disconnect()
            raise
