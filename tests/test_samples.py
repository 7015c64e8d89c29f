"""The attacked sample (nested across sample counts) and the per-sample results in the assessment JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from evaluator.assessment import attack_indices, attack_subset
from evaluator.app.cli import app
from evaluator.datasets import Dataset
from evaluator.files import json_text
from evaluator.results import OUTCOME_CODES
from evaluator.stats import wilson_interval

from conftest import ZOO_CHILD

ATTACKS = "pgd-linf:steps=5,fmn-l2:steps=10,square-linf:queries=30"


def test_a_smaller_sample_is_part_of_a_larger_one() -> None:
    """--samples 500 attacks a subset of what --samples 1000 attacks with the same seed (and every count in between)."""
    small, large = attack_indices(10_000, 500, seed=0), attack_indices(10_000, 1000, seed=0)
    assert set(small.tolist()) < set(large.tolist())
    for seed in (0, 1, 12345):
        chain = [set(attack_indices(10_000, n, seed).tolist()) for n in (1, 10, 100, 499, 500, 1000, 9999, 10_000)]
        assert all(a < b for a, b in zip(chain, chain[1:]))
    permutation = np.random.default_rng(7).permutation(10_000)
    assert attack_indices(10_000, 300, seed=7).tolist() == sorted(permutation[:300].tolist())  # its first N, ascending
    assert np.all(np.diff(large) > 0) and large.dtype == np.int64 and len(large) == 1000
    assert np.array_equal(attack_indices(10_000, 1000, seed=0), large)  # same seed, same images
    assert len(set(large.tolist()) & set(attack_indices(10_000, 1000, seed=1).tolist())) < 200  # another seed, others
    assert attack_indices(50, 80, seed=0).tolist() == list(range(50))  # more than the split: all of it


def test_the_subset_holds_the_indexed_images(fmnist: Dataset) -> None:
    indices = attack_indices(len(fmnist.test), 200, seed=3)
    subset = attack_subset(fmnist.test, 200, seed=3)
    assert np.array_equal(subset.y, fmnist.test.y[indices]) and np.array_equal(subset.x, fmnist.test.x[indices])


def assess_json(tmp_path: Path, samples: int) -> dict[str, Any]:
    path = tmp_path / f"a{samples}.json"
    result = CliRunner().invoke(app, ["assess", str(ZOO_CHILD), "--samples", str(samples), "--attacks", ATTACKS,
                                      "--no-latency", "--json", str(path)])
    assert result.exit_code == 0, result.output
    text = path.read_text()
    data = json.loads(text)
    assert text == json_text(data) + "\n"
    lines = [line.strip() for line in text.splitlines()]  # per-sample lists take a line each, not a line per sample
    assert sum(line.startswith(('"indices": [', '"labels": [', '"clean_correct": [')) and line.endswith("],")
               for line in lines) == 3
    assert not any(line.rstrip(",").lstrip("-").replace(".", "", 1).isdigit() for line in lines)  # no number alone
    return data


@pytest.fixture(scope="module")
def assessed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    folder = tmp_path_factory.mktemp("samples")
    return assess_json(folder, 60)["models"][0], assess_json(folder, 30)["models"][0]


def codes(text: str) -> np.ndarray:
    return np.array(list(text))


def test_per_sample_results_are_in_the_json(assessed: tuple[dict[str, Any], dict[str, Any]], fmnist: Dataset) -> None:
    model, _ = assessed
    samples = model["samples"]
    indices = np.array(samples["indices"])
    assert samples["split"] == "test" and samples["seed"] == 0 and samples["count"] == 60
    assert indices.tolist() == attack_indices(len(fmnist.test), 60, seed=0).tolist()
    assert samples["labels"] == fmnist.test.y[indices].tolist()
    correct = np.array(samples["clean_correct"])
    assert samples["clean_accuracy"] == correct.mean() and samples["clean_accuracy_ci"] == list(wilson_interval(int(correct.sum()), 60))
    assert samples["outcome_codes"] == OUTCOME_CODES and model["clean_accuracy_ci"] == list(wilson_interval(
        round(model["clean_accuracy"] * 10_000), 10_000))
    by_name = {result["name"]: result for result in model["attacks"]}
    for result in model["attacks"]:
        outcome = codes(result["outcomes"])
        assert len(outcome) == 60 and set(outcome) <= set(OUTCOME_CODES)
        assert np.array_equal(outcome == "M", ~correct)  # misclassified without attack: never attacked
        robust = int((outcome == "R").sum())
        assert result["robust_accuracy"] == robust / 60 and result["robust_accuracy_ci"] == list(wilson_interval(robust, 60))
        assert result["clean_accuracy"] == samples["clean_accuracy"] and result["attacked"] == int(np.isin(outcome, ["R", "B"]).sum())
        assert result["successes"] == int((outcome == "B").sum())
    # the cascade: Square attacks only what PGD left robust; what PGD broke is '-' for it
    pgd, square = codes(by_name["pgd-linf"]["outcomes"]), codes(by_name["square-linf"]["outcomes"])
    assert np.array_equal(square == "-", pgd == "B") and (pgd == "B").any()
    assert not np.any((square == "R") & (pgd != "R"))
    # the worst case per budget: R only where every attack there left it robust
    worst = {(entry["norm"], entry["epsilon"]): entry for entry in model["robustness"]}
    linf = codes(worst[("Linf", 8 / 255)]["outcomes"])
    assert np.array_equal(linf == "R", square == "R") and np.array_equal(linf == "M", ~correct)
    assert np.array_equal(linf == "B", (pgd == "B") | (square == "B"))
    assert worst[("Linf", 8 / 255)]["robust_accuracy_ci"] == list(wilson_interval(int((linf == "R").sum()), 60))
    # a minimal-norm attack: its distance per sample, and its outcome at each budget of its norm
    fmn = model["minimal_norm"][0]
    distances = np.array([np.inf if d is None else d for d in fmn["distances"]])
    assert fmn["name"] == "fmn-l2" and len(distances) == 60 and np.array_equal(distances == 0, ~correct)
    at_one = codes(by_name["fmn-l2"]["outcomes"])
    assert np.array_equal(at_one == "B", correct & (distances <= 1.0 * (1 + 1e-6) + 1e-6))
    assert model["distances"] == {"L2": fmn["distances"]}  # the smallest over the L2 minimal-norm attacks (one here)


def test_two_sample_counts_join_sample_by_sample(assessed: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """The 30-sample run's images are among the 60-sample run's: its per-sample results join the larger run's by index."""
    large, small = assessed
    position = {index: i for i, index in enumerate(large["samples"]["indices"])}
    assert set(small["samples"]["indices"]) <= set(position)
    for i, index in enumerate(small["samples"]["indices"]):
        j = position[index]
        assert small["samples"]["labels"][i] == large["samples"]["labels"][j]
        assert small["samples"]["clean_correct"][i] == large["samples"]["clean_correct"][j]
