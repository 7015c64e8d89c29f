from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from evaluator.datasets import Dataset
from evaluator.errors import EvaluatorError
from evaluator.latency import measure_latency
from evaluator.limits import MAX_BATCH, MAX_INPUT_VALUES, check_batch
from evaluator.metadata import read_metadata
from evaluator.profile import conv_alignment, count_macs, profile_model
from evaluator.runtime import CPU_EP, OnnxClassifier, nchwc_block, nchwc_filter_counts

from conftest import ZOO_PARENT
from onnx_graphs import conv_chain, linear_classifier


def test_zoo_model_runs_on_cpu_and_describes_itself(fmnist: Dataset) -> None:
    classifier = OnnxClassifier(ZOO_PARENT, provider="cpu", batch_size=100)
    assert classifier.runtime.used == CPU_EP and classifier.runtime.note == ""
    assert classifier.input_shape == (1, 28, 28) and classifier.num_classes == 10
    metadata = classifier.metadata
    assert metadata is not None and metadata["dataset"] == "fashion-mnist" and metadata["architecture"]["name"] == "lenet5"
    classifier.queries = 0
    logits = classifier.logits(fmnist.test.x[:250])
    assert logits.shape == (250, 10) and classifier.queries == 250
    np.testing.assert_allclose(logits[:7], classifier.run_batch(fmnist.test.x[:7]), atol=1e-5)


def test_zoo_parent_reaches_the_promised_accuracy(fmnist: Dataset) -> None:
    predictions = OnnxClassifier(ZOO_PARENT, provider="cpu").predict(fmnist.test.x)
    assert float((predictions == fmnist.test.y).mean()) >= 0.88


def test_cuda_request_without_cuda_falls_back_and_says_so() -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has the CUDA EP")
    classifier = OnnxClassifier(ZOO_PARENT, provider="cuda")
    assert classifier.runtime.used == CPU_EP and "fell back to CPU" in classifier.runtime.note


