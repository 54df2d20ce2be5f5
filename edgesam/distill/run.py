"""`distill(config)`: teacher embeddings -> student encoder -> (masks stage) -> student checkpoint -> report.

Run dir (`config.run_path`): config.yaml, status.jsonl, metrics.csv, curves.png, last.pt (resume
state, written at each epoch end), best_embed.pt / best_mask.pt (the best trainable weights of each
stage by held-out agreement), report.json / report.md. The teacher cache lives in `teacher_cache/`
unless `cache_dir` points elsewhere (several runs, e.g. a comparison of students, then share it).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from edgesam.compress.flops import encoder_flops
from edgesam.compress.latency import encoder_latency as side_by_side
from edgesam.data import read_image
from edgesam.distill.agreement import TeacherAnswers, agreement
from edgesam.distill.cache import TeacherCache, fill
from edgesam.distill.config import DistillConfig
from edgesam.distill.report import format_report
from edgesam.models import count_parameters, save_checkpoint
from edgesam.models.attention import use_efficient_attention, use_official_attention
from edgesam.train.loop import autocast_context, resolved_amp
from edgesam.utils.config import ConfigError
from edgesam.distill.images import evenly, labelled_part, line_images, split_images
from edgesam.distill.models import build_student, load_teacher
from edgesam.distill.record import DistillRecorder
from edgesam.distill.train import EmbeddingObjective, Item, Loop, MaskObjective
from edgesam.distill.views import ViewMaker
from edgesam_runtime.roi import framing_of
from edgesam_runtime.files import atomic_path, write_json_atomic, write_text_atomic
from edgesam.utils.status import finite
from edgesam_runtime.yamlio import read_yaml_mapping

LAST, REPORT = "last.pt", "report"
BEST = {"embed": "best_embed.pt", "mask": "best_mask.pt"}
# Settings that may change between a run and its resumption: they change neither the data nor the schedule
# (paths may differ when a run dir is reached another way; the cache is keyed by content, not by folder).
RESUMABLE_CHANGES = {"latency_runs", "threads", "out", "run_dir", "cache_dir"}


class Job:
    """Everything one distillation needs, built once: teacher, images, views, cache, student."""

    def __init__(self, cfg: DistillConfig, progress: bool = False):
        self.cfg = cfg
        images = _checked_images(cfg.images, progress)  # a bad file stops the run before any model is built
        self.teacher = load_teacher(cfg.teacher, cfg.image_size, cfg.teacher_backend)
        train, held = split_images(images, cfg.val_fraction, cfg.split_seed)
        self.train, self.held = evenly(train, cfg.max_images), evenly(held, cfg.eval_max_images)
        self.framing = framing_of(self.teacher.arch)
        self.maker = ViewMaker(self.teacher.image_size, self.framing, cfg.augment, cfg.seed, cfg.box_side,
                               cfg.mask_prompts)
        self.cache = TeacherCache(cfg.cache_path, self.teacher.cache_id, self.teacher.describe())
        self.student, self.arch = build_student(self.teacher, cfg.student, cfg.seed)

    # ------------------------------------------------------------------ units and items
    @property
    def train_units(self) -> list[tuple[str, int, int]]:
        return [("train", i, v) for i in range(len(self.train)) for v in range(self.cfg.views_per_image)]

    @property
    def held_units(self) -> list[tuple[str, int, int]]:
        return [("held", i, 0) for i in range(len(self.held))]

    def _image(self, part: str, index: int, with_masks: bool):
        data = self.train if part == "train" else self.held
        if with_masks and data.records[index].labelled:
            sample = data.load(index)
            return sample.image, sample.masks
        return read_image(data.records[index].image_path), None

    def views(self, units, with_masks: bool = False):
        """The View of each unit, loading each image once for its consecutive views."""
        loaded = None
        for part, index, view in units:
            if loaded is None or loaded[0] != (part, index):
                loaded = ((part, index), self._image(part, index, with_masks))
            image, masks = loaded[1]
            try:
                made = self.maker.view(image, view, masks)
            except ValueError as exc:  # a frame the model cannot take (e.g. too elongated): name its file
                data = self.train if part == "train" else self.held
                raise ValueError(f"{data.records[index].image_path}: {exc}") from None
            yield made

    def item(self, unit, with_masks: bool = False) -> Item:
        view = next(self.views([unit], with_masks))
        teacher = torch.from_numpy(self.cache.load(view.key).astype(np.float32))[None]
        mask_input = None if view.mask_input is None else torch.from_numpy(view.mask_input)
        return Item(torch.from_numpy(view.x), teacher, torch.from_numpy(view.coords), torch.from_numpy(view.labels),
                    mask_input)


def _checked_images(path, progress: bool):
    bar = None
    if progress:
        bar = tqdm(desc="checking images", unit="img", leave=False)
    try:
        return line_images(path, check=True, on_image=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()


def distill(config: DistillConfig, progress: bool = True, resume: bool = False, stop_after_epochs: int | None = None,
            log=print) -> dict:
    """Run a whole distillation per `config`; returns the report (also in `<run dir>/report.json`)."""
    cfg = config.validate()
    run_dir = cfg.run_path
    _check_run_dir(cfg, run_dir, resume)
    started = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    job = Job(cfg, progress)
    recorder = DistillRecorder(run_dir, {"student": cfg.student, "teacher": job.teacher.arch.variant,
                                         "init": job.arch.extra.get("init", "pretrained")})
    if not resume:
        recorder.config(cfg.to_yaml())
    recorder.status("setup", _setup_message(job), {"train_images": len(job.train), "held_out_images": len(job.held),
                                                   "views_per_image": cfg.views_per_image, "cache": str(job.cache.dir),
                                                   "autocast": resolved_amp(cfg.amp, torch.device("cpu"))})
    if progress:
        log(_setup_message(job))
    _fill_cache(job, recorder, progress)
    if cfg.efficient_attention:
        use_efficient_attention(job.student)
    stopped = _train_stages(job, recorder, run_dir, progress, resume, stop_after_epochs)
    if stopped:
        return {"stopped": True, "run_dir": str(run_dir)}
    use_official_attention(job.student)
    job.student.eval()
    save_checkpoint(job.student, cfg.out_path, job.arch)
    report = _evaluate(job, progress)
    report.update({"out": str(cfg.out_path), "run_dir": str(run_dir), "wall_s": time.perf_counter() - started})
    write_json_atomic(run_dir / f"{REPORT}.json", finite(report))

    write_text_atomic(run_dir / f"{REPORT}.md", format_report(report))
    recorder.status("done", f"wrote {cfg.out_path}", _headline(report))
    return report


def _check_run_dir(cfg: DistillConfig, run_dir: Path, resume: bool) -> None:
    if not resume:
        if (run_dir / LAST).exists():
            raise FileExistsError(f"{run_dir}: holds a distillation already ({LAST}); pass --resume or choose another --run-dir")
        return
    if not (run_dir / LAST).exists():
        raise FileNotFoundError(f"{run_dir}: nothing to resume (no {LAST})")
    # Fields the recorded config lacks (written by an older edgesam) take their defaults.
    recorded = DistillConfig.from_dict(read_yaml_mapping(run_dir / "config.yaml", ConfigError),
                                       where=str(run_dir / "config.yaml")).to_dict()
    changed = sorted(k for k, v in cfg.to_dict().items() if recorded.get(k) != v and k not in RESUMABLE_CHANGES)
    if changed:
        raise ConfigError(f"{run_dir}: --resume with other settings than the run's ({', '.join(changed)}); "
                                 f"resume with the recorded config.yaml or start a new run")


def _setup_message(job: Job) -> str:
    t, cfg = job.teacher, job.cfg
    return (f"distill {t.arch.variant}@{t.image_size} ({job.framing.describe()}) -> {cfg.student}: "
            f"{len(job.train)} training images x {cfg.views_per_image} views, {len(job.held)} held-out images; "
            f"teacher cache {job.cache.dir} computed by {t.backend} ({t.why}); student autocast "
            f"{resolved_amp(cfg.amp, torch.device('cpu'))} (amp {cfg.amp})")


def _fill_cache(job: Job, recorder: DistillRecorder, progress: bool) -> None:
    """Teacher embeddings of every training view and of view 0 of each held-out image (resumable)."""
    units = job.train_units + job.held_units
    encode = job.teacher.encoder(job.cache.dir, job.cfg.threads)
    recorder.status("cache", f"teacher embeddings: {len(units)} views", {"total": len(units)})
    counts = fill(job.cache, job.views(units), encode, len(units), progress,
                  report=lambda c: recorder.status("cache", f"{c['done']}/{c['total']} views", c))
    recorder.status("cache", f"teacher embeddings ready: {counts['computed']} computed, {counts['reused']} reused",
                    {k: counts[k] for k in ("total", "computed", "reused")})


def _train_stages(job: Job, recorder, run_dir: Path, progress: bool, resume: bool, stop_after_epochs) -> bool:
    """Stage 1, then stage 2 if asked; True when `stop_after_epochs` ended the session early.

    curves.png is drawn once more at the end, whatever the recorder's throttle skipped."""
    stopped, history = _run_stages(job, recorder, run_dir, progress, resume, stop_after_epochs)
    if history:
        recorder.metrics(history, plot=True)
    return stopped


