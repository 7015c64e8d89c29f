"""`evaluator quantize` and the assessment of what it writes: int8 (static QDQ), int8-dynamic and fp16 artifacts of
the zoo parent, checked against their float32 parent; bad input refused in one line with nothing written; the
converter runs QDQ graphs; a masked gradient behind an int8 graph is flagged; precision rules of a policy."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from evaluator.app.cli import app
from evaluator.assess_config import AssessConfig
from evaluator.assessment import assess
from evaluator.datasets import Dataset
from evaluator.environment import int8_instructions
from evaluator.policy import evaluate_policy, policy_from_toml
from evaluator.precision import graph_precision
from evaluator.runtime import OnnxClassifier, unoptimised_logits

from conftest import ZOO_PARENT
from test_cli import one_error_line

runner = CliRunner()


def invoke(*args: object):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(arg) for arg in args])


@pytest.fixture(scope="module")
def zoo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zoo parent's .onnx, .pt2 and .json in a folder of their own."""
    folder = tmp_path_factory.mktemp("quantize")
    for suffix in (".onnx", ".pt2", ".json"):
        shutil.copy(ZOO_PARENT.with_suffix(suffix), folder)
    return folder / ZOO_PARENT.name


@pytest.fixture(scope="module")
def int8_model(zoo_copy: Path) -> Path:
    result = invoke("quantize", zoo_copy, "--precision", "int8", "--threads", "1")
    assert result.exit_code == 0, result.output
    return zoo_copy.with_name(f"{zoo_copy.stem}_int8.onnx")


def test_int8_artifact_records_how_it_was_made_and_keeps_accuracy(int8_model: Path, zoo_copy: Path) -> None:
    model = onnx.load(str(int8_model))
    assert graph_precision(model) == "int8" and graph_precision(onnx.load(str(zoo_copy))) == "fp32"
    card = json.loads(int8_model.with_suffix(".json").read_text())
    record = card["metadata"]["precision"]
    assert record["name"] == "int8" and record["parent"]["file"] == zoo_copy.name
    assert record["calibration"] == {"dataset": "fashion-mnist", "split": "train", "samples": 512, "seed": 0,
                                     "method": "minmax"}
    isa = int8_instructions()
    assert record["reduce_range"] == (isa["x86"] and not isa["vnni"])  # 7-bit weights where int8 kernels saturate
    assert record["activations"].startswith("uint8" if isa["x86"] else "int8")  # what the x86 int8 kernels take
    assert card["metadata"]["source"]["file"] == zoo_copy.with_suffix(".pt2").name  # the float source, for gradients
    check = card["precision_check"]
    assert check["samples"] == 10_000 and abs(check["accuracy_drop"]) <= 0.01 and check["top1_agreement"] >= 0.98
    assert check["kernel_agreement"] >= 0.99  # ORT's fused kernels compute what the QDQ nodes define
    assert zoo_copy.stat().st_size >= 3.5 * int8_model.stat().st_size
    assert card["files"]["onnx"]["sha256"] == __import__("hashlib").sha256(int8_model.read_bytes()).hexdigest()


def test_dynamic_and_fp16_artifacts(zoo_copy: Path, fmnist: Dataset, tmp_path: Path) -> None:
    parent = OnnxClassifier(zoo_copy, "cpu", threads=1)
    expected = parent.predict(fmnist.test.x[:2000])
    for precision, extra in (("int8-dynamic", []), ("fp16", []), ("fp16", ["--fp16-io"])):
        out = tmp_path / f"{precision}{''.join(extra)}.onnx"
        result = invoke("quantize", zoo_copy, "--precision", precision, "--out", out, "--threads", "1", *extra)
        assert result.exit_code == 0, result.output
        model = onnx.load(str(out))
        assert graph_precision(model) == precision
        input_type = model.graph.input[0].type.tensor_type.elem_type
        assert input_type == (onnx.TensorProto.FLOAT16 if extra else onnx.TensorProto.FLOAT)
        labels = OnnxClassifier(out, "cpu", threads=1).predict(fmnist.test.x[:2000])
        assert (labels == expected).mean() >= 0.98
        ratio = zoo_copy.stat().st_size / out.stat().st_size
        assert ratio >= (3.5 if precision == "int8-dynamic" else 1.9)


