"""The release gate against the last bundle: `edgesam check NEW --baseline OLD --data DIR`.

Both bundles answer the same images and ground-truth boxes (the prompt plan every accuracy figure of the
project uses), image by image in alternating order so that a busy machine slows both alike, through the
same `Inspector` and rules. The gate fails, naming each reason, when

- task mIoU (against the ground truth) drops by more than `max_miou_drop` points,
- any class's mIoU drops by more than `max_class_drop` points,
- the part verdict changes on more than `max_verdict_change` of the images (the report lists them),
- p95 latency of the inspect call grows by more than `max_latency_growth` per cent,
- or the baseline marks nothing on too many prompts to compare against (an empty mask certifies nothing).
"""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgesam.eval.agreement import MIN_NONEMPTY_REFERENCE_SHARE, name_list
from edgesam.eval.plan import ImagePrompts, PromptPlan, build_plan
from edgesam.eval.scoring import score_masks
from edgesam.eval.split import scoring_set
from edgesam_runtime.defect_prompts import DefectPrompt
from edgesam_runtime.envinfo import machine_state
from edgesam_runtime.inspector import Inspector
from edgesam_runtime.measure import Calibration
from edgesam_runtime.files import write_json_atomic, write_text_atomic
from edgesam_runtime.timing import latency_figures, ms_since

GATE_FILES = ("gate.json", "gate.md")


@dataclass
class GateConfig:
    new: str
    baseline: str
    data: str
    rules: str | None = None  # None: the new bundle's rules.yaml
    mm_per_px: float | tuple | None = None
    graph_set: str = "fp32"
    backend: str = "auto"
    threads: int | None = None
    split: str = "all"
    val_fraction: float = 0.2
    split_seed: int = 0
    max_images: int | None = None
    seed: int = 0
    box_jitter: float = 0.0
    max_miou_drop: float = 1.0  # points (0-100 scale)
    max_class_drop: float = 3.0  # points
    max_verdict_change: float = 0.05  # share of images
    max_latency_growth: float = 20.0  # per cent, p95
    out: str | None = None
    overwrite: bool = False  # replace an earlier gate report in `out` (the CLI's --overwrite)

    def __post_init__(self):
        for name in ("max_miou_drop", "max_class_drop", "max_latency_growth"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}: expected a number >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.max_verdict_change <= 1.0:
            raise ValueError(f"max_verdict_change: expected a share in [0, 1], got {self.max_verdict_change}")


def _log(message: str) -> None:
    print(f"[check] {message}", file=sys.stderr, flush=True)


@dataclass
class _Side:
    """What one bundle answered: per-prompt records, per-image verdicts and latencies."""

    name: str
    inspector: Inspector
    records: list
    verdicts: dict  # image key -> (verdict, rule)
    latencies: list


def run_gate(config: GateConfig) -> dict:
    if config.out and not config.overwrite and any((Path(config.out) / f).exists() for f in GATE_FILES):
        raise FileExistsError(f"{config.out}: already holds a gate report; choose another --out "
                              "or pass --overwrite to replace it")
    calibration = None if config.mm_per_px is None else Calibration.parse(config.mm_per_px, "--mm-per-px")
    rules = config.rules
    if rules is None:
        rules = Path(config.new) / "rules.yaml"
        if not rules.is_file():
            raise ValueError(f"--rules: none given and {config.new} holds no rules.yaml; the gate judges verdicts "
                             "under the product's rules")
    options = dict(graph_set=config.graph_set, backend=config.backend, threads=config.threads)
    new = Inspector.open(config.new, rules=rules, calibration=calibration, **options)
    baseline = Inspector.open(config.baseline, rules=new.rules, **options)
    sides = [_Side("new", new, [], {}, []), _Side("baseline", baseline, [], {}, [])]
    plan = _plan(config)
    _log(f"{len(plan)} images, {plan.num_prompts} boxes; new {config.new} vs baseline {config.baseline}")
    for n, (item, sample) in enumerate(plan.samples()):
        prompts = [DefectPrompt(tuple(box), item.class_name) for box in item.boxes]
        for side in (sides if n % 2 == 0 else sides[::-1]):  # alternate: load drifts hit both alike
            _answer(side, item, sample, prompts)
    report = compare(sides[0], sides[1], config, plan)
    if config.out:
        report["files"] = _write(report, Path(config.out))
    return report


def _plan(config: GateConfig) -> PromptPlan:
    dataset = scoring_set(config.data, config.split, config.val_fraction, config.split_seed)
    plan = build_plan(dataset, "box", config.seed, config.box_jitter, config.max_images)
    if not plan.items:
        raise ValueError(f"{config.data}: no labelled image with at least one object to gate on")
    return plan


def _answer(side: _Side, item: ImagePrompts, sample, prompts) -> None:
    start = time.perf_counter()
    part = side.inspector.inspect(sample.image, prompts)
    side.latencies.append(ms_since(start))
    masks = np.stack([d.mask for d in part.defects])
    side.records += score_masks(item, masks, sample.masks)
    side.verdicts[item.key] = (part.verdict.verdict, part.verdict.rule)


def _miou(records, class_name: str | None = None) -> float | None:
    ious = [r.iou for r in records if class_name is None or r.class_name == class_name]
    ious = [v for v in ious if v == v]
    return float(np.mean(ious)) if ious else None


