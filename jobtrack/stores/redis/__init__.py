"""The Redis store: Redis, Valkey and Redis Cluster (``pip install 'jobtrack[redis]'``).

* ``store.py``: :class:`RedisStore` and its async twin, thin over the runners;
* ``commands.py``: each operation described once (keys, script, arguments, decoding);
* ``runner.py``: the sync and async runners that send them;
* ``client.py``: clients and the options a store URL may carry;
* ``connections.py``: one connection per thread for a store built from a URL;
* ``lua/``: the scripts, ports of :mod:`jobtrack.rules`.
"""

from .client import DEFAULT_PREFIX, DEFAULT_TIMEOUT
from .store import AsyncRedisStore, RedisStore

__all__ = ["DEFAULT_PREFIX", "DEFAULT_TIMEOUT", "AsyncRedisStore", "RedisStore"]
