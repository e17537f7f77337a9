"""Validation of the arguments of public calls, shared by the sync and async trackers.

Each function returns the checked (and, for errors, truncated) value or raises
a ``ValueError`` subclass that names the bad argument. Nothing reaches a store
before these checks pass.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable

from .clock import Clock, normalize, utc_now
from .errors import ConfigurationError, InvalidArgument, InvalidUpdate, shown
from .model import Update
from .names import _fullmatch as _name_match
from .names import new_job_id, validate_name
from .rules import MAX_COUNT, MAX_ERROR_LENGTH, MAX_ITEM_LENGTH, Delta
from .stores.protocol import STALLED, STATUSES, ListKey

__all__ = [
    "MAX_LIST_LIMIT",
    "MAX_STALL_AFTER",
    "MAX_WAIT",
    "check_abort",
    "check_extend",
    "check_item",
    "check_item_cursor",
    "check_limit",
    "check_name_cursor",
    "check_record",
    "check_retention",
    "check_stall_after",
    "check_start",
    "check_status",
    "check_updates",
    "decode_cursor",
    "encode_cursor",
    "make_now",
]

MAX_LIST_LIMIT = 1000
"""The largest page ``list`` returns."""

MAX_WAIT = 60
"""The longest long-poll of the status route (``?wait=``), in seconds (SPEC section 8)."""

MAX_STALL_AFTER = _dt.timedelta(days=365_000)
"""The largest ``stall_after`` (1000 years): "now - stall_after" stays a date."""

_HEARTBEAT = Delta()
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_IN_ITEMS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _count(value: object, what: str) -> int:
    if type(value) is not int:
        raise InvalidUpdate(f"{what} must be an int, got {type(value).__name__} {shown(value)}")
    if value < 0:
        raise InvalidUpdate(f"{what} must be >= 0, got {shown(value)}")
    if value > MAX_COUNT:
        raise InvalidUpdate(f"{what} must be <= {MAX_COUNT} (2**53 - 1), got {shown(value)}")
    return value


def _error_text(error: object, what: str = "error") -> str:
    if not isinstance(error, str):
        raise InvalidUpdate(f"{what} must be a string, got {type(error).__name__}")
    if not error:
        raise InvalidUpdate(f"{what} must be a non-empty string")
    text = error[:MAX_ERROR_LENGTH]
    # a lone surrogate (what an undecodable file name gives) cannot be stored or
    # sent as UTF-8: it becomes U+FFFD here, before any store sees it
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def check_start(namespace: object, total: object, job_id: object) -> tuple[str, int, str]:
    """Check the arguments of ``start``; generate a job id when *job_id* is None."""
    ns = validate_name(namespace, "namespace")
    jid = new_job_id() if job_id is None else validate_name(job_id, "job id")
    return ns, _count(total, "total"), jid


def check_record(
    namespace: object,
    job_id: object,
    processed: object,
    successful: object,
    failed: object,
    error: object,
    item: object = None,
    retain: tuple[int, int] | None = None,
) -> tuple[str, str, Delta]:
    """Check the arguments of ``record``; build its :class:`Delta` (with the tracker's *retain*)."""
    if (  # the common case, checked inline: record() runs hundreds of thousands of times a second
        error is None
        and item is None
        and type(namespace) is str
        and type(job_id) is str
        and type(processed) is int
        and type(successful) is int
        and type(failed) is int
        and 0 <= processed <= MAX_COUNT
        and 0 <= successful <= MAX_COUNT
        and 0 <= failed <= MAX_COUNT
        and _name_match(namespace) is not None
        and _name_match(job_id) is not None
    ):
        if processed or successful or failed:
            return (
                namespace,
                job_id,
                Delta(processed, successful, failed, None, False, None, 0, None, retain),
            )
        return namespace, job_id, _HEARTBEAT
    ns = validate_name(namespace, "namespace")
    jid = validate_name(job_id, "job id")
    p = _count(processed, "processed")
    s = _count(successful, "successful")
    f = _count(failed, "failed")
    if item is not None:
        item = check_item(item)
        if p > 1 or s > 1 or f > 1:
            raise InvalidUpdate("with an item, processed, successful and failed are each 0 or 1")
        if s and f:
            raise InvalidUpdate("an item cannot be both successful and failed in one update")
        if not (p or s or f):
            raise InvalidUpdate("an item update needs processed=1, successful=1 or failed=1")
    elif error is None and not (p or s or f):
        return ns, jid, _HEARTBEAT
    text = None if error is None else _error_text(error)
    if text is not None and f < 1:
        raise InvalidUpdate("an error may be recorded only with failed >= 1")
    return ns, jid, Delta(p, s, f, text, False, item, retain=retain)


def check_item(item: object) -> str:
    """Check an item name: 1-512 characters, no control characters, valid Unicode."""
    if type(item) is not str:
        raise InvalidUpdate(f"item must be a string, got {type(item).__name__}")
    if not 1 <= len(item) <= MAX_ITEM_LENGTH:
        raise InvalidUpdate(f"item must be 1 to {MAX_ITEM_LENGTH} characters, got {len(item)}")
    bad = _NOT_IN_ITEMS.search(item)
    if bad is not None:
        raise InvalidUpdate(
            f"item must not hold control characters or lone surrogates: {bad.group()!a} "
            f"at position {bad.start()}"
        )
    return item


def check_updates(
    updates: object, retain: tuple[int, int] | None = None
) -> list[tuple[str, str, Delta]]:
    """Check every update of a batch before any is applied."""
    if isinstance(updates, (str, bytes)) or not isinstance(updates, Iterable):
        raise InvalidArgument(
            f"updates must be an iterable of Update, got {type(updates).__name__}"
        )
    checked = []
    for i, update in enumerate(updates):
        if not isinstance(update, Update):
            raise InvalidArgument(f"updates[{i}] must be an Update, got {type(update).__name__}")
        try:
            checked.append(
                check_record(
                    update.namespace,
                    update.job_id,
                    update.processed,
                    update.successful,
                    update.failed,
                    update.error,
                    update.item,
                    retain,
                )
            )
        except InvalidArgument as exc:
            raise type(exc)(f"updates[{i}]: {exc}") from exc
    return checked


def check_abort(
    namespace: object, job_id: object, error: object, retain: tuple[int, int] | None = None
) -> tuple[str, str, Delta]:
    """Check the arguments of ``abort``; build its :class:`Delta`."""
    ns = validate_name(namespace, "namespace")
    jid = validate_name(job_id, "job id")
    return ns, jid, Delta(error=_error_text(error), abort=True, retain=retain)


def check_item_cursor(cursor: object) -> int | None:
    """Parse a cursor of ``failed_items`` (None stays None): where the last page ended."""
    if cursor is None:
        return None
    if isinstance(cursor, str) and cursor.isascii() and cursor.isdigit() and len(cursor) <= 16:
        return int(cursor)
    raise InvalidArgument(f"malformed cursor {shown(cursor)}: pass back a next_cursor unchanged")


def check_extend(namespace: object, job_id: object, more: object) -> tuple[str, str, Delta]:
    """Check the arguments of ``extend``; build its :class:`Delta`."""
    ns = validate_name(namespace, "namespace")
    jid = validate_name(job_id, "job id")
    if type(more) is not int or not 1 <= more <= MAX_COUNT:
        raise InvalidUpdate(f"more must be an int from 1 to {MAX_COUNT}, got {shown(more)}")
    return ns, jid, Delta(more=more)


def check_stall_after(stall_after: object) -> _dt.timedelta | None:
    """Check a tracker's ``stall_after``: None (never stalled) or a timedelta > 0."""
    if stall_after is None:
        return None
    if not isinstance(stall_after, _dt.timedelta) or not (
        _dt.timedelta(0) < stall_after <= MAX_STALL_AFTER
    ):
        raise ConfigurationError(
            "stall_after must be None or a timedelta > 0 and <= 1000 years, "
            f"got {shown(stall_after)}"
        )
    return stall_after


def check_retention(retain: object, remember_expired: object) -> tuple[int, int] | None:
    """Check a tracker's ``retain`` and ``remember_expired``: ``(ms, ms)``, or None (forever).

    Each a timedelta from 0 to 1000 years (``retain`` may be None).
    """
    for name, value in (("retain", retain), ("remember_expired", remember_expired)):
        if (value is not None or name != "retain") and (
            not isinstance(value, _dt.timedelta)
            or not (_dt.timedelta(0) <= value <= MAX_STALL_AFTER)
        ):
            none = "None or " if name == "retain" else ""
            raise ConfigurationError(
                f"{name} must be {none}a timedelta >= 0 and <= 1000 years, got {shown(value)}"
            )
    if retain is None:
        return None
    assert isinstance(retain, _dt.timedelta) and isinstance(remember_expired, _dt.timedelta)
    return retain // _MS, remember_expired // _MS


_MS = _dt.timedelta(milliseconds=1)


def check_limit(limit: object) -> int:
    """Check a page size: an int from 1 to :data:`MAX_LIST_LIMIT`."""
    if type(limit) is not int or not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidArgument(
            f"limit must be an int from 1 to {MAX_LIST_LIMIT}, got {shown(limit)}"
        )
    return limit


def check_status(status: object, stall_after: _dt.timedelta | None) -> str | None:
    """Check a listing's status filter: None (every job) or one of :data:`STATUSES`.

    ``stalled`` needs a tracker with *stall_after* (else ``ConfigurationError``).
    """
    if status is not None and status not in STATUSES:
        raise InvalidArgument(
            f"status must be one of {', '.join(STATUSES)} (or none: every job), got {shown(status)}"
        )
    if status == STALLED and stall_after is None:
        raise ConfigurationError(
            "listing stalled jobs needs a tracker with stall_after "
            "(jobtrack: --stall-after SECONDS)"
        )
    return status


def encode_cursor(key: ListKey) -> str:
    """The opaque cursor that resumes a listing after the job of *key*."""
    return f"{key[0]}.{key[1]}"


def decode_cursor(cursor: object) -> ListKey | None:
    """Parse a cursor from :func:`encode_cursor` (None stays None)."""
    if cursor is None:
        return None
    if isinstance(cursor, str):
        ms, sep, job_id = cursor.partition(".")
        digits = ms[1:] if ms.startswith("-") else ms  # before 1970: negative
        if sep and digits.isascii() and digits.isdigit() and len(digits) <= 16:
            try:
                return int(ms), validate_name(job_id, "job id")
            except ValueError:
                pass
    raise InvalidArgument(f"malformed cursor {shown(cursor)}: pass back a next_cursor unchanged")


def check_name_cursor(cursor: object) -> str | None:
    """Parse a cursor of ``namespaces`` (None stays None): the last name of the page before."""
    if cursor is None:
        return None
    try:
        return validate_name(cursor, "cursor")
    except ValueError:
        raise InvalidArgument(
            f"malformed cursor {shown(cursor)}: pass back a next_cursor unchanged"
        ) from None


def make_now(clock: Clock | None) -> Clock:
    """A function giving "now" from *clock*, checked and truncated to milliseconds.

    With no clock, the default :func:`jobtrack.clock.utc_now` (which freezegun
    moves). A clock returning anything but an aware datetime is a
    ``ConfigurationError``.
    """
    if clock is None:
        return utc_now
    if not callable(clock):
        raise ConfigurationError(f"clock must be callable, got {type(clock).__name__}")

    def now() -> _dt.datetime:
        value = clock()
        try:
            return normalize(value)
        except (TypeError, ValueError, OverflowError) as exc:  # Overflow: year 1 at +01:00
            raise ConfigurationError(f"the tracker's clock returned {shown(value)}: {exc}") from exc

    return now
