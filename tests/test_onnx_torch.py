"""ONNX graphs converted to torch modules (evaluator.onnx_torch): the zoo and graphs from both of torch's exporters
agree with ONNX Runtime within the export check's tolerance and give gradients; graphs it cannot run are refused
at conversion."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

torch = pytest.importorskip("torch")

from conftest import ROOT  # noqa: E402
from evaluator.agreement import MAX_LOGIT_DIFF, MAX_LOGIT_RELATIVE  # noqa: E402
from evaluator.datasets import Split, load_dataset  # noqa: E402
from evaluator.onnx_torch import OPS, UnsupportedGraph, convert_onnx, logits_before_softmax, verify_conversion  # noqa: E402
from evaluator.onnx_torch.registry import Op  # noqa: E402
from onnx_torch_models import MobileStyle, export  # noqa: E402

ZOO = sorted((ROOT / "models").glob("*.onnx"))
EXPORTERS = {"dynamo": True, "torchscript": False}


@pytest.fixture(scope="module")
def test_images() -> Split:
    test = load_dataset("fashion-mnist", test_only=True).test
    return Split(test.x[:256], test.y[:256])


def assert_gradient(module: torch.nn.Module, x: np.ndarray) -> None:
    """d(sum of the top logits)/dx exists, is finite and is not zero everywhere."""
    inputs = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
    module(inputs).max(dim=1).values.sum().backward()
    assert inputs.grad is not None and torch.isfinite(inputs.grad).all() and inputs.grad.abs().sum() > 0


@pytest.mark.parametrize("path", ZOO, ids=[p.stem for p in ZOO])
def test_a_zoo_model_converts_agrees_and_has_gradients(path, test_images: Split) -> None:
    module = convert_onnx(path)
    check = verify_conversion(module, path, test_images.x, batch_size=100)
    assert check.ok, check
    assert check.samples == 256 and check.top1_agreement == 1.0
    assert check.limit == pytest.approx(MAX_LOGIT_DIFF + MAX_LOGIT_RELATIVE * check.max_abs_diff / check.max_relative_diff)
    assert_gradient(module, test_images.x[:16])


@pytest.mark.slow
@pytest.mark.parametrize("name, width", [("resnet8", 0.5), ("vgg11", 0.25)])
def test_the_study_architectures_convert_through_the_project_export(name: str, width: float, test_images: Split) -> None:
    """ResNet-8 and VGG-11 (not committed to the zoo) with random weights and batch-norm statistics, exported by the
    exporters' own path (torch.export, then the dynamo ONNX exporter)."""
    from exporters.architectures import ArchSpec, build_model
    from exporters.artifacts import export_program, to_onnx

    torch.manual_seed(0)
    model = build_model(ArchSpec(name, width=width)).eval()
    for layer in model.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.running_mean.uniform_(-0.2, 0.2)
            layer.running_var.uniform_(0.5, 2.0)
    example = torch.from_numpy(test_images.x[:2].copy())
    proto = to_onnx(export_program(model, example), example)
    module = convert_onnx(proto)
    check = verify_conversion(module, proto, test_images.x)
    assert check.ok, check
    assert_gradient(module, test_images.x[:8])


@pytest.fixture(scope="module")
def mobile() -> torch.nn.Module:
    torch.manual_seed(0)
    return MobileStyle().eval()