def compare(new: _Side, baseline: _Side, config: GateConfig, plan: PromptPlan) -> dict:
    """The figures of both sides and every threshold missed."""
    failures = []
    empty_baseline = [r.name for r in baseline.records if r.pred_empty]
    if len(empty_baseline) > (1.0 - MIN_NONEMPTY_REFERENCE_SHARE) * len(baseline.records):
        failures.append(f"baseline: {len(empty_baseline)} of {len(baseline.records)} masks are empty "
                        f"({name_list(empty_baseline)}); a baseline that marks nothing cannot vouch for a release")
    miou = {"new": _miou(new.records), "baseline": _miou(baseline.records)}
    miou["drop_points"] = 100.0 * (miou["baseline"] - miou["new"])
    if miou["drop_points"] > config.max_miou_drop:
        failures.append(f"task mIoU {miou['new']:.4f} vs baseline {miou['baseline']:.4f}: "
                        f"-{miou['drop_points']:.2f} points > --max-miou-drop {config.max_miou_drop:g}")
    classes = {}
    for name in sorted({r.class_name for r in baseline.records}):
        row = {"new": _miou(new.records, name), "baseline": _miou(baseline.records, name)}
        row["drop_points"] = 100.0 * (row["baseline"] - row["new"])
        classes[name] = row
        if row["drop_points"] > config.max_class_drop:
            failures.append(f"class {name}: mIoU {row['new']:.4f} vs {row['baseline']:.4f}: "
                            f"-{row['drop_points']:.2f} points > --max-class-drop {config.max_class_drop:g}")
    changed = [{"image": key, "baseline": baseline.verdicts[key][0], "new": new.verdicts[key][0],
                "baseline_rule": baseline.verdicts[key][1], "new_rule": new.verdicts[key][1]}
               for key in baseline.verdicts if baseline.verdicts[key][0] != new.verdicts[key][0]]
    share = len(changed) / len(plan)
    if share > config.max_verdict_change:
        failures.append(f"verdict changed on {len(changed)} of {len(plan)} images ({100 * share:.1f} %) > "
                        f"--max-verdict-change {config.max_verdict_change:g}: {name_list([c['image'] for c in changed])}")
    latency = {"new": latency_figures(new.latencies), "baseline": latency_figures(baseline.latencies)}
    latency["p95_growth_percent"] = 100.0 * (latency["new"]["p95"] / latency["baseline"]["p95"] - 1.0)
    if latency["p95_growth_percent"] > config.max_latency_growth:
        failures.append(f"latency p95 {latency['new']['p95']:.1f} ms vs baseline {latency['baseline']['p95']:.1f} ms: "
                        f"+{latency['p95_growth_percent']:.1f} % > --max-latency-growth {config.max_latency_growth:g}")

    return {
        "new": config.new, "baseline": config.baseline, "config": asdict(config), "plan": plan.describe(),
        "rules": new.inspector.rules.to_dict(), "task_miou": miou, "classes": classes,
        "empty_masks": {"new": sum(r.pred_empty for r in new.records), "baseline": len(empty_baseline),
                        "prompts": len(baseline.records)},
        "verdicts": {"images": len(plan), "changed": len(changed), "changed_share": share, "changes": changed,
                     "new": _verdict_counts(new.verdicts), "baseline": _verdict_counts(baseline.verdicts)},
        "latency_ms": latency, "machine": machine_state(), "failures": failures, "passed": not failures,
        "note": "latency: the inspect call per image (encode, segment, measure, judge), both bundles alternating "
                "image by image in one process",
    }


def _verdict_counts(verdicts: dict) -> dict:
    values = [v for v, _ in verdicts.values()]
    return {v: values.count(v) for v in ("OK", "NG", "REVIEW")}


def format_gate(report: dict) -> str:
    m, lat, v = report["task_miou"], report["latency_ms"], report["verdicts"]
    lines = [f"{'':<18}{'baseline':>10}{'new':>10}{'change':>10}",
             f"{'task mIoU':<18}{m['baseline']:>10.4f}{m['new']:>10.4f}{-m['drop_points']:>+10.2f}"]
    lines += [f"{'  ' + name:<18}{row['baseline']:>10.4f}{row['new']:>10.4f}{-row['drop_points']:>+10.2f}"
              for name, row in report["classes"].items()]
    lines.append(f"{'latency p95 ms':<18}{lat['baseline']['p95']:>10.1f}{lat['new']['p95']:>10.1f}"
                 f"{lat['p95_growth_percent']:>+9.1f}%")
    e = report["empty_masks"]
    lines.append(f"{'empty masks':<18}{e['baseline']:>10}{e['new']:>10}   of {e['prompts']}")
    lines.append(f"verdicts changed on {v['changed']} of {v['images']} images")
    lines += [f"  {c['image']}: {c['baseline']} -> {c['new']} ({c['new_rule']})" for c in v["changes"]]
    lines.append("PASSED" if report["passed"] else "FAILED:\n" + "\n".join(f"  {f}" for f in report["failures"]))
    return "\n".join(lines)


def _write(report: dict, out: Path) -> dict:
    files = {"json": str(out / "gate.json"), "markdown": str(out / "gate.md")}
    write_json_atomic(files["json"], report)
    write_text_atomic(files["markdown"], "# Release gate\n\n" f"new `{report['new']}` vs baseline "
                      f"`{report['baseline']}` on `{report['plan']['data']}` ({report['plan']['images']} images)\n\n"
                      f"{report['machine']['cpu_line']}; load average {report['machine']['load_average']}\n\n"
                      "```text\n" + format_gate(report) + "\n```\n")
    return files
