"""Where each operator really runs: real ONNX Runtime profiles on the CPU of a small CNN in fp32, int8 QDQ (fused, and
with one Conv left unfused), and fp16; synthetic profiles for a GPU session, the averaging and the JSON form."""

from __future__ import annotations

import copy
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from evaluator.errors import EvaluatorError
from evaluator.placement import node_placement, parse_profile
from evaluator.precision import FLOAT_COMPUTE_OPS, FP16, FP32, INT8, graph_precision
from evaluator.results.placement import FLOAT_COMPUTE_KERNELS, INTEGER_COMPUTE_KERNELS, KernelPlacement, Placement

ort = pytest.importorskip("onnxruntime")
CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"
X = np.random.default_rng(0).random((2, 3, 16, 16), dtype=np.float32)


def small_cnn() -> onnx.ModelProto:
    """x (N, 3, 16, 16) -> conv1 -> relu1 -> conv2 -> relu2 -> GlobalAveragePool -> Flatten -> fc (Gemm) -> logits (N, 10)."""
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name) for name, shape in
               [("w1", (8, 3, 3, 3)), ("b1", (8,)), ("w2", (8, 8, 3, 3)), ("b2", (8,)), ("wf", (10, 8)), ("bf", (10,))]]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="pool"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


class Calibration:
    def __init__(self) -> None:
        self.batches = iter([{"x": np.random.default_rng(1).random((16, 3, 16, 16), dtype=np.float32)}])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.batches, None)


@pytest.fixture(scope="module")
def int8_cnn() -> onnx.ModelProto:
    """small_cnn quantized as `evaluator quantize` does: static QDQ, int8 weights per channel, int8 activations."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    with tempfile.TemporaryDirectory() as folder:
        onnx.save(small_cnn(), f"{folder}/float.onnx")
        quantize_static(f"{folder}/float.onnx", f"{folder}/int8.onnx", Calibration(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        return onnx.load(f"{folder}/int8.onnx")


def without_output_pair(model: onnx.ModelProto, node_name: str) -> onnx.ModelProto:
    """A copy where the QuantizeLinear -> DequantizeLinear pair on `node_name`'s output is removed: its inputs and
    weights are still dequantized, but with no quantized output ORT cannot fuse it into an integer kernel."""
    model = copy.deepcopy(model)
    node = next(n for n in model.graph.node if n.name == node_name)
    quantize = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == node.output[0])
    dequantize = next(n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == quantize.output[0])
    kept = [n for n in model.graph.node if n is not quantize and n is not dequantize]
    for n in kept:
        n.input[:] = [node.output[0] if name == dequantize.output[0] else name for name in n.input]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    onnx.checker.check_model(model)
    return model


def fp16_cnn(float16_io: bool = False) -> onnx.ModelProto:
    """small_cnn converted as `evaluator quantize --precision fp16` does (float32 at its edges unless float16_io)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = convert_float_to_float16(small_cnn(), keep_io_types=not float16_io)
    OnnxModel(model).topological_sort()
    return model


def base_name(node: str) -> str:
    """The ONNX node a kernel came from: ORT suffixes the nodes its fusions make with _token_<n>."""
    return re.sub(r"_token_\d+$", "", node)


def profiled(model: onnx.ModelProto) -> Placement:
    return node_placement(model, CPU, graph_precision(model), X, threads=1, runs=2)


def test_fp32_graph_runs_float_kernels_on_the_cpu_without_fallbacks() -> None:
    placement = profiled(small_cnn())
    assert (placement.provider, placement.precision, placement.batch_size) == (CPU, FP32, 2)
    assert {kernel.provider for kernel in placement.kernels} == {CPU}
    assert {(base_name(k.node), k.op) for k in placement.kernels if k.op in FLOAT_COMPUTE_OPS} >= {("fc", "Gemm")}
    assert sum(k.op in ("Conv", "FusedConv") for k in placement.kernels) == 2
    assert placement.fallbacks == ()
    assert placement.float_compute_share is None
    assert placement.time_share() == {CPU: pytest.approx(1.0)}
    assert all(kernel.mean_us > 0 for kernel in placement.kernels if kernel.op in FLOAT_COMPUTE_OPS)
    assert placement.summary() == f"{len(placement.kernels)} kernels on CPU; no fallbacks"


