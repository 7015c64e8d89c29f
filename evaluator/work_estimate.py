"""The attacks' work, said before they start: per attack the passes over one sample it makes at most
(Attack.work), times its runs (one per budget, one for a minimal-norm attack) and the attacked samples, priced by a
timed probe of the models at hand. Cascades and early stopping leave samples out, so the real work is usually less."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from evaluator.attacks import Attack, AttackTarget, Work, is_minimal

PROBE_SAMPLES = 32  # inputs per timed pass
PROBE_REPEATS = 2  # the fastest of these is kept (the first run also warms up)


@dataclass(frozen=True)
class PassSeconds:
    """Seconds per sample of each kind of pass, from the probe (0 where the kind is not used)."""

    gradient: float = 0.0
    surrogate_gradient: float = 0.0
    forward: float = 0.0
    query: float = 0.0


@dataclass(frozen=True)
class WorkEstimate:
    """work: passes in all (over every sample); seconds: their price at the probe's speed."""

    work: Work
    seconds: float
    samples: int

    def line(self) -> str:
        """e.g. 'at most 100k gradient passes, 400 forward passes, 201k queries of the deployed graph on 200 samples:
        about 11 min at the probe's pace (less when attacks stop early)'."""
        parts = [(self.work.gradients + self.work.surrogate_gradients, "gradient passes"), (self.work.forwards, "forward passes"),
                 (self.work.queries, "queries of the deployed graph")]
        counted = ", ".join(f"{count_text(count)} {what}" for count, what in parts if count)
        return (f"at most {counted} on {self.samples:,} samples: about {duration_text(self.seconds)} at the probe's pace "
                "(less when attacks stop early)")


def count_text(count: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= scale:
            return f"{count / scale:.3g}{suffix}"
    return f"{count:.0f}"


def duration_text(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def planned_work(attacks: list[tuple[Attack, int]], samples: int) -> Work:
    """attacks: each with its runs (budgets); every run's candidates are also re-checked on the deployed graph."""
    total = Work()
    for attack, runs in attacks:
        total = total + (attack.work() + Work(queries=1)) * (runs * samples)
    return total


def seconds_per_sample(run: Callable[[], Any], samples: int) -> float:
    best = float("inf")
    for _ in range(PROBE_REPEATS):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best / samples


def gradient_seconds(model: Any, x: np.ndarray) -> tuple[float, float]:
    """(forward and backward, forward) seconds per sample of torch `model` on x (N, C, H, W)."""
    import torch

    inputs = torch.from_numpy(np.ascontiguousarray(x))

    def backward() -> None:
        batch = inputs.clone().requires_grad_(True)
        model(batch).logsumexp(dim=1).sum().backward()

    def forward() -> None:
        with torch.no_grad():
            model(inputs)

    return seconds_per_sample(backward, len(x)), seconds_per_sample(forward, len(x))


def probe(target: AttackTarget, work: Work, x: np.ndarray) -> PassSeconds:
    """Times one pass of each kind `work` uses on x[:PROBE_SAMPLES] (N, C, H, W)."""
    x = x[:PROBE_SAMPLES]
    query = seconds_per_sample(lambda: target.deployed.logits(x), len(x)) if work.queries else 0.0
    gradient = forward = surrogate = 0.0
    if work.gradients or work.forwards:
        gradient, forward = gradient_seconds(target.source(), x)
    if work.surrogate_gradients:
        surrogate, _ = gradient_seconds(target.surrogate(), x)
    return PassSeconds(gradient, surrogate, forward, query)


def estimate_work(target: AttackTarget, attacks: list[Attack], epsilons: Callable[[str], tuple[float, ...]],
                  x: np.ndarray) -> WorkEstimate:
    """The work of running `attacks` (those the target can run) on the samples x (N, C, H, W), at most."""
    runs = [(attack, 1 if is_minimal(attack) else len(epsilons(attack.norm.value))) for attack in attacks]
    work = planned_work(runs, len(x))
    pace = probe(target, work, x)
    seconds = (work.gradients * pace.gradient + work.surrogate_gradients * pace.surrogate_gradient
               + work.forwards * pace.forward + work.queries * pace.query)
    return WorkEstimate(work, seconds, len(x))
