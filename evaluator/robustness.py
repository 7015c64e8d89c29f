"""Robust accuracy at fixed epsilons and minimal adversarial distances, every adversarial example re-checked on the deployed graph."""

from __future__ import annotations


import numpy as np

from evaluator.attacks.base import Attack, AttackTarget, MinimalNormAttack
from evaluator.datasets import Split
from evaluator.norms import Norm, distances, project
from evaluator.runtime import OnnxClassifier
from evaluator.results import AttackResult, BUDGET_SLACK, MinimalNormResult, WorstCase, outcome_codes


def worst_cases(results: list[AttackResult]) -> list[WorstCase]:
    """Per (norm, epsilon) in the order first run: a sample is robust only if every attack there left it robust."""
    groups: dict[tuple[str, float], list[AttackResult]] = {}
    for result in results:
        groups.setdefault((result.norm, result.epsilon), []).append(result)
    worst = []
    for (norm, epsilon), members in groups.items():
        robust = np.logical_and.reduce([member.robust for member in members])
        codes = None
        if all(member.outcome is not None for member in members):
            clean_correct = members[0].outcome != "M"  # type: ignore[comparison-overlap]
            codes = outcome_codes(clean_correct, clean_correct, robust)
        worst.append(WorstCase(norm, epsilon, len(robust), float(robust.mean()), tuple(m.name for m in members),
                               int(robust.sum()), codes))
    return worst


def budget_violations(x: np.ndarray, x_raw: np.ndarray, norm: Norm, epsilon: float) -> np.ndarray:
    """(N,) bool: candidates that are not finite, leave [0, 1], or lie outside the budget (beyond BUDGET_SLACK)."""
    not_finite = ~np.isfinite(x_raw.reshape(len(x), -1)).all(axis=1)
    x_raw = np.nan_to_num(x_raw, nan=-1.0)
    outside_box = (x_raw.reshape(len(x), -1).min(axis=1) < 0) | (x_raw.reshape(len(x), -1).max(axis=1) > 1)
    too_far = distances(x, x_raw, norm) > epsilon * (1 + BUDGET_SLACK) + BUDGET_SLACK
    return not_finite | outside_box | too_far


def evaluate_attack(attack: Attack, target: AttackTarget, split: Split, epsilon: float, seed: int,
                    clean_predictions: np.ndarray | None = None, still_robust: np.ndarray | None = None) -> AttackResult:
    """Run `attack` on the samples the deployed graph classifies correctly and re-check its candidates there.

    clean_predictions: the deployed graph's labels for split.x (N,), when the caller already has them.
    still_robust: (N,) bool; when given (a cascade), only those samples are attacked and the others count as
    already broken, so robust_accuracy is the cascade's accuracy after this attack.
    """
    if isinstance(attack, MinimalNormAttack):
        return evaluate_minimal(attack, target, split, seed, clean_predictions, still_robust).at_epsilon(epsilon)
    deployed = target.deployed
    if clean_predictions is None:
        clean_predictions = deployed.predict(split.x)
    clean_correct = clean_predictions == split.y
    correct = clean_correct if still_robust is None else clean_correct & still_robust
    index = np.flatnonzero(correct)
    x, y = split.x[index], split.y[index]
    queries: float | None = None
    median_success: float | None = None
    if index.size:
        output = attack.run(target, x, y, epsilon, seed)
        violations = budget_violations(x, output.x_adv, attack.norm, epsilon)
        out_of_budget = int(violations.sum())
        x_adv = np.array(output.x_adv, dtype=np.float32)  # in budget: judged as returned
        if out_of_budget:  # the rest projected; a non-finite one counts as no attack
            raw, clean = x_adv[violations], x[violations]
            finite = np.isfinite(raw.reshape(len(raw), -1)).all(axis=1)
            x_adv[violations] = project(clean, np.where(finite[:, None, None, None], raw, clean), attack.norm, epsilon)
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
        samples=len(split), clean_accuracy=float((clean_predictions == split.y).mean()), robust_accuracy=float((index.size - successes) / len(split)),
        attacked=int(index.size), successes=successes, out_of_budget=out_of_budget, queries=queries,
        queries_median_success=median_success, options=attack.options(), robust=robust,
        outcome=outcome_codes(clean_correct, correct, robust),
    )


OVERSHOOT = (1.01, 1.03, 1.1, 1.3)  # perturbation scales tried, in order, on the deployed graph


