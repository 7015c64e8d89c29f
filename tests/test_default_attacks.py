"""The default attacks come from one place (evaluator.default_attacks) and follow the budgets a user gives: `assess`
(flags and policy), `sweep` (TOML and flags) and the Python API pick the same cascades."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from evaluator.assessment import AssessConfig, attack_subset, run_attacks
from evaluator.attacks import AttackTarget, parse_attack_spec
from evaluator.app.cli import app
from evaluator.datasets import Dataset
from evaluator.default_attacks import DEFAULT_ATTACKS, DEFAULT_CASCADES, default_attacks
from evaluator.errors import EvaluatorError
from evaluator.runtime import OnnxClassifier
from evaluator.app.sweep_config import SweepConfig, make_config

from conftest import ZOO_PARENT
from onnx_graphs import linear_classifier


def test_each_cascade_keeps_to_its_norm_and_runs_white_box_before_black_box() -> None:
    for norm, cascade in DEFAULT_CASCADES.items():
        attacks = [parse_attack_spec(spec) for spec in cascade]
        assert {attack.norm.value for attack in attacks} == {norm}
        kinds = [attack.kind.value for attack in attacks]
        assert kinds[0] == "white-box" and kinds[-1] in ("score", "decision"), "a black-box attack keeps the masking check fed"


def test_default_attacks_follow_the_norms_asked() -> None:
    assert default_attacks() == DEFAULT_ATTACKS == DEFAULT_CASCADES["Linf"] == AssessConfig().attacks
    assert default_attacks(["L2"]) == DEFAULT_CASCADES["L2"]
    assert default_attacks(["L2", "Linf"]) == DEFAULT_CASCADES["Linf"] + DEFAULT_CASCADES["L2"]
    assert default_attacks(["L1"]) == ()  # no default cascade: the caller says so


def assess_json(tmp_path: Path, *args: str) -> dict:
    report = tmp_path / "out.json"
    result = CliRunner().invoke(app, ["assess", str(ZOO_PARENT), "--samples", "12", "--no-latency", "--json", str(report), *args])
    assert result.exit_code == 0, result.output
    return json.loads(report.read_text())


@pytest.mark.slow
def test_assess_attacks_the_norms_whose_budgets_are_given(tmp_path: Path) -> None:
    only_l2 = assess_json(tmp_path, "--eps-l2", "0.5")
    assert tuple(only_l2["config"]["attacks"]) == DEFAULT_CASCADES["L2"]
    assert [entry["norm"] for entry in only_l2["models"][0]["robustness"]] == ["L2"]
    both = assess_json(tmp_path, "--eps", "4/255", "--eps-l2", "0.5")
    assert tuple(both["config"]["attacks"]) == DEFAULT_CASCADES["Linf"] + DEFAULT_CASCADES["L2"]
    assert {entry["norm"] for entry in both["models"][0]["robustness"]} == {"Linf", "L2"}
    chosen = assess_json(tmp_path, "--eps-l2", "0.5", "--attacks", "pgd-l2:steps=3")
    assert chosen["config"]["attacks"] == ["pgd-l2:steps=3"]


@pytest.mark.slow
def test_a_policy_rule_in_another_norm_brings_that_norms_cascade(tmp_path: Path) -> None:
    policy = tmp_path / "l2.toml"
    policy.write_text('[[rule]]\nmetric = "robust_accuracy"\nnorm = "L2"\nepsilon = 0.5\nmin = 0\n')
    report = tmp_path / "out.json"
    result = CliRunner().invoke(app, ["assess", str(ZOO_PARENT), "--samples", "12", "--no-latency", "--policy", str(policy),
                                      "--json", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert tuple(data["config"]["attacks"]) == DEFAULT_CASCADES["L2"]
    assert data["models"][0]["signoff"]["passed"] is True


def test_a_budget_without_a_default_cascade_is_refused_with_advice(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["assess", str(ZOO_PARENT), "--eps-l1", "5", "--json", str(tmp_path / "out.json")])
    assert result.exit_code == 2
    assert "--eps-l1 gives L1 budgets but no selected attack works in L1" in result.output
    assert "choose attacks in L1 (see `evaluator attacks`)" in result.output and not (tmp_path / "out.json").exists()


def test_sweep_defaults_are_the_same_cascades() -> None:
    assert SweepConfig().attacks == DEFAULT_ATTACKS
    assert make_config({}).attacks == DEFAULT_ATTACKS
    assert make_config({"epsilons_l2": "0.5"}).attacks == DEFAULT_CASCADES["L2"]
    assert make_config({"epsilons": "8/255", "epsilons_l2": [1.0]}).attacks == DEFAULT_CASCADES["Linf"] + DEFAULT_CASCADES["L2"]
    assert make_config({"epsilons_l2": "0.5", "attacks": "pgd-l2"}).attacks == ("pgd-l2",)
    with pytest.raises(EvaluatorError, match="L0 budgets are given but no default attack works in L0"):
        make_config({"epsilons_l0": "5"})
    with pytest.raises(EvaluatorError, match="sweep.toml: epsilons_l2 gives L2 budgets but no selected attack works in L2"):
        make_config({"epsilons_l2": "0.5", "attacks": "pgd-linf"}, "sweep.toml")


def test_attacks_a_model_has_too_few_classes_for_are_skipped_with_a_note(tmp_path: Path, fmnist: Dataset) -> None:
    """The default cascade on a 3-class model: targeted DLR needs 4 classes, so APGD-T is skipped and said so; the
    cascade's other attacks run."""
    weight = np.random.default_rng(3).normal(0, 0.05, (28 * 28, 3)).astype(np.float32)
    deployed = OnnxClassifier(linear_classifier(tmp_path / "three.onnx", classes=3, weight=weight), provider="cpu")
    source = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 3, bias=False))
    source[1].weight.data = torch.from_numpy(weight.T.copy())
    target = AttackTarget(deployed, tmp_path / "three.pt2", _source=source.requires_grad_(False))  # path: a source is there
    subset = attack_subset(fmnist.test, 20, 0)
    subset = type(subset)(subset.x, subset.y % 3)
    config = AssessConfig(attacks=tuple(spec.replace("apgd-ce-linf", "apgd-ce-linf:steps=3") for spec in DEFAULT_ATTACKS))
    notes: list[str] = []
    results, _ = run_attacks(config.create_attacks(), target, subset, deployed.predict(subset.x), config, "", lambda message: None, notes)
    assert [result.name for result in results] == ["apgd-ce-linf", "square-linf"]
    assert notes == ["apgd-t-linf skipped: it needs a model with at least 4 classes, this one has 3"]
