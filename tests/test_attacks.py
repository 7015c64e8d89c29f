"""Soundness and strength of the attacks on the shipped zoo model and real Fashion-MNIST test images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from evaluator.assessment import AssessConfig, run_attacks
from evaluator.attacks import AttackTarget, create_attack, is_minimal, list_attacks
from evaluator.attacks.base import AttackKind, AttackOutput, MinimalNormAttack, Norm, Work, parse_attack_spec
from evaluator.datasets import Dataset
from evaluator.errors import EvaluatorError
from evaluator.limits import MAX_ATTACK_COUNT, MAX_BATCH
from evaluator.norms import distances, project
from evaluator.robustness import evaluate_attack, evaluate_minimal
from evaluator.runtime import OnnxClassifier

from conftest import ZOO_CHILD, ZOO_PARENT

EPSILON = 8 / 255


@pytest.fixture(scope="module")
def target() -> AttackTarget:
    """The zoo's pruned child, its own source, and its unpruned parent as the transfer surrogate."""
    return AttackTarget(OnnxClassifier(ZOO_CHILD, provider="cpu"), ZOO_CHILD.with_suffix(".pt2"), ZOO_PARENT.with_suffix(".pt2"))


def small_options(name: str) -> dict:
    """Budgets small enough for a quick test but large enough to break samples (a new attack needs an entry)."""
    return {"square-linf": {"queries": 200}, "pgd-linf": {"steps": 10}, "pgd-l2": {"steps": 10},
            "transfer-pgd-linf": {"steps": 10}, "apgd-ce-linf": {"steps": 10},
            "hsj-l2": {"queries": 100}, "hsj-linf": {"queries": 100}, "square-l2": {"queries": 200},
            "sparse-rs-l0": {"queries": 200}, "cw-l2": {"binary_search_steps": 4, "steps": 20}, "apgd-ce-l2": {"steps": 10},
            "apgd-dlr-linf": {"steps": 10}, "apgd-dlr-l2": {"steps": 10}, "apgd-t-linf": {"steps": 10, "target_classes": 3},
            "apgd-t-l2": {"steps": 10, "target_classes": 3},
            "fmn-l0": {"steps": 20}, "fmn-l1": {"steps": 20}, "fmn-l2": {"steps": 20}, "fmn-linf": {"steps": 20},
            "l0-greedy": {"max_pixels": 60}}[name]


EPSILONS = {Norm.LINF: (2 / 255, 8 / 255, 32 / 255), Norm.L2: (0.25, 1.0, 3.0), Norm.L1: (2.0, 8.0, 30.0), Norm.L0: (1, 5, 20)}


@pytest.mark.parametrize("attack_class", list_attacks(), ids=lambda cls: cls.name)
def test_every_registered_attack_is_sound(attack_class: type, target: AttackTarget, fmnist: Dataset) -> None:
    """Budget, soundness and monotonicity on 200 real test images; minimal-norm attacks also give a whole curve."""
    subset = fmnist.test.head(200)
    options = small_options(attack_class.name)
    attack = create_attack(attack_class.name, **options)
    if is_minimal(attack):
        found = evaluate_minimal(attack, target, subset, seed=0)
        assert found.out_of_box == 0 and found.attacked == round(found.clean_accuracy * 200)
        assert (found.distances == 0).sum() == 200 - found.attacked  # misclassified without attack: distance 0
        assert found.found >= 0.5 * found.attacked, (found.found, found.attacked)
        grid = np.linspace(0, max(EPSILONS[attack_class.norm]) * 3, 50)
        assert np.all(np.diff(found.curve(grid)) <= 0) and found.curve(grid)[0] == found.clean_accuracy
        results = [found.at_epsilon(eps) for eps in EPSILONS[attack_class.norm]]
        queries = found.queries
    else:
        results = [evaluate_attack(attack, target, subset, eps, seed=0) for eps in EPSILONS[attack_class.norm]]
        queries = results[0].queries
    for result in results:
        assert result.out_of_budget == 0
        assert result.robust_accuracy <= result.clean_accuracy
        assert result.samples == 200 and result.attacked == round(result.clean_accuracy * 200)
    if attack_class.kind in (AttackKind.SCORE, AttackKind.DECISION):
        assert queries is not None and 1 <= queries <= options["queries"]
    robust = [result.robust_accuracy for result in results]
    assert robust[0] >= robust[1] >= robust[2] and robust[2] < robust[0], robust


