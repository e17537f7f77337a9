"""Stores as plugins: register_store, entry points, options checked when a store is opened."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from jobtrack import (
    ConfigurationError,
    Features,
    JobTracker,
    MemoryStore,
    StoreURL,
    open_store,
    register_store,
)
from jobtrack.stores import SCHEMES, features_of
from jobtrack.stores.registry import boolean, integer, seconds
from jobtrack.testing.contract import unopenable_elsewhere


class Tagged(MemoryStore):
    """A third-party store: one module plus one registration line."""

    def __init__(self, tag: bool) -> None:
        super().__init__()
        self.tag = tag

    @classmethod
    def open(cls, url: StoreURL) -> Tagged:
        return cls(**url.options(tag=boolean(False)))


@pytest.fixture
def scheme() -> Iterator[str]:
    yield "tagged"
    SCHEMES.pop("tagged", None)


def test_register_store_then_open_it_by_url(scheme: str) -> None:
    register_store(scheme, Tagged.open)
    store = open_store("tagged://?tag=yes")
    assert isinstance(store, Tagged) and store.tag is True
    with JobTracker("tagged://") as tracker:
        assert tracker.start("ns", 1).total == 1
    with pytest.raises(ConfigurationError, match=r"unknown option 'color'.*takes: tag"):
        open_store("tagged://?color=red")
    with pytest.raises(ConfigurationError, match="registered already"):
        register_store(scheme, lambda url: MemoryStore())
    register_store(scheme, MemoryStore.from_url, replace=True)
    assert type(open_store("tagged://")) is MemoryStore


def test_store_author_mistakes_are_named(scheme: str) -> None:
    with pytest.raises(ConfigurationError, match="replace must be True or False, got 'no'"):
        register_store(scheme, Tagged.open, replace="no")  # type: ignore[arg-type]
    register_store(scheme, lambda url: Tagged(**url.options(tag=1)))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="option tag must be an Option"):
        open_store("tagged://")
    register_store(scheme, lambda url: MemoryStore, replace=True)  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigurationError, match="returned the class MemoryStore, not a store"):
        open_store("tagged://")


def test_the_contract_says_when_worker_processes_cannot_open_a_store(scheme: str) -> None:
    register_store(scheme, Tagged.open)  # in this interpreter only: no entry point
    problem = unopenable_elsewhere("tagged://")
    assert problem is not None and "tagged:// has no 'jobtrack.stores' entry point" in problem
    assert unopenable_elsewhere("file:///tmp/jobs") is None  # jobtrack's own


def test_a_factory_that_returns_no_store_is_refused(scheme: str) -> None:
    register_store(scheme, lambda url: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigurationError, match="the factory of tagged:// returned NoneType"):
        JobTracker("tagged://")


@pytest.mark.parametrize("bad", ["", "Upper", "1abc", "a/b", "a:b", "x" * 40, 5])
def test_bad_schemes_are_refused(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="invalid store scheme"):
        register_store(bad, MemoryStore.from_url)  # type: ignore[arg-type]


def test_factory_must_be_callable(scheme: str) -> None:
    with pytest.raises(ConfigurationError, match="callable"):
        register_store(scheme, "not a factory")  # type: ignore[arg-type]
    assert scheme not in SCHEMES


def test_unknown_scheme_lists_the_known_ones_including_registered(scheme: str) -> None:
    register_store(scheme, Tagged.open)
    with pytest.raises(ConfigurationError, match=r"known schemes: .*redis\+cluster://.*tagged://"):
        open_store("nope://x")


def test_entry_points_are_read_for_an_unknown_scheme(tmp_path: object) -> None:
    # a real installed distribution would declare [project.entry-points."jobtrack.stores"];
    # here a .dist-info on sys.path does the same for a child interpreter
    code = """
import pathlib, sys, tempfile
root = pathlib.Path(tempfile.mkdtemp())
info = root / "fakestore-1.0.dist-info"
info.mkdir()
(info / "METADATA").write_text("Metadata-Version: 2.1\\nName: fakestore\\nVersion: 1.0\\n")
(info / "entry_points.txt").write_text(
    "[jobtrack.stores]\\nbroken = nosuchmodule:factory\\nfake = fakestore:Fake.factory\\n"
)
(root / "fakestore.py").write_text(
    "from jobtrack import MemoryStore, register_store\\n"
    "class Fake(MemoryStore):\\n"
    "    @classmethod\\n"
    "    def factory(cls, url):\\n"
    "        url.options()\\n"
    "        return MemoryStore()\\n"
    "register_store('fake', Fake.factory)  # at import, as docs/testing.md shows\\n"
)
sys.path.insert(0, str(root))
from jobtrack import ConfigurationError, open_store, MemoryStore
try:  # an unknown scheme loads no plugin, and names the ones installed
    open_store("typo://x")
except ConfigurationError as exc:
    assert "unknown store URL 'typo://x'" in str(exc) and "broken://, fake://" in str(exc), exc
