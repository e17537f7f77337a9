"""SQL stores: one schema and one set of operations over SQLite and PostgreSQL."""

from .postgres import AsyncPostgresStore, PostgresStore
from .sqlite import FileStore, SQLiteStore

__all__ = ["AsyncPostgresStore", "FileStore", "PostgresStore", "SQLiteStore"]