@pytest.mark.slow
@pytest.mark.parametrize("attack_class", list_attacks(), ids=lambda cls: cls.name)
def test_same_seed_same_numbers(attack_class: type, target: AttackTarget, fmnist: Dataset) -> None:
    subset = fmnist.test.head(100)
    epsilon = EPSILONS[attack_class.norm][1]
    runs = [evaluate_attack(create_attack(attack_class.name, **small_options(attack_class.name)), target, subset, epsilon, seed=7)
            for _ in range(2)]
    assert runs[0] == runs[1] and np.array_equal(runs[0].robust, runs[1].robust)


def test_every_candidate_behind_a_success_fools_the_deployed_graph(target: AttackTarget, fmnist: Dataset) -> None:
    x, y = fmnist.test.x[:100], fmnist.test.y[:100]
    correct = target.deployed.predict(x) == y
    output = create_attack("pgd-linf").run(target, x[correct], y[correct], EPSILON, seed=0)
    x_adv = project(x[correct], output.x_adv, Norm.LINF, EPSILON)
    assert distances(x[correct], x_adv, Norm.LINF).max() <= EPSILON + 1e-6
    fooled = target.deployed.predict(x_adv) != y[correct]
    result = evaluate_attack(create_attack("pgd-linf"), target, fmnist.test.head(100), EPSILON, seed=0)
    assert result.successes == int(fooled.sum()) > 0


@pytest.mark.reference
def test_pgd_linf_matches_foolbox(target: AttackTarget, fmnist: Dataset) -> None:
    """Robust accuracy within 1.5 points of foolbox's LinfPGD with the same 40 steps on the same 1000 images."""
    foolbox = pytest.importorskip("foolbox")
    import torch

    subset = fmnist.test.head(1000)
    ours = evaluate_attack(create_attack("pgd-linf", steps=40), target, subset, EPSILON, seed=0)
    model = foolbox.PyTorchModel(target.source(), bounds=(0, 1))
    _, adversarials, _ = foolbox.attacks.LinfPGD(steps=40)(model, torch.from_numpy(subset.x), torch.from_numpy(subset.y),
                                                          epsilons=EPSILON)
    theirs = float((target.deployed.predict(adversarials.numpy()) == subset.y).mean())
    assert abs(ours.robust_accuracy - theirs) <= 0.015, (ours.robust_accuracy, theirs)


@pytest.mark.slow
@pytest.mark.parametrize(("norm", "epsilon"), [(Norm.LINF, 2 / 255), (Norm.LINF, 8 / 255), (Norm.L2, 0.5), (Norm.L2, 2.0)])
def test_pgd_stopping_fooled_samples_early_fools_the_same_samples(target: AttackTarget, fmnist: Dataset, norm: Norm,
                                                                   epsilon: float) -> None:
    """Dropping settled samples from the batch saves steps without changing which samples the deployed graph gets wrong."""
    from evaluator.attacks.whitebox import PGDOptions, projected_gradient

    x, y = fmnist.test.x[:300], fmnist.test.y[:300]
    fooled = {}
    for stop in (False, True):
        options = PGDOptions(norm, steps=20, rel_stepsize=0.05, random_start=True, batch_size=128, stop_when_fooled=stop)
        x_adv = projected_gradient(target.source(), x, y, epsilon, options, seed=0)
        assert distances(x, x_adv, norm).max() <= epsilon * (1 + 1e-5)
        fooled[stop] = target.deployed.predict(x_adv) != y
    assert 0 < fooled[True].sum() < len(x) or epsilon == 2.0
    assert np.array_equal(fooled[True], fooled[False])


