"""Export: ONNX encoder + decoder graphs, FP16, INT8 (QDQ, calibrated), TensorRT engines, one bundle.

    from edgesam.export import ExportConfig, export_bundle
    manifest = export_bundle("merged.pth", "bundle/", ExportConfig(precisions=("fp32", "int8")))
"""
from edgesam.export.config import ExportConfig, default_calibration_dir

__all__ = ["ExportConfig", "ParityError", "default_calibration_dir", "export_bundle"]


def __getattr__(name):
    # Lazy: importing the config (CLI flag parsing) must not import torch and onnx.
    if name == "export_bundle":
        from edgesam.export.run import export_bundle

        return export_bundle
    if name == "ParityError":
        from edgesam.export.checks import ParityError

        return ParityError
    raise AttributeError(name)
