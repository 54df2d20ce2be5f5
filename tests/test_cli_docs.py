"""docs/cli.md is the commands' own help text: regenerate it when a flag changes."""
from pathlib import Path

from edgesam.cli.docgen import render

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_cli_reference_is_current():
    assert DOC.read_text() == render(), "docs/cli.md is stale: run `python -m edgesam.cli.docgen > docs/cli.md`"
