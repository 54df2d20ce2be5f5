"""PyTorch -> ONNX for the bundle's graphs, with the exporter pinned.

torch >= 2.9 defaults `torch.onnx.export` to the dynamo exporter, which emits opset 18 and fails
noisily when asked to down-convert to 17. The TorchScript exporter (`dynamo=False`) exports both
SAM graphs cleanly at any opset 13..20, so it is the one we use (tests pin this).
Graphs whose weights exceed `external_data_threshold` bytes (vit_h: ~2.5 GB, beyond protobuf's 2 GB)
keep their weights in one `<graph>.data` file beside the graph.
"""
from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import onnx
import torch
from segment_anything.utils.onnx import SamOnnxModel

from edgesam_runtime import io_spec
from edgesam.export.wrappers import DecoderGraph, EncoderGraph, PairedDecoderGraph, RefinerGraph, token_norms_flattened


def _export(module, args, path: Path, input_names, output_names, dynamic_axes, opset: int, threshold: int) -> list[str]:
    """Export `module` to `path`; return the file names written (graph first, then external data)."""
    weight_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".onnx-") as scratch:
        raw = Path(scratch) / path.name
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python ints in SAM's shape code
            torch.onnx.export(
                module.eval(), args, str(raw), input_names=list(input_names), output_names=list(output_names),
                dynamic_axes=dynamic_axes or None, opset_version=opset, do_constant_folding=True, dynamo=False,
            )
        if weight_bytes <= threshold:
            shutil.move(str(raw), path)
            return [path.name]
        # Large graph: the exporter may scatter one file per tensor; gather them into one data file.
        model = onnx.load(str(raw), load_external_data=True)
        data_name = path.name + ".data"
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data_name, size_threshold=1024)
        return [path.name, data_name]


def encoder_sample(image_size: int, batch: int = 1) -> torch.Tensor:
    return torch.zeros(batch, 3, image_size, image_size)


def decoder_sample(image_size: int, embed_dim: int = 256, batch: int = 2, points: int = 3, paired: bool = False) -> tuple:
    e, m = io_spec.embedding_size(image_size), io_spec.low_res_size(image_size)
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]])[:batch, :points]
    return (
        torch.randn(batch if paired else 1, embed_dim, e, e, generator=gen),
        torch.rand(batch, points, 2, generator=gen) * image_size,
        labels,
        torch.zeros(batch, 1, m, m),
        torch.zeros(1),
    )


def _roi(model) -> bool:
    return getattr(model, "framing", None) is not None and model.framing.roi


def export_encoder(model, path: Path, opset: int = 17, threshold: int = 1_800_000_000) -> list[str]:
    """The image encoder; a ROI-framed model's takes a batch of crops (dynamic axis num_crops)."""
    size, roi = model.image_encoder.img_size, _roi(model)
    with token_norms_flattened(model.image_encoder):
        return _export(EncoderGraph(model), (encoder_sample(size, 2 if roi else 1),), Path(path), [io_spec.ENCODER_INPUT],
                       [io_spec.ENCODER_OUTPUT], io_spec.encoder_dynamic_axes(roi), opset, threshold)


def export_decoder(model, path: Path, opset: int = 17, threshold: int = 1_800_000_000) -> list[str]:
    """Prompt encoder + mask decoder; a ROI-framed model's pairs each prompt set with its own embedding."""
    size, roi = model.image_encoder.img_size, _roi(model)
    graph = PairedDecoderGraph(model) if roi else DecoderGraph(model)
    return _export(graph, decoder_sample(size, paired=roi), Path(path), io_spec.DECODER_INPUTS,
                   io_spec.DECODER_OUTPUTS, io_spec.decoder_dynamic_axes(roi), opset, threshold)


def export_refiner(model, path: Path, opset: int = 17) -> list[str]:
    """The mask refiner of a model that has one: a batch of (encoder input, low-res logits) pairs."""
    size = model.image_encoder.img_size
    m = io_spec.low_res_size(size)
    gen = torch.Generator().manual_seed(0)
    args = (torch.randn(2, 3, size, size, generator=gen), torch.randn(2, 1, m, m, generator=gen))
    return _export(RefinerGraph(model), args, Path(path), io_spec.REFINER_INPUTS, [io_spec.REFINER_OUTPUT],
                   io_spec.REFINER_DYNAMIC_AXES, opset, threshold=1 << 62)


def export_official_decoder(model, path: Path, opset: int = 17) -> list[str]:
    """segment-anything's own ONNX decoder (`SamOnnxModel`: batch 1, `orig_im_size`, upscaled masks)."""
    size = model.image_encoder.img_size
    emb, coords, labels, mask, has_mask = decoder_sample(size, batch=1)
    args = (emb, coords, labels, mask, has_mask, torch.tensor([size, size], dtype=torch.float32))
    wrapped = SamOnnxModel(model, return_single_mask=False)
    return _export(wrapped, args, Path(path), io_spec.OFFICIAL_DECODER_INPUTS, io_spec.OFFICIAL_DECODER_OUTPUTS,
                   io_spec.OFFICIAL_DECODER_DYNAMIC_AXES, opset, threshold=1 << 62)
