"""Checks at export: `onnx.checker`, an ONNX Runtime CPU run, and parity against the PyTorch model.

Parity runs encoder then decoder in ONNX Runtime on a fixed sample (a structured test image, three
prompt sets mixing a box, positive/negative points and padding; once without and once with a mask
prompt) and compares with the PyTorch model on the same inputs. The export fails with the measured
figures when they are beyond the configured tolerance. Masks empty in both are left out of the mean
mask IoU and counted; the mask IoU tolerance is judged only when the PyTorch model's masks are
non-empty for >= 90 % of them (an IoU against nothing proves nothing).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from edgesam_runtime import geometry, io_spec, roi
from edgesam.eval.agreement import MIN_NONEMPTY_REFERENCE_SHARE, mask_agreement, reference_empty_reason
from edgesam.models.decode import decode_all
from edgesam_runtime.backends.ort import cpu_session  # noqa: F401  (the export checks' sessions; re-exported)


class ParityError(RuntimeError):
    """An exported graph whose outputs differ from the PyTorch model beyond the tolerance (or cannot be
    compared: the PyTorch model's masks are empty)."""


def check_graph(path: Path) -> None:
    """onnx.checker on the file (the path form also validates external data)."""
    onnx.checker.check_model(str(path))


def sample_image(height: int = 200, width: int = 300) -> np.ndarray:
    """A deterministic non-square grayscale test image: a lit gradient, a dark disc, a bright bar, and
    the two defects inspection models are trained on most, a dark scratch and a dark pit (a trained
    model's parity masks must not be empty, or the comparison proves nothing)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = 90 + 60 * xx / width + 20 * np.sin(yy / 7.0)
    img[(yy - 0.5 * height) ** 2 + (xx - 0.35 * width) ** 2 < (0.2 * height) ** 2] = 30
    img[int(0.15 * height):int(0.25 * height), int(0.6 * width):int(0.9 * width)] = 230
    scratch = np.abs((yy - 0.55 * height) / height - 0.9 * (xx - 0.62 * width) / width) < 0.02
    img[scratch & (xx > 0.62 * width) & (xx < 0.9 * width)] = 35
    img[(yy - 0.22 * height) ** 2 + (xx - 0.17 * width) ** 2 < (0.07 * height) ** 2] = 25
    return np.clip(img, 0, 255).astype(np.uint8)


def sample_prompts(original_hw: tuple[int, int], image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(3, 3, 2) coords and (3, 3) labels in the resized frame: box, points, point + box."""
    h, w = original_hw
    box = np.array([0.15 * w, 0.3 * h, 0.55 * w, 0.7 * h], np.float32)
    pts = np.array([[0.35 * w, 0.5 * h], [0.75 * w, 0.2 * h]], np.float32)
    coords = np.stack([
        np.concatenate([box.reshape(2, 2), [[0, 0]]]),
        np.concatenate([pts, [[0, 0]]]),
        np.concatenate([pts[1:], box.reshape(2, 2)]),
    ]).astype(np.float32)
    labels = np.array([[2, 3, -1], [1, 0, -1], [1, 2, 3]], np.float32)
    coords = geometry.transform_coords(coords, original_hw, image_size)
    coords[labels == -1] = 0.0
    return coords, labels


@dataclass
class ParitySample:
    """The PyTorch model's answers on the parity sample, prompted as the model is used.

    Whole-image models: a round without and a round with a mask prompt (the reference's own low-res
    masks), every output. A model that takes its box as the dense prompt: one round with that prompt,
    and only its single-mask output (the others are never trained, so their masks mean nothing).
    """

    image: np.ndarray  # (1, 3, S, S) encoder input; ROI framing: (B, 3, S, S) crops
    coords: np.ndarray
    labels: np.ndarray
    embeddings: np.ndarray  # PyTorch reference
    low_res: np.ndarray  # (rounds, B, 4, m, m)
    iou: np.ndarray
    mask_input: np.ndarray | None = None  # the first round's mask prompt (the dense box), else None
    outputs: int = 4  # mask outputs per prompt set that the model answers with


def boxed_sample_inputs(image: np.ndarray, framing, image_size: int) -> roi.ModelInputs:
    """Models prompted by boxes (ROI framing, dense box): a box around each dark defect of
    `sample_image`, each with a point on it."""
    h, w = image.shape[:2]
    boxes = np.array([[0.13 * w, 0.28 * h, 0.57 * w, 0.72 * h], [0.6 * w, 0.5 * h, 0.92 * w, 0.85 * h],
                      [0.1 * w, 0.12 * h, 0.24 * w, 0.32 * h]], np.float32)
    points = np.array([[[0.35 * w, 0.5 * h]], [[0.76 * w, 0.68 * h]], [[0.17 * w, 0.22 * h]]], np.float32)
    labels = np.array([[1], [1], [1]], np.float32)
    if framing.roi:
        return roi.roi_inputs(geometry.to_rgb_uint8(image), points, labels, boxes, framing, image_size)
    inputs = roi.image_inputs(points, labels, boxes, framing, image.shape[:2], image_size)
    inputs.images = geometry.preprocess(image, image_size)[0]
    return inputs


@torch.inference_mode()
def reference_sample(model, image: np.ndarray | None = None) -> ParitySample:
    """The PyTorch model's outputs on the parity sample, framed and prompted as the model is used."""
    size = model.image_encoder.img_size
    image = sample_image() if image is None else image
    framing = getattr(model, "framing", roi.WHOLE_IMAGE)
    if framing.roi or framing.dense_box:
        inputs = boxed_sample_inputs(image, framing, size)
        x, coords, labels, mask = inputs.images, inputs.coords, inputs.labels, inputs.mask_input
    else:
        x, original_hw, _ = geometry.preprocess(image, size)
        (coords, labels), mask = sample_prompts(original_hw, size), None
    feats = model.image_encoder(torch.from_numpy(x))
    c, lab = torch.from_numpy(coords), torch.from_numpy(labels)
    if framing.dense_box:
        low, iou = decode_all(model, feats, c, lab, torch.from_numpy(mask))
        return ParitySample(x, coords, labels, feats.numpy(), low[None].numpy(), iou[None].numpy(), mask, outputs=1)
    low0, iou0 = decode_all(model, feats, c, lab)
    low1, iou1 = decode_all(model, feats, c, lab, mask_input=low0[:, :1])
    return ParitySample(x, coords, labels, feats.numpy(), torch.stack([low0, low1]).numpy(),
                        torch.stack([iou0, iou1]).numpy())


def decoder_feeds(embeddings, coords, labels, mask_input=None) -> dict:
    feeds = io_spec.decoder_feeds(embeddings, coords, labels, mask_input)
    return {name: value.astype(np.float32) for name, value in feeds.items()}


def measure(encoder: Path, decoder: Path, ref: ParitySample, session=cpu_session) -> dict:
    """ONNX Runtime end to end (its own embeddings into its own decoder) against the reference.
    `session(path)` may open the graphs in another runtime with ONNX Runtime's run(None, feeds)."""
    emb = session(encoder).run(None, {io_spec.ENCODER_INPUT: ref.image})[0]
    dec = session(decoder)
    rounds = [dec.run(None, decoder_feeds(emb, ref.coords, ref.labels, ref.mask_input))]
    if len(ref.low_res) > 1:  # the mask prompt is the reference's own, so both paths see the same input
        rounds.append(dec.run(None, decoder_feeds(emb, ref.coords, ref.labels, ref.low_res[0][:, :1])))
    low, iou = np.stack([r[0] for r in rounds]), np.stack([r[1] for r in rounds])
    d_emb = np.abs(emb - ref.embeddings)
    m = low.shape[-1]
    used, ref_used = low[:, :, :ref.outputs], ref.low_res[:, :, :ref.outputs]
    masks = mask_agreement((used > 0).reshape(-1, m, m), (ref_used > 0).reshape(-1, m, m), mask_names(used.shape))
    agreement = masks.to_dict()
    return {
        "embed_max_abs": float(d_emb.max()),
        "embed_rel_err": float(d_emb.mean() / max(np.abs(ref.embeddings).mean(), 1e-12)),
        "logits_max_abs": float(np.abs(low - ref.low_res).max()),
        "iou_pred_max_abs": float(np.abs(iou - ref.iou).max()),
        "mask_iou_mean": agreement["iou"]["mean"],  # None when every pair is empty on both sides
        "mask_iou_min": agreement["iou"]["min"],
        "num_masks": agreement["prompts"],
        "reference_empty": agreement["reference_empty"],
        "prediction_empty": agreement["prediction_empty"],
        "both_empty": agreement["both_empty"],
        "empty_references": agreement["empty_references"],
    }


def mask_iou_text(figures: dict) -> str:
    """'mask IoU 0.9812 (reference masks empty 0/24)': the IoU never without how much of it is empty."""
    mean = figures.get("mask_iou_mean")
    shown = "undefined" if mean is None else f"{mean:.4f}"
    return (f"mask IoU {shown} (PyTorch masks empty {figures.get('reference_empty', '?')}/{figures.get('num_masks', '?')}, "
            f"both empty {figures.get('both_empty', '?')}; no ground truth at export: judge task mIoU with `edgesam check`)")


def mask_names(shape) -> list[str]:
    """Names of the (round, prompt set, output) masks of a parity sample, for messages."""
    rounds, sets, outputs = shape[:3]
    return [f"{'with' if r else 'no'} mask input/prompt set {b}/output {o}"
            for r in range(rounds) for b in range(sets) for o in range(outputs)]


def enforce(figures: dict, tolerance: dict, graph_set: str, files: tuple) -> None:
    """Raise ParityError naming each figure beyond its tolerance (None disables a check)."""
    failures = []
    for name in ("embed_max_abs", "logits_max_abs"):
        if tolerance.get(name) is not None and not figures[name] <= tolerance[name]:
            failures.append(f"{name} = {figures[name]:.4g} > tolerance {tolerance[name]:.4g}")
    if tolerance.get("mask_iou_min") is not None:
        failures += _mask_iou_failures(figures, tolerance["mask_iou_min"])
    if failures:
        raise ParityError(
            f"{graph_set} graphs {', '.join(map(str, files))} fail the parity check against the PyTorch model: "
            + "; ".join(failures)
            + ". The export was not written. (Loosen ExportConfig.tolerances only if you accept this accuracy.)"
        )


def _mask_iou_failures(figures: dict, floor: float) -> list[str]:
    empty, total = figures["reference_empty"], figures["num_masks"]
    if total - empty < MIN_NONEMPTY_REFERENCE_SHARE * total:
        return [reference_empty_reason(figures["empty_references"], total)
                + " (on the export check image; set this graph set's mask_iou_min tolerance to null to rely on "
                  "the logit check)"]
    if figures["mask_iou_mean"] is None or not figures["mask_iou_mean"] >= floor:
        shown = "undefined" if figures["mask_iou_mean"] is None else f"{figures['mask_iou_mean']:.4f}"
        return [f"mean mask IoU = {shown} < tolerance {floor:.4f}"]
    return []


def measure_official(decoder: Path, ref: ParitySample, original_hw: tuple[int, int]) -> dict:
    """The official-style decoder on the reference embeddings, one prompt set at a time (batch 1)."""
    sess = cpu_session(decoder)
    diffs = []
    for b in range(ref.coords.shape[0]):
        feeds = decoder_feeds(ref.embeddings, ref.coords[b:b + 1], ref.labels[b:b + 1])
        feeds[io_spec.ORIG_IM_SIZE] = np.array(original_hw, np.float32)
        _, _, low = sess.run(None, feeds)
        diffs.append(float(np.abs(low - ref.low_res[0, b:b + 1]).max()))
    return {"logits_max_abs": max(diffs)}


@torch.inference_mode()
def measure_refiner(path: Path, model, ref: ParitySample, session=cpu_session) -> dict:
    """The refiner graph against the model's refiner on the parity sample's single-mask logits (each
    prompt set with its encoder input: its crop, or the image repeated)."""
    low = ref.low_res[0][:, :1]
    image = ref.image if ref.image.shape[0] == low.shape[0] else np.repeat(ref.image, low.shape[0], axis=0)
    expected = model.mask_refiner(torch.from_numpy(image), torch.from_numpy(low)).numpy()
    image_name, masks_name = io_spec.REFINER_INPUTS
    got = session(path).run(None, {image_name: image, masks_name: np.ascontiguousarray(low)})[0]
    g = got.shape[-1]
    agreement = mask_agreement((got > 0).reshape(-1, g, g), (expected > 0).reshape(-1, g, g),
                               [f"prompt set {b}" for b in range(got.shape[0])]).to_dict()
    return {"logits_max_abs": float(np.abs(got - expected).max()), "mask_iou_mean": agreement["iou"]["mean"],
            "mask_iou_min": agreement["iou"]["min"], "num_masks": agreement["prompts"],
            "reference_empty": agreement["reference_empty"], "prediction_empty": agreement["prediction_empty"],
            "both_empty": agreement["both_empty"], "empty_references": agreement["empty_references"]}
