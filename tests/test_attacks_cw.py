"""Carlini-Wagner L2 (minimal norm) and APGD-CE in L2 on the shipped zoo model and real Fashion-MNIST test images."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator.attacks import AttackTarget, create_attack
from evaluator.attacks import cw  # noqa: F401  (registers cw-l2)
from evaluator.datasets import Dataset
from evaluator.norms import Norm, distances
from evaluator.results import MinimalNormResult
from evaluator.robustness import evaluate_attack, evaluate_minimal
from evaluator.runtime import OnnxClassifier

from conftest import ZOO_CHILD

SMALL_CW = {"binary_search_steps": 5, "steps": 50, "stepsize": 0.02, "initial_const": 1e-3}  # ~ a third of the default budget


@pytest.fixture(scope="module")
def target() -> AttackTarget:
    """The zoo's pruned child and its own source."""
    return AttackTarget(OnnxClassifier(ZOO_CHILD, provider="cpu"), ZOO_CHILD.with_suffix(".pt2"))


@pytest.fixture(scope="module")
def cw_small(target: AttackTarget, fmnist: Dataset) -> MinimalNormResult:
    """cw-l2 with the small budget on the first 100 test images, judged on the deployed graph."""
    return evaluate_minimal(create_attack("cw-l2", **SMALL_CW), target, fmnist.test.head(100), seed=0)


def test_cw_l2_finds_an_adversarial_for_nearly_every_sample(cw_small: MinimalNormResult) -> None:
    result = cw_small
    assert result.out_of_box == 0
    assert result.attacked > 80 and result.found >= 0.97 * result.attacked, (result.found, result.attacked)
    assert 0 < result.median_distance < 2.0
    curve = result.curve(np.array([0.0, 0.25, 0.5, 1.0, 2.0]))
    assert (np.diff(curve) <= 0).all() and curve[-1] < 0.1, curve


def test_cw_l2_returns_the_clean_input_where_it_finds_nothing(target: AttackTarget, fmnist: Dataset) -> None:
    """One step evaluates x only (Adam's first move is never checked): correctly classified samples come back unchanged."""
    x, y = fmnist.test.x[:50], fmnist.test.y[:50]
    correct = target.deployed.predict(x) == y
    weak = create_attack("cw-l2", binary_search_steps=1, steps=1)
    x_adv = weak.run_minimal(target, x[correct], y[correct], seed=0).x_adv
    assert x_adv.dtype == np.float32 and np.array_equal(x_adv, x[correct])


@pytest.mark.reference
def test_cw_l2_is_at_least_as_strong_as_foolbox(cw_small: MinimalNormResult, target: AttackTarget, fmnist: Dataset) -> None:
    """Median L2 on the deployed graph at most 1.05 x foolbox's L2CarliniWagnerAttack with the same budget and samples."""
    foolbox = pytest.importorskip("foolbox")
    import torch

    subset, ours = fmnist.test.head(100), cw_small
    correct = target.deployed.predict(subset.x) == subset.y
    x, y = subset.x[correct], subset.y[correct]
    model = foolbox.PyTorchModel(target.source(), bounds=(0, 1))
    adversarials = foolbox.attacks.L2CarliniWagnerAttack(**SMALL_CW).run(model, torch.from_numpy(x), torch.from_numpy(y)).numpy()
    fooled = target.deployed.predict(adversarials) != y
    theirs = np.zeros(len(subset))
    theirs[np.flatnonzero(correct)] = np.where(fooled, distances(x, adversarials, Norm.L2), np.inf)
    assert ours.median_distance <= 1.05 * float(np.median(theirs)), (ours.median_distance, float(np.median(theirs)))


def test_apgd_l2_is_at_least_as_strong_as_pgd_l2(target: AttackTarget, fmnist: Dataset) -> None:
    """With PGD-L2's own 50 steps, APGD-CE-L2 breaks at least as many samples at eps 1.0."""
    subset = fmnist.test.head(300)
    apgd = evaluate_attack(create_attack("apgd-ce-l2", steps=50), target, subset, 1.0, seed=0)
    pgd = evaluate_attack(create_attack("pgd-l2"), target, subset, 1.0, seed=0)
    assert apgd.out_of_budget == 0 and apgd.robust_accuracy <= pgd.robust_accuracy, (apgd.robust_accuracy, pgd.robust_accuracy)
    assert apgd.robust_accuracy < apgd.clean_accuracy


def test_apgd_l2_stays_in_the_ball_and_the_box(target: AttackTarget, fmnist: Dataset) -> None:
    x, y = fmnist.test.x[:64], fmnist.test.y[:64]
    x_adv = create_attack("apgd-ce-l2", steps=10).run(target, x, y, 0.5, seed=0).x_adv
    assert x_adv.dtype == np.float32 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert distances(x, x_adv, Norm.L2).max() <= 0.5 + 1e-5


@pytest.mark.parametrize("name, options, minimal", [("cw-l2", {"binary_search_steps": 3, "steps": 20}, True),
                                                     ("apgd-ce-l2", {"steps": 10}, False)])
def test_same_seed_same_numbers(name: str, options: dict, minimal: bool, target: AttackTarget, fmnist: Dataset) -> None:
    subset = fmnist.test.head(100)
    if minimal:
        runs = [evaluate_minimal(create_attack(name, **options), target, subset, seed=7) for _ in range(2)]
        assert runs[0] == runs[1] and np.array_equal(runs[0].distances, runs[1].distances)
    else:
        runs = [evaluate_attack(create_attack(name, **options), target, subset, 1.0, seed=7) for _ in range(2)]
        assert runs[0] == runs[1] and np.array_equal(runs[0].robust, runs[1].robust)
