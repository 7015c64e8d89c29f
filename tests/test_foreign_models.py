"""Classifiers exported the way users export them (plain torch.onnx.export, no evaluator metadata): NHWC, softmax
outputs, a fixed batch of one, 0-255 inputs. Each is assessed with the default cascade and no PyTorch source, its
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


def export(model: torch.nn.Module, shape: tuple[int, ...], path: Path, dynamic: bool = True, dynamo: bool = False) -> Path:
    model.eval()
    example = torch.zeros(shape)
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
        "0-255": (export(Bytes(model), (2, 1, 28, 28), tmp_path / "bytes.onnx"), {"input_range": "0-255"}),
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