def test_bad_input_is_one_line_and_writes_nothing(int8_model: Path, zoo_copy: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "rgb32.npz"
    rng = np.random.default_rng(0)
    np.savez(wrong, x_train=rng.integers(0, 255, (64, 32, 32, 3), dtype=np.uint8), y_train=np.zeros(64, np.int64),
             x_test=rng.integers(0, 255, (16, 32, 32, 3), dtype=np.uint8), y_test=np.zeros(16, np.int64))
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not a model")
    cases = {
        "already int8": ([int8_model], "already int8"),
        "unknown precision": ([zoo_copy, "--precision", "int4"], "unknown"),
        "fp32 is no target": ([zoo_copy, "--precision", "fp32"], "float parent's precision"),
        "calibration of the wrong shape": ([zoo_copy, "--dataset", wrong], "(3, 32, 32)"),
        "no calibration samples": ([zoo_copy, "--calibration-samples", "0"], "at least 1"),
        "unknown calibration method": ([zoo_copy, "--calibration-method", "mse"], "calibration method"),
        "corrupt model": ([corrupt], "not a valid ONNX model"),
        "missing model": ([tmp_path / "missing.onnx"], "not found"),
    }
    for name, (arguments, expected) in cases.items():
        before = sorted(path.name for folder in (tmp_path, zoo_copy.parent) for path in folder.iterdir())
        line = one_error_line(invoke("quantize", *arguments, "--threads", "1"))
        assert expected in line, (name, line)
        assert sorted(path.name for folder in (tmp_path, zoo_copy.parent) for path in folder.iterdir()) == before, name


def test_converter_runs_a_qdq_graph_with_straight_through_gradients(int8_model: Path, fmnist: Dataset) -> None:
    from evaluator.onnx_torch import convert_onnx

    classifier = OnnxClassifier(int8_model, "cpu", threads=1)
    module = convert_onnx(classifier.graph)
    x = fmnist.test.x[:1000]
    with torch.no_grad():
        converted = module(torch.from_numpy(x)).numpy()
    reference = unoptimised_logits(classifier, x)  # the QDQ arithmetic, node by node
    assert (converted.argmax(1) == reference.argmax(1)).mean() >= 0.99
    assert np.median(np.abs(converted - reference)) < 1e-3
    inputs = torch.from_numpy(x[:32]).requires_grad_(True)
    torch.nn.functional.cross_entropy(module(inputs), torch.from_numpy(fmnist.test.y[:32])).backward()
    assert inputs.grad is not None and (inputs.grad.flatten(1).norm(dim=1) > 0).all()  # rounding does not block them


SMALL = AssessConfig(samples=60, attacks=("apgd-ce-linf:steps=20", "square-linf:queries=300"), threads=1)


@pytest.fixture(scope="module")
def int8_assessment(int8_model: Path):  # type: ignore[no-untyped-def]
    return assess([int8_model], SMALL).models[0]


def test_assessment_of_an_int8_graph(int8_assessment, int8_model: Path) -> None:  # type: ignore[no-untyped-def]
    model = int8_assessment
    assert model.precision.name == "int8" and model.precision.float_parent == ZOO_PARENT.name
    assert model.precision.float_parent_accuracy == pytest.approx(0.9062, abs=0.002)
    assert model.float_accuracy_drop == pytest.approx(model.precision.float_parent_accuracy - model.clean_accuracy)
    assert model.precision.speedup > 0 and model.precision.float_parent_throughput_per_s > 0  # timed side by side
    assert model.gradients == "converted graph"  # the int8 arithmetic itself, rounding straight-through
    assert {check.name: check.passed for check in model.checks}["int8-kernels-exact"]
    assert {check.name: check.passed for check in model.checks}["source-agrees"]
    kernels = {kernel.op for kernel in model.placement.kernels}
    assert {"QLinearConv", "QGemm"} <= kernels and not model.placement.fallbacks
    data = model.to_dict()
    assert data["precision"]["name"] == "int8" and data["placement"]["kernels"]
    assert all(result.robust.sum() <= model.attacked.clean_correct.sum() for result in model.attacks)
    slower = any("not faster than its float32 parent" in note for note in model.notes)
    assert slower == (model.precision.speedup < 1)


def test_masked_gradients_behind_an_int8_graph_are_flagged(int8_model: Path, tmp_path: Path) -> None:
    """A fake-quantized source (inputs rounded to 16 levels, as quantization-aware training exports them) has a zero
    input gradient almost everywhere: the white-box attack on it finds nothing while Square, on the int8 graph, does.
    The report must say the robust accuracy rests on masked gradients, not leave it as a robustness figure."""
    from exporters.artifacts import export_program, load_trainable

    float_model, _, _ = load_trainable(int8_model.with_name(ZOO_PARENT.name).with_suffix(".pt2"))

    class FakeQuantizedInput(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = float_model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(torch.round(x * 15) / 15)

    source = tmp_path / "fake_quantized.pt2"
    torch.export.save(export_program(FakeQuantizedInput().eval(), torch.zeros(2, 1, 28, 28)), str(source))
    model = assess([int8_model], replace(SMALL, source=source, skip_latency=True)).models[0]
    checks = {check.name: check for check in model.checks}
    assert not checks["gradients-nonzero"].passed
    assert not checks["white-box-strongest"].passed and "gradient masking is likely" in checks["white-box-strongest"].detail
    assert any("gradient masking" in note for note in model.notes)


def test_precision_rules_of_a_policy(int8_assessment) -> None:  # type: ignore[no-untyped-def]
    from evaluator.results import PrecisionResult

    policy = policy_from_toml("""
[policy]
name = "int8 edge"
[[rule]]
metric = "accuracy_vs_float"
precision = "int8"
min = 0.99
[[rule]]
metric = "float_accuracy_drop"
precision = "int8"
max = 0.01
[[rule]]
metric = "fallback_kernels"
max = 0
[[rule]]
metric = "speedup_vs_float"
precision = "int8"
min = 100
""")
    verdict = evaluate_policy(policy, int8_assessment)
    passed = {outcome.name: outcome.passed for outcome in verdict.outcomes}
    assert passed == {"accuracy_vs_float int8 min": True, "float_accuracy_drop int8 max": True,
                      "fallback_kernels max": True, "speedup_vs_float int8 min": False}
    float_model = replace(int8_assessment, precision=PrecisionResult("fp32"))
    outcomes = {outcome.name: outcome for outcome in evaluate_policy(policy, float_model).outcomes}
    assert outcomes["accuracy_vs_float int8 min"].passed and outcomes["accuracy_vs_float int8 min"].measured_text == "not applicable"
    unscoped = policy_from_toml('[policy]\nname = "x"\n[[rule]]\nmetric = "float_accuracy_drop"\nmax = 0.01\n')
    outcome = evaluate_policy(unscoped, float_model).outcomes[0]
    assert not outcome.passed and "float32" in outcome.message
    with pytest.raises(Exception, match="unknown precision"):
        policy_from_toml('[policy]\nname = "x"\n[[rule]]\nmetric = "clean_accuracy"\nprecision = "int4"\nmin = 0.5\n')


def test_the_shipped_int8_policy(int8_assessment) -> None:  # type: ignore[no-untyped-def]
    from evaluator.policy import load_policy

    from conftest import ROOT

    policy = load_policy(ROOT / "policies" / "edge-int8.toml")
    outcomes = {outcome.name: outcome for outcome in evaluate_policy(policy, int8_assessment).outcomes}
    for name in ("99% of FP32 accuracy", "accuracy lost to quantization", "no fallback kernels"):
        assert outcomes[name].passed, outcomes[name].message
    assert outcomes["robust accuracy Linf 8/255"].measured is not None


def test_minimal_norm_candidates_are_pushed_past_the_deployed_boundary() -> None:
    """A candidate on the source's boundary that the deployed graph (a slightly different function) still classifies
    correctly is scaled out along its perturbation until it fools the graph; the distance is measured there."""
    from evaluator.norms import Norm
    from evaluator.robustness import judge_candidates

    class Threshold:  # label 1 where the mean pixel exceeds `at`
        def __init__(self, at: float) -> None:
            self.at = at

        def predict(self, x: np.ndarray) -> np.ndarray:
            return (x.reshape(len(x), -1).mean(axis=1) > self.at).astype(np.int64)

    x = np.full((3, 1, 2, 2), 0.5, np.float32)
    y = np.zeros(3, np.int64)
    x_adv = np.stack([np.full((1, 2, 2), value, np.float32) for value in (0.6001, 0.6001, 0.52)])
    distances, valid = judge_candidates(Threshold(0.6), x, y, x_adv, Norm("Linf"))  # the source's boundary: fooled
    assert valid.all() and np.allclose(distances, [0.1001, 0.1001, np.inf], atol=1e-5)
    distances, _ = judge_candidates(Threshold(0.605), x, y, x_adv, Norm("Linf"))  # deployed just beyond: 1.1x reaches it
    assert np.allclose(distances, [0.11011, 0.11011, np.inf], atol=1e-4)


def test_a_residual_network_runs_every_layer_in_int8(tiny_resnet: Path, tmp_path: Path) -> None:
    """A tensor read by two layers (a residual block's conv and shortcut) must reach int8 kernels too: with int8
    activations ONNX Runtime's x86 kernels leave such layers in float32, which the placement flags."""
    from evaluator.placement import node_placement

    out = tmp_path / "resnet_int8.onnx"
    result = invoke("quantize", tiny_resnet.with_suffix(".onnx"), "--out", out, "--calibration-samples", "128",
                    "--threads", "1")
    assert result.exit_code == 0, result.output
    classifier = OnnxClassifier(out, "cpu", threads=1)
    placement = node_placement(classifier.graph, classifier.runtime.used, "int8",
                               np.zeros((4, *classifier.input_shape), np.float32), threads=1)
    assert {"QLinearConv", "QLinearAdd"} <= {kernel.op for kernel in placement.kernels}
    assert placement.fallbacks == ()
    forced = tmp_path / "resnet_int8_s8.onnx"  # int8 activations: the shared tensors' layers fall back on x86
    result = invoke("quantize", tiny_resnet.with_suffix(".onnx"), "--out", forced, "--calibration-samples", "128",
                    "--activations", "int8", "--threads", "1")
    assert result.exit_code == 0, result.output
    if int8_instructions()["x86"] and not int8_instructions()["vnni"]:
        classifier = OnnxClassifier(forced, "cpu", threads=1)
        placement = node_placement(classifier.graph, classifier.runtime.used, "int8",
                                   np.zeros((4, *classifier.input_shape), np.float32), threads=1)
        assert placement.fallbacks and all(kernel.op == "Conv" for kernel in placement.fallbacks)


def test_a_foreign_graph_with_a_fixed_batch_and_nhwc_pixels_quantizes(zoo_copy: Path, fmnist: Dataset,
                                                                       tmp_path: Path) -> None:
    """A graph the evaluator did not write (fixed batch of 4, NHWC, pixels 0-255), described first: calibration feeds
    it whole batches of real images through its input adapter."""
    from exporters.artifacts import load_trainable
    from test_foreign_models import Bytes, ChannelsLast, export

    model, _, _ = load_trainable(zoo_copy.with_suffix(".pt2"))
    exported = export(ChannelsLast(Bytes(model)), (4, 28, 28, 1), tmp_path / "nhwc_b4.onnx", dynamic=False)
    foreign = tmp_path / "described.onnx"
    result = invoke("describe", exported, "--dataset", "fashion-mnist", "--layout", "NHWC", "--input-range", "0-255",
                    "--out", foreign)
    assert result.exit_code == 0, result.output
    out = tmp_path / "nhwc_b4_int8.onnx"
    result = invoke("quantize", foreign, "--calibration-samples", "30", "--out", out, "--threads", "1")
    assert result.exit_code == 0, result.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["metadata"]["precision"]["calibration"]["samples"] == 28  # whole batches of 4
    assert abs(card["precision_check"]["accuracy_drop"]) <= 0.01
    labels = OnnxClassifier(out, "cpu", threads=1).predict(fmnist.test.x[:400])  # the metadata says how to feed it
    expected = OnnxClassifier(foreign, "cpu", threads=1).predict(fmnist.test.x[:400])
    assert (labels == expected).mean() >= 0.98


def test_options_of_another_precision_are_refused(zoo_copy: Path) -> None:
    for arguments, flag in ((["--precision", "fp16", "--reduce-range"], "--reduce-range"),
                            (["--precision", "int8-dynamic", "--activations", "int8"], "--activations"),
                            (["--precision", "int8", "--fp16-io"], "--fp16-io")):
        line = one_error_line(invoke("quantize", zoo_copy, *arguments, "--threads", "1"))
        assert line.startswith(f"error: {flag} is for"), line


def test_the_float_source_given_explicitly_is_read_as_the_float_source(int8_model: Path) -> None:
    source = int8_model.with_name(ZOO_PARENT.name).with_suffix(".pt2")
    model = assess([int8_model], replace(SMALL, source=source, skip_latency=True)).models[0]
    assert model.gradients == "converted graph" and "float source" in model.gradient_sources()
    assert {check.name: check.passed for check in model.checks}["source-agrees"]


def test_a_precision_series_keeps_its_methods_colour_with_its_own_marker() -> None:
    from evaluator.report.figure_style import PRECISION_MARKERS, method_style

    for precision, marker in PRECISION_MARKERS.items():
        style = method_style(f"filter-l1 {precision}")
        assert style.color == method_style("filter-l1").color and style.marker == marker
    assert method_style("none int8").color == method_style("none").color
