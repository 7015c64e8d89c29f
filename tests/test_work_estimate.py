"""The estimate of an assessment's attack work, said before the attacks start: per attack the passes it makes at most,
priced by a timed probe; it bounds what the attacks really do."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import ZOO_CHILD
from evaluator.attacks import AttackTarget, Work, create_attack, list_attacks
from evaluator.datasets import load_dataset
from evaluator.runtime import OnnxClassifier
from evaluator.work_estimate import WorkEstimate, count_text, duration_text, estimate_work, planned_work


@pytest.mark.parametrize("attack", [cls.name for cls in list_attacks()])
def test_every_attack_says_its_work(attack: str) -> None:
    work = create_attack(attack).work()
    assert isinstance(work, Work) and work.gradients + work.surrogate_gradients + work.queries > 0


def test_work_adds_over_runs_and_samples() -> None:
    pgd, square = create_attack("pgd-linf", steps=5), create_attack("square-linf", queries=10)
    work = planned_work([(pgd, 2), (square, 1)], samples=3)
    assert work == Work(gradients=5 * 2 * 3, forwards=1 * 2 * 3, queries=(2 + 11) * 3)  # every run re-checked on the graph
    assert create_attack("apgd-t-linf", steps=10, target_classes=3).work().gradients == 30
    assert create_attack("cw-l2", binary_search_steps=2, steps=7).work().gradients == 14


class CountingModel(torch.nn.Module):
    """Counts the samples it sees with gradients on (gradient passes) and without (forward passes)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.gradients, self.forwards = model, 0, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            self.gradients += len(x)
        else:
            self.forwards += len(x)
        return self.model(x)


def test_the_estimate_bounds_the_gradient_passes_made() -> None:
    from evaluator.source import load_source

    torch.set_num_threads(1)
    x = load_dataset("fashion-mnist", test_only=True).test.x[:40]
    y = load_dataset("fashion-mnist", test_only=True).test.y[:40]
    counting = CountingModel(load_source(ZOO_CHILD.with_suffix(".pt2")))
    target = AttackTarget(OnnxClassifier(ZOO_CHILD, "cpu", 64, 1), _source=counting)
    attacks = [create_attack("pgd-linf", steps=6), create_attack("apgd-ce-linf", steps=8)]
    estimate = estimate_work(target, attacks, lambda norm: (4 / 255, 8 / 255), x)
    assert estimate.work.gradients == (6 + 8) * 2 * 40 and estimate.seconds > 0
    counting.gradients = counting.forwards = 0
    for attack in attacks:
        for epsilon in (4 / 255, 8 / 255):
            attack.run(target, x, y, epsilon, seed=0)
    assert 0 < counting.gradients <= estimate.work.gradients
    assert "at most 1.12k gradient passes" in estimate.line() and "on 40 samples" in estimate.line()


def test_numbers_and_durations_read_well() -> None:
    assert [count_text(n) for n in (12, 1_200, 2_500_000, 3e9)] == ["12", "1.2k", "2.5M", "3G"]
    assert [duration_text(s) for s in (5, 600, 7200)] == ["5 s", "10 min", "2.0 h"]
    assert "about 10 min" in WorkEstimate(Work(queries=1e6), 600, 200).line()


def test_assess_says_the_estimate_before_the_attacks(tmp_path: Path) -> None:
    from evaluator.app.cli import app

    result = CliRunner().invoke(app, ["assess", str(ZOO_CHILD), "--samples", "20", "--no-latency", "--threads", "1",
                                      "--attacks", "pgd-linf:steps=4,square-linf:queries=30"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    said = next(i for i, line in enumerate(lines) if "attacks at most 80 gradient passes" in line)
    assert "on 20 samples: about" in lines[said]
    assert said < next(i for i, line in enumerate(lines) if "pgd-linf eps=" in line)
