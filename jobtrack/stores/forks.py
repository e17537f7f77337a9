"""One count of forks, for stores that keep connections: a child never uses its parent's."""

from __future__ import annotations

import os

__all__ = ["generation"]

generation = 0
"""Bumped in a forked child: what a store opened under an older generation is its parent's."""


def _after_fork_in_child() -> None:
    global generation
    generation += 1


if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
