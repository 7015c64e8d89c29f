"""ResNet-18 and MobileNetV2: torchvision's layouts and sizes, every pruning method, export, and `evaluator prune` on a
user's own torch.export program."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from evaluator.app.cli import app
from evaluator.catalogue import METHODS, get_method
from evaluator.datasets import Split
from evaluator.errors import EvaluatorError
from exporters.architectures import ArchSpec, build_model, final_classifier, make_divisible
from exporters.pruning.census import prunable_layers, take_census
from exporters.pruning.engine import Target, prune_to_target
from exporters.pruning.options import PruneOptions

from conftest import train_small

DEPLOYED = ("resnet18", "mobilenetv2")
TORCHVISION_PARAMS = {"resnet18": 11_689_512, "mobilenetv2": 3_504_872}  # width 1, 224 px, 1000 classes
runner = CliRunner()


def spec(name: str, channels: int = 3, size: int = 32, width: float = 0.25, classes: int = 10) -> ArchSpec:
    return ArchSpec(name, channels, size, classes, width, (0.5,) * channels, (0.25,) * channels)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", DEPLOYED)
@pytest.mark.parametrize("width", [0.25, 0.5])
@pytest.mark.parametrize(("channels", "size"), [(3, 32), (1, 28), (3, 64), (3, 96)])
def test_deployed_architectures_build_at_every_width_and_size(name: str, width: float, channels: int, size: int) -> None:
    model = build_model(spec(name, channels, size, width)).eval()
    with torch.no_grad():
        assert model(torch.rand(2, channels, size, size)).shape == (2, 10)
    assert final_classifier(model).out_features == 10
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first.stride == ((1, 1) if size <= 64 else (2, 2)), "small inputs keep their resolution in the stem"


@pytest.mark.parametrize("name", DEPLOYED)
def test_parameter_counts_match_torchvision(name: str) -> None:
    params = count_params(build_model(spec(name, 3, 224, 1.0, 1000)))
    assert abs(params / TORCHVISION_PARAMS[name] - 1) < 0.01, params


def test_mobilenet_channels_round_to_multiples_of_8_like_torchvision() -> None:
    assert [make_divisible(c * 0.25) for c in (32, 16, 24, 64, 96, 160, 320)] == [8, 8, 8, 16, 24, 40, 80]
    assert make_divisible(1280 * 1.4) == 1792 and make_divisible(10) == 16 and make_divisible(44) == 48
    for width in (0.25, 0.5, 0.75):
        model = build_model(spec("mobilenetv2", width=width))
        assert all(m.out_channels % 8 == 0 for m in model.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("name", DEPLOYED)
def test_image_sizes_from_28_to_224(name: str) -> None:
    assert build_model(spec(name, 3, 224, 0.25)).eval()(torch.rand(1, 3, 224, 224)).shape == (1, 10)
    for size in (27, 225):
        with pytest.raises(EvaluatorError, match="28 to 224 px"):
            build_model(spec(name, 3, size))


def prune(model: nn.Module, method_name: str, rate: float):  # type: ignore[no-untyped-def]
    method = get_method(method_name)
    example = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    calibration = (torch.rand(32, 3, 32, 32, generator=torch.Generator().manual_seed(1)), torch.arange(32) % 10)
    layers = prunable_layers(model, method.granularity, method.conv_only)
    root = take_census(model, layers, example)
    return prune_to_target(model, Target(rate, basis=method.default_basis), root,  # type: ignore[arg-type]
                           PruneOptions(method, method.scope or "local", example, calibration, seed=0))


def quarter_width(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = build_model(spec(name)).eval()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)  # varied batch-norm scales for the bn-scale criterion
    return model


@pytest.mark.parametrize("name", DEPLOYED)
@pytest.mark.parametrize("method_name", [pytest.param(m, marks=[pytest.mark.train] if METHODS[m].physical else [])
                                         for m in sorted(METHODS)])
def test_every_method_prunes_the_deployed_architectures(name: str, method_name: str) -> None:
    """Channel criteria remove whole channels (depthwise convs and residual adds with their coupled layers);
    zeroing methods keep the shapes."""
    model = quarter_width(name)
    params = count_params(model)
    pruned, outcome = prune(model, method_name, 2)
    assert abs(outcome.achieved_rate / 2 - 1) <= 0.05, outcome.achieved_rate
    with torch.no_grad():
        assert pruned(torch.rand(3, 3, 32, 32)).shape == (3, 10)
    if get_method(method_name).physical:
        assert count_params(pruned) < params and outcome.after["macs"] < outcome.root["macs"]
        for module in pruned.modules():
            if isinstance(module, nn.Conv2d) and module.groups > 1:  # depthwise: one filter per input channel
                assert module.groups == module.in_channels == module.out_channels == module.weight.shape[0]
    else:
        assert count_params(pruned) == params and outcome.after["nonzero"] < outcome.root["nonzero"]
    assert count_params(model) == params, "the parent must be left untouched"


@pytest.mark.train
def test_a_pruned_mobilenet_exports_verified_and_reloads(tmp_path: Path) -> None:
    from exporters.artifacts import load_trainable, save_artifacts

    pruned, outcome = prune(quarter_width("mobilenetv2"), "filter-l1", 2)
    rng = np.random.default_rng(0)
    test = Split(rng.random((40, 3, 32, 32), dtype=np.float32), rng.integers(0, 10, 40))
    metadata = {"dataset": "random", "architecture": spec("mobilenetv2").to_dict(), "pruning": outcome.to_dict()}
    artifacts = save_artifacts(pruned, tmp_path / "mobilenet_cr2", metadata, test)
    check = json.loads(artifacts.card.read_text())["export_check"]
    assert check["top1_agreement"] == 1.0 and check["max_abs_logit_diff"] <= check["limit"]
    reloaded, _, _ = load_trainable(artifacts.pt2)
    x = torch.from_numpy(test.x[:4])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), pruned(x))


@pytest.mark.train
@pytest.mark.parametrize("name", DEPLOYED)
def test_the_train_workflow_trains_and_exports_them(name: str, small_npz: Path, tmp_path: Path) -> None:
    onnx_path = train_small(small_npz, tmp_path / name, name, 0.25, 1)
    card = json.loads(onnx_path.with_suffix(".json").read_text())
    assert card["metadata"]["architecture"]["name"] == name and card["export_check"]["top1_agreement"] == 1.0


class UserNet(nn.Module):
    """A user's own CNN, not one of the zoo's: conv-BN-ReLU-pool twice, a dense head; x: (N, 1, 28, 28)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(image))


