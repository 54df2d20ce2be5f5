"""docs/cli.md is the commands' own help text: regenerate it when a flag changes."""
import pytest
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


@pytest.mark.slow
def test_cli_reference_is_current():
    # A fresh interpreter: click caches each command's help option once invoked, so rendering inside
    # the test process would depend on which CLI tests ran first.
    rendered = subprocess.run([sys.executable, "-m", "edgesam.cli.docgen"], capture_output=True, text=True, check=True).stdout
    assert DOC.read_text() == rendered, "docs/cli.md is stale: run `python -m edgesam.cli.docgen > docs/cli.md`"
