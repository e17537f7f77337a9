"""Shared fixtures: every store kind, a manual clock, a tracker over both."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jobtrack import AsyncJobTracker, FileStore, JobTracker, MemoryStore, Store
from tests.helpers import ManualClock

pytest_plugins = ["tests.redis_fixtures"]

STORE_KINDS = [
    "memory",
    "file",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis-cluster", marks=[pytest.mark.redis, pytest.mark.cluster]),
]

StoreFactory = Callable[[], Store]


def _make_factory(
    kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> StoreFactory:
    if kind == "memory":
        shared = MemoryStore()  # one process: every "connection" is the same store
        return lambda: shared
    if kind == "file":
        root = tmp_path_factory.mktemp("filestore")
        return lambda: FileStore(root)
    maker = request.getfixturevalue(f"{kind.replace('-', '_')}_store_factory")
    return maker  # type: ignore[no-any-return]


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def store_factory(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> StoreFactory:
    """Makes store objects that all see the same data (one test's own space)."""
    return _make_factory(store_kind, request, tmp_path_factory)


@pytest.fixture
def store(store_factory: StoreFactory) -> Iterator[Store]:
    s = store_factory()
    yield s
    s.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


class AsyncFacade:
    """Drives an AsyncJobTracker from sync test code, on one event loop per test."""

    def __init__(self, tracker: AsyncJobTracker, loop: asyncio.AbstractEventLoop) -> None:
        self.tracker = tracker
        self.store = tracker.store
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.tracker, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(attr(*args, **kwargs))

        return call

    def close(self) -> None:
        self._loop.run_until_complete(self.tracker._async.aclose())


TrackerFactory = Callable[..., JobTracker]


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def tracker_factory(api: str) -> Iterator[TrackerFactory]:
    """Makes a JobTracker, or an AsyncJobTracker behind a sync facade."""
    if api == "sync":
        yield JobTracker
        return
    loop = asyncio.new_event_loop()
    made: list[AsyncFacade] = []

    def make(store: Store, *, clock: Any = None) -> JobTracker:
        facade = AsyncFacade(AsyncJobTracker(store, clock=clock), loop)
        made.append(facade)
        return facade  # type: ignore[return-value]

    try:
        yield make
    finally:
        for facade in made:
            facade.close()
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


@pytest.fixture
def tracker(tracker_factory: TrackerFactory, store: Store, clock: ManualClock) -> JobTracker:
    return tracker_factory(store, clock=clock)


@pytest.fixture(autouse=True)
def _no_developer_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep tests away from any Redis or store the developer configured."""
    monkeypatch.delenv("JOBTRACK_STORE", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert "JOBTRACK_STORE" not in os.environ
