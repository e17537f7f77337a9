"""The page for people at ``GET /ui/``: its static files, shipped in ``jobtrack/ui/``.

The files are read from the package once, and only they are served: a name
is looked up among them, never joined to a path, so no request can reach
anything else (``..``, an encoded ``/``: 404). Each is sent with its content
type, a strong ``ETag`` (``If-None-Match`` with it: 304) and ``Cache-Control:
no-cache``: a browser keeps the file and asks again on each load, so an
upgraded package is seen at once. No CDN, no build step: the page is plain
HTML, CSS and JavaScript, and every URL it uses is relative, so it works
wherever the app is mounted.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
from collections.abc import Mapping
from types import MappingProxyType

import attrs

__all__ = ["CONTENT_TYPES", "StaticFile", "ui_files", "ui_response"]

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
"""The content type of each kind of file the page may ship; other files are not served."""

_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    b"img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)  # the page loads only its own files and talks only to its own server

Headers = list[tuple[bytes, bytes]]


@attrs.frozen
class StaticFile:
    """One file of the page: its bytes, content type and ``ETag``."""

    body: bytes
    content_type: str
    etag: bytes


@functools.cache
def ui_files() -> Mapping[str, StaticFile]:
    """The page's files by name (``index.html``, ``app.js``, ...), read once from the package."""
    files = {}
    for entry in (importlib.resources.files("jobtrack") / "ui").iterdir():
        content_type = CONTENT_TYPES.get("." + entry.name.rpartition(".")[2])
        if content_type is not None and entry.is_file():
            body = entry.read_bytes()
            etag = b'"%s"' % hashlib.blake2b(body, digest_size=12).hexdigest().encode()
            files[entry.name] = StaticFile(body, content_type, etag)
    return MappingProxyType(files)


def ui_response(below: str, if_none_match: bytes | None) -> tuple[int, Headers, bytes] | None:
    """Status, headers and body for ``/ui/`` + *below* (the decoded path); None if no such file.

    ``""`` is ``index.html``.
    """
    found = ui_files().get(below or "index.html")
    if found is None:
        return None
    headers = [
        (b"content-type", found.content_type.encode()),
        (b"cache-control", b"no-cache"),
        (b"etag", found.etag),
        (b"x-content-type-options", b"nosniff"),
    ]
    if found.content_type.startswith("text/html"):
        headers += [(b"content-security-policy", _CSP), (b"referrer-policy", b"no-referrer")]
    if if_none_match is not None and found.etag in (t.strip() for t in if_none_match.split(b",")):
        return 304, headers, b""
    return 200, headers, found.body
