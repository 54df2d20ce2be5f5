"""The pipeline's closing report: every stage with its figures (markdown) and a picture of the result.

report.png shows validation images segmented by the exported bundle through the torch-free
runtime (predicted masks tinted, ground-truth outlines in green) beside the time each stage took;
bench/bench.png (written by the bench stage) shows latency against accuracy per format.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgesam.bench.report import COLUMNS, table_rows
from edgesam.eval import BoxFillAdapter, SegmenterAdapter, build_plan, evaluate, model_adapter, score, scoring_set
from edgesam.eval.agreement import name_list
from edgesam.predict.overlay import overlay
from edgesam_runtime import Segmenter
from edgesam_runtime.files import atomic_path, write_json_atomic, write_text_atomic
from edgesam_runtime.manifest import read_manifest

SAMPLES = 4


def write_pipeline_report(ctx: dict) -> dict:
    paths, spec = ctx["paths"], ctx["spec"]
    out = spec.out_dir
    png = out / "report.png"
    samples = _sample_predictions(paths, spec)
    _plot(samples, ctx.get("stage_seconds", {}), png)
    ctx["accuracy"] = task_accuracy(paths, spec)
    ctx["samples"] = {"images": len(samples), "masks": sum(len(s["pred"]) for s in samples),
                      "empty": [name for s in samples for name in s["empty"]]}
    text = format_report(ctx, png.name)
    write_text_atomic(paths["report"], text)
    summary = {"report": str(paths["report"]), "png": str(png), "samples": len(samples),
               "sample_empty_masks": len(ctx["samples"]["empty"]), **ctx["accuracy"]}
    write_json_atomic(out / "report.json", {k: ctx.get(k) for k in ("data", "finetune", "merge", "prune", "export", "bench")})
    return summary


def validation_plan(paths: dict, spec, max_images: int | None = None):
    """Box prompts (tight) on the validation split finetune held out: what `eval --split val` scores."""
    return build_plan(scoring_set(paths["data"], "val", spec.val_fraction, spec.seed), "box", spec.seed,
                      max_images=max_images)


def task_accuracy(paths: dict, spec) -> dict:
    """Validation mIoU (box prompts) of the final model beside the box-filled baseline.

    Predicting the whole box is the floor any useful model must clear; printing both keeps a weak
    or collapsed model from hiding behind "IoU 1.0 against its own reference".
    """
    from edgesam.models import create_model

    plan = validation_plan(paths, spec)
    model = evaluate(model_adapter(create_model(checkpoint=spec.final_checkpoint())), plan, "final model", boundary=False)
    baseline = evaluate(BoxFillAdapter(), plan, "box-filled baseline", boundary=False)
    per_class = {name: {"miou": figures["miou"], "box_baseline_miou": baseline.by("class_name")[name]["miou"],
                        "n": figures["n"]} for name, figures in model.by("class_name").items()}
    return {"val_miou": model.miou, "box_baseline_miou": baseline.miou, "val_objects": model.overall["n"],
            "val_empty_predictions": model.empty_predictions(), "per_class": per_class}


def _sample_predictions(paths: dict, spec) -> list[dict]:
    """Segment a few validation images with the bundle's lowest-precision ONNX set, on the plan's prompts."""
    manifest = read_manifest(paths["bundle"])
    graph_set = next((g for g in ("int8", "fp16", "fp32") if g in manifest["graphs"]), "fp32")
    plan = validation_plan(paths, spec, max_images=SAMPLES)
    records = score(SegmenterAdapter(Segmenter.open(paths["bundle"], graph_set=graph_set)), plan, keep_masks=True)
    samples = []
    for item, sample in plan.samples():
        mine = [r for r in records if r.key == item.key]
        samples.append({"image": sample.image, "gt": sample.masks, "pred": np.stack([r.mask for r in mine]),
                        "boxes": item.boxes, "empty": [r.name for r in mine if r.pred_empty],
                        "title": f"{item.key} ({graph_set})"})
    return samples


def _outline(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def _plot(samples: list[dict], stage_seconds: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = max(len(samples), 1) + 1
    fig, axes = plt.subplots(1, cols, figsize=(3.2 * cols, 3.4))
    for ax, s in zip(axes, samples):
        shown = np.array(overlay(s["image"], s["pred"], s["boxes"]))
        shown[_outline(s["gt"].any(axis=0))] = (0, 255, 0)
        ax.imshow(shown)
        ax.set_title(s["title"], fontsize=8)
        if s["empty"]:  # a mask with no pixel draws nothing: say so on the picture itself
            ax.text(0.5, 0.02, f"EMPTY MASK: {len(s['empty'])} of {len(s['pred'])}", transform=ax.transAxes,
                    ha="center", va="bottom", fontsize=9, color="white", backgroundcolor="red")
        ax.axis("off")
    ax = axes[-1]
    names = list(stage_seconds)
    ax.barh(names, [stage_seconds[n] for n in names], color="tab:blue")
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title("time per stage", fontsize=9)
    fig.suptitle("masks from the exported bundle (tint) vs ground truth (green outline)", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def format_report(ctx: dict, png_name: str) -> str:
    spec, fine = ctx["spec"], ctx.get("finetune") or {}
    init = fine.get("init", "pretrained")
    lines = [f"# edgesam pipeline report ({time.strftime('%Y-%m-%d %H:%M')})", ""]
    if init == "random":
        lines += ["**Model trained from random initialisation (`init: random`)**: a demonstration of the pipeline, "
                  "not a pretrained SAM.", ""]
    lines += [f"Model `{spec.model}`, data `{ctx['paths']['data']}`"
              f"{' (built-in synthetic inspection set)' if spec.data is None else ''}, seed {spec.seed}.", "",
              "## Stages", "", "| stage | seconds | figures |", "|---|---|---|"]
    for name, seconds in ctx.get("stage_seconds", {}).items():
        skipped = " (skipped: inputs unchanged)" if name in ctx.get("skipped", ()) else ""
        lines.append(f"| {name} | {seconds:.1f}{skipped} | {_headline(name, ctx.get(name) or {})} |")
    lines += _start_lines(fine)
    acc = ctx.get("accuracy")
    if acc:
        verdict = "beats" if acc["val_miou"] > acc["box_baseline_miou"] else "**does not beat**"
        lines += ["", f"## Task accuracy (validation split, {acc['val_objects']} objects, box prompts)", "",
                  f"Final model mIoU **{acc['val_miou']:.3f}** against the box-filled baseline (predict the whole box) "
                  f"{acc['box_baseline_miou']:.3f}: the model {verdict} the baseline."]
        lines += _per_class_lines(acc.get("per_class") or {})
        empty = acc.get("val_empty_predictions") or []
        if empty:
            lines += ["", f"**{len(empty)} of {acc['val_objects']} masks of the final model are empty** "
                          f"(it outputs nothing for these objects): {name_list(empty)}."]
    bench = ctx.get("bench") or {}
    if bench.get("formats"):
        header = [title for title, _, _ in COLUMNS]
        lines += ["", f"## Bench: every format against the PyTorch reference ({bench['images']} validation images, "
                      f"{bench['prompts']} box prompts)", "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in table_rows(bench)]
        lines += ["", "`IoU ref` leaves out prompts whose reference and format masks are both empty; `ref empty` / "
                      "`pred empty` count them. `task mIoU` is against the ground truth."]
        lines += [f"- warning: {w}" for w in bench.get("warnings", [])]
        lines += ["", "![latency against accuracy](bench/bench.png)"]
    shown = ctx.get("samples") or {}
    if shown.get("empty"):
        lines += ["", f"**report.png: {len(shown['empty'])} of {shown['masks']} bundle masks are empty** "
                      f"(drawn as nothing, marked EMPTY MASK): {name_list(shown['empty'])}."]
    lines += ["", f"![masks and stage times]({png_name})", ""]
    return "\n".join(lines)


def _start_lines(fine: dict) -> list[str]:
    """The fine-tuned model against the model it started from, per class (the start is epoch 0)."""
    per_class = fine.get("per_class") or {}
    start, adapted = per_class.get("start") or {}, per_class.get("adapted") or {}
    if not start:
        return []
    lines = ["", "## Fine-tuning: the start against the fine-tuned model (validation split, val mIoU)", ""]
    if fine.get("kept_start"):
        lines += [f"**No epoch beat the starting model** (val mIoU {fine['start_miou']:.3f}): the run kept the start's "
                  "weights, so every later stage works on the model it started from.", ""]
    lines += ["| class | start | fine-tuned | change |", "|---|---|---|---|"]
    for name in sorted(set(start) | set(adapted)):
        a, b = start.get(name), adapted.get(name)
        shown = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        change = "-" if a is None or b is None else f"{b - a:+.3f}"
        lines.append(f"| {name} | {shown(a)} | {shown(b)} | {change} |")
    return lines


def _per_class_lines(per_class: dict) -> list[str]:
    """Per class: a model can beat the baseline overall on easy classes and lose on the hard ones."""
    if not per_class:
        return []
    behind = [name for name, f in per_class.items() if not f["miou"] > f["box_baseline_miou"]]
    lines = ["", "| class | objects | model mIoU | box-filled mIoU |", "|---|---|---|---|"]
    lines += [f"| {name} | {f['n']} | {f['miou']:.3f} | {f['box_baseline_miou']:.3f} |" for name, f in per_class.items()]
    verdict = (f"**behind the baseline in {', '.join(behind)}**" if behind
               else "ahead of the baseline in every class")
    return lines + ["", f"Per class, the model is {verdict}."]


def _headline(stage: str, figures: dict) -> str:
    """One line of the figures that matter for each stage."""
    pick = {
        "data": lambda f: f"{(f.get('totals') or {}).get('images', '?')} images",
        "finetune": lambda f: (f"{f.get('strategy')} ({f.get('init')}): val mIoU {f.get('best_miou', float('nan')):.3f} "
                               f"(start {f.get('start_miou', float('nan')):.3f}"
                               f"{', start kept: no epoch beat it' if f.get('kept_start') else ''}), "
                               f"Dice {f.get('best_dice', float('nan')):.3f}, {f.get('images_per_s', 0):.1f} img/s, "
                               f"{f.get('epochs')} epochs"),
        "merge": lambda f: (f"merged == adapted within {f.get('tolerance', 0):.1e}: max diff {f.get('max_diff_merged_vs_adapted', 0):.2e}; "
                            f"vs base {f.get('max_diff_merged_vs_base', 0):.2e}; plain={f.get('plain')}"),
        "prune": _prune_headline,
        "export": lambda f: "graph sets: " + ", ".join(
            f"{name} {sum(parts.values()) / 1e6:.1f} MB" for name, parts in (f.get("graphs_bytes") or {}).items()),
        "bench": _bench_headline,
        "report": lambda f: f"{f.get('samples', 0)} sample images, {f.get('sample_empty_masks', 0)} empty masks",
    }
    try:
        return pick.get(stage, lambda f: "")(figures)
    except (TypeError, ValueError):
        return ""


def _bench_headline(f: dict) -> str:
    floors = f.get("floors") or {}
    if all(floors.get(k) is None for k in ("min_iou", "max_latency_ms", "max_encoder_ms")):
        verdict = "no floors set"
    else:
        verdict = "floors passed" if floors.get("passed") else "floors missed"
    empty = [f"{row['format']} {row['empty']['prediction']}/{row['prompts']}" for row in f.get("formats", [])
             if not row.get("skipped") and row["empty"]["prediction"]]
    return verdict + ("; empty masks: " + ", ".join(empty) if empty else "")


def _prune_headline(f: dict) -> str:
    from edgesam.compress.accuracy import accuracy_line

    prune = f.get("prune") or {}
    parts = []
    if "encoder_params" in prune:
        p = prune["encoder_params"]
        parts.append(f"encoder params {p['before'] / 1e6:.2f} M -> {p['after'] / 1e6:.2f} M")
    if f.get("latency"):
        parts.append(f"ORT encoder {f['latency']['speedup']:.2f}x faster")
    for stage, acc in (f.get("accuracy") or {}).items():
        parts.append(f"{stage.replace('_', ' ')}: {accuracy_line(acc)}")
    return "; ".join(parts)
