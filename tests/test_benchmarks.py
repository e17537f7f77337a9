"""The benchmark runner runs (a smoke test: nothing timing-based is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def quick_rows(tmp_path: Path, suites: str, timeout: float) -> tuple[list[dict[str, Any]], str]:
    """The rows (from ``--json``) and the printed table of ``--quick --only <suites>``."""
    out = tmp_path / "rows.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", suites, "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(out.read_text())
    return rows, result.stdout


def no_postgres_here(rows: list[dict[str, Any]]) -> None:
    """Skip (fail under CI, as the PostgreSQL tests do) when the runner found no PostgreSQL."""
    why = [row["baseline_name"] for row in rows if row["baseline_name"].startswith("skipped")]
    if why:
        if os.environ.get("CI"):
            pytest.fail(why[0], pytrace=False)
        pytest.skip(why[0])


def test_quick_run_prints_the_table(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "memory", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ours/s" in result.stdout and "baseline/s" in result.stdout
    assert "memory   record" in result.stdout
    assert '"operation": "record"' in out.read_text()


def test_script_form_and_bad_suite() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--only", "nope"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2 and "unknown suite" in result.stderr


def test_quick_sqlite_suite_has_its_rows_and_file_is_its_alias(tmp_path: Path) -> None:
    rows, table = quick_rows(tmp_path, "sqlite,file", timeout=120)
    assert [(row["suite"], row["operation"], row["target"]) for row in rows] == [
        ("sqlite", "record", 0.8),
        ("sqlite", "record", 8.0),
        ("sqlite", "record, new item each", 0.6),
        ("sqlite", "get", None),
        ("sqlite", "record, durable", None),
    ]  # once: "file" names the same suite
    for row in rows:
        assert row["ours"] > 0 and row["baseline"] > 0 and row["ratio"] > 0
    bare = [row["baseline_name"] for row in rows]
    assert bare[0] == bare[2] == bare[4] == "bare UPDATE ... RETURNING, autocommit"
    assert bare[1].startswith("flock + read + temp + rename")
    assert "synchronous=NORMAL" in rows[0]["note"] and "synchronous=FULL" in rows[4]["note"]
    assert "sqlite   record, new item each" in table


@pytest.mark.postgres
@pytest.mark.slow
def test_quick_postgres_suite_starts_its_own_server(tmp_path: Path) -> None:
    rows, table = quick_rows(tmp_path, "postgres", timeout=240)
    no_postgres_here(rows)
    assert [(row["operation"], row["target"]) for row in rows] == [
        ("record", 0.9),
        ("get", 0.9),
        ("record, new item each", None),
        ("record_many (100 updates)", None),
        ("record_many (100 updates)", None),
    ]
    for row in rows:
        assert row["suite"] == "postgres" and row["ours"] > 0 and row["baseline"] > 0
    assert rows[3]["baseline_name"].endswith("a Sync after each")
    assert rows[4]["baseline_name"].endswith("one Sync")
    assert "postgres record_many (100 updates)" in table


@pytest.mark.redis
@pytest.mark.slow
def test_quick_flat_and_items_have_their_rows(tmp_path: Path) -> None:
    rows, _ = quick_rows(tmp_path, "flat,items", timeout=240)
    flat = [row["operation"] for row in rows if row["suite"] == "flat"]
    assert flat == [
        f"{kind} {what}, {size}"
        for kind, workloads in (
            ("memory", ("record", "record one job")),
            ("sqlite", ("record", "record one job", "bare loop")),
        )
        for what in workloads
        for size in (
            ("1 job", "1,000 jobs", "10,000 jobs") if what == "record" else ("1", "1,000", "10,000")
        )
    ]
    items = [row["operation"] for row in rows if row["suite"] == "items"]
    assert items == [
        "memory record, job of 100,000 items",
        "sqlite bytes per successful item",
        "sqlite bytes per failed item",
        "sqlite record, job of 100,000 items",
        "redis bytes per successful item",
        "redis bytes per failed item",
        "redis record, job of 100,000 items",
    ]
    assert all(row["ours"] > 0 for row in rows)


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_quick_listing_has_a_row_per_store_status_and_page(tmp_path: Path) -> None:
    rows, table = quick_rows(tmp_path, "listing", timeout=240)
    no_postgres_here(rows)
    assert [row["operation"] for row in rows] == [
        f"{kind} {status} {page} page"
        for kind in ("memory", "sqlite", "redis", "postgres")
        for status in ("all", "running", "completed", "stalled")
        for page in ("first", "middle")
    ]
    for row in rows:
        assert row["suite"] == "listing" and row["target"] == 0.33
        assert row["ours"] > 0 and row["baseline"] > 0
        assert row["baseline_name"] == "same page at 1,000 jobs"
        assert row["note"].startswith("100 of ") and row["note"].endswith(", 5,000 jobs")
    assert "listing  postgres stalled middle page" in table


def test_live_rows_of_a_few_clients_on_the_memory_store() -> None:
    from benchmarks.live_suite import measure

    rows = measure("memory", "memory://", clients=6, updates=2, idle_s=0.2, rounds=1)
    assert [row.operation for row in rows] == [
        "memory idle 6 clients: calls/s",
        "memory 6 streams: p99 ms",
        "memory 6 bare streams: p99 ms",
        "memory 6 streams: calls/update",
    ]
    assert "6/6 the completed one" in rows[1].note  # (each update: timing, not asserted)
    assert rows[1].limit == 100 and rows[1].ours > 0 and rows[2].ours > 0


@pytest.mark.redis
@pytest.mark.slow
def test_quick_live_suite_has_its_rows(tmp_path: Path) -> None:
    rows, table = quick_rows(tmp_path, "live", timeout=240)
    assert [row["operation"] for row in rows] == [
        f"{kind} {what}"
        for kind in ("memory", "sqlite", "redis")
        for what in (
            "idle 100 clients: calls/s",
            "100 streams: p99 ms",
            "100 bare streams: p99 ms",
            "100 streams: calls/update",
        )
    ]
    assert all(row["suite"] == "live" for row in rows)
    assert "live     memory 100 streams: p99 ms" in table
    for row in rows[1::4]:
        assert "100/100 the completed one" in row["note"]  # (each update: timing, not asserted)
    assert rows[-1]["note"].endswith("; 1 subscriber(s) of the job's channel")
