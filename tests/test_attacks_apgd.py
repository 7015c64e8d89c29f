"""APGD's losses (cross-entropy, DLR, targeted DLR) and the targeted attack APGD-T, on hand-made logits, hand-made
linear models and the zoo's LeNet-5 with real Fashion-MNIST test images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from evaluator.attacks import AttackTarget, create_attack
from evaluator.attacks import apgd
from evaluator.datasets import Dataset
from evaluator.errors import EvaluatorError
from evaluator.robustness import evaluate_attack
from evaluator.runtime import OnnxClassifier

from conftest import ZOO_PARENT
from onnx_graphs import linear_classifier

EPSILON = 8 / 255


@pytest.fixture(scope="module")
def parent() -> AttackTarget:
    """The zoo's unpruned LeNet-5 and its own source."""
    return AttackTarget(OnnxClassifier(ZOO_PARENT, provider="cpu"), ZOO_PARENT.with_suffix(".pt2"))


def linear_target(tmp_path: Path, classes: int) -> AttackTarget:
    """A linear classifier on 28 x 28 grey images with `classes` outputs: the ONNX graph and the same weights in torch."""
    weight = np.random.default_rng(classes).normal(0, 0.05, (28 * 28, classes)).astype(np.float32)
    deployed = OnnxClassifier(linear_classifier(tmp_path / f"linear{classes}.onnx", classes=classes, weight=weight), provider="cpu")
    source = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, classes, bias=False))
    source[1].weight.data = torch.from_numpy(weight.T.copy())
    source.requires_grad_(False)
    return AttackTarget(deployed, _source=source)


def test_dlr_losses_match_hand_computed_values() -> None:
    logits = torch.tensor([[3.0, 1.0, 2.0, 0.0],  # correct: true 3, runner-up 2, third 1, fourth 0
                           [1.0, 4.0, 2.0, 0.0]], dtype=torch.float64)  # misclassified as class 1
    y = torch.tensor([0, 0])
    # -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3): -(3 - 2) / (3 - 1) and -(1 - 4) / (4 - 1)
    assert apgd.dlr_loss(logits, y).tolist() == pytest.approx([-0.5, 1.0])
    # -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2): -(3 - 2) / (3 - 0.5), -(3 - 1) / 2.5; -(1 - 2) / (4 - 0.5), -(1 - 4) / 3.5
    targets = torch.tensor([2, 1])
    assert apgd.targeted_dlr_loss(logits, y, targets).tolist() == pytest.approx([-0.4, 3 / 3.5])
    assert apgd.targeted_dlr_loss(logits, y, torch.tensor([1, 2])).tolist() == pytest.approx([-0.8, 1 / 3.5])
    shifted = 7 * logits - 3  # both losses are blind to shifting and scaling the logits
    assert apgd.dlr_loss(shifted, y).tolist() == pytest.approx(apgd.dlr_loss(logits, y).tolist())
    assert apgd.targeted_dlr_loss(shifted, y, targets).tolist() == pytest.approx(apgd.targeted_dlr_loss(logits, y, targets).tolist())
    cross_entropy = apgd.cross_entropy_loss(logits, y)
    assert cross_entropy.tolist() == pytest.approx((torch.logsumexp(logits, 1) - logits[:, 0]).tolist())


def test_dlr_losses_need_enough_classes() -> None:
    with pytest.raises(EvaluatorError, match="at least 3 classes"):
        apgd.dlr_loss(torch.zeros(2, 2), torch.tensor([0, 1]))
    with pytest.raises(EvaluatorError, match="at least 4 classes"):
        apgd.targeted_dlr_loss(torch.zeros(2, 3), torch.tensor([0, 1]), torch.tensor([1, 2]))


def test_targets_are_the_highest_other_logits() -> None:
    logits = torch.tensor([[0.1, 5.0, 3.0, 4.0, -1.0],  # correct (y = 1): the 2nd, 3rd, ... highest logits
                           [9.0, 5.0, 3.0, 4.0, -1.0]])  # misclassified (y = 1): the true class is never a target
    y = torch.tensor([1, 1])
    assert apgd.target_ranking(logits, y, 4).tolist() == [[3, 2, 0, 4], [0, 3, 2, 4]]
    assert apgd.target_ranking(logits, y, 2).tolist() == [[3, 2], [0, 3]]


