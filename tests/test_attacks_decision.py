"""HopSkipJump (hsj-l2, hsj-linf): labels only, per-sample budgets, sound distances, strength against foolbox."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator.attacks.base import AttackKind, AttackTarget, Norm, create_attack
from evaluator.attacks.decision import HopSkipJumpOptions, LabelOracle, hop_skip_jump
from evaluator.datasets import Dataset
from evaluator.norms import distances
from evaluator.robustness import evaluate_minimal
from evaluator.runtime import OnnxClassifier

from conftest import ZOO_CHILD

NAMES = ("hsj-l2", "hsj-linf")


class LabelsOnly:
    """The deployed classifier behind a wall: top-1 labels only, every input counted; logits fail the test."""

    def __init__(self, inner: OnnxClassifier) -> None:
        self.inner, self.sent, self.calls = inner, 0, 0

    def predict(self, x: np.ndarray) -> np.ndarray:
        assert x.dtype == np.float32 and x.ndim == 4 and 0 <= x.min() and x.max() <= 1
        self.sent, self.calls = self.sent + len(x), self.calls + 1
        return self.inner.predict(x)

    def logits(self, x: np.ndarray) -> np.ndarray:
        raise AssertionError("a decision-based attack asked for logits")


@pytest.fixture(scope="module")
def deployed() -> OnnxClassifier:
    return OnnxClassifier(ZOO_CHILD, provider="cpu")


@pytest.fixture(scope="module")
def correct(deployed: OnnxClassifier, fmnist: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The first 60 test images the deployed graph classifies correctly."""
    x, y = fmnist.test.x[:100], fmnist.test.y[:100]
    keep = np.flatnonzero(deployed.predict(x) == y)[:60]
    return x[keep], y[keep]


