"""Throwaway Redis servers for the tests: never the developer's own on 6379.

* ``redis_server``: one redis-server on a free loopback port, started by the
  pytest-redis plugin for the whole session.
* ``redis_cluster``: a 3-master Redis Cluster of our own (three
  ``redis-server --cluster-enabled yes`` processes on free ports, joined with
  ``redis-cli --cluster create``), started once per session.

Each test gets its own key prefix, so tests never see each other's keys.
If redis-server cannot be started the tests error out: they never skip.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import port_for
import pytest
import redis
from mirakuru import TCPExecutor
from pytest_redis import factories

from jobtrack import RedisStore

DEVELOPER_PORT = 6379

redis_server = factories.redis_proc(port=None)  # type: ignore[arg-type]  # None: any free port
"""A session-wide throwaway redis-server (pytest-redis)."""


def free_port() -> int:
    """A free loopback port whose cluster-bus port (+10000) is free too."""
    for _ in range(50):
        port = port_for.select_random(ports=set(range(20000, 30000)))
        if port != DEVELOPER_PORT and port_for.is_available(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


class Cluster:
    """A running 3-master cluster of our own (each master with *replicas* replicas)."""

    def __init__(self, base: Path, replicas: int = 0) -> None:
        self.nodes: list[tuple[str, int]] = []
        self.executors: list[TCPExecutor] = []
        binary = shutil.which("redis-server")
        cli = shutil.which("redis-cli")
        if not binary or not cli:
            raise RuntimeError("redis-server and redis-cli are needed for the cluster tests")
        self.replicas = replicas
        for _ in range(3 * (1 + replicas)):
            port = free_port()
            workdir = base / str(port)
            workdir.mkdir()
            command = [
                binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(workdir / "nodes.conf"),
                "--dir", str(workdir),
                "--save", "",
                "--appendonly", "no",
                "--protected-mode", "no",
            ]  # fmt: skip
            executor = TCPExecutor(command, host="127.0.0.1", port=port, timeout=30)
            executor.start()
            self.executors.append(executor)
            self.nodes.append(("127.0.0.1", port))
        create = [cli, "--cluster", "create", *(f"{h}:{p}" for h, p in self.nodes)]
        subprocess.run(
            [*create, "--cluster-replicas", str(replicas), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            states = []
            for host, port in self.nodes:
                with redis.Redis(host, port, decode_responses=True) as client:
                    state = client.cluster("info").get("cluster_state")
                    nodes = client.execute_command("CLUSTER NODES").values()
                    attached = sum("slave" in node["flags"] for node in nodes)
                    replicas_in = attached == 3 * self.replicas
                    states.append(state if replicas_in else f"{attached} replicas attached")
            if all(state == "ok" for state in states):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster did not become ready: {states}")
            time.sleep(0.1)  # waiting on an external server's gossip, not on test state

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in self.nodes)

    def stop(self) -> None:
        for executor in self.executors:
            executor.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


def redis_url(server: Any) -> str:
    assert server.port != DEVELOPER_PORT
    return f"redis://{server.host}:{server.port}/0"


@pytest.fixture
def redis_prefix() -> str:
    return "t" + uuid.uuid4().hex[:12]


def _factory(url: str, prefix: str, made: list[RedisStore]) -> Callable[[], RedisStore]:
    def make() -> RedisStore:
        store = RedisStore(f"{url}?prefix={prefix}&timeout=10")
        made.append(store)
        return store

    return make


@pytest.fixture
def redis_store_factory(redis_server: Any, redis_prefix: str) -> Iterator[Callable[[], RedisStore]]:
    made: list[RedisStore] = []
    yield _factory(redis_url(redis_server), redis_prefix, made)
    for store in made:
        store.close()


@pytest.fixture
def redis_cluster_store_factory(
    redis_cluster: Cluster, redis_prefix: str
) -> Iterator[Callable[[], RedisStore]]:
    made: list[RedisStore] = []
    yield _factory(redis_cluster.url, redis_prefix, made)
    for store in made:
        store.close()
