"""A 64x64 image folder of 10 classes, end to end: `train --image-size 64` decodes it at 64 px, `prune` fine-tunes on
it at the model's size, and `assess` runs the default attacks on the child, decoding the folder at 64 px again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from evaluator.app.cli import app
from evaluator.datasets import load_dataset

PER_CLASS = 150
SIZE = 64


def write_folder(root: Path) -> None:
    """Fashion-MNIST images as 64x64 RGB PNGs in class folders (a flat folder: a seeded 20 % is the test split)."""
    data = load_dataset("fashion-mnist", test_only=True).test
    for label, name in enumerate(load_dataset("fashion-mnist", test_only=True).classes):
        folder = root / name.replace("/", "-")
        folder.mkdir(parents=True)
        images = torch.from_numpy(data.x[data.y == label][:PER_CLASS])
        resized = torch.nn.functional.interpolate(images, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        for index, image in enumerate((resized.clamp(0, 1) * 255).round().to(torch.uint8).numpy()):
            Image.fromarray(np.repeat(image[0][:, :, None], 3, axis=2)).save(folder / f"{index:03d}.png")


@pytest.mark.train
def test_a_64_px_image_folder_is_trained_pruned_and_assessed(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    images = tmp_path / "images"
    write_folder(images)
    runner = CliRunner()
    result = runner.invoke(app, ["train", "resnet18", "--dataset", str(images), "--image-size", str(SIZE), "--width", "0.25",
                                 "--epochs", "3", "--batch-size", "32", "--validation-size", "100", "--out", str(tmp_path / "models"), "--threads", "1"])
    assert result.exit_code == 0, result.output
    parent = tmp_path / "models" / "resnet18_images.pt2"
    card = json.loads(parent.with_suffix(".json").read_text())
    assert card["metadata"]["input"]["shape"] == [3, SIZE, SIZE]
    assert card["metadata"]["dataset"] == "../images"  # relative to the artifact
    result = runner.invoke(app, ["prune", str(parent), "--method", "filter-l1", "--rate", "2", "--finetune-epochs", "1",
                                 "--threads", "1"])
    assert result.exit_code == 0, result.output
    report = tmp_path / "child.json"
    result = runner.invoke(app, ["assess", str(tmp_path / "models" / "resnet18_images_filter-l1_cr2.onnx"), "--samples", "40",
                                 "--no-latency", "--threads", "1", "--json", str(report)])
    assert result.exit_code == 0, result.output
    model = json.loads(report.read_text())["models"][0]
    assert model["clean_samples"] == 10 * PER_CLASS // 5 and model["samples"]["count"] == 40
    assert model["gradients"] == "source" and model["clean_accuracy"] > 0.3  # well above chance (0.1)
    assert {attack["name"] for attack in model["attacks"]} >= {"apgd-ce-linf", "square-linf"}
    assert all(case["robust_accuracy"] <= model["clean_accuracy"] for case in model["robustness"])


def test_image_size_resizes_only_image_folders(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "lenet5", "--image-size", "32", "--epochs", "1", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--image-size 32 resizes the images of an image folder only" in result.output, result.output
    result = CliRunner().invoke(app, ["train", "lenet5", "--image-size", "64", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "lenet5 supports 1 or 3 channels and 28 or 32 px inputs, got 3x64" in result.output
    result = CliRunner().invoke(app, ["train", "lenet5", "--image-size", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--image-size must be a positive number" in result.output
    assert list(tmp_path.iterdir()) == []
