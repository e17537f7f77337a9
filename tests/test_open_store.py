"""open_store(): the URL table."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobtrack import ConfigurationError, FileStore, JobTracker, MemoryStore, Store, open_store
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
