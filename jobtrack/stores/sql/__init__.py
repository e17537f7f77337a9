"""SQL stores: one schema and one set of operations over SQLite and PostgreSQL."""

from .sqlite import FileStore, SQLiteStore

__all__ = ["FileStore", "SQLiteStore"]