else:
    raise SystemExit("typo:// opened")
try:  # a broken plugin fails its own URLs, clearly, and no other
    open_store("broken://")
except ConfigurationError as exc:
    assert str(exc).startswith(
        "the store plugin for broken:// (nosuchmodule:factory) cannot be loaded: "
        "ModuleNotFoundError"
    ), exc
else:
    raise SystemExit("broken:// opened")
assert type(open_store("fake://")) is MemoryStore
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True
    )
    assert result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://127.0.0.1:1/0?timeout=inf", "bad option timeout='inf'"),
        ("redis://127.0.0.1:1/0?timeout=nan", "bad option timeout='nan'"),
        ("redis://127.0.0.1:1/0?timeout=0", "finite number of seconds"),
        ("redis://127.0.0.1:1/0?timeuot=1", r"unknown option 'timeuot'.*takes: .*timeout"),
        ("redis://127.0.0.1:1/0?max_connections=0", "max_connections"),
        ("redis://127.0.0.1:1/0?db=-1", "bad option db"),
        ("redis://127.0.0.1:1/0?protocol=4", "bad option protocol"),
        ("redis://127.0.0.1:1/0?ssl_cert_reqs=none", "need a rediss:// URL"),
        ("redis://127.0.0.1:1/0?timeout=1&timeout=2", "given twice"),
        ("redis+cluster://h:1?db=2", "database 0"),
        ("redis://127.0.0.1:1/0?timeout=1e10", r"at most 3.1536e\+07 \(a year\)"),
        ("redis://127.0.0.1:1/0?health_check_interval=1e300", "at most"),
        ("redis://127.0.0.1:1/2147483648", r"the path must be a db number \(0 to 2147483647\)"),
        ("unix://", "give the socket's path"),
        ("unix://?timeout=1", "give the socket's path"),
        ("file:///tmp/x?fsync=true&fsync=false", "given twice"),
    ],
)
def test_bad_options_fail_when_the_store_is_opened(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        open_store(url)  # nothing listens on port 1: the options alone decide


def test_good_redis_options_are_accepted_without_connecting() -> None:
    store = open_store(
        "redis://127.0.0.1:1/3?timeout=0.5&prefix=p:q&max_connections=5"
        "&health_check_interval=0&client_name=jobs&protocol=2"
    )
    assert store.prefix == "p:q" and store.timeout == 0.5  # type: ignore[attr-defined]
    store.close()


def test_option_parsers() -> None:
    assert seconds(1.0).parse("2.5") == 2.5
    assert seconds(None, allow_zero=True).parse("0") == 0.0
    for bad in ("inf", "-inf", "nan", "-1", "0", "soon", ""):
        with pytest.raises(ValueError):
            seconds(1.0).parse(bad)
    assert integer(None, 1, 9).parse("9") == 9
    for bad in ("0", "10", "1.0", "٣", "-1"):
        with pytest.raises(ValueError):
            integer(None, 1, 9).parse(bad)
    assert boolean(False).parse("ON") is True


def test_features_are_declared_not_guessed(tmp_path: object) -> None:
    assert features_of(open_store("memory://")) == Features(
        blocking=False, items=True, expiry=True, statuses=True, push=True, namespaces=True
    )
    assert features_of(object()) == Features()  # a store that declares nothing
    file_store = open_store(f"file://{tmp_path}")
    assert features_of(file_store).processes and features_of(file_store).items
    assert open_store(file_store.url).root == file_store.root  # type: ignore[attr-defined]


def test_store_url_is_parsed_once() -> None:
    url = StoreURL.parse("redis://:pw@h:1/0?prefix=a&timeout=2")
    assert (url.scheme, url.netloc, url.path) == ("redis", ":pw@h:1", "/0")
    assert url.query == (("prefix", "a"), ("timeout", "2"))
    assert "pw" not in url.shown
    assert url.with_option("prefix", "b").query == (("timeout", "2"), ("prefix", "b"))


@pytest.mark.parametrize("url", ["redis://h:1/0#x", "redis://:se#cret@h:1/0", "file:///tmp/x#y"])
def test_a_fragment_is_refused_and_never_shown(url: str) -> None:
    with pytest.raises(ConfigurationError, match="no '#' fragment") as info:
        open_store(url)
    assert "cret" not in str(info.value) and "#x" not in str(info.value)


def test_registering_the_same_classmethod_twice_is_fine(scheme: str) -> None:
    register_store(scheme, Tagged.open)
    register_store(scheme, Tagged.open)  # a new bound method each time, but the same factory
    assert isinstance(open_store("tagged://"), Tagged)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://127.0.0.1:1/0?db=5", "give the db once"),
        ("redis://127.0.0.1:1/abc", "must be a db number"),
        ("redis://127.0.0.1:1?db=2147483648", "bad option db"),
        ("redis:/127.0.0.1:1", "bad Redis URL"),
    ],
)
def test_redis_database_mistakes_fail_when_opened(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        open_store(url)