def record_targets(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """The target classes of every APGD run APGD-T makes, in order."""
    calls: list[torch.Tensor] = []
    original = apgd.apgd_batch

    def spy(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        calls.append(args[7].clone())  # model, x, y, epsilon, options, generator, loss, targets
        return original(*args, **kwargs)

    monkeypatch.setattr(apgd, "apgd_batch", spy)
    return calls


def test_apgd_t_attacks_each_target_in_turn_on_the_samples_left(parent: AttackTarget, fmnist: Dataset,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Targets: the 2nd, 3rd, ... highest clean logits; each run attacks only the samples no run before it fooled;
    never more than K - 1 runs, whatever target_classes asks."""
    calls = record_targets(monkeypatch)
    x, y = fmnist.test.x[:40], fmnist.test.y[:40]
    correct = parent.deployed.predict(x) == y
    x, y = x[correct], y[correct]
    attack = create_attack("apgd-t-linf", steps=5, target_classes=50)
    x_adv = attack.run(parent, x, y, 2 / 255, seed=0).x_adv
    with torch.no_grad():
        ranking = torch.from_numpy(parent.source()(torch.from_numpy(x)).numpy()).argsort(dim=1, descending=True)
    assert 2 <= len(calls) <= 9
    assert torch.equal(calls[0], ranking[:, 1])  # every sample starts with the runner-up class
    sizes = [len(call) for call in calls]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < len(x)  # fooled samples leave
    for rank, call in enumerate(calls):
        assert set(call.tolist()) <= set(ranking[:, rank + 1].tolist())
    fooled = parent.deployed.predict(x_adv) != y
    assert 0 < fooled.sum() < len(x)


def test_apgd_t_runs_at_most_k_minus_1_targets_on_4_classes(tmp_path: Path, fmnist: Dataset,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    calls = record_targets(monkeypatch)
    target = linear_target(tmp_path, 4)
    x = fmnist.test.x[:30]
    y = target.deployed.predict(x)  # every sample starts correctly classified
    create_attack("apgd-t-l2", steps=3).run(target, x, y, 0.01, seed=0)
    assert len(calls) == 3  # K - 1, though target_classes is 9; a tiny epsilon leaves samples for every target
    assert not np.any(calls[0].numpy() == y)


def test_too_few_classes_are_refused_clearly(tmp_path: Path, fmnist: Dataset) -> None:
    x, y = fmnist.test.x[:10], np.zeros(10, np.int64)
    three = linear_target(tmp_path, 3)
    for name in ("apgd-t-linf", "apgd-t-l2"):
        with pytest.raises(EvaluatorError, match=rf"attack '{name}': the targeted DLR loss needs a model with at least 4 "
                                                 r"classes .* this one has 3: use an APGD-CE attack"):
            create_attack(name).run(three, x, y, EPSILON, seed=0)
    assert create_attack("apgd-dlr-linf", steps=3).run(three, x, y, EPSILON, seed=0).x_adv.shape == x.shape  # 3 is enough
    two = linear_target(tmp_path, 2)
    with pytest.raises(EvaluatorError, match="attack 'apgd-dlr-l2': the DLR loss needs a model with at least 3 classes"):
        create_attack("apgd-dlr-l2").run(two, x, y % 2, 1.0, seed=0)
    assert create_attack("apgd-ce-l2", steps=3).run(two, x, y % 2, 1.0, seed=0).x_adv.shape == x.shape


@pytest.mark.slow
def test_apgd_t_is_at_least_as_strong_as_apgd_ce(parent: AttackTarget, fmnist: Dataset) -> None:
    """On 200 zoo test images at Linf 8/255, APGD-T alone leaves no more samples robust than APGD-CE alone, and adds
    successes after it (AutoAttack's reason to run it second)."""
    subset = fmnist.test.head(200)
    ce = evaluate_attack(create_attack("apgd-ce-linf"), parent, subset, EPSILON, seed=0)
    targeted = evaluate_attack(create_attack("apgd-t-linf"), parent, subset, EPSILON, seed=0)
    after = evaluate_attack(create_attack("apgd-t-linf"), parent, subset, EPSILON, seed=0, still_robust=ce.robust)
    assert targeted.out_of_budget == after.out_of_budget == 0
    assert targeted.robust_accuracy <= ce.robust_accuracy, (targeted.robust_accuracy, ce.robust_accuracy)
    assert after.robust_accuracy <= ce.robust_accuracy


@pytest.mark.slow
@pytest.mark.parametrize(("name", "epsilon"), [("apgd-t-linf", EPSILON), ("apgd-dlr-l2", 0.5), ("apgd-t-l2", 0.5)])
def test_same_seed_same_candidates(name: str, epsilon: float, parent: AttackTarget, fmnist: Dataset) -> None:
    x, y = fmnist.test.x[:60], fmnist.test.y[:60]
    runs = [create_attack(name, steps=10, batch_size=25).run(parent, x, y, epsilon, seed=seed).x_adv for seed in (3, 3, 4)]
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_apgd_dlr_stays_in_the_ball_and_the_box(parent: AttackTarget, fmnist: Dataset) -> None:
    x, y = fmnist.test.x[:50], fmnist.test.y[:50]
    for name, epsilon, order in (("apgd-dlr-linf", EPSILON, np.inf), ("apgd-dlr-l2", 0.5, 2)):
        x_adv = create_attack(name, steps=10).run(parent, x, y, epsilon, seed=0).x_adv
        assert x_adv.min() >= 0 and x_adv.max() <= 1
        assert np.linalg.norm((x_adv - x).reshape(len(x), -1), ord=order, axis=1).max() <= epsilon * (1 + 1e-5)


@pytest.mark.parametrize(("name", "epsilon"), [("apgd-ce-linf", EPSILON), ("apgd-ce-l2", 1.0)])
def test_apgd_stopping_fooled_samples_early_fools_the_same_samples(name: str, epsilon: float, parent: AttackTarget,
                                                                   fmnist: Dataset) -> None:
    """stop_when_fooled (the default of the DLR attacks, an option of APGD-CE) saves steps on the samples already
    misclassified by a settled margin without changing which samples the deployed graph gets wrong."""
    subset = fmnist.test.head(300)
    runs = [evaluate_attack(create_attack(name, steps=30, stop_when_fooled=stop), parent, subset, epsilon, seed=0)
            for stop in (False, True)]
    assert 0 < runs[0].successes < runs[0].attacked and runs[0].out_of_budget == runs[1].out_of_budget == 0
    assert np.array_equal(runs[0].robust, runs[1].robust)
