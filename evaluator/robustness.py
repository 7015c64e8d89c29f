"""Robust accuracy at a fixed epsilon, with every adversarial example re-checked on the deployed graph."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from evaluator.attacks.base import Attack, AttackTarget, Norm
from evaluator.data import Split
from evaluator.metrics import distances, project

BUDGET_SLACK = 1e-6  # float32 rounding when x +- epsilon is stored


@dataclass(frozen=True)
class AttackResult:
    """One attack at one epsilon on `samples` test inputs. Accuracies are shares in [0, 1].

    robust_accuracy counts samples correct on the deployed graph before and after the attack; a sample
    misclassified without attack is not robust. out_of_budget counts raw candidates the attack returned
    outside [0, 1] or the budget (they are projected before the re-check; non-zero means an attack bug).
    """

    name: str
    norm: str
    kind: str
    epsilon: float
    samples: int
    clean_accuracy: float
    robust_accuracy: float
    attacked: int
    successes: int
    out_of_budget: int
    queries: float | None
    queries_median_success: float | None
    options: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def budget_violations(x: np.ndarray, x_raw: np.ndarray, norm: Norm, epsilon: float) -> int:
    outside_box = (x_raw.reshape(len(x), -1).min(axis=1) < 0) | (x_raw.reshape(len(x), -1).max(axis=1) > 1)
    too_far = distances(x, x_raw, norm) > epsilon * (1 + BUDGET_SLACK) + BUDGET_SLACK
    return int((outside_box | too_far).sum())


def evaluate_attack(attack: Attack, target: AttackTarget, split: Split, epsilon: float, seed: int) -> AttackResult:
    """Run `attack` on the samples the deployed graph classifies correctly and re-check its candidates there."""
    deployed = target.deployed
    correct = deployed.predict(split.x) == split.y
    index = np.flatnonzero(correct)
    x, y = split.x[index], split.y[index]
    queries: float | None = None
    median_success: float | None = None
    if index.size:
        output = attack.run(target, x, y, epsilon, seed)
        out_of_budget = budget_violations(x, output.x_adv, attack.norm, epsilon)
        x_adv = project(x, output.x_adv, attack.norm, epsilon)
        inside = distances(x, x_adv, attack.norm) <= epsilon * (1 + BUDGET_SLACK) + BUDGET_SLACK
        fooled = inside & (deployed.predict(x_adv) != y)
        if output.queries is not None:
            queries = float(output.queries.mean())
            median_success = float(np.median(output.queries[fooled])) if fooled.any() else None
    else:
        out_of_budget, fooled = 0, np.zeros(0, bool)
    successes = int(fooled.sum())
    return AttackResult(
        name=attack.name, norm=attack.norm.value, kind=attack.kind.value, epsilon=float(epsilon),
        samples=len(split), clean_accuracy=float(correct.mean()), robust_accuracy=float((index.size - successes) / len(split)),
        attacked=int(index.size), successes=successes, out_of_budget=out_of_budget, queries=queries,
        queries_median_success=median_success, options=attack.options(),
    )
