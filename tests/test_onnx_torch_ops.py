"""The converter op by op: one-node (or few-node) graphs made with onnx.helper, each run by the converted torch
module and by ONNX Runtime on the same random input."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

torch = pytest.importorskip("torch")

from evaluator.onnx_torch import convert_onnx  # noqa: E402
from evaluator.runtime import import_onnxruntime  # noqa: E402

RNG = np.random.default_rng(0)


def w(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def graph(nodes: list[onnx.NodeProto], shape: tuple[int, ...], inits: dict[str, np.ndarray] | None = None,
          opset: int = 17) -> onnx.ModelProto:
    """Input x (float32, `shape`), output y."""
    initializers = [numpy_helper.from_array(value, name) for name, value in (inits or {}).items()]
    body = helper.make_graph(nodes, "case", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)
    model = helper.make_model(body, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def n(op_type: str, inputs: list[str], outputs: list[str] | None = None, **attrs: Any) -> onnx.NodeProto:
    return helper.make_node(op_type, inputs, outputs or ["y"], **attrs)


NCHW = (2, 3, 7, 7)
CASES: dict[str, tuple[list[onnx.NodeProto], tuple[int, ...], dict[str, np.ndarray], int]] = {
    "conv_same_upper": ([n("Conv", ["x", "w"], auto_pad="SAME_UPPER", strides=[2, 2])], NCHW, {"w": w(4, 3, 3, 3)}, 17),
    "conv_same_lower": ([n("Conv", ["x", "w", "b"], auto_pad="SAME_LOWER", strides=[2, 2])], NCHW,
                        {"w": w(4, 3, 4, 4), "b": w(4)}, 17),
    "conv_valid_dilated_grouped": ([n("Conv", ["x", "w"], auto_pad="VALID", dilations=[2, 2], group=3)], NCHW,
                                   {"w": w(6, 1, 3, 3)}, 17),
    "conv_asymmetric_pads": ([n("Conv", ["x", "w"], pads=[0, 1, 2, 1])], NCHW, {"w": w(2, 3, 3, 2)}, 17),
    "conv_1d": ([n("Conv", ["x", "w"], pads=[1, 1], strides=[2])], (2, 3, 9), {"w": w(4, 3, 3)}, 17),
    "conv_transpose": ([n("ConvTranspose", ["x", "w", "b"], strides=[2, 2], pads=[1, 1, 0, 0], output_padding=[1, 1])],
                       NCHW, {"w": w(3, 2, 3, 3), "b": w(2)}, 17),
    "max_pool_same_upper": ([n("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")], NCHW, {}, 17),
    "max_pool_ceil": ([n("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)],
                      NCHW, {}, 17),
    "max_pool_asymmetric": ([n("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1])], NCHW, {}, 17),
    "avg_pool_exclude_pad": ([n("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
                             NCHW, {}, 17),
    "avg_pool_include_pad": ([n("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                count_include_pad=1)], NCHW, {}, 17),
    "avg_pool_ceil": ([n("AveragePool", ["x"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)], NCHW, {}, 17),
    "avg_pool_asymmetric": ([n("AveragePool", ["x"], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1])],
                            NCHW, {}, 17),
    "global_pools": ([n("GlobalMaxPool", ["x"], ["m"]), n("GlobalAveragePool", ["x"], ["a"]), n("Sub", ["m", "a"])],
                     NCHW, {}, 17),
    "gemm_trans_a_alpha_beta": ([n("Gemm", ["x", "w", "c"], transA=1, alpha=0.5, beta=2.0)], (6, 4),
                                {"w": w(6, 5), "c": w(4, 5)}, 17),
    "matmul_batched": ([n("MatMul", ["x", "w"])], (2, 3, 4), {"w": w(4, 5)}, 17),
    "prelu": ([n("PRelu", ["x", "s"])], NCHW, {"s": w(3, 1, 1)}, 17),
    "clip_inputs": ([n("Clip", ["x", "lo", "hi"])], NCHW, {"lo": np.array(-0.5, np.float32), "hi": np.array(0.7, np.float32)}, 17),
    "clip_min_only": ([n("Clip", ["x", "lo"])], NCHW, {"lo": np.array(-0.5, np.float32)}, 17),
    "clip_attributes": ([n("Clip", ["x"], min=-0.2, max=0.3)], NCHW, {}, 6),
    "log_sqrt_pow": ([n("Abs", ["x"], ["a"]), n("Add", ["a", "one"], ["p"]), n("Log", ["p"], ["l"]), n("Sqrt", ["p"], ["s"]),
                      n("Pow", ["p", "e"], ["q"]), n("Reciprocal", ["q"], ["r"]), n("Sum", ["l", "s", "r"])],
                     NCHW, {"one": np.array(1.0, np.float32), "e": np.array(2.5, np.float32)}, 17),
    "softmax_opset11_flattens": ([n("Softmax", ["x"], axis=1)], NCHW, {}, 11),
    "softmax_opset13_axis": ([n("Softmax", ["x"], axis=1)], NCHW, {}, 13),
    "log_softmax": ([n("LogSoftmax", ["x"])], (4, 10), {}, 13),
    "reduce_mean_attr": ([n("ReduceMean", ["x"], axes=[2, 3], keepdims=0)], NCHW, {}, 13),
    "reduce_sum_input": ([n("ReduceSum", ["x", "axes"])], NCHW, {"axes": i64(1, -1)}, 13),
    "reduce_max_input": ([n("ReduceMax", ["x", "axes"], keepdims=0)], NCHW, {"axes": i64(2)}, 18),
    "reduce_mean_all": ([n("ReduceMean", ["x"])], NCHW, {}, 13),
    "pad_constant": ([n("Pad", ["x", "pads", "v"])], NCHW, {"pads": i64(0, 0, 1, 2, 0, 0, 2, 1), "v": np.array(0.5, np.float32)}, 13),
    "pad_reflect": ([n("Pad", ["x", "pads"], mode="reflect")], NCHW, {"pads": i64(0, 0, 2, 1, 0, 0, 1, 2)}, 13),
    "pad_edge_axes": ([n("Pad", ["x", "pads", "", "axes"], mode="edge")], NCHW, {"pads": i64(1, 2, 3, 0), "axes": i64(2, 3)}, 18),
    "pad_attributes": ([n("Pad", ["x"], pads=[0, 0, 1, 1, 0, 0, 1, 1], value=-1.0)], NCHW, {}, 10),
    "resize_nearest_default": ([n("Resize", ["x", "", "s"])], NCHW, {"s": np.array([1, 1, 2, 2], np.float32)}, 13),
    "resize_nearest_asymmetric_floor": ([n("Resize", ["x", "", "s"], coordinate_transformation_mode="asymmetric",
                                          nearest_mode="floor")], NCHW, {"s": np.array([1, 1, 3, 2], np.float32)}, 13),
    "resize_linear_half_pixel": ([n("Resize", ["x", "", "s"], mode="linear")], NCHW, {"s": np.array([1, 1, 2, 2], np.float32)}, 13),
    "resize_linear_align_corners_sizes": ([n("Resize", ["x", "", "", "sz"], mode="linear",
                                            coordinate_transformation_mode="align_corners")], NCHW, {"sz": i64(2, 3, 12, 5)}, 13),
    "resize_linear_pytorch_down": ([n("Resize", ["x", "", "s"], mode="linear", coordinate_transformation_mode="pytorch_half_pixel")],
                                   (2, 3, 8, 8), {"s": np.array([1, 1, 0.5, 0.5], np.float32)}, 13),
    "split_input_sizes": ([n("Split", ["x", "sizes"], ["a", "b"], axis=3), n("Mul", ["b", "b"], ["bb"]),
                           n("ReduceSum", ["a", "ax"], ["s"]), n("Add", ["bb", "s"])], NCHW, {"sizes": i64(3, 4), "ax": i64(3)}, 13),
    "split_num_outputs": ([n("Split", ["x"], ["a", "b", "c"], axis=1, num_outputs=3), n("Sub", ["a", "c"])], (2, 7, 4), {}, 18),
    "split_equal_attr": ([n("Split", ["x"], ["a", "b"], axis=2), n("Max", ["a", "b"])], (2, 3, 8), {}, 11),
    "slice_negative_step": ([n("Slice", ["x", "st", "en", "ax", "sp"])], NCHW,
                            {"st": i64(-1, 5), "en": i64(-(2**63), 0), "ax": i64(3, 2), "sp": i64(-2, -1)}, 13),
    "slice_clamped": ([n("Slice", ["x", "st", "en", "ax"])], NCHW, {"st": i64(1, -100), "en": i64(2**62, 3), "ax": i64(1, 3)}, 13),
    "slice_attributes": ([n("Slice", ["x"], starts=[1], ends=[-1], axes=[2])], NCHW, {}, 9),
    "gather_scalar_negative": ([n("Gather", ["x", "i"], axis=1)], NCHW, {"i": np.array(-1, np.int64)}, 13),
    "gather_matrix": ([n("Gather", ["x", "i"], axis=3)], NCHW, {"i": np.array([[0, 6], [2, -3]], np.int64)}, 13),
    "squeeze_unsqueeze_attrs": ([n("Unsqueeze", ["x"], ["u"], axes=[0, -1]), n("Squeeze", ["u"], axes=[0, 5])], NCHW, {}, 11),
    "squeeze_unsqueeze_inputs": ([n("Unsqueeze", ["x", "a"], ["u"]), n("Squeeze", ["u", "a"])], NCHW, {"a": i64(1)}, 13),
    "squeeze_all": ([n("ReduceMean", ["x"], ["m"], axes=[1], keepdims=1), n("Squeeze", ["m"])], (1, 3, 1, 5), {}, 13),
    "expand_tile": ([n("Expand", ["x", "s"], ["e"]), n("Tile", ["e", "r"])], (3, 1, 4), {"s": i64(2, 3, 5, 1), "r": i64(1, 2, 1, 3)}, 13),
    "where_compare_cast": ([n("Greater", ["x", "z"], ["g"]), n("Equal", ["x", "x"], ["e"]), n("Less", ["x", "z"], ["l"]),
                            n("Where", ["g", "x", "z"], ["r"]), n("Cast", ["l"], ["lf"], to=TensorProto.FLOAT),
                            n("Cast", ["e"], ["ef"], to=TensorProto.FLOAT), n("Add", ["r", "lf"], ["a"]), n("Mul", ["a", "ef"])],
                           NCHW, {"z": np.array(0.0, np.float32)}, 13),
    "variadic": ([n("Max", ["x", "c"], ["a"]), n("Min", ["x", "c"], ["b"]), n("Mean", ["a", "b", "x"], ["m"]),
                  n("Sum", ["m", "a"])], NCHW, {"c": w(3, 1, 1)}, 13),
    "shape_path_range": ([n("Shape", ["x"], ["s"]), n("Gather", ["s", "k"], ["d"]), n("Range", ["zero", "d", "one"], ["r"]),
                          n("Cast", ["r"], ["rf"], to=TensorProto.FLOAT), n("Add", ["x", "rf"])], NCHW,
                         {"k": np.array(3, np.int64), "zero": np.array(0, np.int64), "one": np.array(1, np.int64)}, 13),
    "constant_of_shape": ([n("Shape", ["x"], ["s"]), n("ConstantOfShape", ["s"], ["c"],
                           value=numpy_helper.from_array(np.array([0.25], np.float32))), n("Sub", ["x", "c"])], NCHW, {}, 13),
    "shape_start_end_flatten": ([n("Shape", ["x"], ["s"], start=1, end=3), n("Concat", ["m1", "s"], ["t"], axis=0),
                                 n("Reshape", ["x", "t"], ["r"]), n("Flatten", ["r"], axis=2)], (2, 3, 4, 5), {"m1": i64(-1)}, 15),
    "reshape_zero": ([n("Reshape", ["x", "s"])], NCHW, {"s": i64(0, -1, 7)}, 13),
    "transpose_default": ([n("Transpose", ["x"])], NCHW, {}, 13),
    "layer_norm": ([n("LayerNormalization", ["x", "g", "b"], axis=-2, epsilon=1e-3)], NCHW, {"g": w(7, 7), "b": w(7, 7)}, 17),
    "layer_norm_broadcast_scale": ([n("LayerNormalization", ["x", "g"], axis=1)], NCHW, {"g": w(1, 7)}, 17),
    "instance_norm": ([n("InstanceNormalization", ["x", "g", "b"])], NCHW, {"g": w(3), "b": w(3)}, 17),
    "batch_norm": ([n("BatchNormalization", ["x", "g", "b", "m", "v"], epsilon=1e-3)], NCHW,
                   {"g": w(3), "b": w(3), "m": w(3), "v": np.abs(w(3)) + 0.5}, 15),
    "cast_int_round_trip": ([n("Mul", ["x", "ten"], ["m"]), n("Cast", ["m"], ["i"], to=TensorProto.INT64),
                             n("Cast", ["i"], ["y"], to=TensorProto.FLOAT)], NCHW, {"ten": np.array(10.0, np.float32)}, 13),
    "identity_dropout_constant": ([n("Identity", ["x"], ["i"]), n("Dropout", ["i"], ["d"]),
                                   n("Constant", [], ["c"], value_floats=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
                                   n("Mul", ["d", "c"])], NCHW, {}, 13),
    "lrn": ([n("LRN", ["x"], size=3, alpha=1e-2, beta=0.75, bias=2.0)], NCHW, {}, 13),
    "argmax_last": ([n("ArgMax", ["x"], ["a"], axis=1, select_last_index=1), n("Cast", ["a"], to=TensorProto.FLOAT)],
                    (2, 3, 4), {}, 13),
}
UNARY = [("Relu", {}), ("LeakyRelu", {"alpha": 0.1}), ("Elu", {"alpha": 0.7}), ("Selu", {}), ("HardSigmoid", {}),
         ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), ("HardSwish", {}), ("Sigmoid", {}), ("Tanh", {}), ("Softplus", {}),
         ("Exp", {}), ("Erf", {}), ("Neg", {}), ("Abs", {}), ("Softsign", {}), ("Floor", {})]


def ort_output(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    ort = import_onnxruntime()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["y"], {"x": x})[0]


def check_agreement(model: onnx.ModelProto, x: np.ndarray) -> None:
    expected = ort_output(model, x)
    got = convert_onnx(model)(torch.from_numpy(x)).detach().numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected.astype(got.dtype), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_graph_agrees_with_onnx_runtime(case: str) -> None:
    nodes, shape, inits, opset = CASES[case]
    check_agreement(graph(nodes, shape, inits, opset), np.random.default_rng(1).standard_normal(shape).astype(np.float32))


@pytest.mark.parametrize("op_type, attrs", UNARY, ids=[f"{op}{attrs}" for op, attrs in UNARY])
def test_an_activation_agrees_with_onnx_runtime(op_type: str, attrs: dict[str, float]) -> None:
    x = (np.random.default_rng(2).standard_normal(NCHW) * 3).astype(np.float32)
    check_agreement(graph([n(op_type, ["x"], **attrs)], NCHW, {}, 14), x)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_agrees_with_onnx_runtime(approximate: str) -> None:
    x = np.random.default_rng(3).standard_normal(NCHW).astype(np.float32)
    check_agreement(graph([n("Gelu", ["x"], approximate=approximate)], NCHW, {}, 20), x)