def test_distances_follow_the_contract() -> None:
    x = np.zeros((1, 3, 2, 2), np.float32)
    x_adv = x.copy()
    x_adv[0, :, 0, 0] = 0.5  # one pixel, all three channels
    x_adv[0, 1, 1, 1] = -0.25
    assert distances(x, x_adv, Norm.L0)[0] == 2
    assert distances(x, x_adv, Norm.LINF)[0] == 0.5
    assert distances(x, x_adv, Norm.L2)[0] == pytest.approx(np.sqrt(3 * 0.25 + 0.0625))
    for norm in Norm:  # no sample (nothing fooled in a batch): an empty result, not an error
        assert distances(x[:0], x_adv[:0], norm).shape == (0,)


def test_projection_keeps_inputs_in_the_box_and_budget() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((5, 1, 4, 4), dtype=np.float32)
    wild = x + rng.normal(0, 1, x.shape).astype(np.float32)
    for norm in (Norm.LINF, Norm.L2):
        projected = project(x, wild, norm, 0.3)
        assert projected.min() >= 0 and projected.max() <= 1
        assert distances(x, projected, norm).max() <= 0.3 + 1e-6


def test_bad_attack_requests_are_user_errors() -> None:
    with pytest.raises(EvaluatorError, match="unknown attack"):
        create_attack("deepfool")
    with pytest.raises(EvaluatorError, match="no option"):
        create_attack("pgd-linf", iterations=3)


# Options that count something the attack cannot do without (a query, a sample per batch, a binary-search step).
COUNT_OPTIONS = ("queries", "batch_size", "candidates", "binary_search_steps", "init_evals", "max_evals", "steps",
                 "max_iterations", "max_pixels")


@pytest.mark.parametrize("attack_class", list_attacks(), ids=lambda cls: cls.name)
def test_number_options_outside_their_range_are_user_errors(attack_class: type) -> None:
    """Every count option of a registered attack has a minimum (a new attack fails here until it declares one), and
    one below it is refused when the attack is made, also through the NAME:KEY=VALUE spec; so are 0 for its
    positive options and negative or NaN values of its other number options."""
    options = attack_class().options()
    counts = [option for option in COUNT_OPTIONS if option in options]
    assert set(counts) <= set(attack_class.minimums), f"{attack_class.name}: no minimum for {set(counts) - set(attack_class.minimums)}"
    for option, minimum in attack_class.minimums.items():
        attack_class(**{option: minimum})
        with pytest.raises(EvaluatorError, match=f"{option} must be at least {minimum}"):
            attack_class(**{option: minimum - 1})
        with pytest.raises(EvaluatorError, match=f"{option} must be at least {minimum}"):
            attack_class(**{option: np.int64(minimum - 1)})  # numpy numbers too (the Python API)
    for option in attack_class.positive:
        with pytest.raises(EvaluatorError, match=f"{option} must be a positive number"):
            attack_class(**{option: 0.0})
    others = set(options) - set(attack_class.minimums) - set(attack_class.positive)
    for option in sorted(others):  # every other number must be finite and non-negative
        default = options[option]
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            with pytest.raises(EvaluatorError, match=f"{option} must be at least 0"):
                attack_class(**{option: -1 if isinstance(default, int) else float("nan")})
    for option, maximum in {**attack_class.maximums, **({"batch_size": MAX_BATCH} if "batch_size" in options else {})}.items():
        with pytest.raises(EvaluatorError, match=f"{option} must be at most"):
            attack_class(**{option: type(options[option])(maximum * 2)})
    with pytest.raises(EvaluatorError, match="given twice"):
        parse_attack_spec(f"{attack_class.name}:{next(iter(options))}={options[next(iter(options))]}:"
                          f"{next(iter(options))}={options[next(iter(options))]}")
    for option, default in options.items():  # every other whole number: at most MAX_ATTACK_COUNT
        if isinstance(default, int) and not isinstance(default, bool) and option != "batch_size":
            attack_class(**{option: MAX_ATTACK_COUNT})
            with pytest.raises(EvaluatorError, match=f"{option} must be at most 1,000,000"):
                attack_class(**{option: MAX_ATTACK_COUNT + 1})
    if "queries" in options:
        with pytest.raises(EvaluatorError, match="queries must be at least 1"):
            parse_attack_spec(f"{attack_class.name}:queries=0")
        with pytest.raises(EvaluatorError, match="queries must be at most"):  # no overflow in the check
            parse_attack_spec(f"{attack_class.name}:queries={10**21}")


