"""FMN in L0, L1, L2, Linf and the greedy L0 attack: soundness on the deployed graph, strength against foolbox, seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluator.attacks import AttackTarget, create_attack
from evaluator.attacks import fmn  # noqa: F401  (registration)
from evaluator.attacks.base import Norm
from evaluator.attacks.torch_norms import keep_largest_pixels, lengths, project
from evaluator.datasets import Dataset
from evaluator.norms import distances
from evaluator.robustness import evaluate_minimal
from evaluator.runtime import OnnxClassifier

from conftest import ZOO_CHILD

QUICK = {"fmn-l0": {"steps": 30}, "fmn-l1": {"steps": 30}, "fmn-l2": {"steps": 30}, "fmn-linf": {"steps": 30},
         "l0-greedy": {"candidates": 16}}


@pytest.fixture(scope="module")
def target() -> AttackTarget:
    return AttackTarget(OnnxClassifier(ZOO_CHILD, provider="cpu"), ZOO_CHILD.with_suffix(".pt2"))


@pytest.mark.parametrize("name", sorted(QUICK))
def test_finds_adversarials_that_hold_on_the_deployed_graph(name: str, target: AttackTarget, fmnist: Dataset) -> None:
    result = evaluate_minimal(create_attack(name, **QUICK[name]), target, fmnist.test.head(100), seed=0)
    assert result.out_of_box == 0
    assert result.found > 0.8 * result.attacked, (result.found, result.attacked)
    assert np.isfinite(result.median_distance) and result.median_distance > 0


@pytest.mark.parametrize("name", sorted(QUICK))
def test_same_seed_same_distances(name: str, target: AttackTarget, fmnist: Dataset) -> None:
    subset = fmnist.test.head(30)
    runs = [evaluate_minimal(create_attack(name, **QUICK[name]), target, subset, seed=3).distances for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])


def test_candidates_are_x_where_nothing_was_found(target: AttackTarget, fmnist: Dataset) -> None:
    """One FMN step cannot break every sample: the unbroken ones come back as x, the others within [0, 1]."""
    x, y = fmnist.test.x[:40], fmnist.test.y[:40]
    x_adv = create_attack("fmn-l2", steps=1).run_minimal(target, x, y, seed=0).x_adv
    assert x_adv.dtype == np.float32 and x_adv.shape == x.shape and 0 <= x_adv.min() and x_adv.max() <= 1
    with torch.no_grad():
        broken = target.source()(torch.from_numpy(x_adv)).argmax(1).numpy() != y
    assert (~broken).any()
    np.testing.assert_array_equal(x_adv[~broken], x[~broken])


@pytest.mark.reference
def test_fmn_l2_is_as_strong_as_carlini_wagner(target: AttackTarget, fmnist: Dataset) -> None:
    """Median L2 of fmn-l2 (default options) at most 1.05 x foolbox's CW-L2 (5 binary-search steps x 100 steps)."""
    foolbox = pytest.importorskip("foolbox")
    subset = fmnist.test.head(40)
    ours = evaluate_minimal(create_attack("fmn-l2"), target, subset, seed=0)
    correct = target.deployed.predict(subset.x) == subset.y
    model = foolbox.PyTorchModel(target.source(), bounds=(0, 1))
    cw = foolbox.attacks.L2CarliniWagnerAttack(binary_search_steps=5, steps=100)
    x, y = subset.x[correct], subset.y[correct]
    x_adv = cw.run(model, torch.from_numpy(x), torch.from_numpy(y)).numpy()
    theirs = np.zeros(len(subset))
    theirs[correct] = np.where(target.deployed.predict(x_adv) != y, distances(x, x_adv, Norm.L2), np.inf)
    assert ours.median_distance <= 1.05 * np.median(theirs), (ours.median_distance, np.median(theirs))


