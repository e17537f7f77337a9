"""Storage backends and the URL table that chooses one."""

from .file import FileStore
from .memory import MemoryStore
from .protocol import ListKey, Store
from .redis import RedisStore
from .urls import SCHEMES, open_store

__all__ = ["SCHEMES", "FileStore", "ListKey", "MemoryStore", "RedisStore", "Store", "open_store"]
