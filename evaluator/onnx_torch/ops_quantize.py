"""QuantizeLinear and DequantizeLinear (a QDQ int8 graph). Quantized values are kept as whole float32 numbers so that
gradients reach them; rounding has the identity's gradient (the straight-through estimator, BPDA), as its true
gradient is zero almost everywhere and would mask every gradient attack. Saturation keeps its true (zero) gradient."""

from __future__ import annotations

from onnx import TensorProto

from evaluator.onnx_torch.registry import Inputs, Node, Tensor, op

# The range of a quantized type; QuantizeLinear's output type is its zero point's (uint8 without one).
QUANTIZED_RANGES = {TensorProto.INT8: (-128, 127), TensorProto.UINT8: (0, 255), TensorProto.INT16: (-32768, 32767),
                    TensorProto.UINT16: (0, 65535), TensorProto.INT32: (-2**31, 2**31 - 1)}
RANGE_ATTRIBUTE = "evaluator_quantized_type"  # set by the converter from the zero point's type


def check_quantize(node: Node) -> str | None:
    if node.get("block_size", 0):
        return "blocked quantization (block_size) is not supported"
    if node.get(RANGE_ATTRIBUTE, TensorProto.UINT8) not in QUANTIZED_RANGES:
        return "only 8, 16 and 32-bit integer quantization is supported"
    return None


def per_axis(scale: Tensor, x: Tensor, node: Node) -> Tensor:
    """A scale or zero point (C,) shaped to broadcast along the node's axis of x (a scalar stays as it is)."""
    if scale.dim() == 0 or scale.numel() == 1:
        return scale.reshape(())
    axis = node.get("axis", 1) % x.dim()
    shape = [1] * x.dim()
    shape[axis] = scale.numel()
    return scale.reshape(shape)


@op("QuantizeLinear", check=check_quantize)
def quantize_linear(x: Inputs, node: Node) -> Tensor:
    value, scale = x[0], per_axis(x[1], x[0], node)
    zero = per_axis(x[2], x[0], node).to(value.dtype) if len(x) > 2 and x[2] is not None else 0.0
    scaled = value / scale
    rounded = scaled + (scaled.round() - scaled).detach()
    low, high = QUANTIZED_RANGES[node.get(RANGE_ATTRIBUTE, TensorProto.UINT8)]
    return (rounded + zero).clamp(low, high)


@op("DequantizeLinear", check=check_quantize)
def dequantize_linear(x: Inputs, node: Node) -> Tensor:
    value = x[0].float()
    scale = per_axis(x[1], value, node)
    zero = per_axis(x[2], value, node).float() if len(x) > 2 and x[2] is not None else 0.0
    return (value - zero) * scale
