"""How a deployed graph is fed and read. The evaluator's own input is x (N, C, H, W) float32 in [0, 1] and every
epsilon lives there; a graph may take NHWC, pixels in 0-255, normalised values or float16 / uint8, and may end in a
softmax. `GraphInput` says which (from the command line, else the model's metadata, else the graph itself) and
`adapt` prepends the few elementwise nodes that turn the evaluator's input into the graph's, and appends a log to
probabilities, so that ONNX Runtime runs the deployed graph unchanged behind them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from evaluator.input_options import LAYOUTS, RANGES, SCORES, InputOverrides
from evaluator.errors import EvaluatorError

INPUT_TYPES = {TensorProto.FLOAT: "float32", TensorProto.FLOAT16: "float16", TensorProto.UINT8: "uint8"}
ADAPTED_INPUT = "evaluator_pixels"  # (N, C, H, W) float32 in [0, 1]
LOG_PROBABILITIES = "evaluator_log_probabilities"
SMALLEST_PROBABILITY = 1e-30  # log of a zero probability would be -inf
# Name prefix of the adapter's rounding nodes (to uint8 pixels): a converted graph passes gradients straight through
# them (BPDA), as rounding has a zero gradient almost everywhere (evaluator.onnx_torch).
STRAIGHT_THROUGH = "evaluator_straight_through"


@dataclass(frozen=True)
class GraphInput:
    """layout: the graph's image layout; scale: its pixel value for white (1 for 0-1, 255 for 0-255); mean, std: per
    channel, in the graph's pixel units, subtracted and divided after scaling (empty: none); output: the output read
    (None: the first); scores: whether it holds logits or probabilities (read as log-probabilities)."""

    layout: str = "NCHW"
    scale: float = 1.0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    output: str | None = None
    scores: str = "logits"

    @property
    def is_plain(self) -> bool:
        """The graph takes the evaluator's input as it is and returns logits."""
        return (self.layout, self.scale, self.mean, self.std, self.scores) == ("NCHW", 1.0, (), (), "logits")

    def to_dict(self) -> dict[str, Any]:
        """The metadata block's `input` entries for it (range as [0, scale])."""
        return {"layout": self.layout, "range": [0, self.scale], "mean": list(self.mean), "std": list(self.std),
                "output": self.output, "scores": self.scores}

    def describe(self) -> str:
        """One line for the notes under the table, e.g. 'NHWC, pixels 0-255, probabilities read as log-probabilities'."""
        parts = [self.layout] if self.layout != "NCHW" else []
        parts += [f"pixels 0-{self.scale:g}"] if self.scale != 1.0 else []
        parts += [f"normalised (mean {list(self.mean)}, std {list(self.std)})"] if self.mean or self.std else []
        parts += ["probabilities read as log-probabilities (the same differences between classes as logits)"] \
            if self.scores == "probabilities" else []
        return ", ".join(parts)


def image_input(model: onnx.ModelProto) -> onnx.ValueInfoProto:
    """The graph's one input that is not an initializer."""
    initializers = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise EvaluatorError(f"expected one image input, found {len(inputs)}")
    return inputs[0]


def input_dims(value: onnx.ValueInfoProto) -> list[int | None]:
    return [dim.dim_value if dim.HasField("dim_value") else None for dim in value.type.tensor_type.shape.dim]


def detect_layout(dims: list[int | None]) -> str:
    """NHWC when the last dimension looks like channels (1, 3 or 4) and the second does not; NCHW otherwise."""
    if len(dims) == 4 and dims[3] in (1, 3, 4) and dims[1] not in (1, 3, 4):
        return "NHWC"
    return "NCHW"


def producer_chain(model: onnx.ModelProto, name: str) -> list[str]:
    """The op types that produce `name`, walking back through shape-only ops (Identity, Reshape, Flatten, Squeeze)."""
    producers = {output: node for node in model.graph.node for output in node.output}
    chain = []
    while name in producers:
        node = producers[name]
        chain.append(node.op_type)
        if node.op_type not in ("Identity", "Reshape", "Flatten", "Squeeze") or not node.input:
            break
        name = node.input[0]
    return chain


def detect_scores(model: onnx.ModelProto, output: str) -> str:
    """probabilities when the output comes from a Softmax (through shape-only ops), else logits."""
    chain = producer_chain(model, output)
    return "probabilities" if chain and chain[-1] == "Softmax" else "logits"


def number_tuple(values: Any) -> tuple[float, ...]:
    return tuple(float(value) for value in values) if values else ()


def resolve_input(model: onnx.ModelProto, metadata: dict[str, Any] | None, overrides: InputOverrides) -> GraphInput:
    """The GraphInput of `model`: each setting from `overrides`, else the metadata's `input` block, else the graph
    (a uint8 input takes pixels 0-255)."""
    recorded = (metadata or {}).get("input") or {}
    value = image_input(model)
    dims = input_dims(value)
    outputs = [value.name for value in model.graph.output]
    output = overrides.output or recorded.get("output") or outputs[0]
    if output not in outputs:
        raise EvaluatorError(f"output {output!r} is not one of the graph's outputs ({', '.join(outputs)})", field="output")
    layout = (overrides.layout or recorded.get("layout") or detect_layout(dims)).upper()
    if layout not in LAYOUTS:
        raise EvaluatorError(f"layout must be NCHW or NHWC, got {layout!r}", field="layout")
    scale = RANGES.get(overrides.input_range or "", None)
    if overrides.input_range is not None and scale is None:
        raise EvaluatorError(f"input_range must be 0-1 or 0-255, got {overrides.input_range!r}", field="input_range")
    recorded_range = recorded.get("range")
    if scale is None:
        recorded_scale = float(recorded_range[1]) if isinstance(recorded_range, list) and len(recorded_range) == 2 else None
        uint8 = value.type.tensor_type.elem_type == TensorProto.UINT8  # whole pixels: 0-255 unless said otherwise
        scale = recorded_scale or (RANGES["0-255"] if uint8 else RANGES["0-1"])
    mean = number_tuple(overrides.mean if overrides.mean is not None else recorded.get("mean"))
    std = number_tuple(overrides.std if overrides.std is not None else recorded.get("std"))
    scores = overrides.scores or recorded.get("scores") or detect_scores(model, output)
    if scores not in SCORES:
        raise EvaluatorError(f"scores must be logits or probabilities, got {scores!r}", field="scores")
    spec = GraphInput(layout, scale, mean, std, output if len(outputs) > 1 else None, scores)
    check_channels(spec, dims)
    return spec