def test_nan_candidates_count_as_out_of_budget(target: AttackTarget, fmnist: Dataset) -> None:
    from dataclasses import dataclass

    from evaluator.attacks.base import Attack, AttackOutput

    @dataclass
    class Broken(Attack):  # not registered: it exists only for this test
        name = "broken"
        norm = Norm.LINF
        kind = AttackKind.SCORE
        summary = "returns NaN"

        def work(self) -> Work:
            return Work(queries=1)

        def run(self, target, x, y, epsilon, seed):  # type: ignore[no-untyped-def]
            return AttackOutput(np.full_like(x, np.nan), np.ones(len(x), np.int64))

    result = evaluate_attack(Broken(), target, fmnist.test.head(50), EPSILON, seed=0)
    assert result.out_of_budget == result.attacked > 0
    assert result.robust_accuracy == result.clean_accuracy


def test_candidates_inside_the_budget_are_judged_as_returned_and_the_rest_projected(fmnist: Dataset) -> None:
    """A candidate over the budget by float32 rounding only (inside BUDGET_SLACK) is judged bit for bit as the attack
    returned it; one 10% over is projected onto the ball before the re-check and counted out of budget."""
    from evaluator.attacks.base import Attack

    class Recording(OnnxClassifier):
        def predict(self, x: np.ndarray) -> np.ndarray:
            self.seen = x.copy()
            return super().predict(x)

    @dataclass
    class Scaled(Attack):  # not registered: it exists only for this test
        name = "scaled"
        norm = Norm.L2
        kind = AttackKind.SCORE
        summary = "a fixed direction scaled to a share of epsilon"
        share: float = 1.0

        def work(self) -> Work:
            return Work(queries=1)

        def run(self, target, x, y, epsilon, seed):  # type: ignore[no-untyped-def]
            direction = np.abs(np.random.default_rng(seed).normal(size=x.shape)) * (x < 0.5)  # stays inside [0, 1]
            direction /= np.sqrt((direction.reshape(len(x), -1) ** 2).sum(axis=1))[:, None, None, None]
            self.returned = (x + self.share * epsilon * direction).astype(np.float32)
            return AttackOutput(self.returned)

    deployed = Recording(ZOO_CHILD, provider="cpu")
    subset = fmnist.test.head(40)
    correct = deployed.predict(subset.x) == subset.y
    for share, projected in ((1 + 3e-7, False), (1.1, True)):
        attack = Scaled(share=share)
        result = evaluate_attack(attack, AttackTarget(deployed), subset, 1.0, seed=0, clean_predictions=deployed.predict(subset.x))
        judged = deployed.seen
        raw_distances = distances(subset.x[correct], attack.returned, Norm.L2)
        assert np.array_equal(judged, attack.returned) != projected
        assert result.out_of_budget == (int(correct.sum()) if projected else 0)
        if not projected:
            assert raw_distances.max() > 1.0  # over epsilon by rounding, inside the slack
        assert distances(subset.x[correct], judged, Norm.L2).max() <= 1.0 + 2e-6


