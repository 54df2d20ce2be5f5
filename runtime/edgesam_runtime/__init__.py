"""Torch-free runtime: numpy + onnxruntime (TensorRT when present). Never imports torch.

    from edgesam_runtime import Segmenter
    seg = Segmenter.open("bundle/")
    result = seg.segment_image(image, [{"type": "box", "data": [10, 20, 80, 90]}])
    seg = Segmenter.open("bundle/", limits=Limits(max_frame_pixels=400_000_000))   # per-call limits
"""
from edgesam_runtime.errors import BackendError, BundleError, InvalidInputError, RuntimeErrorBase
from edgesam_runtime.limits import Limits
from edgesam_runtime.segmenter import Embedding, Result, Segmenter

__all__ = ["BackendError", "BundleError", "Embedding", "InvalidInputError", "Limits", "Result", "RuntimeErrorBase",
           "Segmenter"]