def check_channels(spec: GraphInput, dims: list[int | None]) -> None:
    channels = dims[3] if spec.layout == "NHWC" and len(dims) == 4 else (dims[1] if len(dims) == 4 else None)
    for name, values in (("mean", spec.mean), ("std", spec.std)):
        if values and channels is not None and len(values) not in (1, channels):
            raise EvaluatorError(f"{name} has {len(values)} values for an input of {channels} channels", field=name)
    if any(value == 0 for value in spec.std):
        raise EvaluatorError("std must not hold a zero", field="std")


def opset_of(model: onnx.ModelProto) -> int:
    return next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), 0)


def adapt(model: onnx.ModelProto, spec: GraphInput) -> onnx.ModelProto:
    """The graph behind a new input `evaluator_pixels` (N, C, H, W) float32 in [0, 1] that becomes the graph's own
    input (scaled, normalised, transposed, cast), with one output: the chosen one, float32, as logits (probabilities
    through a log). The deployed graph's nodes are unchanged; a plain graph with one output is returned as it is."""
    value = image_input(model)
    elem_type = value.type.tensor_type.elem_type
    if elem_type not in INPUT_TYPES:
        raise EvaluatorError(f"the graph's input is {TensorProto.DataType.Name(elem_type)}: the evaluator feeds float32, "
                             "float16 or uint8 images")
    output = spec.output or model.graph.output[0].name
    if spec.is_plain and elem_type == TensorProto.FLOAT and len(model.graph.output) == 1:
        return model
    adapted = copy.deepcopy(model)
    graph = adapted.graph
    dims = input_dims(value)
    nodes, initializers, current = [], [], ADAPTED_INPUT

    def step(op: str, *constants: np.ndarray, name: str = "", **attributes: Any) -> None:
        nonlocal current
        names = [current]
        for constant in constants:
            names.append(f"evaluator_{op.lower()}_{len(initializers)}")
            initializers.append(numpy_helper.from_array(constant, names[-1]))
        out = f"evaluator_{op.lower()}_{len(nodes)}_out"
        nodes.append(helper.make_node(op, names, [out], name=name or None, **attributes))
        current = out

    channel_shape = (1, -1, 1, 1)
    if spec.scale != 1.0:
        step("Mul", np.array(spec.scale, np.float32))
    if spec.mean:
        step("Sub", np.array(spec.mean, np.float32).reshape(channel_shape))
    if spec.std:
        step("Div", np.array(spec.std, np.float32).reshape(channel_shape))
    if spec.layout == "NHWC":
        step("Transpose", perm=[0, 2, 3, 1])
    if elem_type == TensorProto.UINT8:
        if opset_of(model) < 11:
            raise EvaluatorError("a uint8 input needs opset 11 or later (Round, Clip with bounds as inputs)")
        step("Round", name=f"{STRAIGHT_THROUGH}_round")
        step("Clip", np.array(0, np.float32), np.array(255, np.float32))
        step("Cast", name=f"{STRAIGHT_THROUGH}_cast", to=TensorProto.UINT8)
    elif elem_type == TensorProto.FLOAT16:
        step("Cast", to=TensorProto.FLOAT16)
    nodes.append(helper.make_node("Identity", [current], [value.name]))  # the graph's own input, now computed
    canonical = [dims[0], dims[3], dims[1], dims[2]] if spec.layout == "NHWC" else dims
    batch = value.type.tensor_type.shape.dim[0]
    batch_dim = batch.dim_value if batch.HasField("dim_value") else (batch.dim_param or None)
    new_input = helper.make_tensor_value_info(ADAPTED_INPUT, TensorProto.FLOAT, [batch_dim, *canonical[1:]])
    kept_inputs = [v for v in graph.input if v.name != value.name]
    del graph.input[:]
    graph.input.extend([new_input, *kept_inputs])
    old_nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend([*nodes, *old_nodes])
    graph.initializer.extend(initializers)
    chosen = next(v for v in model.graph.output if v.name == output)
    del graph.output[:]
    if spec.scores == "probabilities":
        current = output
        if chosen.type.tensor_type.elem_type != TensorProto.FLOAT:
            graph.node.append(helper.make_node("Cast", [current], ["evaluator_probabilities"], to=TensorProto.FLOAT))
            current = "evaluator_probabilities"
        tiny = numpy_helper.from_array(np.array(SMALLEST_PROBABILITY, np.float32), "evaluator_smallest_probability")
        graph.initializer.append(tiny)
        graph.node.append(helper.make_node("Max", [current, tiny.name], ["evaluator_floored"]))
        graph.node.append(helper.make_node("Log", ["evaluator_floored"], [LOG_PROBABILITIES]))
        graph.output.append(helper.make_tensor_value_info(LOG_PROBABILITIES, TensorProto.FLOAT, None))
    else:
        graph.output.append(chosen)
    return adapted
