"""The two runners of :mod:`.commands`: one sends with a sync client, one awaits an async one.

Each knows two things only: send one call (``run``), and drive a multi-step
operation (``drive``): pipeline the calls it yields, load the scripts it asks
for, send the replies back. Batches, listings and the NOSCRIPT reload are
such operations, written once in :mod:`.commands`. Driver errors are mapped
in one place: :func:`.commands.driver_error`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .client import import_redis
from .commands import Call, Prepacked, Script, Steps, driver_error, pipelined, raise_errors

__all__ = ["AsyncRunner", "SyncRunner"]


class _Runner:
    def __init__(self, client: Any) -> None:
        redis = import_redis()
        self.client = client
        self.errors: tuple[type[BaseException], ...] = (
            redis.RedisError,
            redis.exceptions.RedisClusterException,
            OSError,
        )
        self.noscript: type[BaseException] = redis.exceptions.NoScriptError

    def _pipeline(self, calls: Sequence[Call]) -> Any:
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            pipe.execute_command(*call.args)
        return pipe


class SyncRunner(_Runner):
    """Runs calls on a sync redis-py client.

    *execute* sends one command: the store's per-thread connection, or the
    client's ``execute_command``.
    """

    def __init__(self, client: Any, execute: Callable[..., Any], prepacked: bool = False) -> None:
        super().__init__(client)
        self.execute = execute
        self.prepacked = prepacked  # execute takes a Prepacked command

    def run(self, call: Call) -> Any:
        """Send one call and decode its reply (raises the operation's errors)."""
        try:
            if self.prepacked and call.head is not None:
                reply = self.execute(Prepacked(call.resp()))
            else:
                reply = self.execute(*call.args)
        except self.noscript:  # the server lost its scripts (a restart, SCRIPT FLUSH)
            return raise_errors(self.drive(pipelined([call]))[0])
        except self.errors as exc:
            raise driver_error(exc) from exc
        return call.decode(reply)

    def drive(self, steps: Steps[Any]) -> Any:
        """Run a multi-step operation to its result."""
        try:
            step = next(steps)
            while True:
                if isinstance(step, Script):
                    step = steps.send(self.client.script_load(step.text))
                else:
                    step = steps.send(self._pipeline(step).execute(raise_on_error=False))
        except StopIteration as done:
            return done.value
        except self.errors as exc:
            raise driver_error(exc) from exc


class AsyncRunner(_Runner):
    """Runs calls on a ``redis.asyncio`` client: the same steps, awaited."""

    async def run(self, call: Call) -> Any:
        """Send one call and decode its reply (raises the operation's errors)."""
        try:
            reply = await self.client.execute_command(*call.args)
        except self.noscript:
            return raise_errors((await self.drive(pipelined([call])))[0])
        except self.errors as exc:
            raise driver_error(exc) from exc
        return call.decode(reply)

    async def drive(self, steps: Steps[Any]) -> Any:
        """Run a multi-step operation to its result, awaiting each step."""
        try:
            step = next(steps)
            while True:
                if isinstance(step, Script):
                    step = steps.send(await self.client.script_load(step.text))
                else:
                    step = steps.send(await self._pipeline(step).execute(raise_on_error=False))
        except StopIteration as done:
            return done.value
        except self.errors as exc:
            raise driver_error(exc) from exc
