"""Library side of `edgesam predict`: read, segment, write (the CLI only parses flags)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgesam.data import read_image
from edgesam.prompts import Prompts, from_flags, read_prompt_file
from edgesam.utils.files import atomic_path, write_json_atomic
from edgesam.viz import overlay


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


def write_prediction(image: np.ndarray, prediction, prompts: Prompts, stem: str, out: Path, extra: dict) -> list[Path]:
    """mask PNG (union of the best masks), overlay PNG and a JSON of scores, each written atomically."""
    from PIL import Image

    best = prediction.best()
    union = best.masks[:, 0].any(axis=0)
    paths = [out / f"{stem}_mask.png", out / f"{stem}_overlay.png", out / f"{stem}.json"]
    with atomic_path(paths[0]) as tmp:
        Image.fromarray((union * 255).astype(np.uint8)).save(tmp, format="PNG")
    with atomic_path(paths[1]) as tmp:
        overlay(image, best.masks[:, 0], prompts.boxes, prompts.points, prompts.labels).save(tmp, format="PNG")
    record = {
        "image_size": list(image.shape[:2]),
        "prompts": {k: (None if v is None else v.tolist()) for k, v in vars(prompts).items()},
        "scores": prediction.scores.tolist(),
        "mask_areas": prediction.masks.reshape(*prediction.masks.shape[:2], -1).sum(-1).tolist(),
        **extra,
    }
    write_json_atomic(paths[2], record)
    return paths


def run_predict(image_path, checkpoint, variant, image_size, boxes, points, prompt_file, multimask, out) -> list[Path]:
    from edgesam.models import load_model
    from edgesam.predict import SamReferencePredictor

    prompts = gather_prompts(boxes, points, prompt_file)
    image = read_image(image_path)
    prompts.check_inside(image.shape[:2])  # the runtime refuses these too; say so before loading the model
    model, arch = load_model(variant, checkpoint, image_size)
    predictor = SamReferencePredictor(model)
    predictor.set_image(image)
    prediction = predictor.predict(prompts.points, prompts.labels, prompts.boxes, multimask=multimask)
    extra = {"backend": "pytorch", "checkpoint": str(checkpoint), "variant": arch.variant, "init": arch.extra.get("init", "pretrained")}
    return write_prediction(image, prediction, prompts, Path(image_path).stem, Path(out), extra)


def run_predict_bundle(image_path, bundle, graph_set, boxes, points, prompt_file, multimask, out) -> list[Path]:
    """Same outputs as `run_predict`, from an exported bundle through the torch-free runtime."""
    from edgesam.runtime import Segmenter

    prompts = gather_prompts(boxes, points, prompt_file)
    image = read_image(image_path)
    segmenter = Segmenter.open(bundle, graph_set=graph_set)
    prediction = segmenter.segment(segmenter.encode(image), prompts.points, prompts.labels, prompts.boxes,
                                   multimask=multimask)
    extra = {"backend": "runtime", "bundle": str(bundle), "graph_set": graph_set, "providers": segmenter.providers,
             "variant": segmenter.info.manifest["model"].get("variant")}
    return write_prediction(image, prediction, prompts, Path(image_path).stem, Path(out), extra)
