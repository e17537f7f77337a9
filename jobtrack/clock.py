"""Time: the default clock and the wire format of timestamps.

Every timestamp jobtrack writes comes from the tracker's clock, a callable that
returns an aware UTC :class:`~datetime.datetime`. Timestamps are truncated to
whole milliseconds when taken, so a status survives a round trip through the
wire format (``2026-05-21T12:00:00.000Z``) unchanged.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
import time
from collections.abc import Callable

__all__ = ["Clock", "format_timestamp", "from_ms", "parse_timestamp", "to_ms", "utc_now"]

Clock = Callable[[], _dt.datetime]
"""A callable returning the current time as an aware datetime."""

_UTC = _dt.timezone.utc
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)
_WIRE_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


_last: tuple[int, _dt.datetime] = (-1, _EPOCH)


def utc_now() -> _dt.datetime:
    """The default clock: now, in UTC, truncated to whole milliseconds.

    It reads ``time.time_ns`` at call time, so freezegun moves it. The datetime
    of the current millisecond is cached: updates come far faster than 1/ms.
    """
    global _last
    ms = time.time_ns() // 1_000_000
    last = _last
    if last[0] == ms:
        return last[1]
    value = _EPOCH + _dt.timedelta(milliseconds=ms)
    _last = (ms, value)
    return value


def normalize(value: object) -> _dt.datetime:
    """Check that *value* is an aware datetime; return it in UTC, truncated to ms.

    :raises TypeError: if *value* is not a datetime.
    :raises ValueError: if it is naive (has no UTC offset).
    """
    if not isinstance(value, _dt.datetime):
        raise TypeError(f"expected an aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: jobtrack needs aware UTC datetimes")
    value = value.astimezone(_UTC)
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


def format_timestamp(value: _dt.datetime) -> str:
    """Format an aware datetime as the wire format: ``2026-05-21T12:00:00.000Z``."""
    if value.tzinfo is _UTC and not value.microsecond % 1000:  # what the tracker makes
        return value.isoformat(timespec="milliseconds")[:-6] + "Z"
    value = normalize(value)
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_timestamp(text: object) -> _dt.datetime:
    """Parse the wire format strictly (milliseconds and ``Z`` required).

    :raises ValueError: if *text* is not a string of exactly that form.
    """
    if type(text) is not str:
        raise ValueError(f"expected a UTC timestamp like '2026-05-21T12:00:00.000Z', got {text!r}")
    return _parse_wire(text)


@functools.lru_cache(maxsize=4096)  # a job's started_at is read on every update
def _parse_wire(text: str) -> _dt.datetime:
    if not _WIRE_RE.fullmatch(text):
        raise ValueError(f"expected a UTC timestamp like '2026-05-21T12:00:00.000Z', got {text!r}")
    return _dt.datetime.fromisoformat(text[:-1]).replace(tzinfo=_UTC)


def to_ms(value: _dt.datetime) -> int:
    """Milliseconds since the Unix epoch of an aware datetime."""
    last = _last
    if value is last[1]:  # the default clock's current instant
        return last[0]
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


@functools.lru_cache(maxsize=4096)  # stores read the same few instants over and over
def from_ms(ms: int) -> _dt.datetime:
    """The aware UTC datetime *ms* milliseconds after the Unix epoch."""
    return _EPOCH + _dt.timedelta(milliseconds=ms)
