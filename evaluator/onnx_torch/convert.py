"""An ONNX graph as a differentiable torch module: the graph's nodes run in topological order with torch ops.

Initializers and Constant nodes become float32 (or int64, bool) buffers; nodes that depend only on them are
evaluated once at conversion. Every node that the chosen output needs is checked against the op table before
anything runs: a graph the table cannot run raises UnsupportedGraph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import AttributeProto, TensorProto, inliner, numpy_helper
from torch import nn

import evaluator.onnx_torch.ops_nn  # noqa: F401 (each ops module registers its ops in OPS when imported)
import evaluator.onnx_torch.ops_shape  # noqa: F401
import evaluator.onnx_torch.ops_tensor  # noqa: F401
import evaluator.onnx_torch.ops_quantize  # noqa: F401
from evaluator.onnx_torch.ops_quantize import RANGE_ATTRIBUTE
from evaluator.errors import EvaluatorError
from evaluator.onnx_torch.ops_elementwise import torch_dtype
from evaluator.onnx_torch.registry import OPS, Node, Tensor, UnsupportedGraph, refusal
from evaluator.runtime import load_onnx

DEFAULT_DOMAINS = ("", "ai.onnx")
Step = tuple[Node, list[str], list[str]]  # node, input names ("" for an omitted one), output names


def tensor_from_proto(proto: onnx.TensorProto, where: str) -> Tensor:
    """An ONNX tensor in the converter's dtypes: float32 for every float type, int64 for every integer type."""
    try:
        dtype = torch_dtype(proto.data_type)
    except ValueError as error:
        raise UnsupportedGraph("tensor", where, str(error)) from None
    array = numpy_helper.to_array(proto)
    numpy_dtype = {torch.float32: np.float32, torch.int64: np.int64, torch.bool: np.bool_}[dtype]
    return torch.from_numpy(np.array(array, dtype=numpy_dtype, copy=True))


def decode_attribute(attribute: onnx.AttributeProto, op_type: str, where: str) -> Any:
    if attribute.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
        raise UnsupportedGraph(op_type, where, "control flow (subgraph attributes) is not supported")
    if attribute.type == AttributeProto.TENSOR:
        return tensor_from_proto(attribute.t, where)
    value = onnx.helper.get_attribute_value(attribute)
    if attribute.type == AttributeProto.STRING:
        return value.decode()
    if attribute.type == AttributeProto.STRINGS:
        return [v.decode() for v in value]
    return list(value) if isinstance(value, (list, tuple)) else value


def make_node(proto: onnx.NodeProto, opset: int, index: int, tensor_types: dict[str, int] | None = None) -> Node:
    """The node as the op functions see it; tensor_types (name -> ONNX element type) give a QuantizeLinear the type
    of its zero point, which is its output's (the converter computes integers as int64 and loses it)."""
    name = proto.name or f"#{index} {proto.op_type}"
    if proto.domain not in DEFAULT_DOMAINS:
        raise UnsupportedGraph(proto.op_type, name, f"ops of domain {proto.domain!r} are not supported")
    attrs = {attribute.name: decode_attribute(attribute, proto.op_type, name) for attribute in proto.attribute}
    if proto.op_type == "QuantizeLinear":
        zero_point = proto.input[2] if len(proto.input) > 2 else ""
        attrs[RANGE_ATTRIBUTE] = (tensor_types or {}).get(zero_point) or attrs.get("output_dtype") or TensorProto.UINT8
    outputs = list(proto.output)
    while outputs and not outputs[-1]:
        outputs.pop()
    node = Node(proto.op_type, name, attrs, opset, len(outputs))
    reason = refusal(node)
    if reason is not None:
        raise UnsupportedGraph(proto.op_type, name, reason)
    return node


