"""edgesam.data is numpy + Pillow only: line PCs run it without torch or scipy installed."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_leaves_torch_and_scipy_out():
    code = ("import sys, edgesam.data, edgesam.cli.data; "
            "bad = [m for m in ('torch', 'scipy', 'pycocotools', 'cv2') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr
