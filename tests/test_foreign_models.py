"""Classifiers exported the way users export them (plain torch.onnx.export, no evaluator metadata): NHWC, softmax
outputs, a fixed batch of one, 0-255 inputs (float, and uint8 with straight-through gradients). Each is assessed with the default cascade and no PyTorch source, its
white-box attacks running on the graph converted to torch, and must match what the same cascade finds with the zoo
model's source."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from conftest import ZOO_PARENT
from evaluator.assessment import AssessConfig, assess
from evaluator.input_options import InputOverrides
from exporters.artifacts import load_trainable

SAMPLES = 100


class ChannelsLast(torch.nn.Module):
    """x (N, H, W, C), as Keras and tf2onnx models take it."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.permute(0, 3, 1, 2))


class Probabilities(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


class Bytes(torch.nn.Module):
    """Pixels in 0-255."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x / 255.0)


class WholePixels(torch.nn.Module):
    """uint8 pixels 0-255, as image pipelines feed them."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.float() / 255.0)


def export(model: torch.nn.Module, shape: tuple[int, ...], path: Path, dynamic: bool = True, dynamo: bool = False,
           dtype: torch.dtype = torch.float32) -> Path:
    model.eval()
    example = torch.zeros(shape, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:  # torch.onnx.export's default today
            shapes = {"x": {0: torch.export.Dim("batch", min=1, max=1024)}} if dynamic else None
            torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=shapes, verbose=False).save(str(path))
        else:
            torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "batch"}} if dynamic else None, opset_version=17)
    return path


@pytest.mark.slow
def test_foreign_exports_get_gradient_attacks_and_the_sources_numbers(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    model, _, _ = load_trainable(ZOO_PARENT.with_suffix(".pt2"))
    variants = {
        "plain": (export(model, (2, 1, 28, 28), tmp_path / "plain.onnx", dynamo=True), {}),
        "nhwc": (export(ChannelsLast(model), (2, 28, 28, 1), tmp_path / "nhwc.onnx"), {}),
        "softmax": (export(Probabilities(model), (2, 1, 28, 28), tmp_path / "softmax.onnx"), {}),
        "batch 1": (export(model, (1, 1, 28, 28), tmp_path / "batch1.onnx", dynamic=False), {}),
        "0-255": (export(Bytes(model), (2, 1, 28, 28), tmp_path / "bytes.onnx"), {"inputs": InputOverrides(input_range="0-255")}),
        "uint8": (export(WholePixels(model), (2, 1, 28, 28), tmp_path / "uint8.onnx", dtype=torch.uint8), {}),
    }
    config = AssessConfig(samples=SAMPLES, skip_latency=True, threads=1, dataset="fashion-mnist")
    reference = assess([ZOO_PARENT], config).models[0]
    assert reference.gradients == "source"
    for name, (path, settings) in variants.items():
        found = assess([path], replace(config, **settings)).models[0]
        assert found.gradients == "converted graph", (name, found.notes)
        assert [a.name for a in found.attacks] == [a.name for a in reference.attacks], name
        assert abs(found.worst_case[0].robust_accuracy - reference.worst_case[0].robust_accuracy) <= 0.01, name
        assert found.clean_accuracy == reference.clean_accuracy, name


def test_describe_records_the_settings_so_assess_needs_no_flags(tmp_path: Path) -> None:
    import json

    import onnx
    from typer.testing import CliRunner

    from conftest import ZOO_CHILD
    from evaluator.app.cli import app

    torch.set_num_threads(1)
    model, _, _ = load_trainable(ZOO_CHILD.with_suffix(".pt2"))
    foreign = export(ChannelsLast(Bytes(model)), (2, 28, 28, 1), tmp_path / "keras_style.onnx")
    onnx.save(onnx.load(str(foreign)), str(foreign), save_as_external_data=True, location="weights.bin", size_threshold=0)
    runner = CliRunner()
    described = tmp_path / "described" / "keras_style.onnx"
    result = runner.invoke(app, ["describe", str(foreign), "--dataset", "fashion-mnist", "--input-range", "0-255",
                                 "--out", str(described)])
    assert result.exit_code == 0, result.output
    assert "clean accuracy 0.8922 on 10,000 test images" in result.output and "NHWC, pixels 0-255" in result.output
    assert (tmp_path / "described" / "keras_style.onnx.data").is_file()  # the external weights travel with the copy
    report = tmp_path / "report.json"
    result = runner.invoke(app, ["assess", str(described), "--samples", "10", "--attacks", "square-linf:queries=10",
                                 "--no-latency", "--json", str(report)])
    assert result.exit_code == 0, result.output
    entry = json.loads(report.read_text())["models"][0]
    assert entry["clean_accuracy"] == 0.8922 and entry["dataset"] == "fashion-mnist"
    assert any("NHWC, pixels 0-255" in note for note in entry["notes"])
    assert entry["external_data"] == ["keras_style.onnx.data"]
    for args, message in ((["--out", str(foreign)], "is the model itself"), (["--out", str(tmp_path / "x.txt")], "must end in .onnx"),
                          (["--out", str(tmp_path / "y.onnx"), "--layout", "NCHW"], "expects inputs of shape")):
        result = runner.invoke(app, ["describe", str(foreign), "--dataset", "fashion-mnist", *args])
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "y.onnx").exists()


def test_a_source_exported_with_a_fixed_batch_is_used_at_its_batch(tmp_path: Path) -> None:
    """A .pt2 from plain torch.export.export without a dynamic batch: the white-box attacks run it in chunks of its
    batch (it was a traceback)."""
    import json

    from typer.testing import CliRunner

    from evaluator.app.cli import app

    torch.set_num_threads(1)
    model, _, _ = load_trainable(ZOO_PARENT.with_suffix(".pt2"))
    source = tmp_path / "fixed.pt2"
    torch.export.save(torch.export.export(model.eval(), (torch.zeros(4, 1, 28, 28),)), str(source))
    report = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["assess", str(ZOO_PARENT), "--source", str(source), "--samples", "30", "--no-latency",
                                      "--attacks", "apgd-ce-linf:steps=5", "--json", str(report)])
    assert result.exit_code == 0, result.output
    entry = json.loads(report.read_text())["models"][0]
    assert entry["gradients"] == "source" and {c["name"]: c["passed"] for c in entry["checks"]}["source-agrees"]
