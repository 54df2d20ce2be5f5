"""`edgesam inspect` end to end on the tiny bundle: JSONL, overlays, summary, bad frames, cycle time."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edgesam.cli.main import main

pytestmark = pytest.mark.slow  # long integration tests: CI runs them (`pytest -m slow`)

RECIPE = "part_size: [100, 100]\nregions:\n  - {name: centre, class: stain, box: [25, 25, 75, 75]}\n"


def _invoke(*args):
    return CliRunner().invoke(main, ["inspect", *map(str, args), "--no-progress"])


def test_image_folder_with_boxes_files(inspect_bundle, rules_file, line_folder, tmp_path):
    out = tmp_path / "run"
    result = _invoke(inspect_bundle, "--rules", rules_file, "--source", line_folder / "images", "--boxes",
                     line_folder / "boxes", "--out", out, "--threads", 1)
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in (out / "frames.jsonl").read_text().splitlines()]
    assert len(lines) == 7 and not (out / "frames.jsonl.part").exists()
    broken = [x for x in lines if "error" in x]
    assert [x["name"] for x in broken] == ["broken.png"]  # logged and skipped; the stream went on
    good = [x for x in lines if "error" not in x]
    boxes = {p.stem: json.loads(p.read_text()) for p in (line_folder / "boxes").glob("*.json")}
    for record in good:
        assert len(record["defects"]) == len(boxes[record["name"].rsplit(".", 1)[0]])
        assert record["verdict"] in ("OK", "NG", "REVIEW") and record["rule"]
        for defect in record["defects"]:
            assert {"area_px", "length_mm", "max_width_mm", "predicted_iou", "stability"} <= set(defect["measurement"])
            assert defect["verdict"] in ("OK", "NG", "REVIEW")
        assert record["timings"]["total_ms"] > 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["frames"], summary["inspected"], summary["bad_frames"]) == (7, 6, 1)
    assert sum(summary["parts"].values()) == 6
    assert sum(sum(v.values()) for v in summary["defects"].values()) == sum(len(x["defects"]) for x in good)
    lat = summary["latency_ms"]
    assert lat["n"] == 6 and lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert summary["cold_start_ms"] >= summary["open_ms"] > 0 and summary["frames_per_s"] > 0
    assert summary["machine"]["cpu"] and summary["rules"]["mm_per_px"] == [0.1, 0.1]
    overlays = sorted(p.name for p in (out / "overlays").iterdir())
    assert len(overlays) == 6 and "p99" in result.output
    # a second run into the same folder is refused: inspect never overwrites what it did not create
    again = _invoke(inspect_bundle, "--rules", rules_file, "--source", line_folder / "images", "--boxes",
                    line_folder / "boxes", "--out", out)
    assert again.exit_code == 1 and "already holds" in again.output


def test_cycle_time_exceeded_exits_one(inspect_bundle, rules_file, line_folder, tmp_path):
    result = _invoke(inspect_bundle, "--rules", rules_file, "--source", line_folder / "images", "--boxes",
                     line_folder / "boxes", "--out", tmp_path / "run", "--cycle-ms", 0.001, "--overlays", "none")
    assert result.exit_code == 1
    assert "Error: latency p99" in result.output and "> --cycle-ms 0.001" in result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["cycle_met"] is False  # the summary is written before the verdict on the cycle
    generous = _invoke(inspect_bundle, "--rules", rules_file, "--source", line_folder / "images", "--boxes",
                       line_folder / "boxes", "--out", tmp_path / "ok", "--cycle-ms", 1e6, "--overlays", "none")
    assert generous.exit_code == 0 and "cycle 1e+06 ms: met" in generous.output


def test_video_with_a_recipe(inspect_bundle, rules_file, tmp_path):
    video = tmp_path / "line.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (80, 60))
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    for _ in range(5):
        writer.write(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
    writer.release()
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    out = tmp_path / "run"
    result = _invoke(inspect_bundle, "--rules", rules_file, "--recipe", recipe, "--source", video, "--out", out,
                     "--max-frames", 4, "--mm-per-px", "0.2,0.25", "--overlays", "flagged")
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in (out / "frames.jsonl").read_text().splitlines()]
    assert [x["name"] for x in lines] == [f"frame{i:06d}" for i in range(4)]
    assert all(x["defects"][0]["name"] == "centre" and x["defects"][0]["box"] == [20.0, 15.0, 60.0, 45.0]
               for x in lines)  # the part's 100 x 100 frame scaled onto 80 x 60 pixels
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rules"]["mm_per_px"] == [0.2, 0.25] and summary["recipe"]["regions"][0]["name"] == "centre"


@pytest.mark.parametrize("args, message", [
    (["--source", "nowhere"], "no such folder, video file or camera index"),
    (["--source", "9" * 20], "expected a camera number from 0 to 9999"),  # overflowed OpenCV's int before
    (["--mm-per-px", "0.1,x"], "expected mm per pixel as X or X,Y"),
])
def test_bad_arguments_are_one_line(inspect_bundle, rules_file, tmp_path, args, message):
    result = _invoke(inspect_bundle, "--rules", rules_file, "--out", tmp_path / "run",
                     *(["--source", tmp_path] if "--source" not in args else []), *args)
    assert result.exit_code != 0 and message in result.output


def test_prompts_are_required_and_rules_validated(inspect_bundle, rules_file, line_folder, tmp_path):
    result = _invoke(inspect_bundle, "--rules", rules_file, "--source", line_folder / "images", "--out", tmp_path / "a")
    assert result.exit_code == 1 and "give --boxes DIR" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes: {crack: {max_length_mm: -1}}\n")
    result = _invoke(inspect_bundle, "--rules", bad, "--source", line_folder / "images", "--boxes",
                     line_folder / "boxes", "--out", tmp_path / "b")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "classes.crack.max_length_mm: expected a number >= 0" in result.output


def test_a_stopped_camera_run_keeps_and_summarises_its_frames(inspect_bundle, rules_file, tmp_path, monkeypatch):
    from edgesam.inspection import run, sources

    class Camera:  # three frames, then the operator presses Ctrl-C
        kind, total = "camera", None

        def frames(self):
            for i in range(3):
                yield sources.Frame(i, f"frame{i:06d}", np.full((60, 80), 100 + i, np.uint8))
            raise KeyboardInterrupt

        def close(self):
            pass

    monkeypatch.setattr(sources, "open_source", lambda spec: Camera())
    from edgesam_runtime.inspector import Inspector

    inspect = Inspector.inspect

    def flaky(self, image, prompts=None, keep_masks=True):  # a bug that strikes one frame must not stop the line
        if image[0, 0] == 101:
            raise ZeroDivisionError("boom")
        return inspect(self, image, prompts, keep_masks)

    monkeypatch.setattr(Inspector, "inspect", flaky)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    summary = run.run_inspection(run.InspectConfig(bundle=str(inspect_bundle), source="0", out=str(tmp_path / "cam"),
                                                   rules=str(rules_file), recipe=str(recipe), progress=False))
    assert summary["inspected"] == 2 and summary["latency_ms"]["n"] == 2 and summary["bad_frames"] == 1
    assert summary["bad"][0]["error"].startswith("internal error (ZeroDivisionError: boom)")
    assert len((tmp_path / "cam" / "frames.jsonl").read_text().splitlines()) == 3


def test_a_box_outside_its_frame_is_logged_with_its_boxes_file(inspect_bundle, rules_file, line_folder, tmp_path):
    """The frame's size is known only beside the frame: the log line names the boxes file that gave the box."""
    boxes = tmp_path / "boxes"
    shutil.copytree(line_folder / "boxes", boxes)
    target = next(p for p in sorted(boxes.glob("*.json")) if p.stem != "broken")  # a readable frame
    target.write_text(json.dumps([{"box": [1, 1, 100000, 5], "class": "crack"}]))
    out = tmp_path / "run"
    result = _invoke(inspect_bundle, "--rules", rules_file, "--source", line_folder / "images", "--boxes", boxes,
                     "--out", out, "--threads", 1)
    assert result.exit_code == 0, result.output
    errors = [json.loads(x) for x in (out / "frames.jsonl").read_text().splitlines() if '"error"' in x]
    bad = [e for e in errors if e["name"].rsplit(".", 1)[0] == target.stem]
    assert len(bad) == 1 and "lies outside" in bad[0]["error"] and f"(boxes from {target})" in bad[0]["error"]
