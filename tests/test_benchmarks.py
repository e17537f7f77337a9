"""The benchmark runner runs (a smoke test: nothing timing-based is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
