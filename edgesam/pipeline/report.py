"""The pipeline's closing report: every stage with its figures (markdown) and a picture of the result.

report.png shows validation images segmented by the exported bundle through the torch-free
runtime (predicted masks tinted, ground-truth outlines in green) beside the time each stage took;
bench/bench.png (written by the bench stage) shows latency against accuracy per format.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgesam.utils.files import atomic_path, write_json_atomic, write_text_atomic

SAMPLES = 4


def write_pipeline_report(ctx: dict) -> dict:
    paths, spec = ctx["paths"], ctx["spec"]
    out = spec.out_dir
    png = out / "report.png"
    samples = _sample_predictions(paths, spec)
    _plot(samples, ctx.get("stage_seconds", {}), png)
    ctx["accuracy"] = task_accuracy(paths, spec)
    text = format_report(ctx, png.name)
    write_text_atomic(paths["report"], text)
    summary = {"report": str(paths["report"]), "png": str(png), "samples": len(samples), **ctx["accuracy"]}
    write_json_atomic(out / "report.json", {k: ctx.get(k) for k in ("data", "finetune", "merge", "prune", "export", "bench")})
    return summary


def task_accuracy(paths: dict, spec) -> dict:
    """Validation mIoU (box prompts) of the final model beside the box-filled baseline.

    Predicting the whole box is the floor any useful model must clear; printing both keeps a weak
    or collapsed model from hiding behind "IoU 1.0 against its own reference".
    """
    from edgesam.data import load_dataset, split_by_stem
    from edgesam.evaluate import evaluate
    from edgesam.models import create_model

    from edgesam.pipeline.stages import _final_checkpoint

    ds = load_dataset(paths["data"])
    _, val = split_by_stem(ds.subset([i for i, r in enumerate(ds.records) if r.labelled]), spec.val_fraction, spec.seed)
    model = evaluate(create_model(checkpoint=_final_checkpoint(spec)), val, "box", seed=spec.seed, boundary=False)
    baseline = evaluate(None, val, "box", seed=spec.seed, boundary=False)
    return {"val_miou": model.miou, "box_baseline_miou": baseline.miou, "val_objects": model.overall["n"]}


def _sample_predictions(paths: dict, spec) -> list[dict]:
    """Segment a few validation images with the bundle's lowest-precision ONNX set, by GT boxes."""
    from edgesam.data import load_dataset, sample_box, split_by_stem
    from edgesam.manifest import read_manifest
    from edgesam.runtime import Segmenter

    manifest = read_manifest(paths["bundle"])
    graph_set = next((g for g in ("int8", "fp16", "fp32") if g in manifest["graphs"]), "fp32")
    segmenter = Segmenter.open(paths["bundle"], graph_set=graph_set)
    _, val = split_by_stem(load_dataset(paths["data"]), spec.val_fraction, spec.seed)
    rng = np.random.default_rng(spec.seed)
    samples = []
    for index in range(len(val)):
        sample = val.load(index)
        if len(sample.masks) == 0:
            continue
        boxes = np.stack([sample_box(m, rng, 0.0) for m in sample.masks])
        result = segmenter.segment(segmenter.encode(sample.image), boxes=boxes)
        samples.append({"image": sample.image, "gt": sample.masks, "pred": result.masks[:, 0], "boxes": boxes,
                        "title": f"{sample.class_name}/{sample.stem} ({graph_set})"})
        if len(samples) == SAMPLES:
            break
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

    from edgesam.viz import overlay

    cols = max(len(samples), 1) + 1
    fig, axes = plt.subplots(1, cols, figsize=(3.2 * cols, 3.4))
    for ax, s in zip(axes, samples):
        shown = np.array(overlay(s["image"], s["pred"], s["boxes"]))
        shown[_outline(s["gt"].any(axis=0))] = (0, 255, 0)
        ax.imshow(shown)
        ax.set_title(s["title"], fontsize=8)
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
    from edgesam.bench.report import COLUMNS, table_rows

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
    acc = ctx.get("accuracy")
    if acc:
        verdict = "beats" if acc["val_miou"] > acc["box_baseline_miou"] else "**does not beat**"
        lines += ["", f"## Task accuracy (validation split, {acc['val_objects']} objects, box prompts)", "",
                  f"Final model mIoU **{acc['val_miou']:.3f}** against the box-filled baseline (predict the whole box) "
                  f"{acc['box_baseline_miou']:.3f}: the model {verdict} the baseline."]
    bench = ctx.get("bench") or {}
    if bench.get("formats"):
        header = [title for title, _, _ in COLUMNS]
        lines += ["", f"## Bench: every format against the PyTorch reference ({bench['images']} validation images, "
                      f"{bench['prompts']} box prompts)", "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in table_rows(bench)]
        lines += ["", "![latency against accuracy](bench/bench.png)"]
    lines += ["", f"![masks and stage times]({png_name})", ""]
    return "\n".join(lines)


def _headline(stage: str, figures: dict) -> str:
    """One line of the figures that matter for each stage."""
    pick = {
        "data": lambda f: f"{(f.get('totals') or {}).get('images', '?')} images",
        "finetune": lambda f: (f"{f.get('strategy')} ({f.get('init')}): val mIoU {f.get('best_miou', float('nan')):.3f}, "
                               f"Dice {f.get('best_dice', float('nan')):.3f}, {f.get('images_per_s', 0):.1f} img/s, "
                               f"{f.get('epochs')} epochs"),
        "merge": lambda f: (f"merged == adapted within {f.get('tolerance', 0):.1e}: max diff {f.get('max_diff_merged_vs_adapted', 0):.2e}; "
                            f"vs base {f.get('max_diff_merged_vs_base', 0):.2e}; plain={f.get('plain')}"),
        "prune": _prune_headline,
        "export": lambda f: "graph sets: " + ", ".join(
            f"{name} {sum(parts.values()) / 1e6:.1f} MB" for name, parts in (f.get("graphs_bytes") or {}).items()),
        "bench": lambda f: "floors passed" if (f.get("floors") or {}).get("passed") else "see table",
        "report": lambda f: f"{f.get('samples', 0)} sample images",
    }
    try:
        return pick.get(stage, lambda f: "")(figures)
    except (TypeError, ValueError):
        return ""


def _prune_headline(f: dict) -> str:
    prune = f.get("prune") or {}
    parts = []
    if "encoder_params" in prune:
        p = prune["encoder_params"]
        parts.append(f"encoder params {p['before'] / 1e6:.2f} M -> {p['after'] / 1e6:.2f} M")
    if f.get("latency"):
        parts.append(f"ORT encoder {f['latency']['speedup']:.2f}x faster")
    for stage, acc in (f.get("accuracy") or {}).items():
        parts.append(f"IoU vs unpruned {stage} {acc['iou_vs_unpruned']['mean']:.3f}")
    return "; ".join(parts)
