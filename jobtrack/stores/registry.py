"""Stores as plugins: the scheme table, and store URLs parsed once.

``open_store(url)`` parses the URL into one :class:`StoreURL` and hands it to
the factory registered for its scheme; the factory reads its options from it
with :meth:`StoreURL.options`, which rejects unknown options and bad values
there and then. Third-party stores register with :func:`register_store`, or
through the ``jobtrack.stores`` entry point group (name: the scheme; value:
the factory), which is read the first time an unknown scheme is opened.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

import attrs

from ..errors import ConfigurationError, shown
from .protocol import Store

__all__ = [
    "SCHEMES",
    "Option",
    "StoreURL",
    "boolean",
    "display_url",
    "integer",
    "open_store",
    "register_store",
    "seconds",
    "text",
]

ENTRY_POINT_GROUP = "jobtrack.stores"
_SCHEME_RE = re.compile(r"[a-z][a-z0-9+.-]{0,31}")


@attrs.frozen
class Option:
    """One option a store URL may carry: how to read its text, and its default."""

    parse: Callable[[str], Any]
    default: Any


def boolean(default: bool | None) -> Option:
    """``true/false`` (also ``1/0``, ``yes/no``, ``on/off``)."""

    def parse(value: str) -> bool:
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError("must be true or false")

    return Option(parse, default)


MAX_SECONDS = 365 * 86400.0
"""The longest timeout or interval an option may give: a year (sockets take no more)."""


def seconds(default: float | None, *, minimum: float = 0.0, allow_zero: bool = False) -> Option:
    """A finite number of seconds above *minimum* (or equal to it with *allow_zero*), <= a year."""

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise ValueError("not a number of seconds") from None
        if (
            not math.isfinite(number)
            or number < minimum
            or (number == minimum and not allow_zero)
            or number > MAX_SECONDS
        ):
            raise ValueError(
                f"must be a finite number of seconds > {minimum:g}, "
                f"at most {MAX_SECONDS:g} (a year)"
            )
        return number

    return Option(parse, default)


def integer(default: int | None, low: int, high: int) -> Option:
    """An integer from *low* to *high*."""

    def parse(value: str) -> int:
        if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
            raise ValueError(f"must be an integer from {low} to {high}")
        return int(value)

    return Option(parse, default)


def text(default: str | None, pattern: str = r".{1,1024}") -> Option:
    """A string matching *pattern* (whole)."""
    compiled = re.compile(pattern, re.DOTALL)

    def parse(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"must match {pattern}")
        return value

    return Option(parse, default)


_CONTROL = re.compile("[\x00-\x1f\x7f]")


@attrs.frozen
class StoreURL:
    """A store URL, parsed once; store factories read everything from it.

    ``path`` is percent-decoded; ``query`` keeps the options in order, each
    at most once. ``create`` is False when the caller only looks at jobs
    (``open_store(url, create=False)``): a store that would make its medium
    (a file, a directory) refuses a missing one instead.
    """

    url: str
    scheme: str
    netloc: str
    path: str
    query: tuple[tuple[str, str], ...]
    create: bool = True

    @classmethod
    def parse(cls, url: object) -> StoreURL:
        """Split *url*; a malformed URL or a repeated option is a ``ConfigurationError``."""
        if not isinstance(url, str):
            raise ConfigurationError(f"a store URL must be a string, got {type(url).__name__}")
        scheme, sep, _ = url.partition(":")
        if not sep or not _SCHEME_RE.fullmatch(scheme.lower()):
            hint = f"; for a directory, say file:{url}" if url and not sep else ""
            raise ConfigurationError(f"{display_url(url)!r} is not a store URL ({_known()}){hint}")
        control = _CONTROL.search(url)  # urlsplit would drop a tab or newline without a word
        if control:
            raise ConfigurationError(
                "a store URL cannot hold control characters: "
                f"{control.group()!r} at position {control.start()}"
            )
        try:
            parts = urllib.parse.urlsplit(url)
            query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        except ValueError as exc:
            raise ConfigurationError(f"malformed store URL {display_url(url)!r}: {exc}") from None
        if "#" in url:  # it would hide the options from whoever opens the URL again
            raise ConfigurationError(  # the URL is not shown: the '#' may be in a password
                f"a {scheme.lower()}:// store URL takes no '#' fragment "
                "(percent-encode a '#' in a password as %23)"
            )
        names = [name for name, _ in query]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ConfigurationError(
                f"option(s) {', '.join(repeated)} given twice in {display_url(url)!r}"
            )
        try:
            path = urllib.parse.unquote(parts.path, errors="strict")
        except UnicodeDecodeError:
            raise ConfigurationError(
                f"store URL {display_url(url)!r} has a path that is not UTF-8 once decoded"
            ) from None
        return cls(url, scheme.lower(), parts.netloc, path, tuple(query))

    @property
    def shown(self) -> str:
        """The URL as it may be printed (see :func:`display_url`)."""
        return display_url(self.url)

    def with_option(self, name: str, value: str) -> StoreURL:
        """The same URL with option *name* set to *value* (replacing any given)."""
        query = (*(item for item in self.query if item[0] != name), (name, value))
        url = self.url.partition("?")[0] + "?" + urllib.parse.urlencode(query)
        return attrs.evolve(self, url=url, query=query)

    def options(self, **known: Option) -> dict[str, Any]:
        """Every known option's value (its default when absent).

        :raises ConfigurationError: for an option not in *known* (the message
            lists the known ones) or a value its parser refuses.
        """
        for name, given in known.items():
            if not isinstance(given, Option):  # a store author's mistake, named
                raise ConfigurationError(
                    f"option {name} must be an Option (boolean(), seconds()...), "
                    f"got {type(given).__name__}"
                )
        values = {name: option.default for name, option in known.items()}
        for name, raw in self.query:
            option = known.get(name)
            if option is None:
                listed = ", ".join(sorted(known)) or "none"
                raise ConfigurationError(
                    f"unknown option {name!r} in {self.shown!r}; {self.scheme}:// takes: {listed}"
                )
            try:
                values[name] = option.parse(raw)
            except ValueError as exc:
                raise ConfigurationError(
                    f"bad option {name}={shown(raw)} in {self.shown!r}: {exc}"
                ) from None
        return values


StoreFactory = Callable[[StoreURL], Store]

SCHEMES: dict[str, StoreFactory] = {}
"""Scheme -> factory. Fill it with :func:`register_store`."""


def register_store(scheme: str, factory: StoreFactory, *, replace: bool = False) -> None:
    """Make ``open_store`` open URLs of *scheme* with *factory*.

    *factory* receives the parsed :class:`StoreURL`, reads its options with
    :meth:`StoreURL.options` (so a bad option fails when the store is
    opened) and returns the store. A scheme is registered once unless
    *replace* is true.
    """
    if not isinstance(scheme, str) or not _SCHEME_RE.fullmatch(scheme):
        raise ConfigurationError(
            f"invalid store scheme {scheme!r}: lowercase letters, digits, '+', '.', '-'"
        )
    if not callable(factory):
        raise ConfigurationError(f"the factory of {scheme}:// must be callable")
    if type(replace) is not bool:
        raise ConfigurationError(f"replace must be True or False, got {shown(replace)}")
    if scheme in SCHEMES and not replace and SCHEMES[scheme] != factory:  # ==: bound methods
        raise ConfigurationError(f"store scheme {scheme}:// is registered already")
    SCHEMES[scheme] = factory


def _from_entry_point(scheme: str) -> StoreFactory | None:
    """The factory a ``jobtrack.stores`` entry point names for *scheme*, loaded (once) now.

    Only the plugin asked for is imported: a broken one fails its own URLs,
    with a ``ConfigurationError`` naming it, and no other.
    """
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=scheme):
        try:
            factory = entry.load()  # importing it may register it already
        except Exception as exc:  # whatever a third party's import raises
            raise ConfigurationError(
                f"the store plugin for {scheme}:// ({entry.value}) cannot be loaded: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if scheme not in SCHEMES:
            register_store(scheme, factory)
        return SCHEMES[scheme]
    return None


def _known() -> str:
    plugins = {entry.name for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    names = [*SCHEMES, *sorted(plugins - SCHEMES.keys())]
    return "known schemes: " + ", ".join(f"{name}://" for name in names)


def open_store(url: str, *, create: bool = True) -> Store:
    """Open the store a URL names, checking all its options now.

    Built in: ``memory://``; ``sqlite:///abs/path.db`` or ``sqlite:rel.db``
    and ``file:///abs/dir`` or ``file:rel/dir`` (relative to the working
    directory); ``postgresql://``; ``redis://``, ``rediss://``, ``unix://``
    and ``redis+cluster://h1:p1,h2:p2`` (docs/stores.md lists their options).
    With ``create=False`` a local store whose file or directory is missing is
    a ``ConfigurationError`` and nothing is made (for tools that only look).

    :raises ConfigurationError: for an unknown scheme (the message lists the
        known ones), a malformed URL, an unknown option or bad value, or a
        missing optional dependency.
    """
    if type(create) is not bool:
        raise ConfigurationError(f"create must be True or False, got {shown(create)}")
    parsed = StoreURL.parse(url)
    if not create:
        parsed = attrs.evolve(parsed, create=False)
    factory = SCHEMES.get(parsed.scheme)
    if factory is None:
        factory = _from_entry_point(parsed.scheme)
    if factory is None:
        raise ConfigurationError(f"unknown store URL {parsed.shown!r}; {_known()}")
    store = factory(parsed)
    what = not_a_store(store)
    if what:
        raise ConfigurationError(f"the factory of {parsed.scheme}:// returned {what}, not a store")
    return store


def not_a_store(value: object) -> str | None:
    """What *value* is, if it is not a store object (a store class is not one); else None."""
    if isinstance(value, type):  # (a class has the protocol's methods too)
        return f"the class {value.__name__}"
    return None if isinstance(value, Store) else type(value).__name__


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
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # (an unclosed "[" ...): mask whatever stands before an "@"
        head, sep, rest = url.partition("://")
        userinfo, at, _ = rest.partition("?")[0].rpartition("@")
        return f"{head}://***@{rest[len(userinfo) + 1 :]}" if sep and at else url
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