def test_int8_qdq_graph_runs_integer_kernels_without_fallbacks(int8_cnn: onnx.ModelProto) -> None:
    placement = profiled(int8_cnn)
    assert placement.precision == INT8
    compute = {(base_name(k.node), k.op) for k in placement.kernels
               if k.op in FLOAT_COMPUTE_OPS | INTEGER_COMPUTE_KERNELS}
    assert compute == {("conv1", "QLinearConv"), ("conv2", "QLinearConv"), ("fc", "QGemm")}
    conv1 = next(k for k in placement.kernels if base_name(k.node) == "conv1")
    assert conv1.input_types[0] in ("int8", "uint8")  # x86: ORT turns int8 activations into uint8
    assert placement.fallbacks == ()
    assert placement.float_compute_share == 0.0


def test_a_conv_whose_qdq_pair_is_not_fused_runs_in_float32_and_is_flagged(int8_cnn: onnx.ModelProto) -> None:
    partial = without_output_pair(int8_cnn, "conv2")
    placement = profiled(partial)
    assert placement.precision == INT8
    assert [(k.node, k.op, k.fallback) for k in placement.fallbacks] == [
        ("conv2", "Conv", "float32 compute in an int8 graph")]
    assert placement.fallbacks[0].input_types == ("float", "float", "float")
    ops = {base_name(k.node): k.op for k in placement.kernels}
    assert (ops["conv1"], ops["fc"]) == ("QLinearConv", "QGemm")
    share = placement.float_compute_share
    conv2 = placement.fallbacks[0].mean_us
    compute = sum(k.mean_us for k in placement.kernels if k.op in ("Conv", "QLinearConv", "QGemm"))
    assert share is not None and 0 < share < 1 and share == pytest.approx(conv2 / compute)
    assert placement.summary().startswith(f"{len(placement.kernels)} kernels on CPU; 1 fallback: conv2 (Conv, float32 "
                                          "compute in an int8 graph); float32 compute ")


def test_fp16_graph_on_the_cpu_computes_in_float32_and_is_flagged() -> None:
    placement = profiled(fp16_cnn())
    assert placement.precision == FP16
    reason = "float32 compute in an fp16 graph"
    # The convolutions' kernel names depend on the CPU (ORT's NCHWc layout where it has AVX2): checked by op.
    assert sorted((k.op, k.fallback) for k in placement.fallbacks if base_name(k.node) != "fc") in (
        [("Conv", reason)] * 2, [("FusedConv", reason)] * 2)
    assert [(k.op, k.input_types, k.fallback) for k in placement.fallbacks if k.node == "fc"] == [
        ("Gemm", ("float", "float"), reason)]
    assert not any(k.fallback for k in placement.kernels if k.node == "graph_output_cast0")  # the converter's own cast
    assert placement.float_compute_share == 1.0


def test_fp16_graph_with_float16_io_runs_the_casts_onnx_runtime_inserted() -> None:
    placement = node_placement(fp16_cnn(float16_io=True), CPU, FP16, X.astype(np.float16), threads=1, runs=1)
    cast = f"cast inserted by ONNX Runtime: no float16 kernel on {CPU}"
    assert [(k.node, k.input_types, k.fallback) for k in placement.fallbacks if k.op == "Cast"] == [
        ("InsertedPrecisionFreeCast_x", ("float16",), cast), ("InsertedPrecisionFreeCast_logits", ("float",), cast)]
    assert sum(k.fallback == "float32 compute in an fp16 graph" for k in placement.fallbacks) == 3


def test_node_placement_leaves_no_profile_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    placement = node_placement(small_cnn(), CPU, FP32, X, threads=1, runs=1)
    assert placement.kernels and list(tmp_path.iterdir()) == []


