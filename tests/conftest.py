"""Shared fixtures: real Fashion-MNIST (Debian's dataset-fashion-mnist), the shipped zoo, a tiny trained model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evaluator.datasets import Dataset, load_dataset

ROOT = Path(__file__).resolve().parents[1]
ZOO_PARENT = ROOT / "models" / "lenet5_fmnist.onnx"
# The tests' small sweep: two methods at rates 2 and 4, no fine-tuning, two quick attacks.
SMALL = ["--source", str(ZOO_PARENT.with_suffix(".pt2")), "--methods", "filter-l1,unstructured-global-magnitude",
         "--rates", "1,2,4", "--finetune-epochs", "0", "--samples", "60", "--attacks", "pgd-linf:steps=5,square-linf:queries=40",
         "--eps", "4/255,8/255", "--no-latency"]
ZOO_CHILD = ROOT / "models" / "lenet5_fmnist_filter-l1_cr4.onnx"


@pytest.fixture(scope="session")
def fmnist() -> Dataset:
    return load_dataset("fashion-mnist")


@pytest.fixture(scope="session")
def small_npz(fmnist: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Fashion-MNIST subset as a train/test .npz: 3000 training and 500 test images, uint8 NHWC."""
    assert fmnist.train is not None
    path = tmp_path_factory.mktemp("data") / "fmnist_small.npz"
    to_uint8 = lambda x: np.round(x * 255).astype(np.uint8).transpose(0, 2, 3, 1)  # noqa: E731
    np.savez(path, x_train=to_uint8(fmnist.train.x[:3000]), y_train=fmnist.train.y[:3000],
             x_test=to_uint8(fmnist.test.x[:500]), y_test=fmnist.test.y[:500], classes=np.array(fmnist.classes))
    return path


def train_small(small_npz: Path, out: Path, arch: str, width: float, epochs: int) -> Path:
    """Train `arch` on the small subset with the real workflow; returns the ONNX path."""
    from exporters.train import TrainConfig
    from exporters.workflows import DataOptions, TrainRequest, train_architecture

    request = TrainRequest(arch, DataOptions(str(small_npz), None, 500), TrainConfig(epochs=epochs, seed=0), width)
    artifacts, _ = train_architecture(request, out / out.name)
    return artifacts.onnx


@pytest.fixture(scope="session")
def tiny_model(small_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A half-width LeNet-5 trained for two epochs on the small subset (its .onnx; the .pt2 sits beside it)."""
    return train_small(small_npz, tmp_path_factory.mktemp("tiny", numbered=False), "lenet5", 0.5, 2)


@pytest.fixture(scope="session")
def tiny_resnet(small_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A quarter-width ResNet-8 trained for one epoch on the small subset (its .pt2, with batch norm)."""
    return train_small(small_npz, tmp_path_factory.mktemp("tiny_resnet", numbered=False), "resnet8", 0.25, 1).with_suffix(".pt2")


@pytest.fixture(scope="session")
def small_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference run, in a fresh process like the killed and resumed runs it is compared with: the suite's own
    process has run many tests before and is no fair reference for byte-equal files."""
    out = tmp_path_factory.mktemp("sweep") / "results"
    result = subprocess.run([sys.executable, "-m", "evaluator", "sweep", *SMALL, "--out", str(out)], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return out