def images_0_255(batch: int) -> np.ndarray:
    return (np.random.default_rng(batch).random((batch, 16, 16, 3)) * 255).astype(np.float32)


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_an_nhwc_0_255_mobile_style_graph_with_a_dynamic_batch(exporter: str, mobile: torch.nn.Module) -> None:
    """Transpose first, scaling by Div/Mul/Sub, BatchNorm, depthwise conv, Hardswish, residual Add, Concat,
    AveragePool, Reshape (through Shape ops from the TorchScript exporter), Softmax; run at batch 7 and 1."""
    proto = export(mobile, torch.from_numpy(images_0_255(2)), EXPORTERS[exporter], dynamic=True)
    ops = {node.op_type for node in proto.graph.node}
    assert {"Transpose", "Div", "Mul", "Sub", "BatchNormalization", "HardSwish", "Add", "Concat", "AveragePool",
            "Reshape", "Softmax"} <= ops
    if exporter == "torchscript":
        assert {"Shape", "Gather", "Unsqueeze"} <= ops
    module = convert_onnx(proto)
    assert module.input_shape[1:] == (16, 16, 3)
    for batch in (7, 1):
        x = images_0_255(batch)
        check = verify_conversion(module, proto, x)
        assert check.ok, check
        reference = mobile(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(module(torch.from_numpy(x)).detach().numpy(), reference, atol=1e-5)
    assert_gradient(module, images_0_255(3))


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_a_graph_with_a_fixed_batch_of_one(exporter: str, mobile: torch.nn.Module) -> None:
    proto = export(mobile, torch.from_numpy(images_0_255(1)), EXPORTERS[exporter], dynamic=False)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    module = convert_onnx(proto)
    check = verify_conversion(module, proto, images_0_255(5), batch_size=1)
    assert check.ok and check.samples == 5, check


def test_an_inner_tensor_can_be_the_output(tmp_path) -> None:
    """The logits before a final Softmax: named by the caller, checked by adding them to the graph's outputs."""
    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((12, 4)).astype(np.float32), "W")
    graph = helper.make_graph([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "W"], ["logits"]),
                               helper.make_node("Softmax", ["logits"], ["probs"], axis=1)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 2, 2])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", 4])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "softmax.onnx"
    onnx.save(model, str(path))
    x = np.random.default_rng(1).standard_normal((6, 3, 2, 2)).astype(np.float32) * 5
    assert logits_before_softmax(model) == "logits" and logits_before_softmax(model, "logits") == "logits"
    logits = convert_onnx(path, output=logits_before_softmax(model))
    assert verify_conversion(logits, path, x).require().ok
    assert [step[0].op_type for step in logits.steps] == ["Flatten", "MatMul"]
    probabilities = convert_onnx(path)
    assert probabilities.output_name == "probs" and verify_conversion(probabilities, model, x).ok
    with pytest.raises(UnsupportedGraph, match="nothing produces it"):
        convert_onnx(model, output="no_such_tensor")


