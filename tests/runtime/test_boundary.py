"""The runtime boundary: line software that imports edgesam_runtime never loads torch."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.runtime.conftest import CPU_BACKENDS

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import edgesam_runtime
    import edgesam_runtime.backends.trt
    from edgesam_runtime import Segmenter
    seg = Segmenter.open(sys.argv[1], backend=sys.argv[2])
    img = np.full((50, 70), 120, np.uint8)
    emb = seg.encode(img)
    res = seg.segment(emb, points=[[10, 20]], labels=[1], boxes=[[5, 5, 60, 40]])
    res = seg.segment_image(img, [{"type": "box", "data": [1, 2, 30, 40]}])
    assert res.masks.shape == (1, 1, 50, 70), res.masks.shape
    from edgesam_runtime.inspector import DefectPrompt, Inspector
    from edgesam_runtime.rules import parse_rules
    part = Inspector(seg, parse_rules({"mm_per_px": 0.1, "classes": {"crack": {"max_length_mm": 1}}})).inspect(
        img, [DefectPrompt((5, 5, 60, 40), "crack")])
    assert part.verdict.verdict in ("OK", "NG", "REVIEW")
    print("TORCH_LOADED=" + str("torch" in sys.modules))
""")


@pytest.mark.slow
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_runtime_never_imports_torch(bundle_dir, backend):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(bundle_dir), backend], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "TORCH_LOADED=False" in out.stdout
