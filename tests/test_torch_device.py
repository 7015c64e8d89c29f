"""Where torch computes (--torch-device): the choice, its errors, the wrapper that moves a model's work to a device,
and what the report records. On a machine without a GPU the CUDA paths can only refuse; bench/gpu_check.py runs them
where a GPU is lent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from evaluator.app.cli import app
from evaluator.errors import EvaluatorError
from evaluator.torch_device import OnDevice, choose_torch_device, current_training_device, on_device, training_device

from conftest import ZOO_PARENT

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="torch sees a GPU here")


@NO_GPU
def test_auto_is_the_cpu_without_a_gpu() -> None:
    assert choose_torch_device("auto") == torch.device("cpu") and choose_torch_device(" CPU ") == torch.device("cpu")


@NO_GPU
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_without_a_gpu_is_one_clear_error(name: str) -> None:
    with pytest.raises(EvaluatorError, match=f"torch_device {name} requested but torch .* (CPU-only build|sees no GPU)") as error:
        choose_torch_device(name)
    assert error.value.field == "torch_device"


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "cpu:0", "", "cuda:-1"])
def test_unknown_devices_are_refused(name: str) -> None:
    with pytest.raises(EvaluatorError, match="torch_device must be auto, cpu, cuda or cuda:N"):
        choose_torch_device(name)


def test_on_device_keeps_a_cpu_model_as_it_is_and_the_wrapper_is_differentiable() -> None:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    assert on_device(model, torch.device("cpu")) is model
    wrapped = OnDevice(model, torch.device("cpu"))
    x = torch.rand(2, 1, 2, 2, requires_grad=True)
    y = torch.rand(2, 1, 2, 2, requires_grad=True)
    wrapped(x).sum().backward()
    model(y).sum().backward()
    assert torch.equal(x.grad, y.grad) and wrapped(x).device == x.device


def test_training_device_is_scoped() -> None:
    with training_device("cpu") as device:
        assert device == torch.device("cpu") and current_training_device() == device
    assert current_training_device() == torch.device("cpu")


@NO_GPU
@pytest.mark.parametrize("command", [["assess", str(ZOO_PARENT), "--torch-device", "cuda"],
                                     ["train", "lenet5", "--torch-device", "cuda", "--epochs", "1"],
                                     ["sweep", "--torch-device", "cuda", "--rates", "1"]])
def test_a_gpu_asked_for_where_torch_has_none_is_exit_2_before_any_work(command: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [*command, *(["--out", str(tmp_path / "out")] if command[0] != "assess" else [])])
    assert result.exit_code == 2, result.output
    assert "--torch-device cuda requested but torch" in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_negative_gpu_number_is_exit_2() -> None:
    result = CliRunner().invoke(app, ["assess", str(ZOO_PARENT), "--device", "-1", "--no-latency"])
    assert result.exit_code == 2 and "--device must be a GPU number from 0 to 63, got -1" in result.output


def test_the_report_names_where_torch_computed_the_attacks(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["assess", str(ZOO_PARENT), "--torch-device", "cpu", "--samples", "8", "--no-latency",
                                      "--attacks", "pgd-linf:steps=5", "--threads", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    model = json.loads(out.read_text())["models"][0]
    assert model["torch_device"] == "cpu" and model["gradients"] == "source"


def test_a_source_that_does_not_run_on_the_device_stays_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exported program can keep constants off the module's buffers (.to() leaves them behind): the first pass on
    the device fails, and the source stays on the CPU with the reason recorded. 'meta' stands in for a GPU here."""
    from evaluator.attacks import AttackTarget
    from evaluator.runtime import OnnxClassifier

    class ConstantOffTheBuffers(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.ones(10, 784)  # a plain attribute: module.to(device) does not move it

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1) @ self.weight.T

    monkeypatch.setattr("evaluator.torch_device.choose_torch_device", lambda name: torch.device("meta"))
    target = AttackTarget(OnnxClassifier(ZOO_PARENT, provider="cpu"), _source=ConstantOffTheBuffers(), torch_device="cuda")
    source = target.source()
    assert target.device_used is not None and target.device_used.startswith("cpu (meta failed: ")
    assert source(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
