"""Importing a jobtrack 0.1/0.2 file store directory into its SQLite database (once)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sqlite import FileStore

__all__ = ["import_legacy"]


def import_legacy(store: FileStore) -> int:
    """Import the jobs of a 0.1/0.2 directory once; how many were imported."""
    return 0