def _run_stages(job: Job, recorder, run_dir: Path, progress: bool, resume: bool, stop_after_epochs):
    """The stages themselves: (stopped early, every metric row so far)."""
    cfg = job.cfg
    state = torch.load(run_dir / LAST, map_location="cpu", weights_only=True) if resume else None
    stages = [("embed", EmbeddingObjective(cfg.loss, cfg.cos_weight), cfg.epochs, cfg.lr, cfg.max_steps)]
    if cfg.mask_epochs:
        answers = TeacherAnswers(job.teacher.model, job.held, cfg.seed, cfg.mask_prompts, cfg.box_side, kinds=("box",))
        stages.append(("mask", MaskObjective(job.teacher.model, answers=answers), cfg.mask_epochs, cfg.mask_lr,
                       cfg.mask_max_steps))
    done_before = state is not None and state["stage"] == "mask"  # stage 1 finished in an earlier session
    epochs_left = stop_after_epochs
    history: list[dict] = list(state["history_all"]) if state is not None and "history_all" in state else []
    for name, objective, epochs, lr, max_steps in stages:
        if epochs_left == 0:
            return True, history
        if name == "embed" and done_before:
            _load_best(job.student, run_dir / BEST["embed"])
            continue
        with_masks = name == "mask" and cfg.label_prompts and not job.framing.roi  # ROI crops sit on random boxes
        loop = Loop(job.student, objective, job.train_units, lambda u, m=with_masks: job.item(u, m), job.held_units,
                    epochs=epochs, batch_size=cfg.batch_size, lr=lr, weight_decay=cfg.weight_decay,
                    warmup_steps=cfg.warmup_steps, grad_clip=cfg.grad_clip, max_steps=max_steps, seed=cfg.seed,
                    autocast=autocast_context(cfg, torch.device("cpu"))[0])
        if state is not None and state["stage"] == name:
            loop.load_state_dict(state)
            history = history[: len(history) - len(loop.history)]  # this stage's rows come back with the loop
        prior = list(history)
        epochs_left = _drive(loop, recorder, run_dir, prior, progress, epochs_left)
        history = prior + loop.history
        if epochs_left == 0 and not loop.finished:
            return True, history
        _load_best(job.student, run_dir / BEST[name])
    return False, history


