"""Static size figures of an ONNX model: bytes, gzip bytes, parameters, non-zeros and MACs per sample."""

from __future__ import annotations

import copy
import gzip
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from evaluator.files import sha256_of
from evaluator.results import ModelProfile

FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}


def profile_model(path: Path, model: onnx.ModelProto) -> ModelProfile:
    raw = Path(path).read_bytes()
    params = nonzero = 0
    for initializer in model.graph.initializer:
        if initializer.data_type in FLOAT_TYPES:
            values = numpy_helper.to_array(initializer)
            params += int(values.size)
            nonzero += int(np.count_nonzero(values))
    convs, unaligned = conv_alignment(model)
    return ModelProfile(sha256_of(Path(path)), len(raw), len(gzip.compress(raw, 9)), params, nonzero, count_macs(model),
                        convs, unaligned)


CHANNEL_BLOCK = 8


def conv_alignment(model: onnx.ModelProto, block: int = CHANNEL_BLOCK) -> tuple[int, int]:
    """(conv layers, those with channel counts off a multiple of `block`). ONNX Runtime's fast CPU convolutions
    (the NCHWc layout, blocks of 8 channels with AVX2, 16 with AVX-512) pad filter counts up to a block and leave a
    layer whose input channels are off a multiple in plain NCHW; a layer fed by the image itself is exempt on its
    input side."""
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    image_inputs = {value.name for value in model.graph.input}
    convs = unaligned = 0
    for node in model.graph.node:
        if node.op_type != "Conv" or node.input[1] not in weights:
            continue
        out_channels, in_channels = weights[node.input[1]][:2]
        groups = next((a.i for a in node.attribute if a.name == "group"), 1)
        convs += 1
        first = node.input[0] in image_inputs or in_channels * groups <= 4
        if out_channels % block or (not first and (in_channels * groups) % block):
            unaligned += 1
    return convs, unaligned


def count_macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates of Conv, Gemm and MatMul nodes for one input sample."""
    model = copy.deepcopy(model)
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_value = 1
    del model.graph.value_info[:]
    inferred = shape_inference.infer_shapes(model)
    shapes: dict[str, list[int]] = {}
    for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        shapes[value.name] = [d.dim_value for d in value.type.tensor_type.shape.dim]
    for initializer in inferred.graph.initializer:
        shapes[initializer.name] = list(initializer.dims)
    macs = 0
    for node in inferred.graph.node:
        if node.op_type == "Conv":
            weight, output = shapes.get(node.input[1]), shapes.get(node.output[0])
            if weight and output:
                macs += int(np.prod(output)) * int(np.prod(weight[1:]))
        elif node.op_type in ("Gemm", "MatMul"):
            left, output = shapes.get(node.input[0]), shapes.get(node.output[0])
            if left and output:
                transposed = node.op_type == "Gemm" and any(a.name == "transA" and a.i for a in node.attribute)
                inner = left[-2] if transposed else left[-1]
                macs += int(np.prod(output)) * int(inner)
    return macs
