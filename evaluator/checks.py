"""Sanity checks written into the report (after AutoAttack's checks): signs that a number may mislead."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from evaluator.robustness import AttackResult
from evaluator.runtime import OnnxClassifier

BLACK_BOX_MARGIN = 0.01  # a black-box attack beating white-box by more than 1 point hints at gradient masking


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def output_is_logits(outputs: np.ndarray) -> Check:
    """outputs (N, K): rows in [0, 1] summing to 1 look like softmax probabilities, which flatten gradients."""
    probabilities = bool(((outputs >= 0) & (outputs <= 1)).all() and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3))
    detail = ("the outputs look like probabilities (rows in [0, 1] summing to 1): gradient and margin attacks are weakened; "
              "export logits") if probabilities else "the outputs are logits"
    return Check("logits-output", not probabilities, detail)


def deterministic(classifier: OnnxClassifier, x: np.ndarray) -> Check:
    """The same inputs twice must give the same outputs; a randomised model makes attacks look weaker than they are."""
    first, second = classifier.logits(x), classifier.logits(x)
    difference = float(np.abs(first - second).max())
    return Check("deterministic", difference == 0.0, f"max |difference| between two identical runs: {difference:.3g}")


def source_agrees(source: Any, classifier: OnnxClassifier, x: np.ndarray) -> Check:
    """The PyTorch source behind white-box attacks must predict what the deployed graph predicts."""
    import torch

    with torch.no_grad():
        source_labels = np.concatenate([source(torch.from_numpy(x[i:i + 500])).argmax(1).numpy() for i in range(0, len(x), 500)])
    disagreements = int((source_labels != classifier.predict(x)).sum())
    return Check("source-agrees", disagreements == 0,
                 f"source and deployed graph disagree on {disagreements} of {len(x)} inputs")


def white_box_strongest(results: list[AttackResult]) -> Check:
    """At each norm and epsilon, a score or transfer attack should not beat the white-box ones (gradient masking)."""
    problems = []
    for result in results:
        if result.kind == "white-box":
            continue
        white = [r.robust_accuracy for r in results if r.kind == "white-box" and (r.norm, r.epsilon) == (result.norm, result.epsilon)]
        if white and result.robust_accuracy < min(white) - BLACK_BOX_MARGIN:
            problems.append(f"{result.name} at {result.norm} {result.epsilon:.4g}: {result.robust_accuracy:.3f} < white-box {min(white):.3f}")
    detail = "; ".join(problems) if problems else "no black-box attack beat a white-box one by more than 1 point"
    return Check("white-box-strongest", not problems, detail + ("; gradient masking is likely" if problems else ""))