def run_node(node: Node, inputs: list[Tensor | None]) -> tuple[Tensor, ...]:
    try:
        result = OPS[node.op_type].run(inputs, node)
    except (RuntimeError, ValueError, IndexError, TypeError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EvaluatorError(f"converted ONNX node {node.name!r} ({node.op_type}) failed: {detail[:300]}") from None
    return result if isinstance(result, tuple) else (result,)


class OnnxModule(nn.Module):
    """The converted graph: forward(x) takes the graph's input in its own layout (e.g. (N, C, H, W), or (N, H, W, C)
    for a graph that starts with a Transpose) as float32 and returns the chosen output (e.g. logits (N, classes)).
    Always in inference mode; differentiable with respect to x. `input_shape` is the graph's declared input shape
    (None for a symbolic dimension such as the batch)."""

    def __init__(self, input_name: str, input_shape: tuple[int | None, ...], output_name: str, steps: list[Step],
                 constants: dict[str, Tensor]) -> None:
        super().__init__()
        self.input_name, self.input_shape, self.output_name = input_name, input_shape, output_name
        self.steps = steps
        self.buffer_names: dict[str, str] = {}
        for index, (name, value) in enumerate(constants.items()):
            self.register_buffer(f"c{index}", value)
            self.buffer_names[name] = f"c{index}"
        self.training = False

    def forward(self, x: Tensor) -> Tensor:
        values: dict[str, Tensor] = {name: getattr(self, key) for name, key in self.buffer_names.items()}
        values[self.input_name] = x
        for node, inputs, outputs in self.steps:
            results = run_node(node, [values[name] if name else None for name in inputs])
            values.update((name, value) for name, value in zip(outputs, results) if name)
        return values[self.output_name]

    def train(self, mode: bool = True) -> "OnnxModule":
        return self  # a deployed graph has no training mode


def graph_input(graph: onnx.GraphProto) -> tuple[str, tuple[int | None, ...]]:
    initializers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise UnsupportedGraph("graph", graph.name, f"one input expected, found {len(inputs)}")
    dims = inputs[0].type.tensor_type.shape.dim
    return inputs[0].name, tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


def needed_nodes(graph: onnx.GraphProto, output: str, known: set[str]) -> list[int]:
    """Indices of the nodes `output` depends on, in an order where every input is made before it is used."""
    producer = {name: index for index, node in enumerate(graph.node) for name in node.output if name}
    wanted, stack = set(), [output]
    while stack:
        name = stack.pop()
        if name in known:
            continue
        if name not in producer:
            raise UnsupportedGraph("graph", graph.name, f"tensor {name!r} is used but nothing produces it")
        index = producer[name]
        if index not in wanted:
            wanted.add(index)
            stack.extend(n for n in graph.node[index].input if n)
    order, done, visiting = [], set(), set()
    for root in sorted(wanted):
        work = [(root, False)]
        while work:
            index, expanded = work.pop()
            if index in done:
                continue
            if expanded:
                visiting.discard(index)
                done.add(index)
                order.append(index)
                continue
            if index in visiting:
                raise UnsupportedGraph("graph", graph.name, "the graph has a cycle")
            visiting.add(index)
            work.append((index, True))
            work.extend((producer[n], False) for n in graph.node[index].input if n and n not in known and producer[n] not in done)
    return order


def logits_before_softmax(model: onnx.ModelProto, output: str | None = None) -> str:
    """The tensor to differentiate for `output` (default: the first graph output): the input of the Softmax that
    makes it, when one does (same top-1, gradients that do not vanish with confident probabilities), else `output`."""
    output = output if output is not None else model.graph.output[0].name
    producer = next((node for node in model.graph.node if output in node.output), None)
    if producer is not None and producer.op_type == "Softmax" and producer.domain in DEFAULT_DOMAINS:
        return producer.input[0]
    return output


def convert_onnx(model: onnx.ModelProto | Path | str, output: str | None = None) -> OnnxModule:
    """A differentiable torch module computing `output` (default: the graph's first output; any tensor a node makes,
    e.g. the logits before a final Softmax) from the graph's single input. Raises UnsupportedGraph, before anything
    runs, when a node it needs has no torch equivalent here."""
    proto = model if isinstance(model, onnx.ModelProto) else load_onnx(Path(model))
    if proto.functions:
        proto = inliner.inline_local_functions(proto)
    graph = proto.graph
    opset = next((entry.version for entry in proto.opset_import if entry.domain in DEFAULT_DOMAINS), 17)
    input_name, input_shape = graph_input(graph)
    output = output if output is not None else graph.output[0].name
    constants = {init.name: tensor_from_proto(init, init.name) for init in graph.initializer}
    order = needed_nodes(graph, output, set(constants) | {input_name})
    tensor_types = {init.name: init.data_type for init in graph.initializer}
    tensor_types.update((value.name, value.type.tensor_type.elem_type) for value in graph.value_info)
    nodes = [(make_node(graph.node[index], opset, index, tensor_types), graph.node[index]) for index in order]  # checks all first
    steps: list[Step] = []
    for node, node_proto in nodes:
        inputs = list(node_proto.input)
        while inputs and not inputs[-1]:
            inputs.pop()
        if all(not name or name in constants for name in inputs):  # depends on constants only: fold it now
            with torch.no_grad():
                results = run_node(node, [constants[name] if name else None for name in inputs])
            constants.update((name, value) for name, value in zip(node_proto.output, results) if name)
        else:
            steps.append((node, inputs, list(node_proto.output)))
    used = {name for _, inputs, _ in steps for name in inputs} | {output}
    kept = {name: value.detach().contiguous() for name, value in constants.items() if name in used}
    return OnnxModule(input_name, input_shape, output, steps, kept)
