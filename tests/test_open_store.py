"""open_store(): the URL table."""

from __future__ import annotations

import datetime as dt
import enum
import os
from pathlib import Path
from typing import Any

import pytest

from jobtrack import (
    AsyncJobTracker,
    ConfigurationError,
    FileStore,
    JobTracker,
    MemoryStore,
    Store,
    open_store,
)
from jobtrack.stores import display_url


def test_memory() -> None:
    store = open_store("memory://")
    assert isinstance(store, MemoryStore)
    assert isinstance(store, Store)
    assert open_store("memory://") is not store


def test_file_absolute(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/jobs")
    assert isinstance(store, FileStore)
    assert store.root == str(tmp_path / "jobs")
    assert not store.fsync


def test_file_relative_to_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("file:data/jobs?fsync=true")
    assert isinstance(store, FileStore)
    assert store.root == os.path.join(str(tmp_path), "data", "jobs")
    assert store.fsync
    monkeypatch.chdir("/")
    assert store.root == os.path.join(str(tmp_path), "data", "jobs")  # fixed when opened


def test_file_create_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no file store"):
        open_store(f"file://{tmp_path}/nope?create=false")
    assert not (tmp_path / "nope").exists()
    assert isinstance(open_store(f"file://{tmp_path}/yes?create=true"), FileStore)
    assert (tmp_path / "yes").is_dir()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("file:data/jobs", "file://{cwd}/data/jobs"),
        ("file:../up?fsync=true", "file://{parent}/up?fsync=true"),
        ("file:///abs/jobs", "file:///abs/jobs"),
        ("file:with%20space", "file://{cwd}/with%20space"),
        ("redis://:secret@127.0.0.1:6380/0", "redis://:***@127.0.0.1:6380/0"),
        ("redis://user:secret@h:1/0?timeout=2", "redis://user:***@h:1/0?timeout=2"),
        ("redis+cluster://:pw@a:1,b:2", "redis+cluster://:***@a:1,b:2"),
        ("redis://127.0.0.1:6380/0", "redis://127.0.0.1:6380/0"),
        ("memory://", "memory://"),
        ("nothing", "nothing"),
        ("redis://:secret@[::1/0", "redis://***@[::1/0"),  # malformed: still masked
        ("redis://u:secret@[::1/0?x=1", "redis://***@[::1/0?x=1"),
    ],
)
def test_display_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, shown: str) -> None:
    monkeypatch.chdir(tmp_path)
    expected = shown.format(cwd=tmp_path, parent=tmp_path.parent)
    assert display_url(url) == expected
    assert "secret" not in display_url(url) and ":pw@" not in display_url(url)


def test_tracker_takes_a_url(tmp_path: Path) -> None:
    with JobTracker(f"file://{tmp_path}") as tracker:
        assert isinstance(tracker.store, FileStore)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://x", "known schemes: memory://, file://"),
        ("nothing", "known schemes"),
        ("", "known schemes"),
        ("memory://x", "nothing after"),
        ("file://host/p", "names host"),
        ("file:", "no path"),
        ("file://", "no path"),
        ("file:///tmp/x?fsync=maybe", "true or false"),
        ("file:///tmp/x?color=red", "unknown option"),
        ("file:///tmp/x?create=perhaps", "true or false"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        open_store(url)


def test_non_string_url() -> None:
    with pytest.raises(ConfigurationError, match="string"):
        open_store(3)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="store object or a store URL"):
        JobTracker(3)  # type: ignore[arg-type]


def test_clock_must_be_callable_and_aware() -> None:
    import datetime as dt

    with pytest.raises(ConfigurationError, match="callable"):
        JobTracker("memory://", clock=5)  # type: ignore[arg-type]
    tracker = JobTracker("memory://", clock=lambda: dt.datetime(2026, 1, 1))
    with pytest.raises(ConfigurationError, match="naive"):
        tracker.start("ns", 1)
    east = dt.timezone(dt.timedelta(hours=1))
    for unusable in (dt.datetime(1, 1, 1, tzinfo=east), dt.datetime.min.replace(tzinfo=east)):
        tracker = JobTracker("memory://", clock=lambda value=unusable: value)  # type: ignore[misc]
        with pytest.raises(ConfigurationError, match="clock returned"):  # was an OverflowError
            tracker.start("ns", 1)
        with pytest.raises(ConfigurationError, match="clock returned"):  # leaves out expired jobs
            tracker.list("ns")


def test_a_store_class_is_not_a_store(tmp_path: Path) -> None:
    for make in (JobTracker, AsyncJobTracker):
        with pytest.raises(ConfigurationError, match="got the class MemoryStore"):
            make(MemoryStore)  # type: ignore[arg-type]  # (MemoryStore() was meant)


@pytest.mark.parametrize(
    "options",
    [{"clock": 5}, {"stall_after": dt.timedelta(0)}, {"retain": dt.timedelta(days=-1)}],
    ids=["clock", "stall_after", "retain"],
)
def test_a_refused_tracker_opens_no_store(tmp_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        JobTracker(f"file://{tmp_path}/refused", **options)
    assert not (tmp_path / "refused").exists()


def test_from_tracker_takes_a_tracker() -> None:
    for bad in (None, "memory://", MemoryStore()):
        with pytest.raises(ConfigurationError, match="tracker must be a JobTracker"):
            AsyncJobTracker.from_tracker(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (None, "got NoneType"),
        (123, "got int"),
        (b"/tmp/jobs", "got bytes"),
        ("", "must name a place on disk, got ''"),
    ],
)
def test_file_store_paths_are_checked(path: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        FileStore(path)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["file:/tmp/a\tb", "memory://\n", "file:///tmp/x\r"])
def test_control_characters_in_a_url_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="cannot hold control characters"):
        open_store(url)  # (urlsplit would drop them: another store would open)


def test_a_str_subclass_is_a_name_as_the_text_it_holds() -> None:
    class Namespace(str, enum.Enum):
        DOCS = "docs"

    tracker = JobTracker("memory://")
    job = tracker.start(Namespace.DOCS, 1, job_id=Namespace.DOCS)
    assert type(job.namespace_name) is str and job.namespace_name == "docs"
    assert type(job.job_id) is str and tracker.get("docs", "docs") == job