def _drive(loop: Loop, recorder, run_dir: Path, prior: list[dict], progress: bool, epochs_left):
    """Consume one stage's events: progress, status lines, metrics, last/best checkpoints."""
    bar = None
    if progress and not loop.finished:
        bar = tqdm(total=loop.total_steps, initial=loop.step, desc=f"distill {loop.objective.name}", unit="step")
    for event in loop.run():
        figures = event.get("figures", {})
        if event["state"] == "step":
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{figures['loss']:.4g}", lr=f"{figures['lr']:.2e}")
            continue
        recorder.status(event["state"], f"stage {event['stage']}", figures)
        if event["state"] != "epoch":
            continue
        recorder.metrics(prior + loop.history)
        if event["improved"]:
            with atomic_path(run_dir / BEST[loop.objective.name]) as tmp:
                torch.save({"trainable": loop.trainable_state(), "epoch": loop.epoch, "figures": figures}, tmp)
        state = {**loop.state_dict(), "history_all": prior + loop.history}
        with atomic_path(run_dir / LAST) as tmp:
            torch.save(state, tmp)
        if bar is not None:
            bar.write(f"{loop.objective.name} epoch {loop.epoch}: " + ", ".join(
                f"{k} {v:.4g}" for k, v in figures.items() if k.startswith("val_")))
        if epochs_left is not None:
            epochs_left -= 1
            if epochs_left == 0:
                break
    if bar is not None:
        bar.close()
    return epochs_left


