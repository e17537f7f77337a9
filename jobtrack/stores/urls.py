"""open_store(): choose a backend by URL through an explicit scheme table."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable

from ..errors import ConfigurationError
from .file import FileStore
from .memory import MemoryStore
from .protocol import Store

__all__ = ["SCHEMES", "display_url", "open_store"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool_option(options: dict[str, list[str]], name: str, url: str, *, default: bool) -> bool:
    values = options.pop(name, None)
    if values is None:
        return default
    value = values[-1].lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"option {name}={values[-1]!r} in {url!r} must be true or false")


def _no_more_options(options: dict[str, list[str]], url: str) -> None:
    if options:
        raise ConfigurationError(f"unknown option(s) {', '.join(sorted(options))} in {url!r}")


def _open_memory(url: str) -> Store:
    parts = urllib.parse.urlsplit(url)
    if parts.netloc or parts.path or parts.query:
        raise ConfigurationError(f"a memory store URL takes nothing after 'memory://': {url!r}")
    return MemoryStore()


def _open_file(url: str) -> Store:
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ConfigurationError(
            f"file store URL {url!r} names host {parts.netloc!r}; use file:///abs/path or "
            "file:rel/path"
        )
    path = urllib.parse.unquote(parts.path)
    if not path:
        raise ConfigurationError(f"file store URL {url!r} has no path")
    if url.startswith("file://") and not path.startswith("/"):
        raise ConfigurationError(f"file store URL {url!r} must have an absolute path")
    options = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    fsync = _bool_option(options, "fsync", url, default=False)
    create = _bool_option(options, "create", url, default=True)
    _no_more_options(options, url)
    return FileStore(os.path.abspath(path), fsync=fsync, create=create)


def _open_redis(url: str) -> Store:
    from .redis import open_redis  # noqa: PLC0415 - redis-py only when asked for

    return open_redis(url)


SCHEMES: dict[str, Callable[[str], Store]] = {
    "memory": _open_memory,
    "file": _open_file,
    "redis": _open_redis,
    "rediss": _open_redis,
    "unix": _open_redis,
    "redis+cluster": _open_redis,
}
"""Scheme -> factory. Backends with optional dependencies import them lazily."""


def display_url(url: str) -> str:
    """*url* as it may be shown: a file store's path made absolute, a password masked.

    ``file:jobs`` becomes ``file:///current/dir/jobs``, so that a command
    printed for another terminal names the same store;
    ``redis://:secret@host`` becomes ``redis://:***@host``. Anything that is
    not a store URL is returned unchanged.
    """
    scheme, sep, _ = url.partition(":")
    if not sep:
        return url
    parts = urllib.parse.urlsplit(url)
    if scheme.lower() == "file" and parts.netloc in ("", "localhost") and parts.path:
        path = os.path.abspath(urllib.parse.unquote(parts.path))
        query = f"?{parts.query}" if parts.query else ""
        return f"file://{urllib.parse.quote(path)}{query}"
    try:
        password = parts.password
    except ValueError:  # a malformed port: nothing to mask that urlsplit can find
        password = None
    if password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def open_store(url: str) -> Store:
    """Open the store a URL names.

    ``memory://``, ``file:///abs/path`` or ``file:rel/path`` (relative to the
    working directory; ``?fsync=true`` for power-loss durability,
    ``?create=false`` to refuse a directory that does not exist yet),
    ``redis://``, ``rediss://``, ``unix://`` and ``redis+cluster://h1:p1,h2:p2``.

    :raises ConfigurationError: for an unknown scheme (the message lists the
        known ones), a malformed URL, or a missing optional dependency.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"a store URL must be a string, got {type(url).__name__}")
    scheme, sep, _ = url.partition(":")
    factory = SCHEMES.get(scheme.lower()) if sep else None
    if factory is None:
        known = ", ".join(f"{name}://" for name in SCHEMES)
        raise ConfigurationError(f"unknown store URL {url!r}; known schemes: {known}")
    return factory(url)
