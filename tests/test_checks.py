"""The sanity checks written into the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from evaluator.checks import deterministic, output_is_logits, white_box_strongest
from evaluator.cli import app
from evaluator.robustness import AttackResult
from evaluator.runtime import OnnxClassifier

from conftest import ZOO_CHILD
from onnx_graphs import linear_classifier


def result(name: str, kind: str, robust: float) -> AttackResult:
    return AttackResult(name, "Linf", kind, 0.03, 100, 0.9, robust, 90, 0, 0, None, None, {}, np.zeros(100, bool))


def test_softmax_outputs_are_flagged(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((8, 1, 28, 28), dtype=np.float32)
    probabilities = OnnxClassifier(linear_classifier(tmp_path / "soft.onnx", softmax=True, weight_value=0.003), "cpu")
    logits = OnnxClassifier(linear_classifier(tmp_path / "plain.onnx", weight_value=0.003), "cpu")
    assert not output_is_logits(probabilities.logits(x)).passed
    assert output_is_logits(logits.logits(x)).passed
    assert deterministic(logits, x).passed


def test_black_box_beating_white_box_is_flagged() -> None:
    assert white_box_strongest([result("pgd-linf", "white-box", 0.40), result("square-linf", "score", 0.395)]).passed
    masked = white_box_strongest([result("pgd-linf", "white-box", 0.40), result("square-linf", "score", 0.30)])
    assert not masked.passed and "gradient masking" in masked.detail


def test_the_zoo_passes_every_check(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(app, ["assess", str(ZOO_CHILD), "--samples", "100", "--no-latency", "--json", str(tmp_path / "a.json")])
    assert outcome.exit_code == 0, outcome.output
    checks = json.loads((tmp_path / "a.json").read_text())["models"][0]["checks"]
    assert {c["name"] for c in checks} == {"logits-output", "deterministic", "source-agrees", "white-box-strongest"}
    assert all(c["passed"] for c in checks), checks