def test_worst_case_is_the_union_of_successes(target: AttackTarget, fmnist: Dataset) -> None:
    from evaluator.robustness import worst_cases

    subset = fmnist.test.head(200)
    results = [evaluate_attack(create_attack(name, **small_options(name)), target, subset, EPSILON, seed=0)
               for name in ("pgd-linf", "square-linf")]
    (worst,) = worst_cases(results)
    assert worst.robust_accuracy <= min(r.robust_accuracy for r in results)
    assert worst.robust_accuracy == float((results[0].robust & results[1].robust).mean())
    assert worst.attacks == ("pgd-linf", "square-linf")


@pytest.mark.reference
def test_pgd_l2_matches_foolbox(target: AttackTarget, fmnist: Dataset) -> None:
    """Robust accuracy no worse than 1.5 points above foolbox's L2PGD with the same 50 steps on 1000 images."""
    foolbox = pytest.importorskip("foolbox")
    import torch

    subset = fmnist.test.head(1000)
    ours = evaluate_attack(create_attack("pgd-l2"), target, subset, 1.0, seed=0)
    model = foolbox.PyTorchModel(target.source(), bounds=(0, 1))
    _, adversarials, _ = foolbox.attacks.L2PGD(steps=50)(model, torch.from_numpy(subset.x), torch.from_numpy(subset.y), epsilons=1.0)
    theirs = float((target.deployed.predict(adversarials.numpy()) == subset.y).mean())
    assert ours.robust_accuracy <= theirs + 0.015, (ours.robust_accuracy, theirs)


@pytest.mark.slow
def test_transfer_from_the_parent_is_weaker_than_white_box(target: AttackTarget, fmnist: Dataset) -> None:
    subset = fmnist.test.head(300)
    white = evaluate_attack(create_attack("pgd-linf"), target, subset, EPSILON, seed=0)
    transfer = evaluate_attack(create_attack("transfer-pgd-linf"), target, subset, EPSILON, seed=0)
    assert white.robust_accuracy <= transfer.robust_accuracy < transfer.clean_accuracy


@pytest.mark.reference
def test_square_linf_is_at_least_as_strong_as_torchattacks(target: AttackTarget, fmnist: Dataset) -> None:
    """Same model, samples, budget and p_init: our robust accuracy at most 1 point above torchattacks' Square."""
    torchattacks = pytest.importorskip("torchattacks")
    import torch

    subset = fmnist.test.head(300)
    ours = evaluate_attack(create_attack("square-linf", queries=500), target, subset, EPSILON, seed=0)
    square = torchattacks.Square(target.source(), norm="Linf", eps=EPSILON, n_queries=500, p_init=0.8, seed=0)
    adversarials = square(torch.from_numpy(subset.x), torch.from_numpy(subset.y)).detach().numpy()
    inside = np.abs(adversarials - subset.x).reshape(len(subset), -1).max(axis=1) <= EPSILON + 1e-6
    theirs = float(((target.deployed.predict(adversarials) == subset.y) | ~inside).mean())
    assert ours.robust_accuracy <= theirs + 0.01, (ours.robust_accuracy, theirs)


def test_apgd_is_at_least_as_strong_as_pgd(target: AttackTarget, fmnist: Dataset) -> None:
    subset = fmnist.test.head(300)
    apgd = evaluate_attack(create_attack("apgd-ce-linf"), target, subset, EPSILON, seed=0)
    pgd = evaluate_attack(create_attack("pgd-linf"), target, subset, EPSILON, seed=0)
    assert apgd.out_of_budget == 0 and apgd.robust_accuracy <= pgd.robust_accuracy, (apgd.robust_accuracy, pgd.robust_accuracy)


def test_apgd_checkpoints_follow_the_paper() -> None:
    from evaluator.attacks.apgd import apgd_checkpoints

    assert apgd_checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]  # AutoAttack's for 100 iterations
    assert apgd_checkpoints(1000) == [220, 410, 570, 700, 800, 870, 930, 990]


