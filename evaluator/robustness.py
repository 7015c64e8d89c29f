"""Robust accuracy at a fixed epsilon, with every adversarial example re-checked on the deployed graph."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
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
    robust: np.ndarray = field(repr=False, compare=False)  # (samples,) bool, per sample; not serialised

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "robust"}


@dataclass(frozen=True)
class WorstCase:
    """Per norm and epsilon, a sample is robust only if it survived every attack run (the union of successes)."""

    norm: str
    epsilon: float
    samples: int
    robust_accuracy: float
    attacks: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"norm": self.norm, "epsilon": self.epsilon, "samples": self.samples,
                "robust_accuracy": self.robust_accuracy, "attacks": list(self.attacks)}


def worst_cases(results: list[AttackResult]) -> list[WorstCase]:
    groups: dict[tuple[str, float], list[AttackResult]] = {}
    for result in results:
        groups.setdefault((result.norm, result.epsilon), []).append(result)
    worst = []
    for (norm, epsilon), members in groups.items():
        robust = np.logical_and.reduce([member.robust for member in members])
        worst.append(WorstCase(norm, epsilon, len(robust), float(robust.mean()), tuple(m.name for m in members)))
    return worst


def budget_violations(x: np.ndarray, x_raw: np.ndarray, norm: Norm, epsilon: float) -> int:
    """Candidates that are not finite, leave [0, 1], or lie outside the budget."""
    not_finite = ~np.isfinite(x_raw.reshape(len(x), -1)).all(axis=1)
    x_raw = np.nan_to_num(x_raw, nan=-1.0)
    outside_box = (x_raw.reshape(len(x), -1).min(axis=1) < 0) | (x_raw.reshape(len(x), -1).max(axis=1) > 1)
    too_far = distances(x, x_raw, norm) > epsilon * (1 + BUDGET_SLACK) + BUDGET_SLACK
    return int((not_finite | outside_box | too_far).sum())


def evaluate_attack(attack: Attack, target: AttackTarget, split: Split, epsilon: float, seed: int,
                    clean_predictions: np.ndarray | None = None) -> AttackResult:
    """Run `attack` on the samples the deployed graph classifies correctly and re-check its candidates there.

    clean_predictions: the deployed graph's labels for split.x (N,), when the caller already has them.
    """
    deployed = target.deployed
    if clean_predictions is None:
        clean_predictions = deployed.predict(split.x)
    correct = clean_predictions == split.y
    index = np.flatnonzero(correct)
    x, y = split.x[index], split.y[index]
    queries: float | None = None
    median_success: float | None = None
    if index.size:
        output = attack.run(target, x, y, epsilon, seed)
        out_of_budget = budget_violations(x, output.x_adv, attack.norm, epsilon)
        finite = np.isfinite(output.x_adv.reshape(len(x), -1)).all(axis=1)
        x_adv = project(x, np.where(finite[:, None, None, None], output.x_adv, x), attack.norm, epsilon)  # broken = no attack
        inside = distances(x, x_adv, attack.norm) <= epsilon * (1 + BUDGET_SLACK) + BUDGET_SLACK
        fooled = inside & (deployed.predict(x_adv) != y)
        if output.queries is not None:
            queries = float(output.queries.mean())
            median_success = float(np.median(output.queries[fooled])) if fooled.any() else None
    else:
        out_of_budget, fooled = 0, np.zeros(0, bool)
    successes = int(fooled.sum())
    robust = correct.copy()
    robust[index[fooled]] = False
    return AttackResult(
        name=attack.name, norm=attack.norm.value, kind=attack.kind.value, epsilon=float(epsilon),
        samples=len(split), clean_accuracy=float(correct.mean()), robust_accuracy=float((index.size - successes) / len(split)),
        attacked=int(index.size), successes=successes, out_of_budget=out_of_budget, queries=queries,
        queries_median_success=median_success, options=attack.options(), robust=robust,
    )
