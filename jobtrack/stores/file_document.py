"""The file store's job documents: the wire document, and the two keys it may carry beside.

A document is the job's exact wire document (SPEC section 1), plus, when
they apply, ``"_items": true`` (the job's live state is in ``.items.sqlite``,
see :mod:`.file_items`) and ``"_expires": <ms>`` (a completed job's
``expires_at``, SPEC section 6). The status the route sends never has them.
Rows of ``.items.sqlite`` hold the same documents.
"""

from __future__ import annotations

import attrs

from ..clock import from_ms, to_ms
from ..model import JobStatus, parse_json

__all__ = ["MAX_DOCUMENT_BYTES", "decode", "decode_document", "encode_document"]

MAX_DOCUMENT_BYTES = 64 * 1024
"""A job document is a few hundred bytes (at most ~4 KiB of error text): larger is corrupt."""


def encode_document(job: JobStatus, marked: bool = False) -> bytes:
    """*job*'s document: its wire JSON, with ``_items`` if *marked*, and its ``_expires``."""
    data = job.to_json()
    if marked:
        data = data[:-1] + b',"_items":true}'
    if job.expires_at is not None:
        data = data[:-1] + b',"_expires":%d}' % to_ms(job.expires_at)
    return data


def decode(data: bytes) -> JobStatus:
    """Decode a job document strictly, through the model.

    :raises ValueError: if it is not one (``InvalidDocument`` is a ``ValueError``).
    """
    return decode_document(data)[0]


def decode_document(data: bytes | str) -> tuple[JobStatus, bool]:
    """Decode a job document strictly: the job, and whether it lives in ``.items.sqlite``.

    :raises ValueError: if it is not one (``InvalidDocument`` is a ``ValueError``).
    """
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"larger than {MAX_DOCUMENT_BYTES} bytes")
    document = parse_json(data)
    marked = type(document) is dict and "_items" in document
    if marked and document.pop("_items") is not True:
        raise ValueError("'_items' must be true")
    expires = document.pop("_expires", None) if type(document) is dict else None
    job = JobStatus.from_dict(document)
    if expires is not None:
        if type(expires) is not int or not job.is_finished:
            raise ValueError("'_expires' must be milliseconds, of a completed job")
        try:
            job = attrs.evolve(job, expires_at=from_ms(expires))
        except OverflowError:
            raise ValueError("'_expires' is not a representable time") from None
    return job, marked
