"""ResNet-18 (width 0.5) and MobileNetV2 (width 1) on CIFAR-10's binary format (batches written from Fashion-MNIST
made CIFAR-like: 32 px, the grey channel three times), through the command line as a user runs them: train, prune
filter-l1 to rates 2 and 4 (export verified), assess the rate-4 child with the default attacks on 200 samples.
bench/deployed_architectures.py times the same path on 5,000 images (and the real CIFAR-10 when given)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from evaluator.app.cli import app
from evaluator.datasets import load_dataset
from evaluator.datasets.cifar10 import write_batches

TRAIN, VALIDATION, TEST = 1000, 200, 300


def cifar_like(x: np.ndarray) -> np.ndarray:
    """(N, 1, 28, 28) in [0, 1] -> (N, 3, 32, 32) uint8."""
    resized = torch.nn.functional.interpolate(torch.from_numpy(x), size=(32, 32), mode="bilinear", align_corners=False)
    return np.round(resized.clamp(0, 1).numpy() * 255).astype(np.uint8).repeat(3, axis=1)


@pytest.fixture(scope="module")
def cifar_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = load_dataset("fashion-mnist")
    assert data.train is not None
    folder = tmp_path_factory.mktemp("cifar") / "cifar-10-batches-bin"
    count = TRAIN + VALIDATION
    write_batches(folder, (cifar_like(data.train.x[:count]), data.train.y[:count]),
                  (cifar_like(data.test.x[:TEST]), data.test.y[:TEST]), data.classes)
    return folder


@pytest.mark.train
@pytest.mark.parametrize(("arch", "width"), [("resnet18", 0.5), ("mobilenetv2", 1.0)])
def test_deployed_architectures_train_prune_and_assess_on_cifar10_batches(arch: str, width: float, cifar_folder: Path,
                                                                          tmp_path: Path) -> None:
    torch.set_num_threads(1)
    runner = CliRunner()
    result = runner.invoke(app, ["train", arch, "--dataset", str(cifar_folder), "--width", str(width), "--epochs", "1",
                                 "--validation-size", str(VALIDATION), "--out", str(tmp_path), "--name", arch, "--threads", "1"])
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / f"{arch}.json").read_text())
    assert card["metadata"]["input"]["shape"] == [3, 32, 32] and card["metadata"]["classes"][0] == "t-shirt/top"
    result = runner.invoke(app, ["prune", str(tmp_path / f"{arch}.pt2"), "--method", "filter-l1", "--rate", "2,4",
                                 "--finetune-epochs", "0", "--threads", "1"])
    assert result.exit_code == 0, result.output
    for rate in (2, 4):
        child = json.loads((tmp_path / f"{arch}_filter-l1_cr{rate}.json").read_text())
        assert child["export_check"]["top1_agreement"] == 1.0
        assert abs(child["metadata"]["pruning"]["achieved_rate"] - rate) <= 0.05 * rate
    report = tmp_path / "assessment.json"
    result = runner.invoke(app, ["assess", str(tmp_path / f"{arch}_filter-l1_cr4.onnx"), "--samples", "200", "--threads", "1",
                                 "--no-latency", "--json", str(report)])
    assert result.exit_code == 0, result.output
    model = json.loads(report.read_text())["models"][0]
    assert model["samples"]["count"] == 200 and model["gradients"] == "source"
    assert [attack["name"] for attack in model["attacks"]] == ["apgd-ce-linf", "apgd-t-linf", "square-linf"]