def tiny_graph(last: onnx.NodeProto, domain: str | None = None) -> onnx.ModelProto:
    """x -> Relu -> Add(constant folded at conversion) -> `last` -> y."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("Add", ["c", "c"], ["cc"], name="fold"),
             helper.make_node("Add", ["r", "cc"], ["a"], name="add"), last]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])],
                              [numpy_helper.from_array(np.ones(4, np.float32), "c")])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets)


@pytest.mark.parametrize("last, pattern", [
    (helper.make_node("Einsum", ["a"], ["y"], name="einsum", equation="ij->ij"), r"'einsum' \(Einsum\): op Einsum has no"),
    (helper.make_node("ConvInteger", ["a", "c"], ["y"], name="ci"), r"integer-kernel ops \(ConvInteger\)"),
    (helper.make_node("DynamicQuantizeLinear", ["a"], ["y", "s", "z"], name="dq"), r"QDQ graphs .* are"),
    (helper.make_node("Resize", ["a", "", "c"], ["y"], name="cubic", mode="cubic"), r"mode='cubic'"),
    (helper.make_node("MaxPool", ["a"], ["y", "idx"], name="pool", kernel_shape=[1]), r"Indices output"),
], ids=["unknown-op", "conv-integer", "dynamic-quantize", "cubic-resize", "maxpool-indices"])
def test_a_graph_it_cannot_run_is_refused_before_anything_runs(last: onnx.NodeProto, pattern: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ran = []
    original = OPS["Add"]
    monkeypatch.setitem(OPS, "Add", Op(lambda x, node: ran.append(node.name) or original.run(x, node), original.check))
    with pytest.raises(UnsupportedGraph, match=pattern) as raised:
        convert_onnx(tiny_graph(last))
    assert raised.value.op_type == last.op_type and raised.value.node_name == last.name
    assert ran == []  # not even the constant folding ran
    convert_onnx(tiny_graph(helper.make_node("Relu", ["a"], ["y"])))
    assert ran == ["fold"]  # the same graph without the refused node folds its constant at conversion


def test_an_op_of_another_domain_is_refused() -> None:
    with pytest.raises(UnsupportedGraph, match="domain 'com.example'"):
        convert_onnx(tiny_graph(helper.make_node("Mystery", ["a"], ["y"], name="m", domain="com.example"), "com.example"))


def test_a_mismatch_is_reported(tmp_path) -> None:
    """verify_conversion against a different graph: the check fails and require() raises one line."""
    from evaluator.onnx_torch import ConversionMismatch

    module = convert_onnx(tiny_graph(helper.make_node("Relu", ["a"], ["y"])))
    other = tiny_graph(helper.make_node("Neg", ["a"], ["y"]))
    check = verify_conversion(module, other, np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32))
    assert not check.ok and check.max_abs_diff > 1
    with pytest.raises(ConversionMismatch, match="does not match ONNX Runtime"):
        check.require()


def test_the_tolerance_lives_in_the_library_and_loads_without_the_engine() -> None:
    probe = ("import json, sys, evaluator.agreement, evaluator.attacks; "
             "print(json.dumps(sorted(n for n in sys.modules if n == 'torch' or n.startswith('torch.'))))")
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(completed.stdout) == []
    from exporters import artifacts

    assert (artifacts.MAX_LOGIT_DIFF, artifacts.MAX_LOGIT_RELATIVE) == (MAX_LOGIT_DIFF, MAX_LOGIT_RELATIVE)


def test_local_functions_are_inlined() -> None:
    """A graph whose node calls a model-local function (as exporters write for composite ops) runs its body."""
    body = helper.make_function("local", "Swish", ["t"], ["u"], [helper.make_node("Sigmoid", ["t"], ["s"]),
                                                                  helper.make_node("Mul", ["t", "s"], ["u"])],
                                [helper.make_opsetid("", 17)])
    graph = helper.make_graph([helper.make_node("Swish", ["x"], ["y"], domain="local")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
                              functions=[body])
    model.ir_version = 8
    module = convert_onnx(model)
    assert [step[0].op_type for step in module.steps] == ["Sigmoid", "Mul"]
    assert verify_conversion(module, model, np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)).ok


class WholePixels(torch.nn.Module):
    """uint8 (N, 16, 16, 3) pixels, cast to float inside the graph, as image pipelines feed them."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.float())


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_a_uint8_input_graph_gets_straight_through_gradients(exporter: str, mobile: torch.nn.Module) -> None:
    """The adapter rounds the evaluator's [0, 1] pixels to uint8; its converted rounding passes gradients straight
    through (a plain Round would give zero gradients), while the values still agree with ONNX Runtime."""
    from evaluator.graph_input import adapt, resolve_input
    from evaluator.input_options import InputOverrides

    proto = export(WholePixels(mobile), torch.from_numpy(images_0_255(2)).to(torch.uint8), EXPORTERS[exporter], dynamic=True)
    spec = resolve_input(proto, None, InputOverrides())
    assert spec.scale == 255.0 and spec.layout == "NHWC"  # detected: uint8 pixels, channels last
    adapted = adapt(proto, spec)
    assert [n.op_type for n in adapted.graph.node if n.name.startswith("evaluator_straight_through")] == ["Round", "Cast"]
    module = convert_onnx(adapted, logits_before_softmax(adapted))
    x = np.random.default_rng(0).random((6, 3, 16, 16)).astype(np.float32)
    check = verify_conversion(module, adapted, x)
    assert check.ok, check
    pixels = torch.from_numpy(x).requires_grad_(True)
    module(pixels).logsumexp(dim=1).sum().backward()
    assert pixels.grad is not None and float(pixels.grad.abs().sum()) > 0
