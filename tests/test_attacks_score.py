"""Score-based attacks on the deployed graph: Square in Linf and L2, Sparse-RS in L0.

Budgets, honest query counts, early stop, determinism, and strength against torchattacks (Square-L2, OnePixel)
and against random noise, on the shipped zoo model and real Fashion-MNIST test images.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from evaluator.attacks.base import AttackTarget, create_attack
from evaluator.attacks.score import RandomSearch, SquareL2, flat_positions, gather, random_squares, rectangle_bump, scatter, square_pattern
from evaluator.datasets import Dataset, Split
from evaluator.norms import Norm, distances
from evaluator.robustness import evaluate_attack
from evaluator.runtime import OnnxClassifier

from conftest import ZOO_CHILD
from onnx_graphs import linear_classifier

BUDGET = 200
# name -> (norm, epsilon for the single-budget tests, three increasing epsilons)
ATTACKS = {
    "square-linf": (Norm.LINF, 8 / 255, (2 / 255, 8 / 255, 32 / 255)),
    "square-l2": (Norm.L2, 1.0, (0.25, 1.0, 3.0)),
    "sparse-rs-l0": (Norm.L0, 10, (1, 10, 50)),
}


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """The reference libraries on one torch thread: on a busy 2-core CI box two threads wait on each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def target() -> AttackTarget:
    return AttackTarget(OnnxClassifier(ZOO_CHILD, provider="cpu"), ZOO_CHILD.with_suffix(".pt2"))


@pytest.fixture(scope="module")
def clean(target: AttackTarget, fmnist: Dataset) -> Split:
    """The clean-correct samples among the first 200 test images."""
    subset = fmnist.test.head(200)
    return subset.take(np.flatnonzero(target.deployed.predict(subset.x) == subset.y))


@pytest.mark.parametrize("name", list(ATTACKS))
def test_every_query_is_counted_and_unbroken_samples_use_the_whole_budget(name: str, target: AttackTarget, clean: Split) -> None:
    norm, epsilon, _ = ATTACKS[name]
    before = target.deployed.queries
    output = create_attack(name, queries=BUDGET).run(target, clean.x, clean.y, epsilon, seed=0)
    sent = target.deployed.queries - before
    assert output.queries is not None and output.queries.shape == (len(clean),)
    assert output.queries.dtype.kind == "i" and output.queries.min() >= 1 and output.queries.max() <= BUDGET
    assert output.queries.sum() == sent  # every sample sent to the deployed graph is counted, and nothing else
    fooled = target.deployed.predict(output.x_adv) != clean.y
    assert 0 < fooled.sum() < len(clean)
    assert fooled[output.queries < BUDGET].all()  # a sample stops early only when broken ...
    assert (output.queries[~fooled] == BUDGET).all()  # ... and an unbroken one spends the whole budget
    assert np.median(output.queries[fooled]) < BUDGET / 2  # early stop: no query after the first success
    assert distances(clean.x, output.x_adv, norm).max() <= epsilon * (1 + 1e-6) + 1e-6
    assert output.x_adv.dtype == np.float32 and output.x_adv.min() >= 0 and output.x_adv.max() <= 1


@pytest.mark.parametrize("name", ["square-l2", "sparse-rs-l0"])
def test_new_attacks_are_sound_and_monotone_in_epsilon(name: str, target: AttackTarget, fmnist: Dataset) -> None:
    _, _, epsilons = ATTACKS[name]
    subset = fmnist.test.head(200)
    results = [evaluate_attack(create_attack(name, queries=BUDGET), target, subset, eps, seed=0) for eps in epsilons]
    for result in results:
        assert result.out_of_budget == 0
        assert result.robust_accuracy <= result.clean_accuracy
        assert result.queries is not None and 1 <= result.queries <= BUDGET
    robust = [result.robust_accuracy for result in results]
    assert robust[0] >= robust[1] >= robust[2] and robust[2] < robust[0], robust


@pytest.mark.parametrize("name", ["square-l2", "sparse-rs-l0"])
def test_same_seed_same_numbers(name: str, target: AttackTarget, clean: Split) -> None:
    _, epsilon, _ = ATTACKS[name]
    x, y = clean.x[:60], clean.y[:60]
    first, second, other = (create_attack(name, queries=100).run(target, x, y, epsilon, seed=seed) for seed in (7, 7, 8))
    assert np.array_equal(first.x_adv, second.x_adv) and np.array_equal(first.queries, second.queries)
    assert not np.array_equal(first.x_adv, other.x_adv)


def test_sparse_rs_changes_at_most_k_pixels_to_corners(target: AttackTarget, clean: Split) -> None:
    k = 10
    output = create_attack("sparse-rs-l0", queries=BUDGET).run(target, clean.x, clean.y, k, seed=0)
    assert distances(clean.x, output.x_adv, Norm.L0).max() <= k
    changed = output.x_adv != clean.x
    assert np.isin(output.x_adv[changed], (0.0, 1.0)).all()  # every changed value is a corner of [0, 1]