def test_a_cuda_ep_that_cannot_place_the_graph_falls_back_to_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole fall-back chain (CUDA graphs -> plain CUDA -> CPU) on a build whose CUDA EP does not start."""
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has the CUDA EP")
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    classifier = OnnxClassifier(ZOO_PARENT, provider="auto")
    assert classifier.runtime.used == CPU_EP and not classifier.uses_cuda_graph
    assert "fell back to CPU" in classifier.runtime.note
    assert classifier.logits(np.zeros((3, 1, 28, 28), np.float32)).shape == (3, 10)


def test_lenet5_macs_are_counted_exactly() -> None:
    # conv1 6*28*28*25 + conv2 16*10*10*150 + dense 400*120 + 120*84 + 84*10
    assert count_macs(onnx.load(str(ZOO_PARENT))) == 117600 + 240000 + 48000 + 10080 + 840


def test_profile_counts_parameters_and_bytes() -> None:
    profile = profile_model(ZOO_PARENT, onnx.load(str(ZOO_PARENT)))
    assert profile.params == 61706 + 2  # weights plus the graph's normalisation mean and std
    assert profile.size_bytes == ZOO_PARENT.stat().st_size and 0 < profile.gzip_bytes < profile.size_bytes
    assert (profile.conv_layers, profile.unaligned_convs) == (2, 2)  # 6 filters in conv1, 6 input channels in conv2


def test_channel_alignment_counts_against_the_given_block() -> None:
    model = conv_chain([16, 8, 16])  # the first conv reads the 1-channel image: exempt on its input side
    assert conv_alignment(model, 8) == (3, 0)
    assert conv_alignment(model, 16) == (3, 2)  # 8 filters in the second, 8 input channels in the third
    assert conv_alignment(model, 1) == (3, 0)


def test_nchwc_block_is_the_multiple_onnx_runtime_pads_filters_to() -> None:
    """ORT's own optimised graph of convolutions with 3 and block + 1 filters: padded to 1 and 2 blocks (or no NCHWc
    node at all where nchwc_block() says 1)."""
    block = nchwc_block()
    assert block in (1, 4, 8, 16, 32)
    assert nchwc_filter_counts(conv_chain([3, block + 1])) == ([block, 2 * block] if block > 1 else [])


@pytest.mark.train
def test_channel_alignment_of_a_pruned_resnet() -> None:
    """Filter pruning to odd channel counts is flagged; the automatic rounding keeps every conv aligned."""
    import torch

    from exporters.architectures import ArchSpec, build_model
    from exporters.artifacts import export_program, to_onnx
    from exporters.pruning.census import prunable_layers, take_census
    from exporters.pruning.engine import Target, prune_to_target
    from exporters.pruning.options import PruneOptions
    from evaluator.catalogue import get_method
    from evaluator.profile import conv_alignment

    torch.manual_seed(0)
    model, example, method = build_model(ArchSpec("resnet8", width=0.5)).eval(), torch.rand(1, 1, 28, 28), get_method("filter-l1")
    root = take_census(model, prunable_layers(model, "filter", False), example)
    counts = []
    for round_to in (1, None):  # never round; automatic (8 for a model whose channels are multiples of 8)
        options = PruneOptions(method, "local", example, (example, torch.zeros(1, dtype=torch.long)), round_to=round_to,
                               tolerance=0.25)
        pruned, _ = prune_to_target(model, Target(2), root, options)
        counts.append(conv_alignment(to_onnx(export_program(pruned, torch.rand(2, 1, 28, 28)), torch.rand(2, 1, 28, 28))))
    assert counts[0][1] > 0 and counts[1] == (counts[1][0], 0)


def test_latency_statistics_are_ordered() -> None:
    stats = measure_latency(OnnxClassifier(ZOO_PARENT, provider="cpu"), 8, warmup=2, min_runs=20, min_seconds=0.0)
    assert stats.runs >= 20 and stats.batch_size == 8
    assert 0 < stats.p50_ms <= stats.p90_ms <= stats.p99_ms
    assert stats.throughput_per_s == pytest.approx(8 / (stats.p50_ms / 1e3), rel=1e-6)


def test_nan_logits_are_an_input_error(tmp_path: Path) -> None:
    classifier = OnnxClassifier(linear_classifier(tmp_path / "nan.onnx", weight_value=float("nan")), provider="cpu")
    with pytest.raises(EvaluatorError, match="NaN"):
        classifier.logits(np.zeros((2, 1, 28, 28), np.float32))


def test_inputs_of_the_wrong_shape_are_rejected(tmp_path: Path) -> None:
    classifier = OnnxClassifier(linear_classifier(tmp_path / "rgb.onnx", channels=3, size=32), provider="cpu")
    with pytest.raises(EvaluatorError, match=r"do not fit the model's input \(3, 32, 32\)"):
        classifier.logits(np.zeros((2, 1, 28, 28), np.float32))


@pytest.mark.parametrize(("content", "message"), [(b"hello, not a model", "not a valid ONNX model"), (None, "not found")])
def test_unreadable_models_are_input_errors(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "model.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(EvaluatorError, match=message):
        OnnxClassifier(path)


def test_a_model_without_metadata_has_none(tmp_path: Path) -> None:
    assert read_metadata(onnx.load(str(linear_classifier(tmp_path / "plain.onnx")))) is None


def test_export_check_scales_with_the_logits() -> None:
    """float32 rounding of a deep graph grows with its logits: 7e-6 relative passes, 1e-3 relative or a flipped
    top-1 label fails (the export check raises on either)."""
    from exporters.artifacts import logit_agreement

    reference = np.array([[1500.0, -20.0, 3.0], [-4.0, 900.0, 0.5]])
    diff, limit, agreement = logit_agreement(reference, reference + 1.04e-2)
    assert diff <= limit and agreement == 1.0
    diff, limit, _ = logit_agreement(reference, reference + 1.5)
    assert diff > limit
    small = np.array([[2.0, 1.99995], [0.0, 1.0]])
    flipped = np.array([[1.99995, 2.0], [0.0, 1.0]])  # a 5e-5 change that flips the first sample's label
    assert logit_agreement(small, flipped)[2] == 0.5


# --- sizes bounded before allocation ------------------------------------------------------------------------------

def pooled_classifier(path: Path, dims: list[int | str], output: int = TensorProto.FLOAT) -> Path:
    """x dims (N, C, H, W) -> GlobalAveragePool -> Flatten -> Cast to `output`: C logits, each a channel's mean. Any
    input size costs nothing to build: the graph holds no weights."""
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["pooled"]), helper.make_node("Flatten", ["pooled"], ["means"]),
             helper.make_node("Cast", ["means"], ["logits"], to=output)]
    graph = helper.make_graph(nodes, "pooled", [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("logits", output, [dims[0], dims[1]])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("dims", [["batch", 1, 4097, 4097], ["batch", 1, 100000, 100000]])
def test_inputs_over_the_size_limit_are_refused_before_any_array(tmp_path: Path, dims: list[int | str]) -> None:
    values = math.prod(dims[1:])  # type: ignore[arg-type]
    with pytest.raises(EvaluatorError, match=f"an input of 1x{dims[2]}x{dims[3]} = {values:,} values is over the limit "
                                             f"of {MAX_INPUT_VALUES:,} values"):
        OnnxClassifier(pooled_classifier(tmp_path / "huge.onnx", dims), provider="cpu")


@pytest.mark.parametrize("dims", [["batch", 0, 28, 28], ["batch", 1, 28, 0], [0, 1, 28, 28]])
def test_input_dimensions_below_one_are_refused(tmp_path: Path, dims: list[int | str]) -> None:
    with pytest.raises(EvaluatorError, match="the input's dimensions must be at least 1"):
        OnnxClassifier(pooled_classifier(tmp_path / "empty.onnx", dims), provider="cpu")


def test_a_negative_batch_dimension_is_dynamic_as_in_onnx_runtime(tmp_path: Path) -> None:
    classifier = OnnxClassifier(pooled_classifier(tmp_path / "minus_one.onnx", [-1, 2, 8, 8]), provider="cpu")
    assert classifier.fixed_batch is None and classifier.logits(np.ones((3, 2, 8, 8), np.float32)).shape == (3, 2)


def test_a_fixed_batch_over_the_limit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EvaluatorError, match=f"the graph's fixed batch 70,000 is over the limit of {MAX_BATCH:,} samples"):
        OnnxClassifier(pooled_classifier(tmp_path / "fixed.onnx", [70000, 1, 28, 28]), provider="cpu")


def test_batches_are_bounded_in_samples_and_bytes(tmp_path: Path) -> None:
    path = pooled_classifier(tmp_path / "small.onnx", ["batch", 1, 28, 28])
    with pytest.raises(EvaluatorError, match=f"batch size 1,000,000,000,000 is over the limit of {MAX_BATCH:,} samples"):
        OnnxClassifier(path, provider="cpu", batch_size=10**12)
    with pytest.raises(EvaluatorError, match="threads must be between 1 and 1024, got 1000000"):
        OnnxClassifier(path, provider="cpu", threads=10**6)
    classifier = OnnxClassifier(path, provider="cpu")
    with pytest.raises(EvaluatorError, match=f"latency batch 1,000,000,000,000 is over the limit of {MAX_BATCH:,}"):
        measure_latency(classifier, 10**12)
    with pytest.raises(EvaluatorError, match="latency batch must be at least 1, got 0"):
        measure_latency(classifier, 0)
    assert check_batch(MAX_BATCH, (1, 28, 28), "throughput batch") == MAX_BATCH  # 0.2 GiB
    with pytest.raises(EvaluatorError, match=r"throughput batch 60,000 of 3x224x224 float32 inputs takes 33.6 GiB, over "
                                             r"the limit of 4 GiB \(at most 7,133 such inputs\)"):
        check_batch(60000, (3, 224, 224), "throughput batch")


@pytest.mark.parametrize(("output", "name"), [(TensorProto.INT64, "INT64"), (TensorProto.INT32, "INT32"),
                                              (TensorProto.BOOL, "BOOL"), (TensorProto.BFLOAT16, "BFLOAT16")])
def test_outputs_that_are_not_float_logits_are_refused_at_load(tmp_path: Path, output: int, name: str) -> None:
    """An int64 output made the score attack's margins fail (-inf into an integer array)."""
    with pytest.raises(EvaluatorError, match=f"the first output must be floating-point logits or probabilities .*found {name}$"):
        OnnxClassifier(pooled_classifier(tmp_path / "labels.onnx", ["batch", 2, 8, 8], output), provider="cpu")


@pytest.mark.parametrize("output", [TensorProto.FLOAT16, TensorProto.DOUBLE])
def test_float16_and_float64_outputs_become_float32_logits(tmp_path: Path, output: int) -> None:
    from evaluator.attacks.score import query_margins

    classifier = OnnxClassifier(pooled_classifier(tmp_path / "half.onnx", ["batch", 2, 8, 8], output), provider="cpu")
    x = np.zeros((3, 2, 8, 8), np.float32)
    x[:, 0] = 0.75
    x[:, 1] = 0.25
    logits = classifier.logits(x)
    assert logits.dtype == np.float32
    np.testing.assert_array_equal(logits, np.tile(np.float32([0.75, 0.25]), (3, 1)))
    np.testing.assert_array_equal(query_margins(classifier, x, np.array([0, 1, 0])), np.float32([0.5, -0.5, 0.5]))