def _load_best(student, path: Path) -> None:
    if not path.is_file():  # every epoch's held-out figure was NaN
        raise RuntimeError(f"{path.parent}: no epoch gave a finite held-out figure (training diverged?); "
                           f"lower the learning rate")
    trainable = torch.load(path, map_location="cpu", weights_only=True)["trainable"]
    params = dict(student.named_parameters())
    with torch.no_grad():
        for name, value in trainable.items():
            params[name].copy_(value)


def stage_student(teacher, cfg: DistillConfig, stage: str):
    """The student as stage `stage` ("embed" or "mask") of the run in `cfg.run_path` left it (its best epoch)."""
    student, _ = build_student(teacher, cfg.student, cfg.seed)
    _load_best(student, cfg.run_path / BEST[stage])
    return student.eval()


def _evaluate(job: Job, progress: bool) -> dict:
    """Embedding error, mask agreement and task mIoU on the held-out images; encoder latency of both."""
    cfg, teacher, student = job.cfg, job.teacher, job.student
    report = {"config": cfg.to_dict(), "teacher": teacher.describe(), "student_arch": job.arch.to_dict(),
              "framing": job.framing.to_dict(), "train_images": len(job.train), "held_out_images": len(job.held),
              "held_out_labelled": len(labelled_part(job.held))}
    untrained, _ = build_student(teacher, cfg.student, cfg.seed)  # the start: what distillation bought
    models = {"student": student, "untrained": untrained.eval()}
    if cfg.mask_epochs:  # what the mask stage added: the student as the embedding stage left it
        models["embed_stage"] = stage_student(teacher, cfg, "embed")
    report["embedding"] = {name: EmbeddingObjective().validate(m, (job.item(u) for u in job.held_units), cfg.batch_size)
                           for name, m in models.items()}
    report["agreement"] = agreement(teacher.model, models, job.held, cfg.seed, cfg.mask_prompts, cfg.box_side,
                                    progress)
    report["size"] = {
        name: {"encoder_params_m": count_parameters(m.image_encoder) / 1e6, "encoder_gflops": encoder_flops(a)["total"] / 1e9}
        for name, m, a in (("teacher", teacher.model, teacher.arch), ("student", student, job.arch))}
    if cfg.latency_runs:
        report["latency"] = encoder_latency(teacher.model, student, cfg.latency_runs, cfg.run_path)
    return report


def encoder_latency(teacher_model, student_model, runs: int, work_dir: Path) -> dict:
    """ONNX Runtime encoder latency of both, side by side (round-robin), and the student's speed-up."""
    lat = side_by_side({"teacher": teacher_model, "student": student_model}, runs=runs, work_dir=work_dir)
    lat["speedup"] = lat["teacher"]["median_ms"] / lat["student"]["median_ms"]
    lat["backend"] = "onnxruntime CPUExecutionProvider, fp32, round-robin"
    return lat


def _headline(report: dict) -> dict:
    a, s = report["agreement"], report["agreement"]["students"]["student"]
    out = {"embedding_rel_error": report["embedding"]["student"]["val_rel"],
           "box_iou_vs_teacher": s["box"]["iou_vs_teacher"]["mean"],
           "point_iou_vs_teacher": s["point"]["iou_vs_teacher"]["mean"] if s["point"] else None}
    if a["teacher_task_box_miou"] is not None:
        out.update({"teacher_task_miou": a["teacher_task_box_miou"], "student_task_miou": s["task_box_miou"]})
    if "latency" in report:
        out["encoder_speedup"] = report["latency"]["speedup"]
    return out

