"""`edgesam export`: checkpoint -> bundle (ONNX graphs, fp16/int8 sets, OpenVINO IR, TensorRT engines, manifest)."""
from __future__ import annotations

from pathlib import Path

import click

from edgesam.cli.options import FiniteFloat, overwrite_option

LIST_FIELDS = ("int8_exclude_op_types", "int8_exclude_nodes")


def _split(values) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def build_config(spec: Path | None, **flags):
    """ExportConfig from an optional YAML spec, with the given (non-None) flags taking precedence."""
    from edgesam.export import ExportConfig
    from edgesam.utils.config import ConfigError

    try:
        return ExportConfig.load(spec, **flags)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


@click.command()
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Merged or pruned checkpoint (.pth / .safetensors). Without it, --model gives random weights.")
@click.option("--model", "variant", help="Variant (vit_b, vit_l, vit_h, vit_t); read from the checkpoint if omitted.")
@click.option("--image-size", type=int, help="Encoder input size (default: the checkpoint's).")
@click.option("--out", required=False, type=click.Path(file_okay=False, path_type=Path), help="Bundle folder to write.")
@click.option("-c", "--config", "spec", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML with ExportConfig fields; flags override it.")
@click.option("--format", "formats", multiple=True,
              help="onnx, openvino (alias ov), engine (aliases tensorrt, trt); comma-separated.")
@click.option("--precision", "precisions", multiple=True,
              help="fp32, fp16, int8, bf16 (OpenVINO only); comma-separated or repeated.")
@click.option("--half", is_flag=True, help="Alias of --precision fp16 (added to the others).")
@click.option("--int8", is_flag=True, help="Alias of --precision int8 (added to the others).")
@click.option("--calib-data", type=click.Path(exists=True, file_okay=False), help="Folder of calibration images (int8).")
@click.option("--calib-max-images", type=click.IntRange(min=1), help="At most this many calibration images [16].")
@click.option("--calib-method", type=click.Choice(["minmax", "entropy", "percentile"]), help="Range estimation [minmax].")
@click.option("--int8-exclude-op-types", multiple=True, help="Op types kept in float [LayerNormalization,Softmax,Add].")
@click.option("--int8-exclude-nodes", multiple=True, help="Node-name patterns kept in float [/neck/,/patch_embed/].")
@click.option("--int8-decoder", is_flag=True, default=None, help="Quantize the decoder too (float by default).")
@click.option("--max-points", type=click.IntRange(min=1), help="Most points per prompt set [16].")
@click.option("--max-boxes", type=click.IntRange(min=1), help="Most prompt sets (boxes) per decoder call [64].")
@click.option("--opset", type=int, help="ONNX opset [17].")
@click.option("--decoder-style", type=click.Choice(["edgesam", "official"]),
              help="official: also write decoder.official.onnx with segment-anything's inputs (orig_im_size).")
@click.option("--workspace-gb", type=FiniteFloat(), help="TensorRT builder workspace [4].")
@click.option("--timing-cache", help="TensorRT timing cache file (read and updated).")
@click.option("--openvino-int8-max-drop", type=FiniteFloat(),
              help="OpenVINO int8: NNCF accuracy control, max drop of embedding agreement with fp32 (e.g. 0.01).")
@click.option("--measure-backends", is_flag=True, default=None,
              help="Time each ONNX set's encoder on ONNX Runtime and OpenVINO here; backend='auto' uses it on this CPU.")
@click.option("--print-config", is_flag=True, help="Print the resolved export config as YAML and exit.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@overwrite_option
def export(checkpoint, variant, image_size, out, spec, formats, precisions, half, int8, calib_data, calib_max_images,
           calib_method, int8_exclude_op_types, int8_exclude_nodes, int8_decoder, max_points, max_boxes, opset,
           decoder_style, workspace_gb, timing_cache, openvino_int8_max_drop, measure_backends, print_config, quiet,
           overwrite):
    """Export a checkpoint to a bundle: encoder/decoder ONNX, fp16 and int8 sets, OpenVINO IR (ov_fp32, ov_bf16,
    ov_int8), TensorRT engines, manifest.json.

    Every graph set is checked against the PyTorch model at export (onnx.checker, an ONNX Runtime run,
    embedding/logit differences and mask IoU); the export fails, writing nothing, when a figure is beyond
    tolerance. INT8 needs calibration images: --calib-data DIR (default: the repository's calibration/ set).

    \b
    Examples:
      edgesam export --checkpoint merged.pth --out bundle --precision fp32,fp16 --int8 --calib-data calib/line3
      edgesam export --checkpoint merged.pth --out bundle --format onnx,engine --half   # on the GPU target
      edgesam export --checkpoint merged.pth --out bundle --format onnx,openvino --precision fp32,bf16,int8
      edgesam export --print-config > export.yaml; edgesam export -c export.yaml --checkpoint m.pth --out bundle
    """
    precision_list = _split(precisions) + (["fp16"] if half else []) + (["int8"] if int8 else [])
    config = build_config(
        spec, formats=_split(formats) or None, precisions=precision_list or None, calib_data=calib_data,
        calib_max_images=calib_max_images, calib_method=calib_method,
        int8_exclude_op_types=_split(int8_exclude_op_types) or None, int8_exclude_nodes=_split(int8_exclude_nodes) or None,
        int8_decoder=int8_decoder, max_points=max_points, max_boxes=max_boxes, opset=opset, decoder_style=decoder_style,
        workspace_gb=workspace_gb, timing_cache=timing_cache, openvino_int8_max_drop=openvino_int8_max_drop,
        measure_backends=measure_backends,
    )
    if print_config:
        import yaml

        click.echo(yaml.safe_dump(config.to_dict(), sort_keys=False), nl=False)
        return
    if out is None:
        raise click.UsageError("--out: the bundle folder to write is required")
    from edgesam.export import export_bundle
    from edgesam.export.staging import check_destination

    check_destination(out, overwrite=overwrite)  # before the model loads: a refusal costs nothing
    source = _source(checkpoint, variant, image_size)
    manifest = export_bundle(source[0], out, config, arch=source[1], checkpoint_path=checkpoint, progress=not quiet,
                             overwrite=overwrite)
    for name, figures in manifest["checks"].items():
        if "mask_iou_mean" in figures:
            from edgesam.export.checks import mask_iou_text

            # the refiner's check has no embeddings of its own: its largest logit difference instead
            diff = (f"embeddings max|d| {figures['embed_max_abs']:.3g}" if "embed_max_abs" in figures
                    else f"logits max|d| {figures['logits_max_abs']:.3g}")
            click.echo(f"{name:6s} {diff}  vs PyTorch {mask_iou_text(figures)}")
    click.echo(f"{out}: {', '.join(sorted(manifest['graphs']))}")


def _source(checkpoint, variant, image_size):
    """(model, arch) to export; a random-weight model only when no checkpoint is given, loudly."""
    from edgesam.models import load_model

    if checkpoint is None and variant is None:
        raise click.UsageError("give --checkpoint (or --model for a random-weight model, for trying the pipeline)")
    if checkpoint is None:
        click.echo(f"warning: no --checkpoint: exporting a randomly initialised {variant}", err=True)
    model, arch = load_model(variant, checkpoint, image_size)
    if checkpoint is None:
        arch = arch.replace(extra={**arch.extra, "init": "random"})
    return model, arch
