"""A log that cannot flood: the same complaint at most once per interval, with a count."""

from __future__ import annotations

import logging
import time

__all__ = ["Throttle"]


class Throttle(logging.Filter):
    """Let each message starting with one of *prefixes* through once per *every* seconds.

    The one that passes says how many like it were held back since, and
    carries no traceback unless *keep_traceback*: a server whose store is
    down, or which is out of file descriptors, must not also fill the disk
    with the same lines.
    """

    def __init__(
        self, every: float, prefixes: tuple[str, ...], *, keep_traceback: bool = False
    ) -> None:
        super().__init__()
        self.keep_traceback = keep_traceback
        self.every = every
        self.prefixes = prefixes
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def reset(self) -> None:
        """Forget what was let through: the next of each message passes."""
        self._last.clear()
        self._held.clear()

    def filter(self, record: logging.LogRecord) -> bool:
        """Pass or hold back one record."""
        message = record.getMessage()
        prefix = next((p for p in self.prefixes if message.startswith(p)), None)
        if prefix is None:
            return True
        now = time.monotonic()
        if now - self._last.get(prefix, -self.every) < self.every:
            self._held[prefix] = self._held.get(prefix, 0) + 1
            return False
        self._last[prefix] = now
        held = self._held.pop(prefix, 0)
        if held:
            message += f" ({held} more like it held back in the last {self.every:g} s)"
        record.msg, record.args = message, ()
        if not self.keep_traceback:
            record.exc_info = record.exc_text = None
        return True
