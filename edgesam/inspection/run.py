"""`run_inspection(config)`: every frame of a source through an `Inspector`; JSONL, overlays and a summary.

Written under `out`: `frames.jsonl` (one line per frame: defects, measurements, verdicts, timings; or the
frame's error), `overlays/<frame>.png`, `summary.json`. `frames.jsonl` grows as `frames.jsonl.part` while
the stream runs (a line can tail it) and takes its name at the end; the rest is written atomically. A run
refuses an `out` that already holds these files (it never overwrites what it did not create).

Latency is the inspect call (encode, segment, measure, judge) per frame, from the first frame on; cold start
adds opening the bundle (with its warm-up call) to the first frame. Frames/s is over the whole loop,
reading and writing included.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from edgesam_runtime.defect_prompts import PromptFileError, read_boxes_file
from edgesam_runtime.envinfo import machine_state
from edgesam_runtime.errors import RuntimeErrorBase
from edgesam_runtime.inspector import Inspector
from edgesam_runtime.measure import Calibration
from edgesam_runtime.files import atomic_path, write_json_atomic
from edgesam_runtime.timing import latency_figures, ms_since

OUTPUTS = ("frames.jsonl", "summary.json", "overlays")
OVERLAYS = ("all", "flagged", "none")  # flagged: NG and REVIEW parts only
ERRORS_KEPT = 20  # bad frames named in the summary (all of them are in frames.jsonl)


@dataclass
class InspectConfig:
    bundle: str
    source: str  # a folder of images, a video file, or a camera index
    out: str
    rules: str | None = None  # None: the bundle's rules.yaml
    recipe: str | None = None  # None: the bundle's recipe.yaml (when no boxes)
    boxes: str | None = None  # a folder of <image stem>.json boxes files (image folders only)
    mm_per_px: float | tuple | None = None  # replaces the rules file's calibration
    graph_set: str = "fp32"
    backend: str = "auto"
    threads: int | None = None  # intra-op threads of the runtime backend
    max_frames: int | None = None
    cycle_ms: float | None = None  # the line's cycle time: p99 latency above it fails the run
    overlays: str = "all"
    progress: bool = True
    overwrite: bool = False  # replace an earlier run's files in `out` (the CLI's --overwrite)

    def __post_init__(self):
        if self.overlays not in OVERLAYS:
            raise ValueError(f"overlays: expected one of {OVERLAYS}, got {self.overlays!r}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames: expected a positive number of frames, got {self.max_frames}")
        if self.cycle_ms is not None and not self.cycle_ms > 0:
            raise ValueError(f"cycle_ms: expected a positive number of milliseconds, got {self.cycle_ms}")
        if self.boxes is not None and self.recipe is not None:
            raise ValueError("prompts: give a boxes folder or a recipe, not both")


def _log(message: str) -> None:
    print(f"[inspect] {message}", file=sys.stderr, flush=True)


def refuse_existing(out: Path) -> None:
    taken = [name for name in OUTPUTS if (out / name).exists() or (out / f"{name}.part").exists()]
    if taken:
        raise FileExistsError(f"{out}: already holds {', '.join(taken)} from an earlier run; choose another --out "
                              "or pass --overwrite to replace them")


def run_inspection(config: InspectConfig) -> dict:
    """Inspect every frame; returns the summary (also written to `out/summary.json`)."""
    from edgesam.inspection.sources import open_source

    out = Path(config.out)
    if not config.overwrite:
        refuse_existing(out)
    calibration = None if config.mm_per_px is None else Calibration.parse(config.mm_per_px, "--mm-per-px")
    source = open_source(config.source)
    if config.boxes is not None and source.kind != "images":
        raise ValueError(f"--boxes: boxes files go with a folder of images; {config.source} is a {source.kind} "
                         "(use a recipe)")
    start = time.perf_counter()
    inspector = Inspector.open(config.bundle, rules=config.rules, recipe=config.recipe, calibration=calibration,
                               graph_set=config.graph_set, backend=config.backend, threads=config.threads)
    open_ms = ms_since(start)
    if config.boxes is None and inspector.recipe is None:
        raise ValueError("prompts: give --boxes DIR (a boxes file per image) or --recipe FILE (fixed regions), or "
                         "put recipe.yaml in the bundle")
    _log(f"{config.bundle} ({inspector.segmenter.info.graph_set} on {inspector.segmenter.backend.name}), "
         f"rules {inspector.rules.source}, source {config.source} ({source.kind})")
    try:
        stream = _Stream(config, inspector, out)
        stream.run(source)
    finally:
        source.close()
    summary = stream.summary(open_ms)
    write_json_atomic(out / "summary.json", summary)
    return summary


class _Stream:
    """The loop over frames and what it keeps: per-frame records, latencies, counts."""

    def __init__(self, config: InspectConfig, inspector: Inspector, out: Path):
        self.config, self.inspector, self.out = config, inspector, out
        self.records: list[dict] = []  # the frames' summaries (verdict, latency), not their defects
        self.errors: list[dict] = []
        self.defect_counts: dict = {}
        self.wall_s = 0.0

    def run(self, source) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        partial = self.out / "frames.jsonl.part"
        start = time.perf_counter()
        with open(partial, "w") as log, self._progress(source) as bar:
            try:
                for frame in source.frames():
                    if self.config.max_frames is not None and frame.index >= self.config.max_frames:
                        break
                    record = self._frame(frame)
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                    bar.update(1)
                    bar.set_postfix_str(self._postfix(), refresh=False)
            except KeyboardInterrupt:  # how a camera run is stopped: keep what was inspected, summarise it
                _log(f"stopped after {len(self.records) + len(self.errors)} frames")
        self.wall_s = time.perf_counter() - start
        partial.replace(self.out / "frames.jsonl")

    def _frame(self, frame) -> dict:
        head = {"frame": frame.index, "name": frame.name}
        if frame.error is not None:
            return self._bad(head, frame.error)
        boxes_file = None
        try:
            prompts, boxes_file = self._prompts(frame)
            part = self.inspector.inspect(frame.image, prompts)
        except RuntimeErrorBase as exc:  # a bad frame or prompt: log it, go on
            # a box the frame cannot take is found only beside the frame: say which file gave it
            return self._bad(head, f"{exc}" + (f" (boxes from {boxes_file})" if boxes_file else ""))
        except Exception as exc:  # anything else is a bug, but one frame must not stop the line: log it, go on
            return self._bad(head, f"internal error ({type(exc).__name__}: {exc}); please report it")
        start = time.perf_counter()
        self._write_overlay(frame, part)
        timings = {**part.timings, "read_ms": frame.read_ms, "write_ms": ms_since(start)}
        self.records.append({"frame": frame.index, "verdict": part.verdict.verdict, "timings": timings})
        for class_name, verdicts in part.counts().items():
            per_class = self.defect_counts.setdefault(class_name, {})
            for verdict, n in verdicts.items():
                per_class[verdict] = per_class.get(verdict, 0) + n
        record = {**head, **part.to_dict()}
        record["timings"] = {k: round(v, 3) for k, v in timings.items()}
        return record

    def _bad(self, head: dict, error: str) -> dict:
        _log(f"frame {head['frame']} ({head['name']}): skipped: {error}")
        self.errors.append({**head, "error": error})
        return {**head, "error": error}

    def _prompts(self, frame):
        """(the frame's prompts, the boxes file they came from); (None, None): the recipe's regions."""
        if self.config.boxes is None:
            return None, None
        path = Path(self.config.boxes) / f"{Path(frame.name).stem}.json"
        if not path.is_file():
            raise PromptFileError(f"{path}: no boxes file for {frame.name} (write [] for a part without defects)")
        return read_boxes_file(path), path

    def _write_overlay(self, frame, part) -> None:
        mode = self.config.overlays
        if mode == "none" or (mode == "flagged" and part.verdict.verdict == "OK"):
            return
        from edgesam.inspection.verdict_overlay import verdict_overlay

        with atomic_path(self.out / "overlays" / f"{Path(frame.name).stem}.png") as tmp:
            verdict_overlay(frame.image, part).save(tmp, format="PNG")

    def _progress(self, source):
        total = source.total if self.config.max_frames is None else min(source.total or self.config.max_frames,
                                                                        self.config.max_frames)
        return tqdm(total=total, desc="inspect", unit="frame", disable=not self.config.progress, file=sys.stderr)

    def _postfix(self) -> str:
        verdicts = [r["verdict"] for r in self.records]
        counts = " ".join(f"{v}={verdicts.count(v)}" for v in ("OK", "NG", "REVIEW") if v in verdicts)
        return f"{counts} bad={len(self.errors)}"

    def summary(self, open_ms: float) -> dict:
        latencies = [r["timings"]["total_ms"] for r in self.records]
        if not latencies:
            raise ValueError(f"{self.config.source}: no frame could be inspected ({len(self.errors)} bad frames; "
                             f"see {self.out / 'frames.jsonl'})")
        parts = {v: sum(r["verdict"] == v for r in self.records) for v in ("OK", "NG", "REVIEW")}
        latency = latency_figures(latencies)
        cycle_met = None if self.config.cycle_ms is None else latency["p99"] <= self.config.cycle_ms
        seg = self.inspector.segmenter
        return {
            "bundle": str(self.config.bundle), "graph_set": seg.info.graph_set, "backend": seg.backend.name,
            "threads": self.config.threads, "source": str(self.config.source),
            "frames": len(self.records) + len(self.errors), "inspected": len(self.records),
            "bad_frames": len(self.errors), "bad": self.errors[:ERRORS_KEPT],
            "parts": parts, "defects": self.defect_counts,
            "frames_per_s": len(self.records) / self.wall_s if self.wall_s > 0 else None, "wall_s": self.wall_s,
            "latency_ms": latency,
            "stages_ms": {stage: latency_figures([r["timings"][stage] for r in self.records])
                          for stage in ("encode_ms", "segment_ms", "measure_ms", "judge_ms", "read_ms", "write_ms")},
            "open_ms": open_ms, "cold_start_ms": open_ms + latencies[0],
            "cycle_ms": self.config.cycle_ms, "cycle_met": cycle_met,
            "rules": self.inspector.rules.to_dict(),
            "recipe": self.inspector.recipe.to_dict() if self.inspector.recipe and not self.config.boxes else None,
            "machine": machine_state(),
            "note": "latency: the inspect call per frame (encode, segment, measure, judge), every frame from the "
                    "first on; frames_per_s: the whole loop, reading and writing included",
        }


def format_summary(summary: dict) -> str:
    lat = summary["latency_ms"]
    lines = [
        f"frames {summary['frames']} (inspected {summary['inspected']}, bad {summary['bad_frames']}); parts "
        + ", ".join(f"{v} {n}" for v, n in summary["parts"].items()),
        "defects: " + ("; ".join(f"{c} " + ", ".join(f"{v} {n}" for v, n in sorted(vs.items()))
                                 for c, vs in sorted(summary["defects"].items())) or "none"),
        f"latency ms: p50 {lat['p50']:.1f}  p95 {lat['p95']:.1f}  p99 {lat['p99']:.1f}  max {lat['max']:.1f} "
        f"(first frame {lat['first']:.1f}); cold start {summary['cold_start_ms']:.0f} ms; "
        f"{summary['frames_per_s']:.2f} frames/s",
    ]
    if summary["cycle_ms"] is not None:
        met = "met" if summary["cycle_met"] else "MISSED"
        lines.append(f"cycle {summary['cycle_ms']:g} ms: {met} (p99 {lat['p99']:.1f} ms)")
    return "\n".join(lines)
