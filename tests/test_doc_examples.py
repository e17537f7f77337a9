"""Every Python example in README.md and docs/ type-checks under ``mypy --strict``.

Each fenced ``python`` block is checked as a module of its own. Names an
example leaves to the reader's code (``embed``, ``tracker`` of an earlier
block) and the reader's own modules (``mypackage``) are the only misses
allowed: any other error is a broken example.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def examples() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        blocks = re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
        found += [(f"{doc.stem.lower()}_{n}", block) for n, block in enumerate(blocks)]
    return found


@pytest.mark.slow
def test_the_examples_type_check(tmp_path: Path) -> None:
    found = examples()
    assert len(found) >= 15  # (the docs have examples: a broken pattern finds none)
    for name, block in found:
        (tmp_path / f"example_{name}.py").write_text(block, encoding="utf-8")
    out, err, status = api.run(
        [
            "--strict",
            "--disable-error-code=name-defined",
            "--disable-error-code=import-not-found",
            "--no-incremental",
            "--cache-dir=" + str(tmp_path / ".cache"),
            str(tmp_path),
        ]
    )
    assert status == 0, out + err