def past_the_boundary(deployed: OnnxClassifier, x: np.ndarray, y: np.ndarray, x_adv: np.ndarray, missed: np.ndarray,
                      fooled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A minimal-norm candidate sits on its gradient source's decision boundary; a deployed graph that computes a
    slightly different function (int8 or fp16, or another runtime's rounding) may still classify it correctly. For
    those (`missed`, (N,) bool) the perturbation x_adv - x is scaled by each of OVERSHOOT in turn (clipped to [0, 1])
    until the deployed graph is fooled: a few queries each, and the distance is then measured at the larger scale.
    Returns the candidates and the (N,) fooled mask, both updated."""
    x_adv, fooled = x_adv.copy(), fooled.copy()
    for scale in OVERSHOOT:
        index = np.flatnonzero(missed & ~fooled)
        if not index.size:
            break
        scaled = np.clip(x[index] + scale * (x_adv[index] - x[index]), 0.0, 1.0).astype(np.float32)
        hit = deployed.predict(scaled) != y[index]
        x_adv[index[hit]] = scaled[hit]
        fooled[index[hit]] = True
    return x_adv, fooled


def judge_candidates(deployed: OnnxClassifier, x: np.ndarray, y: np.ndarray, x_adv: np.ndarray, norm: Norm,
                     push: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample distances (N,) of candidates x_adv for clean x (N, C, H, W) with labels y, judged on the deployed
    graph: the evaluator's own distance where the candidate is finite, inside [0, 1] and misclassified, else inf; and
    the (N,) mask of candidates that were finite and inside [0, 1]. push: candidates that miss are pushed past the
    deployed graph's boundary first (past_the_boundary)."""
    flat = x_adv.reshape(len(x), -1)
    valid = np.isfinite(flat).all(axis=1) & (np.nan_to_num(flat, nan=-1).min(axis=1) >= 0) & (np.nan_to_num(flat, nan=2).max(axis=1) <= 1)
    x_adv = np.where(valid[:, None, None, None], x_adv, x).astype(np.float32)
    fooled = valid & (deployed.predict(x_adv) != y)
    if push:  # candidates of a gradient source (not counted as queries: the attack's own budget is not at stake)
        x_adv, fooled = past_the_boundary(deployed, x, y, x_adv, valid & ~fooled, fooled)
    judged = np.full(len(x), np.inf)
    judged[fooled] = distances(x[fooled], x_adv[fooled], norm)
    return judged, valid


def evaluate_minimal(attack: MinimalNormAttack, target: AttackTarget, split: Split, seed: int,
                     clean_predictions: np.ndarray | None = None, still_robust: np.ndarray | None = None) -> MinimalNormResult:
    """Run a minimal-norm attack on the correctly classified samples; keep a candidate's distance only if it is finite,
    inside [0, 1] and misclassified by the deployed graph. still_robust: (N,) bool, samples to attack (others get 0)."""
    deployed = target.deployed
    if clean_predictions is None:
        clean_predictions = deployed.predict(split.x)
    correct = clean_predictions == split.y
    attack_mask = correct if still_robust is None else correct & still_robust
    index = np.flatnonzero(attack_mask)
    found_distances = np.full(len(split), np.inf)
    found_distances[~correct] = 0.0
    if still_robust is not None:
        found_distances[correct & ~still_robust] = 0.0
    queries, out_of_box, found = None, 0, 0
    sample_queries = None
    if index.size:
        x, y = split.x[index], split.y[index]
        output = attack.run_minimal(target, x, y, seed)
        push = attack.kind.value == "white-box"  # gradient-source candidates; black-box ones came from the graph itself
        judged, valid = judge_candidates(deployed, x, y, output.x_adv, Norm(attack.norm), push)
        out_of_box = int((~valid).sum())
        found = int(np.isfinite(judged).sum())
        found_distances[index] = judged
        if output.queries is not None:
            queries = float(output.queries.mean())
            sample_queries = np.full(len(split), np.nan)
            sample_queries[index] = output.queries
    return MinimalNormResult(
        name=attack.name, norm=attack.norm.value, kind=attack.kind.value, samples=len(split),
        clean_accuracy=float(correct.mean()), attacked=int(index.size), found=found, out_of_box=out_of_box,
        median_distance=float(np.median(found_distances)), queries=queries, options=attack.options(), distances=found_distances,
        sample_queries=sample_queries, clean_correct=correct,
    )