@dataclass
class FixedCandidates(MinimalNormAttack):
    """A minimal-norm attack that returns given candidates (not registered: for the bookkeeping tests)."""

    name = "fixed-candidates"
    norm = Norm.L2
    kind = AttackKind.WHITE_BOX
    summary = "returns what it is given"

    candidates: Any = None

    def work(self) -> Work:
        return Work()

    def run_minimal(self, target: AttackTarget, x: np.ndarray, y: np.ndarray, seed: int) -> AttackOutput:
        return AttackOutput(self.candidates[: len(x)])


def test_minimal_norm_candidates_are_rechecked_on_the_deployed_graph(target: AttackTarget, fmnist: Dataset) -> None:
    """Candidates that do not fool the deployed graph, or leave [0, 1], get no distance; a real one gets ours."""
    subset = fmnist.test.head(60)
    correct = target.deployed.predict(subset.x) == subset.y
    x, y = subset.x[correct], subset.y[correct]
    adversarial = create_attack("pgd-l2", steps=20).run(target, x, y, 3.0, seed=0).x_adv
    fooled = target.deployed.predict(adversarial) != y
    candidates = np.where(fooled[:, None, None, None], adversarial, np.clip(x + 1e-3, 0, 1))  # unfooled ones: tiny noise
    candidates[0] = x[0] + 2.0  # out of [0, 1]
    result = evaluate_minimal(FixedCandidates(candidates=candidates), target, subset, seed=0)
    index = np.flatnonzero(correct)
    expected = distances(x, candidates, Norm.L2)
    for i, sample in enumerate(index):
        if i == 0:
            assert result.distances[sample] == np.inf
        elif fooled[i]:
            assert result.distances[sample] == pytest.approx(expected[i])
        else:
            assert result.distances[sample] == np.inf
    assert result.out_of_box == 1 and result.found == int(fooled[1:].sum())
    assert np.all(result.distances[~correct] == 0)
    at_one = result.at_epsilon(1.0)
    assert at_one.robust_accuracy == pytest.approx(float((result.distances > 1.0).mean()))
    assert at_one.robust_accuracy <= at_one.clean_accuracy


def test_cascade_attacks_only_what_is_still_robust(target: AttackTarget, fmnist: Dataset) -> None:
    subset = fmnist.test.head(200)
    first = evaluate_attack(create_attack("pgd-linf", steps=5), target, subset, EPSILON, seed=0)
    second = evaluate_attack(create_attack("square-linf", queries=100), target, subset, EPSILON, seed=0, still_robust=first.robust)
    assert second.attacked == int(first.robust.sum())
    assert not np.any(second.robust & ~first.robust) and second.robust_accuracy <= first.robust_accuracy
    assert second.clean_accuracy == first.clean_accuracy


@pytest.mark.parametrize("spec", ["fmn-l2:steps=20", "hsj-l2:queries=40"])
def test_a_minimal_norm_attack_in_a_cascade_counts_only_what_was_left(spec: str, target: AttackTarget, fmnist: Dataset) -> None:
    """A minimal-norm attack runs once on every sample (for its curve); in the cascade its row counts as attacked the
    samples still robust before it, as successes only those it broke among them, and their mean queries."""
    subset = fmnist.test.head(100)
    config = AssessConfig(attacks=("pgd-l2:steps=5", spec), epsilons_l2=(1.0,))
    predictions = target.deployed.predict(subset.x)
    results, minimal = run_attacks(config.create_attacks(), target, subset, predictions, config, "", lambda message: None, [])
    pgd, row = results
    alone = minimal[0].at_epsilon(1.0)
    assert row.attacked == int(pgd.robust.sum()) < alone.attacked
    assert row.successes == int((pgd.robust & ~row.robust).sum()) < alone.successes
    assert row.robust_accuracy == float(row.robust.mean()) == float((pgd.robust & alone.robust).mean())
    if minimal[0].sample_queries is None:
        assert row.queries is None
    else:
        assert row.queries == pytest.approx(float(minimal[0].sample_queries[pgd.robust].mean()))
        assert alone.queries == pytest.approx(float(np.nanmean(minimal[0].sample_queries)))
