"""The numeric precision a deployed graph computes in: fp32, int8 (static, QDQ or QOperator), int8-dynamic or fp16.

Read from the graph's operators and weights, not only from its metadata, so a quantized model from elsewhere is
recognised too (and refused by `evaluator quantize`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below are read by light modules (the policy) that must not load onnx
    import onnx

FP32 = "fp32"
INT8 = "int8"  # static: activations quantized with scales calibrated beforehand
INT8_DYNAMIC = "int8-dynamic"  # weights int8, activations quantized per run (DynamicQuantizeLinear)
FP16 = "fp16"
PRECISIONS = (FP32, INT8, INT8_DYNAMIC, FP16)
QUANTIZED_PRECISIONS = (INT8, INT8_DYNAMIC, FP16)

STATIC_INT8_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd",
                   "QLinearMul", "QLinearConcat", "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearSigmoid",
                   "QLinearLeakyRelu", "QLinearSoftmax", "QAttention"}
DYNAMIC_INT8_OPS = {"DynamicQuantizeLinear", "DynamicQuantizeMatMul", "MatMulInteger", "ConvInteger",
                    "MatMulIntegerToFloat"}
# Compute kernels whose precision decides speed: ORT runs them in float32 when a QDQ pair around them is not fused
# (int8) or when its CPU EP has no float16 kernel (fp16, through inserted casts).
FLOAT_COMPUTE_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "FusedConv", "FusedGemm", "FusedMatMul"}


def graph_precision(model: "onnx.ModelProto") -> str:
    """The precision `model` computes in, from its operators (int8 kinds) and its floating-point weights (fp16)."""
    from onnx import TensorProto

    ops = {node.op_type for node in model.graph.node}
    if ops & DYNAMIC_INT8_OPS:
        return INT8_DYNAMIC
    if ops & STATIC_INT8_OPS:
        return INT8
    float_types = [init.data_type for init in model.graph.initializer
                   if init.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16)]
    if float_types and sum(kind != TensorProto.FLOAT for kind in float_types) * 2 > len(float_types):
        return FP16
    return FP32


def recorded_precision(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """The metadata's precision record (written by `evaluator quantize`), None for a float32 artifact."""
    record = (metadata or {}).get("precision")
    return record if isinstance(record, dict) else None


def check_precision_name(name: str) -> str:
    """`name` when it is one of PRECISIONS, else one line naming them."""
    from evaluator.errors import EvaluatorError

    if name not in PRECISIONS:
        raise EvaluatorError(f"unknown precision {name!r}: expected one of {', '.join(PRECISIONS)}", field="precision")
    return name
