"""jobtrack's own stores, each run through the shipped contract (jobtrack.testing)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobtrack import Features, FileStore, MemoryStore, RedisStore, Store
from jobtrack.testing import StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> Store:
        return MemoryStore()


class TestFileStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        store = FileStore(tmp_path / "jobs")
        yield store
        store.close()


@pytest.mark.redis
class TestRedisStore(StoreContract):
    @pytest.fixture
    def store(self, redis_store_factory: Callable[[], RedisStore]) -> Store:
        return redis_store_factory()  # closed by the factory


@pytest.mark.redis
@pytest.mark.cluster
class TestRedisClusterStore(StoreContract):
    @pytest.fixture
    def store(self, redis_cluster_store_factory: Callable[[], RedisStore]) -> Store:
        return redis_cluster_store_factory()


class PlainStore:
    """A store with the protocol and items only: no status indexes, no purge.

    What a third-party store written before retention looks like: the
    trackers filter its full listing by status, and still leave expired jobs
    out; the contract's purge checks skip it.
    """

    features = Features(blocking=False, items=True)

    def __init__(self) -> None:
        self._inner = MemoryStore()
        for name in ("create", "update", "update_many", "get", "delete", "list", "close",
                     "failed_items", "errors"):  # fmt: skip
            setattr(self, name, getattr(self._inner, name))


class TestPlainStore(StoreContract):
    @pytest.fixture
    def store(self) -> Store:
        return PlainStore()  # type: ignore[return-value]


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        from jobtrack.stores.sql import SQLiteStore

        store = SQLiteStore(tmp_path / "jobs.db")
        yield store
        store.close()


@pytest.mark.postgres
class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, postgres_schema_url: str) -> Iterator[Store]:
        from jobtrack.stores.sql import PostgresStore

        store = PostgresStore(postgres_schema_url)
        yield store
        store.close()
