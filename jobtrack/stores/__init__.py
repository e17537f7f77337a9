"""Storage backends, and the scheme table that chooses one by URL.

Adding a store is one module plus one registration line below (or, outside
jobtrack, a call to :func:`register_store` or a ``jobtrack.stores`` entry
point).
"""

from .memory import MemoryStore
from .protocol import AsyncStore, Features, ItemStore, ListKey, Store, features_of
from .redis import RedisStore
from .registry import SCHEMES, StoreURL, display_url, open_store, register_store
from .sql import FileStore, PostgresStore, SQLiteStore

register_store("memory", MemoryStore.from_url)
register_store("file", FileStore.from_url)
register_store("sqlite", SQLiteStore.from_url)
for _scheme in ("postgresql", "postgres"):
    register_store(_scheme, PostgresStore.from_url)
for _scheme in ("redis", "rediss", "unix", "redis+cluster"):
    register_store(_scheme, RedisStore.from_url)

__all__ = [
    "SCHEMES",
    "AsyncStore",
    "Features",
    "FileStore",
    "ItemStore",
    "ListKey",
    "MemoryStore",
    "PostgresStore",
    "RedisStore",
    "SQLiteStore",
    "Store",
    "StoreURL",
    "display_url",
    "features_of",
    "open_store",
    "register_store",
]
