"""The op table: ONNX op type -> a torch function, and the error for a graph the table cannot run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from evaluator.errors import EvaluatorError

Tensor = torch.Tensor
Inputs = list["Tensor | None"]  # a node's inputs in order; None for an omitted optional input


class UnsupportedGraph(EvaluatorError):
    """A graph the converter cannot turn into a torch module: an unknown op, or an op's setting it does not handle."""

    def __init__(self, op_type: str, node_name: str, reason: str = "") -> None:
        detail = reason or f"op {op_type} has no torch equivalent in the converter"
        super().__init__(f"cannot convert the ONNX graph: node {node_name!r} ({op_type}): {detail}")
        self.op_type = op_type
        self.node_name = node_name
        self.reason = detail


@dataclass(frozen=True)
class Node:
    """One ONNX node as the op functions see it: attributes (decoded), the opset of its domain, its output count."""

    op_type: str
    name: str
    attrs: dict[str, Any] = field(default_factory=dict)
    opset: int = 17
    outputs: int = 1

    def get(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)


OpFunction = Callable[[Inputs, Node], "Tensor | tuple[Tensor, ...]"]
Check = Callable[[Node], "str | None"]  # the reason a node cannot be converted, or None


@dataclass(frozen=True)
class Op:
    run: OpFunction
    check: Check | None = None


OPS: dict[str, Op] = {}

QUANTIZED = {"DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul",
             "ConvInteger", "MatMulInteger", "QLinearAdd", "QLinearMul", "QGemm"}


def op(*op_types: str, check: Check | None = None) -> Callable[[OpFunction], OpFunction]:
    """Register a function for one or more op types."""

    def register(function: OpFunction) -> OpFunction:
        for op_type in op_types:
            OPS[op_type] = Op(function, check)
        return function

    return register


def refusal(node: Node) -> str | None:
    """Why `node` cannot be converted (None when it can): unknown op, or a setting its check refuses."""
    if node.op_type in QUANTIZED:
        return f"integer-kernel ops ({node.op_type}) are not supported: QDQ graphs (QuantizeLinear / DequantizeLinear) are, " \
               "or pass the float model's source"
    entry = OPS.get(node.op_type)
    if entry is None:
        return f"op {node.op_type} has no torch equivalent in the converter"
    return entry.check(node) if entry.check is not None else None


def ints(value: Tensor | None) -> list[int]:
    """A 0-d or 1-d integer tensor (a shape, axes, pads) as Python ints."""
    return [] if value is None else [int(v) for v in value.reshape(-1).tolist()]


def axis_of(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis
