"""Shared fixtures: every store kind, for the tests outside the store contract."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from jobtrack import FileStore, JobTracker, MemoryStore, Store

pytest_plugins = ["tests.redis_fixtures", "tests.pg_fixtures"]

STORE_KINDS = [
    "memory",
    "file",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis-cluster", marks=[pytest.mark.redis, pytest.mark.cluster]),
]

StoreFactory = Callable[[], Store]


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def store_factory(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> StoreFactory:
    """Makes store objects that all see the same data (one test's own space)."""
    if store_kind == "memory":
        shared = MemoryStore()  # one process: every "connection" is the same store
        return lambda: shared
    if store_kind == "file":
        root = tmp_path_factory.mktemp("filestore")
        return lambda: FileStore(root)
    maker = request.getfixturevalue(f"{store_kind.replace('-', '_')}_store_factory")
    return maker  # type: ignore[no-any-return]


@pytest.fixture
def store(store_factory: StoreFactory) -> Iterator[Store]:
    s = store_factory()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _no_developer_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep tests away from any Redis or store the developer configured."""
    monkeypatch.delenv("JOBTRACK_STORE", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert "JOBTRACK_STORE" not in os.environ


@pytest.fixture
def served(store: Store) -> Iterator[tuple[str, JobTracker]]:
    """A tracker over *store*, and the base URL of its status app under a real uvicorn."""
    from jobtrack.asgi import status_app

    from .asgi_driver import serving

    tracker = JobTracker(store)
    with serving(status_app(tracker)) as base:
        yield base, tracker
