"""Elementwise ops: arithmetic with broadcasting, activations, comparisons, Where, Clip, Cast."""

from __future__ import annotations

import functools
from typing import Callable

import torch
import torch.nn.functional as F
from onnx import TensorProto

from evaluator.graph_input import STRAIGHT_THROUGH
from evaluator.onnx_torch.registry import Inputs, Node, Tensor, op

UNARY: dict[str, Callable[[Tensor], Tensor]] = {
    "Relu": torch.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Exp": torch.exp, "Log": torch.log,
    "Sqrt": torch.sqrt, "Reciprocal": torch.reciprocal, "Abs": torch.abs, "Neg": torch.neg, "Erf": torch.erf,
    "Softplus": F.softplus, "Softsign": F.softsign, "Mish": F.mish, "HardSwish": F.hardswish, "Floor": torch.floor,
    "Ceil": torch.ceil, "Sign": torch.sign, "Sin": torch.sin, "Cos": torch.cos,
    "Not": torch.logical_not,
}
BINARY: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Equal": torch.eq, "Less": torch.lt, "Greater": torch.gt,
    "LessOrEqual": torch.le, "GreaterOrEqual": torch.ge, "And": torch.logical_and, "Or": torch.logical_or,
    "Xor": torch.logical_xor,
}
VARIADIC: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"Max": torch.maximum, "Min": torch.minimum, "Sum": torch.add,
                                                          "Mean": torch.add}
FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}
INT_TYPES = {TensorProto.INT8, TensorProto.INT16, TensorProto.INT32, TensorProto.INT64, TensorProto.UINT8,
             TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64}


def torch_dtype(onnx_type: int) -> torch.dtype:
    """The dtype the converter computes an ONNX type in: every float type as float32, every integer as int64."""
    if onnx_type in FLOAT_TYPES:
        return torch.float32
    if onnx_type in INT_TYPES:
        return torch.int64
    if onnx_type == TensorProto.BOOL:
        return torch.bool
    raise ValueError(f"tensor type {TensorProto.DataType.Name(onnx_type)} is not supported")


@op(*UNARY)
def unary(x: Inputs, node: Node) -> Tensor:
    return UNARY[node.op_type](x[0])


@op(*BINARY)
def binary(x: Inputs, node: Node) -> Tensor:
    return BINARY[node.op_type](x[0], x[1])


@op("Div")
def div(x: Inputs, node: Node) -> Tensor:
    a, b = x[0], x[1]
    if not a.is_floating_point() and not b.is_floating_point():
        return torch.div(a, b, rounding_mode="trunc")
    return a / b


@op("Pow")
def power(x: Inputs, node: Node) -> Tensor:
    result = torch.pow(x[0], x[1])
    return result if x[0].is_floating_point() else result.to(x[0].dtype)


@op(*VARIADIC)
def variadic(x: Inputs, node: Node) -> Tensor:
    result = functools.reduce(VARIADIC[node.op_type], x)
    return result / len(x) if node.op_type == "Mean" else result


@op("LeakyRelu")
def leaky_relu(x: Inputs, node: Node) -> Tensor:
    return F.leaky_relu(x[0], node.get("alpha", 0.01))


@op("PRelu")
def prelu(x: Inputs, node: Node) -> Tensor:
    return torch.where(x[0] >= 0, x[0], x[0] * x[1])


@op("Elu")
def elu(x: Inputs, node: Node) -> Tensor:
    return F.elu(x[0], node.get("alpha", 1.0))


@op("Selu")
def selu(x: Inputs, node: Node) -> Tensor:
    alpha, gamma = node.get("alpha", 1.67326319217681884765625), node.get("gamma", 1.05070102214813232421875)
    return gamma * F.elu(x[0], alpha)


@op("HardSigmoid")
def hard_sigmoid(x: Inputs, node: Node) -> Tensor:
    return torch.clamp(node.get("alpha", 0.2) * x[0] + node.get("beta", 0.5), 0.0, 1.0)


def check_gelu(node: Node) -> str | None:
    return None if node.get("approximate", "none") in ("none", "tanh") else f"approximate={node.get('approximate')!r}"


@op("Gelu", check=check_gelu)
def gelu(x: Inputs, node: Node) -> Tensor:
    return F.gelu(x[0], approximate=node.get("approximate", "none"))


@op("Clip")
def clip(x: Inputs, node: Node) -> Tensor:
    """Bounds as attributes (opset < 11) or as optional scalar inputs."""
    if node.opset < 11:
        low, high = node.get("min"), node.get("max")
    else:
        low = x[1] if len(x) > 1 else None
        high = x[2] if len(x) > 2 else None
    if low is None and high is None:
        return x[0]
    return torch.clamp(x[0], min=low, max=high)


@op("Where")
def where(x: Inputs, node: Node) -> Tensor:
    return torch.where(x[0].bool(), x[1], x[2])


def check_cast(node: Node) -> str | None:
    try:
        torch_dtype(node.get("to", TensorProto.FLOAT))
    except ValueError as error:
        return str(error)
    return None


@op("Round")
def round_half_even(x: Inputs, node: Node) -> Tensor:
    """ONNX rounds halves to even, as torch.round. The evaluator's own rounding to uint8 pixels (node names starting
    with STRAIGHT_THROUGH) has the identity's gradient instead of zero: the straight-through estimator (BPDA)."""
    if node.name.startswith(STRAIGHT_THROUGH):
        return x[0] + (torch.round(x[0]) - x[0]).detach()
    return torch.round(x[0])


@op("Cast", check=check_cast)
def cast(x: Inputs, node: Node) -> Tensor:
    """float16, float64 and bfloat16 are computed as float32; every integer type as int64. The evaluator's own cast
    to uint8 pixels (STRAIGHT_THROUGH) keeps its whole values as float32, so that gradients reach them; the graph's
    cast back to float is then the identity."""
    if node.name.startswith(STRAIGHT_THROUGH):
        return x[0]
    return x[0].to(torch_dtype(node.get("to")))


@op("CastLike")
def cast_like(x: Inputs, node: Node) -> Tensor:
    return x[0].to(x[1].dtype)
