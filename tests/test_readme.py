"""The README's pipeline example runs as written (in a scratch directory)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_block(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("```", start)]


def test_pipeline_example_runs(tmp_path: Path) -> None:
    code = _python_block("## Use it in a pipeline")
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "'status': 'completed'" in result.stdout
    assert "'last_error': 'document is empty'" in result.stdout
    assert (tmp_path / "jobs.db").is_file()  # "sqlite:jobs.db": relative to the cwd
