"""The name rules for namespaces and job ids, and job id generation.

A name is 1-128 characters of ``A-Z a-z 0-9 _ -`` (what the upstream service
allows). Nothing else ever reaches a file path, a Redis key or a query.
"""

from __future__ import annotations

import re
import uuid

from .errors import InvalidName

__all__ = ["MAX_NAME_LENGTH", "is_valid_name", "new_job_id", "validate_name"]

MAX_NAME_LENGTH = 128
_fullmatch = re.compile(r"[A-Za-z0-9_-]{1,128}").fullmatch


def is_valid_name(value: object) -> bool:
    """Whether *value* is a string that follows the name rules."""
    return type(value) is str and _fullmatch(value) is not None


def validate_name(value: object, what: str = "name") -> str:
    """Return *value* if it follows the name rules, else raise ``InvalidName``.

    A str subclass (say, a ``StrEnum`` member) is returned as the plain
    ``str`` it holds.

    *what* names the argument in the message (``"namespace"``, ``"job id"``).
    """
    if type(value) is str and _fullmatch(value) is not None:
        return value
    if not isinstance(value, str):
        raise InvalidName(f"{what} must be a string, got {type(value).__name__}")
    if type(value) is not str:  # a str subclass (a StrEnum member...): the text it holds
        value = str.__str__(value)
        if _fullmatch(value) is not None:
            return value
    shown = value if len(value) <= 40 else value[:40] + "..."
    raise InvalidName(
        f"invalid {what} {shown!r} (length {len(value)}): use 1-{MAX_NAME_LENGTH} characters "
        "of A-Z, a-z, 0-9, '_' and '-'"
    )


def new_job_id() -> str:
    """A fresh job id: ``"job-"`` followed by 32 lowercase hex digits (uuid4)."""
    return "job-" + uuid.uuid4().hex