def test_sparse_rs_breaks_far_more_than_random_corners(target: AttackTarget, fmnist: Dataset) -> None:
    """At k = 10 pixels the search must beat k random pixels set to random corners by a wide margin."""
    k, subset = 10, fmnist.test.head(200)
    ours = evaluate_attack(create_attack("sparse-rs-l0", queries=BUDGET), target, subset, k, seed=0)
    rng = np.random.default_rng(0)
    pixels = np.argsort(rng.random((len(subset), 28 * 28)), axis=1)[:, :k]
    noisy = subset.x.copy()
    scatter(noisy, np.arange(len(subset)), pixels, rng.integers(0, 2, (len(subset), 1, k)).astype(np.float32))
    assert distances(subset.x, noisy, Norm.L0).max() <= k
    noise = float((target.deployed.predict(noisy) == subset.y).mean())
    assert ours.out_of_budget == 0
    assert ours.robust_accuracy <= noise - 0.5, (ours.robust_accuracy, noise)


@pytest.mark.reference
def test_sparse_rs_is_stronger_than_torchattacks_onepixel(target: AttackTarget, fmnist: Dataset) -> None:
    """OnePixel with k pixels (differential evolution over positions and any values: a wider search space than
    corners) at about the same queries per sample (population 60 for 8 generations) on the same 50 images."""
    torchattacks = pytest.importorskip("torchattacks")
    import torch

    k, subset = 10, fmnist.test.head(50)
    ours = evaluate_attack(create_attack("sparse-rs-l0", queries=500), target, subset, k, seed=0)
    torch.manual_seed(0)
    np.random.seed(0)  # OnePixel's differential evolution draws from numpy's global generator
    attack = torchattacks.OnePixel(target.source(), pixels=k, steps=7, popsize=60, inf_batch=256)
    with one_torch_thread():
        adversarials = attack(torch.from_numpy(subset.x), torch.from_numpy(subset.y)).detach().numpy()
    inside = distances(subset.x, adversarials, Norm.L0) <= k
    theirs = float(((target.deployed.predict(adversarials) == subset.y) | ~inside).mean())
    assert ours.robust_accuracy <= theirs - 0.2, (ours.robust_accuracy, theirs)


@pytest.mark.reference
def test_square_l2_is_at_least_as_strong_as_torchattacks(target: AttackTarget, fmnist: Dataset) -> None:
    """Same model, samples, budget and p_init: our robust accuracy at most 1 point above torchattacks' Square L2."""
    torchattacks = pytest.importorskip("torchattacks")
    import torch

    subset, epsilon = fmnist.test.head(300), 1.0
    ours = evaluate_attack(create_attack("square-l2", queries=500), target, subset, epsilon, seed=0)
    square = torchattacks.Square(target.source(), norm="L2", eps=epsilon, n_queries=500, p_init=0.8, seed=0)
    with one_torch_thread():
        adversarials = square(torch.from_numpy(subset.x), torch.from_numpy(subset.y)).detach().numpy()
    inside = distances(subset.x, adversarials, Norm.L2) <= epsilon * (1 + 1e-6) + 1e-6
    theirs = float(((target.deployed.predict(adversarials) == subset.y) | ~inside).mean())
    assert ours.out_of_budget == 0
    assert ours.robust_accuracy <= theirs + 0.01, (ours.robust_accuracy, theirs)


def test_square_l2_proposals_stay_on_the_sphere() -> None:
    """Moving mass between two windows keeps ||delta|| = epsilon (it was at most epsilon), per the paper."""
    rng = np.random.default_rng(0)
    delta = rng.normal(size=(64, 3, 12, 12)).astype(np.float32)
    delta *= (rng.uniform(0.2, 1.0, 64) / np.sqrt((delta.reshape(64, -1) ** 2).sum(axis=1))).astype(np.float32)[:, None, None, None]
    for side in (3, 5, 11):
        proposal = delta.copy()
        SquareL2._move_mass(rng, proposal, 1.0, side)
        assert np.allclose(np.sqrt((proposal.reshape(64, -1) ** 2).sum(axis=1)), 1.0, atol=1e-5)
        assert ((proposal != delta).reshape(64, -1).sum(axis=1) <= 2 * 3 * side * side).all()  # two windows at most


