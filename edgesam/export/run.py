"""`export_bundle`: a checkpoint or model -> a self-describing bundle folder (see docs/bundle.md).

Order: the fp32 graphs first (every other set derives from them), each set checked against the
PyTorch model as soon as it exists, the manifest last, then the staged folder swaps into place.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import edgesam
from edgesam.export.backend_timing import measure_backends
from edgesam.export.fp16 import convert_to_fp16
from edgesam.export.openvino import export_openvino_sets, require_openvino
from edgesam.export.tensorrt import build_bundle_engines, require_tensorrt
from edgesam.models import VARIANTS, load_model
from edgesam_runtime import io_spec
from edgesam.utils.environment import toolchain_environment
from edgesam.export import checks
from edgesam.export.config import ExportConfig
from edgesam.export.onnx_export import export_decoder, export_encoder, export_official_decoder, export_refiner
from edgesam.export.staging import check_destination, staged_dir
from edgesam_runtime.geometry import PIXEL_MEAN, PIXEL_STD
from edgesam_runtime.manifest import FORMAT, FORMAT_VERSION, PROMPT_LABELS, graph_entry, write_manifest
from edgesam_runtime.roi import framing_of, mask_grid, refine_spec_of
from edgesam_runtime.files import sha256_file


def export_bundle(model_or_checkpoint, out_dir, config: ExportConfig | None = None, arch=None,
                  checkpoint_path=None, progress: bool = True, overwrite: bool = False) -> dict:
    """Export `model_or_checkpoint` (a Sam or a checkpoint path) to `out_dir`; return the manifest.

    `out_dir` must be new, empty or an earlier bundle (nothing else in it); `overwrite` writes the
    bundle's files into any folder, keeping the files that are not the bundle's."""
    config = config or ExportConfig()
    out_dir = Path(out_dir)
    check_destination(out_dir, overwrite=overwrite)
    model, arch, checkpoint_path = _resolve_model(model_or_checkpoint, arch, checkpoint_path)
    if config.decoder_style == "official" and not framing_of(arch).is_default:
        raise ValueError(f"decoder_style: official is segment-anything's whole-image decoder graph; this model frames "
                         f"its input as {framing_of(arch).describe()}, which that graph cannot express")
    calib = _calibration(config) if config.needs_calibration else None  # fail before any work
    if "engine" in config.formats:
        require_tensorrt()
    if config.openvino_precisions:
        require_openvino("int8" in config.openvino_precisions)
    log = _logger(progress)
    with staged_dir(out_dir, overwrite=overwrite) as tmp:
        manifest = _base_manifest(model, arch, config, checkpoint_path)
        ref = checks.reference_sample(model)
        _export_fp32(model, tmp, config, manifest, ref, log)
        if refine_spec_of(arch) is not None:
            _export_refiner(model, arch, tmp, config, manifest, ref, log)
        if "fp16" in config.onnx_precisions:
            _export_fp16(tmp, config, manifest, ref, log)
        if "int8" in config.onnx_precisions:
            _export_int8(tmp, config, manifest, ref, calib, arch, log)
        if config.openvino_precisions:
            export_openvino_sets(tmp, config, manifest, ref, calib, arch, log)
        if config.decoder_style == "official":
            _export_official(model, tmp, config, manifest, ref, log)
        if "engine" in config.formats:
            _build_engines(tmp, config, manifest, log)
        if config.measure_backends:
            manifest["backend_timings"] = measure_backends(tmp, manifest, log)
        write_manifest(tmp, manifest)
    log(f"bundle written to {out_dir}")
    return manifest


def _resolve_model(model_or_checkpoint, arch, checkpoint_path):
    if isinstance(model_or_checkpoint, (str, Path)):
        model, arch = load_model(checkpoint=model_or_checkpoint)
        return model.eval(), arch, Path(model_or_checkpoint)
    model = model_or_checkpoint.eval()
    if arch is None:
        arch = _arch_from_model(model)
    return model, arch, Path(checkpoint_path) if checkpoint_path else None


def _arch_from_model(model):
    """The registered architecture matching a bare model (its width and input size)."""
    enc = model.image_encoder
    width, depth = enc.patch_embed.proj.out_channels, len(enc.blocks)
    pruned = any(b.mlp.lin1.out_features != 4 * width or b.attn.qkv.out_features != 3 * width for b in enc.blocks)
    for base in VARIANTS.values():
        if (base.embed_dim, base.depth) == (width, depth) and not pruned:
            return base.replace(image_size=enc.img_size)
    raise ValueError(f"arch: the model (width {width}, depth {depth}{', pruned' if pruned else ''}) matches no "
                     f"registered variant; pass arch= (load_model returns it)")


def _logger(progress: bool):
    start = time.perf_counter()

    def log(message: str) -> None:
        if progress:
            print(f"[export {time.perf_counter() - start:6.1f}s] {message}", file=sys.stderr, flush=True)
    return log


def _calibration(config: ExportConfig):
    from edgesam.export.calibration import resolve_calibration_images

    return resolve_calibration_images(config.calib_data, config.calib_max_images)


def _base_manifest(model, arch, config: ExportConfig, checkpoint_path: Path | None) -> dict:
    size = arch.image_size
    framing = framing_of(arch)
    enc_in, enc_out = io_spec.encoder_specs(size, arch.prompt_embed_dim, framing.roi)
    dec_in, dec_out = io_spec.decoder_specs(size, arch.prompt_embed_dim, framing.roi)
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "edgesam_version": edgesam.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": {
            "variant": arch.variant, "image_size": size, "embed_dim": arch.prompt_embed_dim,
            "embedding_size": io_spec.embedding_size(size), "low_res_size": io_spec.low_res_size(size),
            "arch": arch.to_dict(), "init": arch.extra.get("init", "checkpoint" if checkpoint_path else "as given"),
            "framing": framing.to_dict(),
            "refine": None if refine_spec_of(arch) is None else refine_spec_of(arch).to_dict(),
            "mask_grid": mask_grid(size, refine_spec_of(arch)),
        },
        "preprocess": {
            "pixel_mean": list(PIXEL_MEAN), "pixel_std": list(PIXEL_STD), "color": "RGB; gray repeated to 3 channels; 16-bit scaled by 255/65535",
            "resize": "longest_side", "resize_rounding": "int(side * image_size / longest + 0.5)",
            "interpolation": "bilinear", "pad": "zeros at bottom and right to image_size x image_size",
            "layout": "NCHW float32, (x - mean) / std",
        },
        "prompts": {
            "max_points": config.max_points, "max_boxes": config.max_boxes,
            "max_prompt_points": config.max_prompt_points, "labels": dict(PROMPT_LABELS),
            "coordinate_frame": "resized image (x * resized_w / original_w, y * resized_h / original_h)",
            "mask_outputs": {"0": "single-mask answer", "1..3": "multimask answers"},
        },
        "io": {
            "encoder": {"inputs": _specs(enc_in), "outputs": _specs(enc_out)},
            "decoder": {"inputs": _specs(dec_in), "outputs": _specs(dec_out)},
        },
        "graphs": {},
        "quantization": {},
        "source": {"checkpoint": str(checkpoint_path) if checkpoint_path else None,
                   "checkpoint_sha256": sha256_file(checkpoint_path) if checkpoint_path else None},
        "versions": toolchain_environment(),
        "export_config": config.to_dict(),
        "checks": {},
    }


def _specs(specs) -> list[dict]:
    return [{"name": s.name, "dtype": s.dtype, "shape": list(s.shape)} for s in specs]


def _entry(bundle: Path, files: list[str], precision: str, **extra) -> dict:
    entry = graph_entry(bundle, files[0], "onnx", precision, **extra)
    if len(files) > 1:
        entry["external_data"] = [{"file": f, "sha256": sha256_file(bundle / f), "bytes": (bundle / f).stat().st_size}
                                  for f in files[1:]]
    return entry


def _check_set(tmp: Path, name: str, encoder: str, decoder: str, config, manifest, ref, log) -> None:
    for file in {encoder, decoder}:
        checks.check_graph(tmp / file)
    figures = checks.measure(tmp / encoder, tmp / decoder, ref)
    manifest["checks"][name] = figures
    log(f"{name}: parity embed max|d| {figures['embed_max_abs']:.3g}, logits max|d| {figures['logits_max_abs']:.3g}, "
        f"{checks.mask_iou_text(figures)}")
    if config.check_parity:
        checks.enforce(figures, config.tolerances[name], name, (encoder, decoder))


def _export_fp32(model, tmp: Path, config, manifest, ref, log) -> None:
    log("exporting fp32 encoder")
    enc = export_encoder(model, tmp / "encoder.onnx", config.opset, config.external_data_threshold)
    log("exporting fp32 decoder")
    dec = export_decoder(model, tmp / "decoder.onnx", config.opset, config.external_data_threshold)
    _check_set(tmp, "fp32", enc[0], dec[0], config, manifest, ref, log)
    manifest["graphs"]["fp32"] = {"encoder": _entry(tmp, enc, "fp32", opset=config.opset),
                                  "decoder": _entry(tmp, dec, "fp32", opset=config.opset)}


def _export_refiner(model, arch, tmp: Path, config, manifest, ref, log) -> None:
    """The mask refiner: one fp32 graph that every graph set's decoder output goes through (it is small;
    the runtime runs it with ONNX Runtime whatever backend runs the set)."""
    log("exporting the mask refiner")
    files = export_refiner(model, tmp / "refiner.onnx", config.opset)
    checks.check_graph(tmp / files[0])
    figures = checks.measure_refiner(tmp / files[0], model, ref)
    manifest["checks"]["refiner"] = figures
    log(f"refiner: parity logits max|d| {figures['logits_max_abs']:.3g}, {checks.mask_iou_text(figures)}")
    if config.check_parity:
        checks.enforce(figures, {"logits_max_abs": config.tolerances["fp32"]["logits_max_abs"],
                                 "mask_iou_min": config.tolerances["fp32"]["mask_iou_min"]}, "refiner", (files[0],))
    spec = refine_spec_of(arch)
    inputs, outputs = io_spec.refiner_specs(arch.image_size, mask_grid(arch.image_size, spec))
    manifest["io"]["refiner"] = {"inputs": _specs(inputs), "outputs": _specs(outputs)}
    manifest["refiner"] = {**_entry(tmp, files, "fp32", opset=config.opset), "stride": spec.stride,
                           "grid": mask_grid(arch.image_size, spec)}


def _export_fp16(tmp: Path, config, manifest, ref, log) -> None:
    log("converting to fp16")
    kept = {}
    for part in ("encoder", "decoder"):
        kept[part] = convert_to_fp16(tmp / f"{part}.onnx", tmp / f"{part}.fp16.onnx", config.fp16_keep_op_types,
                                     config.fp16_keep_nodes)
    _check_set(tmp, "fp16", "encoder.fp16.onnx", "decoder.fp16.onnx", config, manifest, ref, log)
    manifest["graphs"]["fp16"] = {
        part: _entry(tmp, [f"{part}.fp16.onnx"], "fp16", opset=config.opset, io_dtype="float32",
                     fp32_op_types=list(config.fp16_keep_op_types), fp32_node_patterns=list(config.fp16_keep_nodes),
                     fp32_nodes=len(kept[part]))
        for part in ("encoder", "decoder")
    }


def _export_int8(tmp: Path, config, manifest, ref, calib, arch, log) -> None:
    from edgesam.export.quantize import quantize_bundle_graphs

    log(f"quantizing to int8 ({config.onnx_int8_mode}" + (f", {len(calib)} calibration images, {config.calib_method})"
                                                           if calib else ")"))
    info = quantize_bundle_graphs(tmp, config, calib, arch.image_size, log)
    _check_set(tmp, "int8", info["encoder"]["file"], info["decoder"]["file"], config, manifest, ref, log)
    manifest["graphs"]["int8"] = {
        part: _entry(tmp, [info[part]["file"]], info[part]["precision"], opset=config.opset,
                     excluded_nodes=info[part]["excluded_nodes"])
        for part in ("encoder", "decoder")
    }
    manifest["quantization"]["int8"] = info["quantization"]


def _export_official(model, tmp: Path, config, manifest, ref, log) -> None:
    log("exporting the official-style decoder")
    files = export_official_decoder(model, tmp / "decoder.official.onnx", config.opset)
    checks.check_graph(tmp / files[0])
    figures = checks.measure_official(tmp / files[0], ref, checks.sample_image().shape[:2])
    manifest["checks"]["official_decoder"] = figures
    tol = config.tolerances["fp32"]["logits_max_abs"]
    if config.check_parity and not figures["logits_max_abs"] <= tol:
        raise checks.ParityError(f"decoder.official.onnx: low-res logits differ from PyTorch by "
                                 f"{figures['logits_max_abs']:.4g} > tolerance {tol:.4g}")
    manifest["official_decoder"] = {
        **_entry(tmp, files, "fp32", opset=config.opset),
        "inputs": list(io_spec.OFFICIAL_DECODER_INPUTS), "outputs": list(io_spec.OFFICIAL_DECODER_OUTPUTS),
        "note": "segment-anything SamOnnxModel(return_single_mask=False): batch 1, upscales to orig_im_size",
    }


def _build_engines(tmp: Path, config, manifest, log) -> None:
    build_bundle_engines(tmp, config, manifest, log)
