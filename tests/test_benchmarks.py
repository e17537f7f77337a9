"""The benchmark runner runs (a smoke test: nothing timing-based is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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


@pytest.mark.redis
@pytest.mark.slow
def test_quick_listing_has_a_row_per_store_status_and_page(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "listing", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())
    assert [row["operation"] for row in rows] == [
        f"{kind} {status} {page} page"
        for kind in ("memory", "file", "redis")
        for status in ("all", "running", "completed", "stalled")
        for page in ("first", "middle")
    ]
    for row in rows:
        assert row["suite"] == "listing" and row["target"] == 0.33
        assert row["ours"] > 0 and row["baseline"] > 0
        assert row["baseline_name"] == "same page at 1,000 jobs"
        assert row["note"].startswith("100 of ") and row["note"].endswith(", 5,000 jobs")
    assert "listing  redis stalled middle page" in result.stdout