def test_square_pattern_is_the_papers_two_halves_bump() -> None:
    for side in (3, 4, 5, 9):
        pattern = square_pattern(side)
        assert pattern.shape == (side, side) and np.isclose((pattern.astype(np.float64) ** 2).sum(), 1.0)
        assert (pattern[: side // 2] > 0).all() and (pattern[side // 2:] < 0).all()
    bump = rectangle_bump(3, 5)  # centre (1, 2); max(3 // 2, 5 // 2) + 1 = 3 nested rectangles weighted 1, 1/4, 1/9
    levels = np.array([1 + 1 / 4 + 1 / 9, 1 / 4 + 1 / 9, 1 / 9])  # by Chebyshev distance 0, 1, 2 from the centre
    expected = levels[np.maximum(np.abs(np.arange(3)[:, None] - 1), np.abs(np.arange(5)[None, :] - 2))]
    assert np.allclose(bump, expected / np.sqrt((expected**2).sum()))


def test_windows_gather_and_scatter_the_right_pixels() -> None:
    rng = np.random.default_rng(1)
    a = rng.random((4, 3, 6, 7)).astype(np.float32)
    samples = np.array([3, 0, 3])
    pixels = random_squares(rng, 3, 6, 7, 3)
    assert pixels.min() >= 0 and pixels.max() < 6 * 7
    rows, cols = pixels // 7, pixels % 7
    assert (rows.max(axis=1) - rows.min(axis=1) == 2).all() and (cols.max(axis=1) - cols.min(axis=1) == 2).all()
    expected = a[samples[:, None, None], np.arange(3)[None, :, None], rows[:, None, :], cols[:, None, :]]
    assert np.array_equal(gather(a, samples, pixels), expected)
    b = a.copy()
    scatter(b, samples[:2], pixels[:2], -1.0)
    assert (b == -1).sum() == 2 * 3 * 9 and (b[1:3] == a[1:3]).all()


def random_linear_model(path: Path, channels: int, size: int, seed: int) -> Path:
    """x (N, C, size, size) -> Flatten -> MatMul W -> 10 logits, W ~ N(0, 0.05^2)."""
    weight = np.random.default_rng(seed).normal(0, 0.05, (channels * size * size, 10)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["flat"]), helper.make_node("MatMul", ["flat", "W"], ["logits"])], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", channels, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [numpy_helper.from_array(weight, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("name", list(ATTACKS))
def test_colour_inputs_stay_in_budget(name: str, tmp_path: Path) -> None:
    """Three channels, 16 x 16: windows cover every channel and L0 counts a pixel once over its channels."""
    classifier = OnnxClassifier(random_linear_model(tmp_path / "rgb.onnx", 3, 16, seed=0), provider="cpu")
    x = np.random.default_rng(0).random((40, 3, 16, 16), dtype=np.float32)
    split = Split(x, classifier.predict(x))
    norm = ATTACKS[name][0]
    epsilon = {Norm.LINF: 8 / 255, Norm.L2: 0.5, Norm.L0: 5}[norm]
    result = evaluate_attack(create_attack(name, queries=100), AttackTarget(classifier), split, epsilon, seed=0)
    assert result.clean_accuracy == 1.0 and result.out_of_budget == 0 and result.successes > 0


@pytest.mark.parametrize("accept_ties", [False, True])
def test_random_search_keeps_improving_patches_undoes_the_rest_and_releases_broken_samples(tmp_path: Path, accept_ties: bool) -> None:
    # logit 0 = pixel 0, logit 1 = 0.5: for label 0 the margin is pixel 0 - 0.5, and no other pixel matters
    weight = np.zeros((16, 2), np.float32)
    weight[0, 0] = 1.0
    bias_pixel = 15  # held at 0.5 in every image, so its weight 1 in logit 1 gives the constant 0.5
    weight[bias_pixel, 1] = 1.0
    model = OnnxClassifier(linear_classifier(tmp_path / "linear.onnx", size=4, classes=2, weight=weight), "cpu")
    x = np.random.default_rng(0).uniform(0.0, 0.4, (6, 1, 4, 4)).astype(np.float32)
    x[:, 0, 3, 3] = 0.5
    x[:, 0, 0, 0] = [0.9, 0.8, 0.7, 0.95, 0.6, 0.85]
    y = np.zeros(6, np.int64)
    search = RandomSearch(model, x, y, x)
    assert list(search.rows) == list(range(6)) and np.allclose(search.margin, x[:, 0, 0, 0] - 0.5)
    # per row: pixel 0 (or, for row 3, pixel 5) and pixel 7 get new values
    pixels = np.array([[0, 7], [0, 7], [0, 7], [5, 7], [0, 7], [0, 7]])
    values = np.array([0.95, 0.6, 0.2, 0.1, 0.5, 0.3], np.float32)[:, None, None] * np.ones((1, 1, 2), np.float32)
    positions = flat_positions(search.work, np.arange(6), pixels)
    current = np.take(search.work, positions)
    rows_before = search.rows
    kept = search.try_patches(positions, values, current, accept_ties=accept_ties)
    assert list(rows_before) == list(range(6))  # the mask refers to them: the search must not reorder them in place

    expected_kept = [False, True, True, accept_ties, True, True]  # row 3 ties; row 0 gets worse
    assert list(kept) == expected_kept
    assert list(search.used) == [2] * 6
    patched = x.copy()
    scatter(patched, np.arange(6), pixels, values)
    expected = np.where(np.array(expected_kept)[:, None, None, None], patched, x)
    # rows 2 and 5 are misclassified now (margin < 0); row 4 ties at margin 0, which argmax still reads as label 0
    assert sorted(search.rows) == [0, 1, 3, 4]
    assert list(model.predict(expected[[2, 4, 5]])) == [1, 0, 1]
    for row, image in zip(search.rows, search.work):
        assert np.array_equal(image, expected[row])  # kept patches stay, the rest are undone bit for bit
    assert np.allclose(search.margin, expected[:, 0, 0, 0] - 0.5)
    assert np.array_equal(search.output().x_adv, expected)
