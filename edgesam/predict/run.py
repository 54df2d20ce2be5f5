"""Library side of `edgesam predict`: read, segment, write (the CLI only parses flags)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from edgesam.data import read_image
from edgesam_runtime import Segmenter
from edgesam_runtime.prompts import Prompts, from_flags, read_prompt_file
from edgesam_runtime.files import atomic_path, write_json_atomic
from edgesam.predict.overlay import overlay


def gather_prompts(boxes, points, prompt_file) -> Prompts:
    prompts = read_prompt_file(prompt_file) if prompt_file else None
    if boxes or points:
        flag_prompts = from_flags(points, boxes)
        if prompts is not None:
            raise ValueError("prompts: give either --prompts FILE or --box/--point flags, not both")
        prompts = flag_prompts
    if prompts is None:
        raise ValueError("prompts: give --box, --point or --prompts FILE")
    return prompts


def empty_mask_warnings(prediction, prompts: Prompts) -> list[str]:
    """One line per empty mask: a mask with no pixel draws nothing, and must not pass unnoticed."""
    empty = ~prediction.masks.reshape(*prediction.masks.shape[:2], -1).any(-1)  # (B, M)
    lines = []
    for b, m in zip(*np.nonzero(empty)):
        which = f"prompt set {b}" + (f", candidate mask {m}" if empty.shape[1] > 1 else "")
        lines.append(f"warning: {which}{_describe(prompts, b)}: empty mask (no pixel above the threshold; "
                     f"predicted IoU {prediction.scores[b, m]:.3f})")
    return lines


def _describe(prompts: Prompts, b: int) -> str:
    """' (box 40,30,200,160)' when prompt set b is one of several boxes."""
    if prompts.boxes is not None and len(prompts.boxes) > b:
        return " (box " + ",".join(f"{v:g}" for v in prompts.boxes[b]) + ")"
    return ""


def write_prediction(image: np.ndarray, prediction, prompts: Prompts, stem: str, out: Path, extra: dict
                     ) -> tuple[list[Path], list[str]]:
    """mask PNG (union of the best masks), overlay PNG and a JSON of scores, each written atomically.

    Returns the paths and one warning line per empty mask (also recorded in the JSON).
    """
    best = prediction.best()
    union = best.masks[:, 0].any(axis=0)
    paths = [out / f"{stem}_mask.png", out / f"{stem}_overlay.png", out / f"{stem}.json"]
    with atomic_path(paths[0]) as tmp:
        Image.fromarray((union * 255).astype(np.uint8)).save(tmp, format="PNG")
    with atomic_path(paths[1]) as tmp:
        overlay(image, best.masks[:, 0], prompts.boxes, prompts.points, prompts.labels).save(tmp, format="PNG")
    areas = prediction.masks.reshape(*prediction.masks.shape[:2], -1).sum(-1)
    warnings = empty_mask_warnings(prediction, prompts)
    record = {
        "image_size": list(image.shape[:2]),
        "prompts": {k: (None if v is None else v.tolist()) for k, v in vars(prompts).items()},
        "scores": prediction.scores.tolist(),
        "mask_areas": areas.tolist(),
        "empty_masks": (areas == 0).tolist(),  # per prompt set and mask, like scores
        "warnings": warnings,
        **extra,
    }
    write_json_atomic(paths[2], record)
    return paths, warnings


def _about(image_path, fn, image):
    """`fn(image)`; a frame the model cannot take (too large, too elongated) is named by its file."""
    try:
        return fn(image)
    except ValueError as exc:
        raise ValueError(f"{image_path}: {exc}") from None


def run_predict(image_path, checkpoint, variant, image_size, boxes, points, prompt_file, multimask, out
                ) -> tuple[list[Path], list[str]]:
    from edgesam.models import load_model
    from edgesam.reference.predictor import SamReferencePredictor

    prompts = gather_prompts(boxes, points, prompt_file)
    image = read_image(image_path)
    prompts.check_inside(image.shape[:2])  # the runtime refuses these too; say so before loading the model
    model, arch = load_model(variant, checkpoint, image_size)
    predictor = SamReferencePredictor(model)
    _about(image_path, predictor.set_image, image)
    prediction = predictor.predict(prompts.points, prompts.labels, prompts.boxes, multimask=multimask)
    extra = {"backend": "pytorch", "checkpoint": str(checkpoint), "variant": arch.variant, "init": arch.extra.get("init", "pretrained")}
    return write_prediction(image, prediction, prompts, Path(image_path).stem, Path(out), extra)


def run_predict_bundle(image_path, bundle, graph_set, boxes, points, prompt_file, multimask, out
                       ) -> tuple[list[Path], list[str]]:
    """Same outputs as `run_predict`, from an exported bundle through the torch-free runtime."""
    prompts = gather_prompts(boxes, points, prompt_file)
    image = read_image(image_path)
    segmenter = Segmenter.open(bundle, graph_set=graph_set)
    prediction = segmenter.segment(_about(image_path, segmenter.encode, image), prompts.points, prompts.labels,
                                   prompts.boxes, multimask=multimask)
    extra = {"backend": "runtime", "bundle": str(bundle), "graph_set": graph_set, "providers": segmenter.providers,
             "variant": segmenter.info.manifest["model"].get("variant")}
    return write_prediction(image, prediction, prompts, Path(image_path).stem, Path(out), extra)
