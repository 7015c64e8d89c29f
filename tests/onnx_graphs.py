"""Hand-made ONNX graphs for the runtime's error paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def linear_classifier(path: Path, channels: int = 1, size: int = 28, classes: int = 10, weight_value: float = 0.01,
                      batch: str | int = "batch", softmax: bool = False, weight: np.ndarray | None = None) -> Path:
    """x (N, C, H, W) -> Flatten -> MatMul W -> logits (N, classes); W filled with `weight_value` (NaN allowed), or
    the given weight (C * H * W, classes)."""
    features = channels * size * size
    if weight is None:
        weight = np.full((features, classes), weight_value, np.float32)
    weight = numpy_helper.from_array(np.asarray(weight, np.float32).reshape(features, classes), "W")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["flat"]), helper.make_node("MatMul", ["flat", "W"], ["scores" if softmax else "logits"])]
        + ([helper.make_node("Softmax", ["scores"], ["logits"], axis=1)] if softmax else []),
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, channels, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def custom_op_model(path: Path) -> Path:
    """A valid ONNX file whose only node is an operator ONNX Runtime does not know."""
    graph = helper.make_graph(
        [helper.make_node("Mystery", ["x"], ["logits"], domain="com.example")],
        "custom",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def conv_chain(filters: list[int], channels: int = 1, size: int = 8) -> onnx.ModelProto:
    """x (1, channels, size, size) -> one 3x3 Conv (padding 1, all-ones weights) per entry of `filters`, in a chain."""
    nodes, weights, previous = [], [], channels
    for index, count in enumerate(filters):
        weights.append(numpy_helper.from_array(np.ones((count, previous, 3, 3), np.float32), f"w{index}"))
        nodes.append(helper.make_node("Conv", [f"h{index}" if index else "x", f"w{index}"], [f"h{index + 1}"], pads=[1, 1, 1, 1]))
        previous = count
    graph = helper.make_graph(nodes, "convs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])],
                              [helper.make_tensor_value_info(f"h{len(filters)}", TensorProto.FLOAT, [1, previous, size, size])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model
