"""`compare_students`: distil several student variants from one teacher on one budget; one table + PNG.

Every run uses the same images, views, seed and schedule, and shares one teacher cache, so the
teacher's embeddings are computed once for all students.
"""
from __future__ import annotations

from pathlib import Path

from edgesam.distill.config import DistillConfig
from edgesam.utils.config import ConfigError
from edgesam_runtime.files import atomic_path, write_json_atomic, write_text_atomic


def compare_students(config: DistillConfig, variants: list[str], progress: bool = True, log=print) -> list[dict]:
    """Distil each of `variants` under `<run dir>/<variant>/`; write comparison.md/json/png in the run dir."""
    from edgesam.distill.run import distill
    from edgesam.models import VARIANTS

    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        raise ConfigError(f"compare: expected variants from {sorted(VARIANTS)}, got {list(variants)}")
    root = config.run_path
    cache = str(config.cache_path if config.cache_dir else root / "teacher_cache")
    rows = []
    for variant in variants:
        run_cfg = config.replace(student=variant, out=str(root / variant / "student.pth"), run_dir=str(root / variant),
                                 cache_dir=cache)
        report = distill(run_cfg, progress=progress, log=log)
        rows.append(_row(variant, report))
    write_text_atomic(root / "comparison.md", comparison_markdown(rows))
    write_json_atomic(root / "comparison.json", {"config": config.to_dict(), "rows": rows})
    _plot(rows, root / "comparison.png")
    return rows


def _row(variant: str, report: dict) -> dict:
    a, s, e = report["agreement"], report["agreement"]["students"]["student"], report["embedding"]["student"]
    row = {"student": variant, "out": report["out"],
           "encoder_params_m": report["size"]["student"]["encoder_params_m"],
           "encoder_gflops": report["size"]["student"]["encoder_gflops"],
           "embedding_rel_error": e["val_rel"], "embedding_cos": e["val_cos"],
           "box_iou_vs_teacher": s["box"]["iou_vs_teacher"]["mean"],
           "point_iou_vs_teacher": s["point"]["iou_vs_teacher"]["mean"] if s["point"] else None,
           "student_task_miou": s["task_box_miou"], "teacher_task_miou": a["teacher_task_box_miou"],
           "speedup": report.get("latency", {}).get("speedup"), "wall_s": report["wall_s"]}
    return row


def _f(v, digits=4):
    return "n/a" if v is None else f"{v:.{digits}f}"


def comparison_markdown(rows: list[dict]) -> str:
    head = ("| student | encoder params (M) | GFLOPs | embedding rel. error | box IoU vs teacher | point IoU vs teacher | "
            "task mIoU (teacher) | encoder speed-up | wall s |\n|---|---|---|---|---|---|---|---|---|")
    lines = [f"| {r['student']} | {r['encoder_params_m']:.2f} | {r['encoder_gflops']:.2f} | {_f(r['embedding_rel_error'])} | "
             f"{_f(r['box_iou_vs_teacher'])} | {_f(r['point_iou_vs_teacher'])} | {_f(r['student_task_miou'])} "
             f"({_f(r['teacher_task_miou'])}) | {_f(r['speedup'], 2)} | {r['wall_s']:.0f} |" for r in rows]
    return "## Student comparison\n\n" + head + "\n" + "\n".join(lines) + "\n"


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["student"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, key, title in zip(axes, ("box_iou_vs_teacher", "embedding_rel_error", "encoder_gflops"),
                              ("box mask IoU vs teacher", "embedding relative error", "encoder GFLOPs")):
        ax.bar(names, [r[key] if r[key] is not None else 0.0 for r in rows], color="tab:blue")
        ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
