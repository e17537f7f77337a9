"""open_store(): the URL table."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobtrack import ConfigurationError, FileStore, JobTracker, MemoryStore, Store, open_store


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
    assert tracker.list("ns").items == ()