def test_node_placement_reports_what_onnx_runtime_cannot_run() -> None:
    broken = small_cnn()
    broken.graph.node[0].op_type = "Mystery"
    with pytest.raises(EvaluatorError, match="ONNX Runtime could not profile the graph on CPUExecutionProvider"):
        node_placement(broken, CPU, FP32, X, threads=1)


def kernel_event(node: str, op: str, provider: str, types: list[str], dur: float, ts: float) -> dict[str, Any]:
    return {"cat": "Node", "name": f"{node}_kernel_time", "ph": "X", "ts": ts, "dur": dur,
            "args": {"op_name": op, "provider": provider, "input_type_shape": [{kind: [1]} for kind in types]}}


def session_event(name: str, ts: float, dur: float) -> dict[str, Any]:
    return {"cat": "Session", "name": name, "ph": "X", "ts": ts, "dur": dur, "args": {}}


def gpu_run(ts: float, conv_us: float) -> list[dict[str, Any]]:
    """One run of a CUDA session: shape bookkeeping on the CPU, a Conv on CUDA, a Conv and a Gather of data that fell
    back to the CPU, and a fence event (older ORT versions write them) to ignore."""
    return [session_event("model_run", ts, 100),
            kernel_event("shape", "Shape", CPU, ["float"], 1, ts + 1),
            kernel_event("gather_shape", "Gather", CPU, ["int64", "int64"], 1, ts + 2),
            kernel_event("reshape", "Reshape", CPU, ["float", "int64"], 1, ts + 3),
            kernel_event("conv_gpu", "Conv", CUDA, ["float", "float", "float"], conv_us, ts + 4),
            kernel_event("conv_cpu", "Conv", CPU, ["float", "float", "float"], 2 * conv_us, ts + 5),
            kernel_event("gather_data", "Gather", CPU, ["float", "int64"], 4, ts + 6),
            {"cat": "Node", "name": "conv_gpu_fence_before", "ph": "X", "ts": ts + 7, "dur": 50, "args": {}}]


def test_a_gpu_session_flags_kernels_on_the_cpu_but_not_shape_bookkeeping() -> None:
    placement = parse_profile(gpu_run(0, 10), CUDA, FP32, 8, runs=1)
    assert [k.node for k in placement.kernels] == ["shape", "gather_shape", "reshape", "conv_gpu", "conv_cpu",
                                                   "gather_data"]
    assert [(k.node, k.fallback) for k in placement.fallbacks] == [
        ("conv_cpu", f"on {CPU}, not {CUDA}"), ("gather_data", f"on {CPU}, not {CUDA}")]
    assert placement.summary() == ("6 kernels: 5 on CPU, 1 on CUDA; 2 fallbacks: conv_cpu (Conv, on CPUExecutionProvider, "
                                   "not CUDAExecutionProvider), gather_data (Gather, on CPUExecutionProvider, not "
                                   "CUDAExecutionProvider)")


def test_a_float_conv_on_the_cpu_of_a_gpu_session_in_an_int8_graph_gives_both_reasons() -> None:
    placement = parse_profile(gpu_run(0, 10), CUDA, INT8, 8, runs=1)
    assert dict((k.node, k.fallback) for k in placement.fallbacks) == {
        "conv_cpu": f"on {CPU}, not {CUDA}; float32 compute in an int8 graph",
        "conv_gpu": "float32 compute in an int8 graph",
        "gather_data": f"on {CPU}, not {CUDA}"}


def test_a_cpu_session_flags_nothing_for_its_provider() -> None:
    placement = parse_profile(gpu_run(0, 10), CPU, FP32, 8, runs=1)
    assert placement.fallbacks == ()


def test_kernels_are_averaged_over_the_runs_after_the_warm_up() -> None:
    events = gpu_run(0, 1000) + gpu_run(200, 10) + gpu_run(400, 30)
    placement = parse_profile(events, CUDA, FP32, 8, runs=2, warmup=1)
    means = {k.node: k.mean_us for k in placement.kernels}
    assert means["conv_gpu"] == 20.0 and means["conv_cpu"] == 40.0 and means["shape"] == 1.0
    every_run = parse_profile(events, CUDA, FP32, 8, runs=3)
    assert {k.node: k.mean_us for k in every_run.kernels}["conv_gpu"] == pytest.approx(1040 / 3)
    with pytest.raises(ValueError, match="holds 3 runs, expected 1 \\+ 3"):
        parse_profile(events, CUDA, FP32, 8, runs=3, warmup=1)


