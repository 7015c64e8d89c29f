"""The pruning lab: every method on small models, rates, shapes, schedules, resumption, determinism."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
import torch
from typer.testing import CliRunner

from evaluator.app.cli import app
from evaluator.errors import EvaluatorError
from evaluator.profile import profile_model
from exporters.architectures import ArchSpec, build_model
from exporters.pruning.census import prunable_layers, take_census
from exporters.pruning.engine import Target, prune_to_target
from exporters.pruning.options import PruneOptions
from evaluator.catalogue import METHODS, get_method

from conftest import ZOO_CHILD, ZOO_PARENT

runner = CliRunner()
EXAMPLE = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
CALIBRATION = (torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(1)), torch.arange(32) % 10)


def small_model(method_name: str) -> torch.nn.Module:
    """LeNet-5 for weight-level methods; a quarter-width ResNet-8 (with varied BN scales) for filter methods."""
    torch.manual_seed(0)
    if not get_method(method_name).physical:
        return build_model(ArchSpec("lenet5")).eval()
    model = build_model(ArchSpec("resnet8", width=0.25)).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
    return model


def prune(model: torch.nn.Module, method_name: str, rate: float, **target: str):  # type: ignore[no-untyped-def]
    method = get_method(method_name)
    layers = prunable_layers(model, method.granularity, method.conv_only)
    root = take_census(model, layers, EXAMPLE)
    basis = target.pop("basis", method.default_basis)
    return prune_to_target(model, Target(rate, basis=basis, **target), root,  # type: ignore[arg-type]
                           PruneOptions(method, method.scope or "local", EXAMPLE, CALIBRATION, seed=0))


@pytest.mark.parametrize("rate", [2, pytest.param(4, marks=pytest.mark.slow), pytest.param(8, marks=pytest.mark.slow)])
@pytest.mark.parametrize("method_name", sorted(METHODS))
def test_every_method_reaches_rates_2_4_8(method_name: str, rate: int) -> None:
    """Rate 2 of every method is in the quick loop; 4 and 8 are marked slow."""
    model = small_model(method_name)
    params = sum(p.numel() for p in model.parameters())
    pruned, outcome = prune(model, method_name, rate)
    assert abs(outcome.achieved_rate / rate - 1) <= 0.05, (rate, outcome.achieved_rate)
    assert outcome.rates[get_method(method_name).default_basis] == pytest.approx(outcome.achieved_rate)
    assert pruned(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    pruned_params = sum(p.numel() for p in pruned.parameters())
    if get_method(method_name).physical:
        assert pruned_params < params and outcome.after["macs"] < outcome.root["macs"]
    else:
        assert pruned_params == params and outcome.after["macs"] == outcome.root["macs"]
        assert outcome.after["nonzero"] < outcome.root["nonzero"]
    assert sum(p.numel() for p in model.parameters()) == params, "the parent must be left untouched"


def test_unstructured_pruning_removes_the_smallest_weights() -> None:
    model = small_model("unstructured-global-magnitude")
    pruned, _ = prune(model, "unstructured-global-magnitude", 4)
    before = torch.cat([m.weight.detach().abs().flatten() for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))])
    after = torch.cat([m.weight.detach().flatten() for m in pruned.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))])
    assert before[after == 0].max() <= before[after != 0].min()


def test_kernel_pruning_zeroes_whole_kernels() -> None:
    pruned, _ = prune(small_model("kernel-local-magnitude"), "kernel-local-magnitude", 4)
    for module in pruned.modules():
        if isinstance(module, torch.nn.Conv2d):
            per_kernel = (module.weight != 0).sum(dim=(2, 3))
            assert set(per_kernel.unique().tolist()) <= {0, module.weight.shape[2] * module.weight.shape[3]}


def test_mac_targets_for_filter_methods_and_refused_for_zeroing_methods() -> None:
    _, outcome = prune(small_model("filter-l1"), "filter-l1", 4, metric="macs")
    assert abs(outcome.rates["macs"] / 4 - 1) <= 0.05
    with pytest.raises(EvaluatorError, match="MACs cannot fall"):
        prune(small_model("unstructured-local-random"), "unstructured-local-random", 4, metric="macs")


@pytest.mark.parametrize(("method_name", "rate", "message"), [
    ("filter-l1", 5000, "cannot reach a compression rate of 5000"),
    ("filter-bn-scale", 2, "no batch norm"),
])
def test_impossible_requests_are_clear_errors(method_name: str, rate: float, message: str) -> None:
    model = small_model(method_name) if method_name != "filter-bn-scale" else build_model(ArchSpec("lenet5")).eval()
    with pytest.raises(EvaluatorError, match=message):
        prune(model, method_name, rate)


def test_zoo_child_has_at_least_3_5x_fewer_onnx_parameters() -> None:
    parent = profile_model(ZOO_PARENT, onnx.load(str(ZOO_PARENT)))
    child = profile_model(ZOO_CHILD, onnx.load(str(ZOO_CHILD)))
    assert parent.params / child.params >= 3.5
    assert child.macs < parent.macs and child.size_bytes < parent.size_bytes


@pytest.mark.train
@pytest.mark.parametrize("method_name", sorted(METHODS))
def test_every_method_exports_a_verified_self_describing_model(method_name: str, tiny_resnet: Path, tmp_path: Path) -> None:
    """prune -> verified export -> `evaluator assess` with no flags reads the record back."""
    rate = "4" if get_method(method_name).physical and get_method(method_name).scope == "global" else "2"
    pruned = runner.invoke(app, ["prune", str(tiny_resnet), "--method", method_name, "--rate", rate, "--finetune-epochs", "0",
                                 "--out", str(tmp_path)])
    assert pruned.exit_code == 0, pruned.output
    child = next(tmp_path.glob("*.onnx"))
    card = json.loads(child.with_suffix(".json").read_text())
    check = card["export_check"]
    assert check["max_abs_logit_diff"] <= check["limit"] and check["top1_agreement"] == 1.0
    report = tmp_path / "assessment.json"
    assessed = runner.invoke(app, ["assess", str(child), "--no-latency", "--samples", "20", "--attacks", "square-linf",
                                   "--json", str(report)])
    assert assessed.exit_code == 0, assessed.output
    model = json.loads(report.read_text())["models"][0]
    assert model["pruning"]["method"] == method_name and abs(model["pruning"]["achieved_rate"] / float(rate) - 1) <= 0.05
    if get_method(method_name).physical:
        assert model["params"] < card["metadata"]["pruning"]["root"]["params"] + 10
    else:
        assert model["nonzero_params"] < model["params"]


def run_prune(source: Path, out: Path, *extra: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["prune", str(source), "--method", "unstructured-local-magnitude", "--rate", "2,4",
                               "--finetune-epochs", "1", "--out", str(out), *extra])


@pytest.mark.train
def test_iterative_schedule_is_deterministic_and_resumes(tiny_model: Path, tmp_path: Path) -> None:
    source = tiny_model.with_suffix(".pt2")
    first, second = run_prune(source, tmp_path / "a"), run_prune(source, tmp_path / "b")
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    for suffix in ("pt2", "onnx"):
        for rate in ("2", "4"):
            name = f"tiny_unstructured-local-magnitude_cr{rate}.{suffix}"
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    card = json.loads((tmp_path / "a" / "tiny_unstructured-local-magnitude_cr4.json").read_text())
    card2 = json.loads((tmp_path / "a" / "tiny_unstructured-local-magnitude_cr2.json").read_text())
    assert card["files"]["onnx"]["gzip_bytes"] < card2["files"]["onnx"]["gzip_bytes"]  # zeros compress
    assert card["files"]["onnx"]["bytes"] == pytest.approx(card2["files"]["onnx"]["bytes"], rel=0.01)  # dense shapes
    assert card["metadata"]["parent"]["source_file"] == "tiny_unstructured-local-magnitude_cr2.pt2"
    assert card["metadata"]["pruning"]["schedule"] == "iterative" and card["metadata"]["pruning"]["step"] == 2
    (tmp_path / "a" / "tiny_unstructured-local-magnitude_cr4.onnx").unlink()  # as if killed before the last step
    resumed = run_prune(source, tmp_path / "a")
    assert resumed.exit_code == 0 and resumed.output.count("resumed") == 1, resumed.output
    assert (tmp_path / "a" / "tiny_unstructured-local-magnitude_cr4.onnx").read_bytes() == \
        (tmp_path / "b" / "tiny_unstructured-local-magnitude_cr4.onnx").read_bytes()


@pytest.mark.train
def test_fractional_rates_keep_their_own_files(tiny_model: Path, tmp_path: Path) -> None:
    """NAME_cr1.5 and NAME_cr1.75 are two models: a rate's dot is part of the name, not a suffix to replace."""
    result = runner.invoke(app, ["prune", str(tiny_model.with_suffix(".pt2")), "--method", "unstructured-local-magnitude",
                                 "--rate", "1.5,1.75", "--finetune-epochs", "0", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == sorted(f"tiny_unstructured-local-magnitude_cr{rate}.{suffix}" for rate in ("1.5", "1.75")
                           for suffix in ("json", "onnx", "pt2")), names
    for rate in (1.5, 1.75):
        card = json.loads((tmp_path / f"tiny_unstructured-local-magnitude_cr{rate:g}.json").read_text())
        assert card["metadata"]["pruning"]["target"]["rate"] == rate
        assert card["name"] == f"tiny_unstructured-local-magnitude_cr{rate:g}"


def test_a_step_never_writes_over_its_source(tiny_model: Path, tmp_path: Path) -> None:
    for suffix in (".pt2", ".onnx", ".json"):
        shutil.copyfile(tiny_model.with_suffix(suffix), (tmp_path / "x_cr2").with_suffix(suffix))
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    result = runner.invoke(app, ["prune", str(tmp_path / "x_cr2.pt2"), "--name", "x", "--rate", "2", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "would replace the source's own x_cr2.pt2" in result.output, result.output
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


@pytest.mark.parametrize(("args", "message"), [
    (("--method", "magic"), "unknown pruning method"),
    (("--rate", "0.5"), "rates must be >= 1"),
    (("--finetune-epochs", "1000000000000"), "epochs must be at most 10,000"),
    (("--rate", "two"), "cannot read rates"),
    (("--method", "unstructured-global-magnitude", "--scope", "local"), "global by definition"),
    (("--schedule", "sometimes"), "'sometimes' is not one of 'iterative', 'oneshot'"),
    (("--scope", "everywhere"), "'everywhere' is not one of 'local', 'global'"),
    (("--method", "kernel-local-random", "--round-to", "4"), "filter methods only"),
])
def test_bad_prune_options(tiny_model: Path, args: tuple[str, ...], message: str) -> None:
    result = runner.invoke(app, ["prune", str(tiny_model.with_suffix(".pt2")), *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_methods_are_listed() -> None:
    result = runner.invoke(app, ["prune", "--list"])
    assert result.exit_code == 0
    for name in METHODS:
        assert name in result.output


@pytest.mark.train
def test_rate_tolerance_accepts_the_closest_reachable_rate(tmp_path: Path) -> None:
    """LeNet-5's 6 and 16 filters make rate 4 unreachable within 5% for filter-local-magnitude (closest 3.78 in one step)."""
    args = ["prune", str(ZOO_PARENT.with_suffix(".pt2")), "--method", "filter-local-magnitude", "--rate", "4",
            "--finetune-epochs", "0", "--out", str(tmp_path)]
    strict = runner.invoke(app, args)
    assert strict.exit_code == 2 and "closest reachable 3.78" in " ".join(strict.output.split()), strict.output
    wide = runner.invoke(app, [*args, "--tolerance", "0.25"])
    assert wide.exit_code == 0 and "achieved 3.778" in " ".join(wide.output.split()), wide.output
    again = runner.invoke(app, args)  # the saved step was accepted under a wider tolerance than this request's
    assert again.exit_code == 2 and "closest reachable 3.78" in " ".join(again.output.split()), again.output
    bad = runner.invoke(app, [*args, "--tolerance", "1.5"])
    assert bad.exit_code == 2 and "between 0 and 1" in bad.output


def test_step_keys_hold_the_tolerance_only_where_it_can_change_the_result() -> None:
    from exporters.pruning.engine import tolerance_matters
    from exporters.pruning.schedule import PruneRequest, step_key

    aligned, unaligned = build_model(ArchSpec("resnet8", width=0.5)), build_model(ArchSpec("lenet5"))
    assert tolerance_matters(aligned, get_method("filter-l1"), None)
    assert not tolerance_matters(aligned, get_method("filter-l1"), 1)  # a fixed rounding leaves nothing to choose
    assert not tolerance_matters(unaligned, get_method("filter-l1"), None)
    assert not tolerance_matters(aligned, get_method("unstructured-global-magnitude"), None)
    strict, wide = PruneRequest("filter-l1", (2.0,)), PruneRequest("filter-l1", (2.0,), tolerance=0.25)
    assert step_key("sha", strict, 2.0, None, False) == step_key("sha", wide, 2.0, None, False)
    assert step_key("sha", strict, 2.0, None, True) != step_key("sha", wide, 2.0, None, True)


@pytest.mark.parametrize("method_name", ["kernel-local-magnitude", "kernel-local-random", "unstructured-global-magnitude"])
def test_zeroing_methods_never_empty_a_layer(method_name: str) -> None:
    """LeNet-5's conv1 has 6 kernels: a local 1/8 share of it is less than one kernel, and one must stay."""
    model = small_model(method_name)
    pruned, outcome = prune(model, method_name, 8)
    for name in outcome.layers:
        assert dict(pruned.named_modules())[name].weight.count_nonzero() > 0, name
