"""`edgesam bench`/`check`: reports every figure, and floors decide the exit code."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgesam.cli.main import main


def invoke(args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def base_args(setup, out):
    return [setup["bundle"], "--data", setup["data"], "--reference", setup["checkpoint"], "--max-images", 3,
            "--torch-fast", "off", "--threads", 1, "--out", out]


@pytest.mark.slow
def test_bench_with_reachable_floor_exits_0_and_writes_report(bench_setup, tmp_path):
    result = invoke(["bench"] + base_args(bench_setup, tmp_path) + ["--min-iou", 0.9, "--max-latency-ms", 60000])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "bench.json").read_text())
    rows = {row["format"]: row for row in report["formats"]}
    assert set(rows) == {"pytorch", "fp32", "fp32@openvino"}  # every backend that can run the ONNX graphs
    fp32 = rows["fp32"]
    assert fp32["backend"] == "onnxruntime" and fp32["default"] and "rule for fp32" in fp32["choice"]
    # the fp32 graphs compute what the reference computes: near-identical masks on identical prompts
    # the IoU compares real masks: no reference (and no fp32) mask is empty
    assert fp32["empty"]["reference"] == fp32["empty"]["prediction"] == rows["pytorch"]["empty"]["prediction"] == 0
    assert fp32["iou_vs_reference"]["mean"] >= 0.99 and fp32["iou_vs_reference"]["n"] == report["prompts"] >= 3
    assert abs(fp32["task_iou"]["mean"] - rows["pytorch"]["task_iou"]["mean"]) < 0.01
    for key in ("encoder_ms", "decoder_per_prompt_ms"):
        assert 0 < fp32[key]["p50"] <= fp32[key]["p95"]
    assert fp32["images_per_s"] > 0 and fp32["cold_start_ms"] > 0 and fp32["size_bytes"] > 1e6
    assert fp32["warmup"]["calls"] >= 3 and len(fp32["warmup"]["ms"]) == fp32["warmup"]["calls"]
    assert fp32["warmup"]["prompt_counts"] and min(fp32["warmup"]["prompt_counts"]) >= 1  # each warmed once
    assert fp32["encoder_ms"]["spread"] >= 0  # (p95 - p5) / p50 of the timed calls
    assert report["machine"]["threads"]["threads"] == 1 and "threads: 1 thread: asked for" in result.output
    assert report["floors"]["passed"] and "fp32" in result.output
    assert (tmp_path / "bench.md").read_text().count("| fp32 | onnxruntime |") == 1
    on_openvino = rows["fp32@openvino"]
    if on_openvino.get("skipped"):  # the openvino package is missing: the row says so instead of measuring
        assert "openvino" in on_openvino["skipped"]
    else:
        assert on_openvino["backend"] == "openvino" and not on_openvino["default"] and on_openvino["ran_as"] == "fp32"
        assert on_openvino["iou_vs_reference"]["mean"] >= 0.99 and on_openvino["empty"]["reference"] == 0
    # the header: the CPU with its flags, the load, and why each graph set runs where it does by default
    cpu = report["machine"]["cpu"]
    assert set(cpu["flags"]) >= {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile"}
    assert report["machine"]["load_average"] and report["defaults"]["fp32"]["backend"] == "onnxruntime"
    assert f"CPU: {report['machine']['cpu_line']}" in result.output
    assert "default for fp32: onnxruntime (rule for fp32" in result.output
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_with_impossible_floor_exits_1_naming_it(bench_setup, tmp_path):
    result = invoke(["check"] + base_args(bench_setup, tmp_path) + ["--max-latency-ms", 1e-6, "--backends", "auto"])
    assert result.exit_code == 1
    assert "FLOOR MISSED: fp32: decoder_per_prompt_ms.p95" in result.output and "--max-latency-ms" in result.output
    assert json.loads((tmp_path / "bench.json").read_text())["floors"]["passed"] is False


def test_check_needs_a_floor(bench_setup, tmp_path):
    result = CliRunner().invoke(main, ["check"] + [str(a) for a in base_args(bench_setup, tmp_path)])
    assert result.exit_code == 2 and "give at least one floor" in result.output


def test_every_format_answers_the_eval_plan(bench_setup):
    from edgesam.bench import BenchConfig
    from edgesam.bench.run import bench_plan
    from edgesam.data import load_dataset
    from edgesam.eval import build_plan

    config = BenchConfig(bundle=str(bench_setup["bundle"]), data=str(bench_setup["data"]), max_images=3, prompt="point")
    plan = bench_plan(config)
    same = build_plan(load_dataset(bench_setup["data"]), "point", seed=0, max_images=3)
    assert [i.key for i in plan] == [i.key for i in same]
    for x, y in zip(plan, same):
        np.testing.assert_array_equal(x.points, y.points)
        assert x.points.shape == (x.num_prompts, 1, 2) and x.boxes is None


@pytest.mark.parametrize("kw, message", [
    (dict(prompt="circle"), "prompt"), (dict(max_images=0), "max_images"), (dict(min_iou=1.5), "min_iou"),
    (dict(max_latency_ms=-1), "max_latency_ms"), (dict(box_jitter=-0.1), "box_jitter"),
    (dict(backends="onnxruntime,openvin"), "backends"), (dict(backends=""), "backends"),
])
def test_bad_config_is_refused(kw, message):
    from edgesam.bench import BenchConfig
    from edgesam.utils.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        BenchConfig(bundle="b", data="d", **kw)


def test_backends_choose_the_rows(bench_setup):
    from edgesam.bench import BenchConfig
    from edgesam.bench.run import runtime_formats
    from edgesam_runtime.manifest import read_manifest

    manifest = read_manifest(bench_setup["bundle"])

    def rows(backends):
        config = BenchConfig(bundle=str(bench_setup["bundle"]), data="d", backends=backends)
        return [(f.name, f.backend, f.default) for f in runtime_formats(config, manifest)[0]]

    assert rows("all") == [("fp32", "onnxruntime", True), ("fp32@openvino", "openvino", False)]
    assert rows("auto") == [("fp32", "onnxruntime", True)]
    assert rows("openvino") == [("fp32@openvino", "openvino", False)]