def test_time_share_sums_to_one_per_provider() -> None:
    placement = parse_profile(gpu_run(0, 10), CUDA, FP32, 8, runs=1)
    assert placement.time_share() == {CPU: pytest.approx(27 / 37), CUDA: pytest.approx(10 / 37)}
    assert sum(placement.time_share().values()) == pytest.approx(1.0)
    assert Placement(CPU, FP32, 1, ()).time_share() == {}


def test_float_compute_share_counts_integer_and_float_compute_kernels() -> None:
    kernels = (KernelPlacement("a", "QLinearConv", CPU, ("uint8", "float"), 30.0),
               KernelPlacement("b", "Conv", CPU, ("float", "float"), 10.0, "float32 compute in an int8 graph"),
               KernelPlacement("c", "Relu", CPU, ("float",), 60.0),
               KernelPlacement("d", "DynamicQuantizeMatMul", CPU, ("float", "float", "int8"), 10.0))
    assert Placement(CPU, INT8, 4, kernels).float_compute_share == pytest.approx(10 / 50)
    assert Placement(CPU, FP32, 4, kernels).float_compute_share is None
    half = (KernelPlacement("e", "Conv", CUDA, ("float16",), 30.0), KernelPlacement("f", "Gemm", CUDA, ("float",), 10.0))
    assert Placement(CUDA, FP16, 4, half).float_compute_share == pytest.approx(0.25)


def test_summary_names_three_fallbacks_and_counts_the_rest() -> None:
    kernels = tuple(KernelPlacement(f"conv{i}", "Conv", CPU, ("float",), 1.0, "float32 compute in an fp16 graph")
                    for i in range(5))
    assert Placement(CPU, FP16, 1, kernels).summary() == (
        "5 kernels on CPU; 5 fallbacks: conv0 (Conv, float32 compute in an fp16 graph), conv1 (Conv, float32 compute "
        "in an fp16 graph), conv2 (Conv, float32 compute in an fp16 graph), and 2 more; float32 compute 100% of "
        "compute time")


def test_json_round_trip() -> None:
    placement = parse_profile(gpu_run(0, 10) + gpu_run(200, 30), CUDA, INT8, 8, runs=2)
    data = json.loads(json.dumps(placement.to_dict()))
    assert Placement.from_dict(data) == placement
    assert data["fallbacks"] == 3 and data["float_compute_share"] == 1.0
    assert data["kernels"][4] == {"node": "conv_cpu", "op": "Conv", "provider": CPU, "input_types": ["float"] * 3,
                                  "mean_us": 40.0, "fallback": f"on {CPU}, not {CUDA}; float32 compute in an int8 graph"}


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(EvaluatorError, match="unknown precision 'int4'"):
        parse_profile([], CPU, "int4", 1, runs=1)


def test_the_results_copy_of_the_float_compute_ops_matches_evaluator_precision() -> None:
    assert FLOAT_COMPUTE_KERNELS == FLOAT_COMPUTE_OPS


def test_names_orts_optimiser_numbers_are_made_stable() -> None:
    """ORT numbers the nodes its optimiser makes (`_token_N`) in no fixed order from one session to the next: the
    record names them without the number, counting repeats in execution order."""
    events = [{"cat": "Node", "name": f"{name}_kernel_time", "ts": index, "dur": 1,
               "args": {"op_name": "ReorderOutput", "provider": "CPUExecutionProvider", "input_type_shape": [{"float": [1]}]}}
              for index, name in enumerate(("ReorderOutput_token_5", "conv", "ReorderOutput"))]
    placement = parse_profile(events, "CPUExecutionProvider", "fp32", 1, 1)
    assert [kernel.node for kernel in placement.kernels] == ["ReorderOutput", "conv", "ReorderOutput#2"]
