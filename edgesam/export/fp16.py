"""FP16 graphs: weights and activations in float16, numerically fragile ops kept in float32.

Uses onnxruntime's own converter (`onnxruntime.transformers.float16`, shipped in the onnxruntime
wheel): it inserts Cast nodes around the blocked op types and keeps graph inputs and outputs in
float32, so the runtime's contract (float32 I/O) does not change with the precision.
"""
from __future__ import annotations

from pathlib import Path

import onnx


def convert_to_fp16(src: Path, dst: Path, keep_op_types, keep_nodes=()) -> list[str]:
    """Write the fp16 version of `src` to `dst`; return the names of the nodes kept in float32
    (by op type or by a name pattern in `keep_nodes`)."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = onnx.load(str(src))
    blocked = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(keep_op_types))
    kept = [n.name for n in model.graph.node
            if n.op_type in set(keep_op_types) or any(p in n.name for p in keep_nodes)]
    half = convert_float_to_float16(model, keep_io_types=True, op_block_list=blocked, node_block_list=kept,
                                    disable_shape_infer=False)
    # The converter appends its input Casts at the end of the node list; ONNX requires topological order.
    wrapped = OnnxModel(half)
    wrapped.topological_sort()
    onnx.save(wrapped.model, str(dst))
    return kept
