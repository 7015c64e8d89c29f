"""Static size figures of an ONNX model: bytes, gzip bytes and sha256 (of the .onnx and its external data files),
parameters, non-zeros and MACs per sample."""

from __future__ import annotations

import copy
import hashlib
import zlib
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from evaluator.errors import EvaluatorError
from evaluator.results import ModelProfile

FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}
# Weights of a quantized graph: int8 / uint8 weights and int32 biases, counted like the float ones they replace.
PARAMETER_TYPES = FLOAT_TYPES | {onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.INT32}
# Inputs of quantized operators that hold scales and zero points (by position), not weights.
QUANTIZATION_PARAMETER_INPUTS = {
    "QuantizeLinear": (1, 2), "DequantizeLinear": (1, 2), "ConvInteger": (2, 3), "MatMulInteger": (2, 3),
    "DynamicQuantizeMatMul": (2, 3), "QLinearConv": (1, 2, 4, 5, 6, 7), "QLinearMatMul": (1, 2, 4, 5, 6, 7),
    "QGemm": (1, 2, 4, 5, 7, 8),
}


def quantization_parameter_names(model: onnx.ModelProto) -> set[str]:
    """Names of the tensors that quantized operators read as scales or zero points."""
    return {node.input[index] for node in model.graph.node
            for index in QUANTIZATION_PARAMETER_INPUTS.get(node.op_type, ()) if index < len(node.input)}


def external_data_sha256(path: Path) -> str | None:
    """The sha256 over the external data files of the .onnx at `path` (as file_figures counts them), None without any."""
    external = external_data_files(path)
    return file_figures(external)[0] if external else None


def external_data_files(path: Path) -> list[Path]:
    """The external data files the .onnx at `path` names (each once, in order of first use), resolved beside it. A
    location outside the model's folder or a missing file is a one-line error."""
    stub = onnx.load(str(path), load_external_data=False)
    folder, files = Path(path).parent.resolve(), []
    tensors = [*stub.graph.initializer, *(a.t for node in stub.graph.node for a in node.attribute if a.HasField("t"))]
    for tensor in tensors:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
        file = (folder / location).resolve()
        if not file.is_relative_to(folder) or not location:
            raise EvaluatorError(f"{path} names external data {location!r} outside its folder")
        if not file.is_file():
            raise EvaluatorError(f"{path} needs its external data file {location}, which is not beside it")
        if file not in files:
            files.append(file)
    return files


def file_figures(paths: list[Path]) -> tuple[str, int, int]:
    """(sha256, bytes, gzip bytes at level 9) of the files' bytes one after another, read in blocks."""
    digest, compressor = hashlib.sha256(), zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    size = compressed = 0
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
                compressed += len(compressor.compress(block))
    return digest.hexdigest(), size, compressed + len(compressor.flush())


def profile_model(path: Path, model: onnx.ModelProto) -> ModelProfile:
    """The size figures of the model at `path` (its external data files included) and of `model`, its loaded graph."""
    external = external_data_files(Path(path))
    sha256, size, compressed = file_figures([Path(path), *external])
    params = nonzero = 0
    quantization_parameters = quantization_parameter_names(model)
    for initializer in model.graph.initializer:
        if initializer.data_type in PARAMETER_TYPES and initializer.name not in quantization_parameters:
            values = numpy_helper.to_array(initializer)
            params += int(values.size)
            nonzero += int(np.count_nonzero(values))
    convs, unaligned = conv_alignment(model)
    return ModelProfile(sha256, size, compressed, params, nonzero, count_macs(model), convs, unaligned,
                        tuple(file.relative_to(Path(path).parent.resolve()).as_posix() for file in external))


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
        if node.op_type in ("Conv", "ConvInteger"):
            weight, output = shapes.get(node.input[1]), shapes.get(node.output[0])
            if weight and output:
                macs += int(np.prod(output)) * int(np.prod(weight[1:]))
        elif node.op_type in ("Gemm", "MatMul", "MatMulInteger", "DynamicQuantizeMatMul"):
            left, output = shapes.get(node.input[0]), shapes.get(node.output[0])
            if left and output:
                transposed = node.op_type == "Gemm" and any(a.name == "transA" and a.i for a in node.attribute)
                inner = left[-2] if transposed else left[-1]
                macs += int(np.prod(output)) * int(inner)
    return macs