@pytest.mark.reference
def test_l0_is_as_strong_as_brendel_bethge(target: AttackTarget, fmnist: Dataset) -> None:
    """Median L0 of l0-greedy at most 1.1 x foolbox's L0 Brendel-Bethge (numba; its first call compiles for minutes)."""
    foolbox = pytest.importorskip("foolbox")
    pytest.importorskip("numba")
    subset = fmnist.test.head(40)
    ours = evaluate_minimal(create_attack("l0-greedy"), target, subset, seed=0)
    correct = target.deployed.predict(subset.x) == subset.y
    model = foolbox.PyTorchModel(target.source(), bounds=(0, 1))
    x, y = torch.from_numpy(subset.x[correct]), torch.from_numpy(subset.y[correct])
    starts = foolbox.attacks.LinearSearchBlendedUniformNoiseAttack(steps=50).run(model, x, y)
    x_adv = foolbox.attacks.L0BrendelBethgeAttack(steps=200).run(model, x, y, starting_points=starts).numpy()
    theirs = np.zeros(len(subset))
    theirs[correct] = np.where(target.deployed.predict(x_adv) != y.numpy(), distances(x.numpy(), x_adv, Norm.L0), np.inf)
    assert ours.median_distance <= 1.1 * np.median(theirs), (ours.median_distance, np.median(theirs))


def test_projections_land_in_the_ball() -> None:
    generator = torch.Generator().manual_seed(0)
    delta = torch.randn(6, 3, 5, 5, generator=generator)
    radius = torch.tensor([0.1, 0.5, 1.0, 3.0, 10.0, 1e3])
    for norm in (Norm.L1, Norm.L2, Norm.LINF):
        projected = project(delta, radius, norm)
        assert (lengths(projected, norm) <= radius * (1 + 1e-5)).all()
        untouched = lengths(delta, norm) <= radius
        assert torch.equal(projected[untouched], delta[untouched])  # points inside stay put
    # L1: the projection is soft thresholding, so it is the closest point - no random point of the ball is closer
    projected = project(delta, radius, Norm.L1)
    others = project(projected + 0.05 * torch.randn(delta.shape, generator=generator), radius, Norm.L1)
    assert ((delta - projected).flatten(1).norm(dim=1) <= (delta - others).flatten(1).norm(dim=1) + 1e-6).all()


def test_l0_projection_counts_pixel_positions() -> None:
    delta = torch.zeros(2, 3, 2, 2)
    delta[:, :, 0, 0] = 0.5  # one pixel, three channels
    delta[:, 1, 1, 1] = -0.2
    delta[:, 0, 0, 1] = 0.1
    assert lengths(delta, Norm.L0).tolist() == [3, 3]
    kept = keep_largest_pixels(delta, torch.tensor([1, 2]))
    assert lengths(kept, Norm.L0).tolist() == [1, 2]
    assert torch.equal(kept[0, :, 0, 0], delta[0, :, 0, 0]) and torch.equal(kept[1, :, 1, 1], delta[1, :, 1, 1])
    assert distances(delta.numpy(), (delta + kept).numpy(), Norm.L0).tolist() == [1, 2]


def test_colour_images_count_pixel_positions_and_stay_in_the_box() -> None:
    """On a small random 3-channel model every attack stays in [0, 1], and the L0 attacks' distances are the
    evaluator's (pixel positions, not values)."""
    from evaluator.attacks.fmn import FMNOptions, add_pixels, drop_pixels, fmn_batch
    from evaluator.attacks.margins import margin_of

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5))
    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    candidates = {norm: fmn_batch(model, x, y, FMNOptions(norm, steps=30, alpha=3.0 if norm is Norm.L0 else 1.0, gamma=0.05,
                                                          min_margin=1e-4, batch_size=len(x))) for norm in Norm}
    greedy = add_pixels(model, x, y, 8, 64, 1e-4)
    candidates["greedy"] = drop_pixels(model, x, greedy, y, 8, 1e-4)
    for key, x_adv in candidates.items():
        assert 0 <= x_adv.min() and x_adv.max() <= 1, key
        with torch.no_grad():
            fooled = margin_of(model(x_adv), y) < 0
        assert fooled.float().mean() >= 0.8, key
        norm = Norm.L0 if key == "greedy" else key
        np.testing.assert_allclose(lengths(x_adv - x, norm).numpy(), distances(x.numpy(), x_adv.numpy(), norm), rtol=1e-4)
    l0 = distances(x.numpy(), candidates["greedy"].numpy(), Norm.L0)
    values = (candidates["greedy"] != x).flatten(1).sum(1).numpy()
    assert (values >= l0).all() and (values > l0).any()  # several channels of one pixel change together


def test_bad_options_are_user_errors() -> None:
    from evaluator.errors import EvaluatorError

    with pytest.raises(EvaluatorError, match="candidates"):
        create_attack("l0-greedy", candidates=0)
    with pytest.raises(EvaluatorError, match="steps"):
        create_attack("fmn-linf", steps=-1)
