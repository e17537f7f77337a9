"""jobtrack's own stores, each run through the shipped contract (jobtrack.testing)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobtrack import FileStore, MemoryStore, RedisStore, Store
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