def export_user_model(path: Path, dynamic: bool) -> Path:
    torch.manual_seed(0)
    shapes = {"image": {0: torch.export.Dim("batch")}} if dynamic else None
    torch.export.save(torch.export.export(UserNet().eval(), (torch.rand(4, 1, 28, 28),), dynamic_shapes=shapes), path)
    return path


@pytest.mark.train
def test_prune_takes_a_plain_torch_export_program(tmp_path: Path) -> None:
    source = export_user_model(tmp_path / "mine.pt2", dynamic=True)
    args = ["prune", str(source), "--rate", "2", "--finetune-epochs", "0"]
    missing = runner.invoke(app, args)
    assert missing.exit_code == 2 and "--dataset must be given" in missing.output and len(missing.output.strip().splitlines()) == 1
    result = runner.invoke(app, [*args, "--dataset", "fashion-mnist"])
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "mine_filter-l1_cr2.json").read_text())
    assert card["metadata"]["architecture"]["name"] == "exported" and card["export_check"]["top1_agreement"] == 1.0
    assert abs(card["metadata"]["pruning"]["achieved_rate"] / 2 - 1) <= 0.05
    again = runner.invoke(app, ["prune", str(tmp_path / "mine_filter-l1_cr2.pt2"), "--method", "unstructured-local-magnitude",
                                "--rate", "4", "--finetune-epochs", "0"])  # a child of a user's program prunes on
    assert again.exit_code == 0, again.output


def test_prune_refuses_a_program_with_a_fixed_batch_in_one_line(tmp_path: Path) -> None:
    source = export_user_model(tmp_path / "static.pt2", dynamic=False)
    result = runner.invoke(app, ["prune", str(source), "--dataset", "fashion-mnist", "--rate", "2", "--finetune-epochs", "0"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"error: {source} was exported with a fixed batch of 4: export it with "
                                                  "a dynamic batch (torch.export.Dim)"]
