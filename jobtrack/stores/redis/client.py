"""redis-py clients built from store URLs: the options a URL may carry, checked when opened."""

from __future__ import annotations

import urllib.parse
from typing import Any

from ...errors import ConfigurationError, StoreUnavailable
from ..registry import Option, StoreURL, boolean, integer, seconds, text

__all__ = ["DEFAULT_PREFIX", "DEFAULT_TIMEOUT", "OPTIONS", "UNBOUNDED", "connect", "import_redis"]

DEFAULT_PREFIX = "jobtrack"
DEFAULT_TIMEOUT = 5.0
"""Seconds before a connect, read or write to Redis gives up (``StoreUnavailable``)."""

UNBOUNDED = 2**31
"""``max_connections`` of the pools of a client built from a URL that does not set
it (redis-py's own default before 8.0; 8.x caps a pool at 100, and a call
beyond that fails at once with ``MaxConnectionsError``)."""

PREFIX_PATTERN = r"[A-Za-z0-9_.:-]{1,64}"
"""A key prefix: 1-64 of ``A-Z a-z 0-9 _ . : -`` (no braces: the hash tag is the namespace's)."""

_PATH = r"[^\x00-\x1f]{1,4096}"
OPTIONS: dict[str, Option] = {
    "prefix": text(DEFAULT_PREFIX, PREFIX_PATTERN),
    "timeout": seconds(DEFAULT_TIMEOUT),
    # passed on to redis-py, checked here first
    "db": integer(None, 0, 2**31 - 1),
    "max_connections": integer(None, 1, UNBOUNDED),
    "health_check_interval": seconds(None, allow_zero=True),
    "client_name": text(None, r"[!-~]{1,128}"),
    "protocol": integer(None, 2, 3),
    "ssl_cert_reqs": text(None, "none|optional|required"),
    "ssl_ca_certs": text(None, _PATH),
    "ssl_certfile": text(None, _PATH),
    "ssl_keyfile": text(None, _PATH),
    "ssl_check_hostname": boolean(None),
}
"""The options of a Redis store URL: jobtrack's own (``prefix``, ``timeout``) and the
redis-py ones it passes on."""

_EXTRA = "pip install 'jobtrack[redis]'"


def import_redis() -> Any:
    """Import redis-py, or raise ``ConfigurationError`` naming the extra."""
    try:
        import redis  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigurationError(
            f"the Redis store needs redis-py, which is not installed: {_EXTRA}"
        ) from exc
    return redis


def connect(url: StoreURL, timeout: float, *, asynchronous: bool = False) -> Any:
    """A redis-py client (``redis.asyncio`` with *asynchronous*) for *url*.

    It times out after *timeout* seconds, never retries on its own (a retried
    update whose reply was lost could count twice) and has no pool cap
    unless the URL sets ``max_connections``.
    """
    redis = import_redis()
    from redis.asyncio.retry import Retry as AsyncRetry  # noqa: PLC0415
    from redis.backoff import NoBackoff  # noqa: PLC0415
    from redis.retry import Retry  # noqa: PLC0415

    module: Any = redis.asyncio if asynchronous else redis
    retry: Any = AsyncRetry if asynchronous else Retry

    options = url.options(**OPTIONS)
    kwargs: dict[str, Any] = {
        name: value
        for name, value in options.items()
        if value is not None and name not in ("prefix", "timeout")
    }
    tls = sorted(name for name in kwargs if name.startswith("ssl_"))
    if tls and url.scheme != "rediss":
        raise ConfigurationError(f"option(s) {', '.join(tls)} need a rediss:// URL")
    kwargs.setdefault("max_connections", UNBOUNDED)
    kwargs.update(
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=retry(NoBackoff(), 0),
        decode_responses=True,
    )
    try:
        if url.scheme == "redis+cluster":
            if "db" in kwargs:
                raise ConfigurationError("a Redis Cluster has only database 0: drop ?db=")
            nodes, auth = cluster_nodes(url)
            return module.RedisCluster(
                startup_nodes=[module.cluster.ClusterNode(h, p) for h, p in nodes],
                **auth,
                **kwargs,
            )
        database = url.path.strip("/") if url.scheme != "unix" else ""
        if database and not (database.isascii() and database.isdigit() and int(database) < 2**31):
            raise ConfigurationError(
                f"bad Redis URL {url.shown!r}: the path must be a db number (0 to {2**31 - 1})"
            )
        if url.scheme == "unix" and not url.path.strip("/"):
            raise ConfigurationError(
                f"bad Redis URL {url.shown!r}: give the socket's path, unix:///run/redis.sock"
            )
        if database and "db" in kwargs:
            raise ConfigurationError(f"bad Redis URL {url.shown!r}: give the db once, path or ?db=")
        return module.Redis.from_url(url.url.partition("?")[0], **kwargs)
    except (ValueError, TypeError, redis.RedisError, redis.exceptions.RedisClusterException) as exc:
        if url.scheme == "redis+cluster" and not isinstance(exc, (ValueError, TypeError)):
            raise StoreUnavailable(  # it asks its nodes for the slot map at once
                f"Redis Cluster {url.shown!r} cannot be reached: {type(exc).__name__}: {exc}"
            ) from exc
        raise ConfigurationError(f"bad Redis URL {url.shown!r}: {exc}") from exc


def cluster_nodes(url: StoreURL) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """Parse ``redis+cluster://[user:pass@]h1:p1,h2:p2`` into nodes and auth options."""
    if url.path.strip("/"):
        raise ConfigurationError("a Redis Cluster has only database 0: drop the path")
    userinfo, _, hosts = url.netloc.rpartition("@")
    auth: dict[str, Any] = {}
    if userinfo:
        user, _, password = userinfo.partition(":")
        if user:
            auth["username"] = urllib.parse.unquote(user)
        if password:
            auth["password"] = urllib.parse.unquote(password)
    nodes = []
    for item in hosts.split(","):
        host, sep, port = item.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(
                f"bad node {item!r} in {url.shown!r}: use redis+cluster://host1:port1,host2:port2"
            )
        nodes.append((host, int(port)))
    return nodes, auth