@pytest.mark.parametrize("name", NAMES)
def test_labels_only_within_budget_and_closest_found(name: str, deployed: OnnxClassifier,
                                                     correct: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = correct
    wall = LabelsOnly(deployed)
    attack = create_attack(name, queries=300)
    assert attack.kind is AttackKind.DECISION
    output = attack.run_minimal(AttackTarget(wall), x, y, seed=0)  # type: ignore[arg-type]  # no source: torch is off limits
    assert output.queries is not None and output.queries.shape == (len(x),)
    assert output.queries.max() <= 300 and output.queries.sum() == wall.sent  # every input sent is charged to a sample
    assert output.x_adv.dtype == np.float32 and output.x_adv.min() >= 0 and output.x_adv.max() <= 1
    fooled = deployed.predict(output.x_adv) != y
    assert fooled.mean() >= 0.95
    assert (output.x_adv[~fooled] == x[~fooled]).all()  # x itself where nothing was found
    assert wall.calls < 300  # vectorised: one predict per stage for all samples, not one per sample


@pytest.mark.parametrize("name", NAMES)
def test_evaluator_rechecks_every_distance(name: str, deployed: OnnxClassifier, fmnist: Dataset) -> None:
    subset = fmnist.test.head(100)
    attack = create_attack(name, queries=300)
    result = evaluate_minimal(attack, AttackTarget(LabelsOnly(deployed)), subset, seed=0)  # type: ignore[arg-type]
    assert result.out_of_box == 0 and result.found >= 0.95 * result.attacked
    assert result.queries is not None and result.queries <= 300
    attacked = result.distances[result.distances > 0]
    assert np.isfinite(np.median(attacked)) and np.median(attacked) < (2.0 if attack.norm is Norm.L2 else 0.25)


@pytest.mark.parametrize("name", NAMES)
def test_more_queries_find_closer_adversarials(name: str, deployed: OnnxClassifier,
                                               correct: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = correct[0][:30], correct[1][:30]
    target = AttackTarget(deployed)
    norm = create_attack(name).norm
    medians = [float(np.median(distances(x, create_attack(name, queries=budget).run_minimal(target, x, y, 0).x_adv, norm)))
               for budget in (100, 600)]
    assert medians[1] < 0.9 * medians[0], medians


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_numbers(name: str, deployed: OnnxClassifier, correct: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = correct[0][:20], correct[1][:20]
    target = AttackTarget(deployed)
    runs = [create_attack(name, queries=150).run_minimal(target, x, y, seed) for seed in (3, 3, 4)]
    assert np.array_equal(runs[0].x_adv, runs[1].x_adv) and np.array_equal(runs[0].queries, runs[1].queries)
    assert not np.array_equal(runs[0].x_adv, runs[2].x_adv)


def test_tiny_budgets_and_lone_samples(deployed: OnnxClassifier, correct: tuple[np.ndarray, np.ndarray]) -> None:
    """A budget too small to finish anything still stays within budget; a batch of one starts from noise."""
    x, y = correct

    def options(norm: Norm, queries: int) -> HopSkipJumpOptions:
        return HopSkipJumpOptions(norm, queries, max_iterations=64, init_evals=100, max_evals=10000, init_attempts=4,
                                  noise_draws=20, gamma=1.0)

    for norm in (Norm.L2, Norm.LINF):
        for budget in (0, 1, 3, 20):
            output = hop_skip_jump(deployed, x[:8], y[:8], options(norm, budget), seed=0)
            assert output.queries is not None and output.queries.max() <= budget
            fooled = deployed.predict(output.x_adv) != y[:8]
            assert (output.x_adv[~fooled] == x[:8][~fooled]).all()
        lone = hop_skip_jump(deployed, x[:1], y[:1], options(norm, 200), seed=0)
        assert lone.queries is not None and lone.queries[0] <= 200
        assert deployed.predict(lone.x_adv)[0] != y[0]  # noise start (no other class in the batch), then HSJ


def test_oracle_lets_each_sample_spend_exactly_its_budget(deployed: OnnxClassifier) -> None:
    oracle = LabelOracle(deployed, np.array([0, 1, 2]), budget=3)
    oracle.used[:] = [0, 2, 3]
    owners = np.array([1, 0, 1, 2, 0, 1, 0, 0])
    assert oracle.affordable(owners).tolist() == [True, True, False, False, True, False, True, False]
    assert oracle.affordable(owners, reserve=1).tolist() == [False, True, False, False, True, False, False, False]


@pytest.mark.parametrize("name", NAMES)
def test_at_least_as_strong_as_foolbox(name: str, deployed: OnnxClassifier, correct: tuple[np.ndarray, np.ndarray]) -> None:
    """Same 30 samples, same deployed graph, our budget = foolbox's queries per sample after 2 steps
    (all of them counted: its blended-noise start, binary searches, probes, step-size trials)."""
    foolbox = pytest.importorskip("foolbox")
    x, y = correct[0][:30], correct[1][:30]
    norm = create_attack(name).norm
    sent = 0

    def logits(batch: np.ndarray) -> np.ndarray:
        nonlocal sent
        sent += len(batch)
        return deployed.logits(np.asarray(batch, np.float32))

    np.random.seed(0)
    attack = foolbox.attacks.HopSkipJumpAttack(steps=2, constraint="l2" if norm is Norm.L2 else "linf")
    theirs = np.asarray(attack.run(foolbox.models.NumPyModel(logits, bounds=(0, 1)), x, foolbox.criteria.Misclassification(y)),
                        np.float32)
    budget = sent // len(x)  # foolbox queries every sample in every call
    ours = create_attack(name, queries=budget).run_minimal(AttackTarget(deployed), x, y, seed=0).x_adv

    def judged(x_adv: np.ndarray) -> np.ndarray:
        return np.where(deployed.predict(x_adv) != y, distances(x, x_adv, norm), np.inf)

    ours_median, theirs_median = float(np.median(judged(ours))), float(np.median(judged(theirs)))
    assert ours_median <= theirs_median, (budget, ours_median, theirs_median)
