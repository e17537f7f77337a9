"""One subscription per job per process: the waiters of a push store, and the thread that listens.

A network store that can push (Redis pub/sub, PostgreSQL ``LISTEN``) gives
:class:`Subscriptions` a :class:`Feed`: one connection of its own, over
which it subscribes the channel of each job someone waits on. One thread
per store and process reads it; the first waiter of a job subscribes its
channel, the last one to leave unsubscribes it, and each message wakes every
waiter of its job, sync (a thread) or async (an event loop), which then read
the job once.

A waiter reads the job only once its subscription is confirmed, so no
change slips between that read and the subscription. A feed that fails (the
server restarts, the connection is killed) wakes every waiter (a change may
have been missed) and is opened again, at most once a second while it
fails; meanwhile waiters wait out their bound (at most a second, see
:class:`jobtrack.operations.Watching`) and read again: polling until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from . import forks

if TYPE_CHECKING:
    from ..model import JobStatus

__all__ = ["CHANGED", "READY", "Feed", "Key", "Subscriptions"]

logger = logging.getLogger("jobtrack")

Key = tuple[str, str]
"""A job: ``(namespace, job id)``."""
READY, CHANGED = "ready", "changed"
"""What a feed reports of a job: its subscription is confirmed; it changed."""
POLL = 0.05
"""Seconds the listener reads at most before it (un)subscribes what waiters asked since."""
RETRY = 1.0
"""Seconds between two attempts to open a failed feed."""


class Feed(Protocol):
    """**Protocol**: one connection that subscribes jobs' channels (used by one thread only)."""

    errors: tuple[type[BaseException], ...]
    """What its calls raise when the connection fails (it is then closed and opened again)."""

    def subscribe(self, keys: Iterable[Key]) -> None:
        """Subscribe the channels of *keys* (connecting first if need be)."""
        ...

    def unsubscribe(self, keys: Iterable[Key]) -> None:
        """Unsubscribe the channels of *keys*."""
        ...

    def receive(self, timeout: float) -> list[tuple[str, Key]]:
        """What came within *timeout* seconds: ``(READY or CHANGED, key)`` pairs."""
        ...

    def close(self) -> None:
        """Close the connection (no error raised)."""
        ...


class _Waiter(threading.Event):
    """A thread waiting for its job."""

    wake = threading.Event.set


class _AsyncWaiter(asyncio.Event):
    """A task waiting for its job, woken from the listener's thread through its loop."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.get_running_loop()

    def wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits any more
            self.loop.call_soon_threadsafe(self.set)


class Subscriptions:
    """The waiters of one store in this process, and the thread that subscribes for them.

    *open_feed* makes a new :class:`Feed` (called on the listener's thread).
    """

    def __init__(self, open_feed: Callable[[], Feed], name: str) -> None:
        self._open_feed = open_feed
        self._name = name
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # wakes the listener
        self._waiters: dict[Key, set[_Waiter | _AsyncWaiter]] = {}
        self._live: set[Key] = set()  # subscribed, and confirmed, on the current connection
        self._thread: threading.Thread | None = None
        self._closed = False
        self._generation = forks.generation
        self.subscribed = 0
        """How many channels the feed has subscribed (tests read it)."""

    def wait(self, key: Key, timeout: float, changed: Callable[[], bool]) -> None:
        """Return once *key*'s job may have changed, or after *timeout* s (thread).

        *changed* reads the job and says whether it differs from what the
        caller saw; it is called once the subscription is confirmed.
        """
        deadline = time.monotonic() + timeout
        waiter = _Waiter()
        live = self._join(key, waiter)
        try:
            if not live:
                if not waiter.wait(timeout):
                    return
                waiter.clear()
            if not changed():
                waiter.wait(max(0.0, deadline - time.monotonic()))
        finally:
            self._leave(key, waiter)

    async def wait_job(
        self,
        get: Callable[[str, str], Awaitable[JobStatus | None]],
        key: Key,
        seen: JobStatus | None,
        timeout: float,
    ) -> None:
        """:meth:`wait` for an async store's ``wait_change``: the same subscription, awaited.

        The job has changed when *get* reads something else than *seen*.
        """
        deadline = time.monotonic() + timeout
        waiter = _AsyncWaiter()
        live = self._join(key, waiter)
        try:
            if not live:
                if not await _waited(waiter, timeout):
                    return
                waiter.clear()
            if await get(*key) == seen:
                await _waited(waiter, max(0.0, deadline - time.monotonic()))
        finally:
            self._leave(key, waiter)

    def _join(self, key: Key, waiter: _Waiter | _AsyncWaiter) -> bool:
        """Add *waiter*; whether *key* is already subscribed (else the listener will)."""
        if self._generation != forks.generation:  # a forked child: the thread stayed behind
            self._reset()
        with self._lock:
            waiters = self._waiters.setdefault(key, set())
            waiters.add(waiter)
            if len(waiters) == 1:
                self._changed.notify()
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._listen, name=f"jobtrack-{self._name}-push", daemon=True
                )
                self._thread.start()
            return key in self._live

    def _leave(self, key: Key, waiter: _Waiter | _AsyncWaiter) -> None:
        with self._lock:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[key]

    def _wake(self, keys: Iterable[Key]) -> None:
        """Wake every waiter of *keys* (with the lock held)."""
        for key in keys:
            for waiter in self._waiters.get(key, ()):
                waiter.wake()

    def _listen(self) -> None:
        """The listener's thread: (un)subscribe what waiters need, dispatch what comes."""
        feed: Feed | None = None
        subscribed: set[Key] = set()
        while True:
            with self._lock:
                while not self._waiters and not subscribed and not self._closed:
                    self._changed.wait()
                if self._closed:
                    break
                add = self._waiters.keys() - subscribed
                drop = subscribed - self._waiters.keys()
                self._live -= drop  # a waiter who comes now waits for a new subscription
            try:
                if feed is None:
                    feed = self._open_feed()
                if drop:
                    feed.unsubscribe(drop)
                    subscribed -= drop
                if add:
                    feed.subscribe(add)
                    subscribed |= add
                self.subscribed = len(subscribed)
                got = feed.receive(POLL)
            except Exception as exc:  # any failure: the feed is opened again
                if feed is not None:
                    feed.close()
                feed, subscribed = None, set()
                self.subscribed = 0
                logger.warning(
                    "%s push connection lost (%s: %s)", self._name, type(exc).__name__, exc
                )
                with self._lock:
                    self._live.clear()
                    self._wake(list(self._waiters))
                    self._changed.wait(RETRY)
                continue
            if got:
                with self._lock:
                    for kind, key in got:
                        if kind == READY and key in subscribed:
                            self._live.add(key)
                        self._wake((key,))
        if feed is not None:
            feed.close()

    def close(self) -> None:
        """Stop the listener (it closes its feed) and wake every waiter. Idempotent."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
            self._wake(list(self._waiters))
            self._changed.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)


async def _waited(event: asyncio.Event, timeout: float) -> bool:
    """Whether *event* was set within *timeout* seconds.

    Not ``asyncio.wait_for``: on Python < 3.12 it can swallow a cancellation
    that arrives as the event is set, leaving a cancelled watch running.
    """
    if event.is_set():
        return True
    task = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((task,), timeout=timeout)
    finally:
        task.cancel()
    return event.is_set()
