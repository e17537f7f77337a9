"""``python -m jobtrack``: the jobtrack command."""

from .cli import run

run()
