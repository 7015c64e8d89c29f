"""The sanity checks written into the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from evaluator.checks import (
    above_chance,
    deterministic, epsilon_monotone, gradients_nonzero, output_is_logits, unbounded_attacks_succeed, white_box_strongest,
)
from evaluator.app.cli import app
from evaluator.results import AttackResult, MinimalNormResult
from evaluator.input_options import InputOverrides
from evaluator.runtime import OnnxClassifier

from conftest import ZOO_CHILD
from onnx_graphs import linear_classifier


def result(name: str, kind: str, robust_first: int, epsilon: float = 0.03) -> AttackResult:
    """An attack result on 100 samples where the first `robust_first` samples survived."""
    robust = np.arange(100) < robust_first
    return AttackResult(name, "Linf", kind, epsilon, 100, 0.9, robust.mean(), 90, 0, 0, None, None, {}, robust)


def test_softmax_outputs_are_flagged(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((8, 1, 28, 28), dtype=np.float32)
    soft = linear_classifier(tmp_path / "soft.onnx", softmax=True, weight_value=0.003)
    logits = OnnxClassifier(linear_classifier(tmp_path / "plain.onnx", weight_value=0.003), "cpu")
    read_as_is = OnnxClassifier(soft, "cpu", inputs=InputOverrides(scores="logits"))  # the user insists: flagged
    assert not output_is_logits(read_as_is.logits(x)).passed
    assert output_is_logits(logits.logits(x)).passed
    assert deterministic(logits, x).passed
    detected = OnnxClassifier(soft, "cpu")  # a Softmax at the end is found and read as log-probabilities
    assert detected.graph_input.scores == "probabilities" and output_is_logits(detected.logits(x)).passed
    z = logits.logits(x)
    log_softmax = z - z.max(1, keepdims=True) - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True))
    assert np.allclose(detected.logits(x), log_softmax, atol=1e-5)


def test_black_box_beating_white_box_is_flagged() -> None:
    assert white_box_strongest([result("pgd-linf", "white-box", 40), result("square-linf", "score", 39)]).passed
    masked = white_box_strongest([result("pgd-linf", "white-box", 40), result("square-linf", "score", 30)])
    assert not masked.passed and "gradient masking" in masked.detail and "10.0% of the samples (10)" in masked.detail
    # 2 of 100 is over 1 point but within chance on so few samples; 3 is not
    assert white_box_strongest([result("pgd-linf", "white-box", 40), result("square-linf", "score", 38)]).passed
    assert not white_box_strongest([result("pgd-linf", "white-box", 40), result("square-linf", "score", 37)]).passed


def test_clean_accuracy_near_chance_is_flagged() -> None:
    assert above_chance(0.8922, 10_000, 10).passed
    guessing = above_chance(0.106, 10_000, 10)  # an untrained model: the interval reaches down to 1 / 10
    assert not guessing.passed and "hardly better than guessing" in guessing.detail
    assert not above_chance(0.6, 10, 2).passed and above_chance(0.9, 100, 2).passed


def test_black_box_evidence_alone_is_not_passed() -> None:
    only = white_box_strongest([result("square-linf", "score", 40)])
    assert not only.passed and "no white-box attack ran at Linf" in only.detail and "gradient masking is likely" not in only.detail


def test_robust_accuracy_rising_with_epsilon_is_flagged() -> None:
    assert epsilon_monotone([result("pgd-linf", "white-box", 40, 0.01), result("pgd-linf", "white-box", 20, 0.03)]).passed
    rising = epsilon_monotone([result("pgd-linf", "white-box", 20, 0.01), result("pgd-linf", "white-box", 40, 0.03)])
    assert not rising.passed and "pgd-linf" in rising.detail


def test_unbounded_attack_that_finds_nothing_is_flagged() -> None:
    def minimal(found: int) -> MinimalNormResult:
        distances = np.where(np.arange(100) < found, 1.0, np.inf)
        return MinimalNormResult("fmn-l2", "L2", "white-box", 100, 1.0, 100, found, 0, float(np.median(distances)), None, {}, distances)

    assert unbounded_attacks_succeed([minimal(100)]).passed
    assert not unbounded_attacks_succeed([minimal(90)]).passed


def test_zero_gradients_are_flagged() -> None:
    import torch

    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    y = np.zeros(4, np.int64)
    flat = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    assert gradients_nonzero(flat, x, y).passed
    blocked = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10), torch.nn.Hardtanh(-1e-9, 1e-9))  # saturated
    with torch.no_grad():
        blocked[1].bias.fill_(5.0)
    assert not gradients_nonzero(blocked, x, y).passed


def test_the_zoo_passes_every_check(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(app, ["assess", str(ZOO_CHILD), "--samples", "100", "--no-latency", "--json", str(tmp_path / "a.json")])
    assert outcome.exit_code == 0, outcome.output
    checks = json.loads((tmp_path / "a.json").read_text())["models"][0]["checks"]
    assert {c["name"] for c in checks} == {"above-chance", "logits-output", "deterministic", "source-agrees", "gradients-nonzero",
                                          "white-box-strongest", "epsilon-monotone"}
    assert all(c["passed"] for c in checks), checks
