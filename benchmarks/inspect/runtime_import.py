"""Benchmark: what the inspection dependency (OpenCV, contrib headless build) adds to the runtime's start-up.

Each case runs in a fresh interpreter (7 times; the median is reported) and times the imports a line
process does, then reads its peak resident memory (ru_maxrss) and whether torch got loaded:

- `runtime`: `import edgesam_runtime` (the segmenter; OpenCV is not imported),
- `runtime + inspector`: also `edgesam_runtime.inspector` (measurements, rules: imports cv2),
- `cv2 alone`: `import cv2` after numpy.

Also the installed size of the OpenCV wheel. Reproduce (repo root; a quiet machine, hold the lock):
  flock /tmp/edgesam-bench.lock python benchmarks/inspect/runtime_import.py
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
RUNS = 7
PROBE = """
import resource, sys, time
import numpy
start = time.perf_counter()
{imports}
ms = (time.perf_counter() - start) * 1e3
print(ms, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "torch" in sys.modules)
"""
CASES = {
    "runtime": "import edgesam_runtime",
    "runtime + inspector": "import edgesam_runtime\nimport edgesam_runtime.inspector",
    "cv2 alone": "import cv2",
}


def probe(imports: str) -> tuple[float, int, bool]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(imports=imports)], capture_output=True, text=True,
                         check=True, cwd=REPO, env={"PYTHONPATH": str(REPO / "runtime"), "PATH": "/usr/bin:/bin"}).stdout.split()
    return float(out[0]), int(out[1]), out[2] == "True"


def wheel_mib(name: str) -> float:
    files = metadata.distribution(name).files or []
    return sum(f.locate().stat().st_size for f in files if Path(f.locate()).is_file()) / 2 ** 20


def main() -> None:
    sys.path.insert(0, str(REPO))
    from edgesam_runtime.envinfo import machine_state

    before = machine_state()
    result = {"runs": RUNS, "cases": {}}
    for name, imports in CASES.items():
        runs = [probe(imports) for _ in range(RUNS)]
        result["cases"][name] = {"import_ms_median": statistics.median(r[0] for r in runs),
                                 "import_ms_all": [round(r[0], 1) for r in runs],
                                 "max_rss_mib_median": statistics.median(r[1] for r in runs) / 1024,
                                 "torch_loaded": any(r[2] for r in runs)}
    result["opencv"] = {"package": "opencv-contrib-python-headless",
                        "version": metadata.version("opencv-contrib-python-headless"),
                        "installed_mib": wheel_mib("opencv-contrib-python-headless")}
    result.update(cpu_line=before["cpu_line"], cpu=before["cpu"], load_average_before=before["load_average"],
                  load_average_after=machine_state()["load_average"], python=sys.version.split()[0])
    out = HERE / "results" / "runtime_import.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for name, case in result["cases"].items():
        print(f"{name:<22} import {case['import_ms_median']:7.1f} ms  max RSS {case['max_rss_mib_median']:6.1f} MiB  "
              f"torch loaded: {case['torch_loaded']}")
    print(f"opencv-contrib-python-headless {result['opencv']['version']}: {result['opencv']['installed_mib']:.0f} MiB "
          f"installed; load {result['load_average_before']} -> {result['load_average_after']}")


if __name__ == "__main__":
    main()
