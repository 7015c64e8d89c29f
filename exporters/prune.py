"""Structural filter pruning with torch-pruning to an exact compression rate.

Compression rate = weights before / non-zero weights after, over all parameters. Filter pruning removes
whole output channels (and hidden units of the dense layers; the classifier's outputs are protected),
so the deployed graph really shrinks. The per-layer pruning ratio is found by bisection so that the
achieved rate lands within `tolerance` of the target.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
import torch_pruning as tp
from torch import nn

from evaluator.errors import EvaluatorError
from exporters.architectures import final_classifier

RATE_TOLERANCE = 0.05


@dataclass(frozen=True)
class FilterMethod:
    """A torch-pruning channel importance criterion."""

    name: str
    criterion: str
    importance: Callable[[], tp.importance.Importance]


FILTER_METHODS: dict[str, FilterMethod] = {
    "filter-l1": FilterMethod("filter-l1", "l1-magnitude", lambda: tp.importance.GroupMagnitudeImportance(p=1)),
}


@dataclass(frozen=True)
class PruneOutcome:
    """What a pruning step did: parameter counts and the achieved rate (weights before / non-zeros after)."""

    method: str
    criterion: str
    granularity: str
    scope: str
    target_rate: float
    achieved_rate: float
    params_before: int
    params_after: int
    nonzero_after: int
    layer_ratio: float


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_nonzero(model: nn.Module) -> int:
    return sum(int(torch.count_nonzero(p)) for p in model.parameters())


def prune_to_rate(model: nn.Module, example: torch.Tensor, method: str, rate: float, round_to: int | None = None,
                  global_scope: bool = False, steps: int = 30) -> tuple[nn.Module, PruneOutcome]:
    """A copy of `model` filter-pruned to `rate`; `model` is left untouched. example: (1, C, H, W)."""
    if method not in FILTER_METHODS:
        raise EvaluatorError(f"unknown pruning method {method!r}: expected one of {', '.join(FILTER_METHODS)}")
    if rate < 1:
        raise EvaluatorError(f"compression rate must be >= 1, got {rate}")
    spec = FILTER_METHODS[method]
    before = count_params(model)
    target = before / rate

    def pruned_at(ratio: float) -> nn.Module:
        candidate = copy.deepcopy(model).eval()
        if ratio > 0:
            pruner = tp.pruner.MetaPruner(
                candidate, example, importance=spec.importance(), pruning_ratio=ratio, global_pruning=global_scope,
                ignored_layers=[final_classifier(candidate)], round_to=round_to,
            )
            pruner.step()
        return candidate

    low, high = 0.0, 0.999
    best, best_ratio = model, 0.0
    for _ in range(steps):
        ratio = (low + high) / 2
        candidate = pruned_at(ratio)
        remaining = count_nonzero(candidate)
        if abs(before / remaining - rate) < abs(before / count_nonzero(best) - rate):
            best, best_ratio = candidate, ratio
        if remaining > target:
            low = ratio
        else:
            high = ratio
        if abs(before / remaining / rate - 1) < RATE_TOLERANCE / 10:
            break
    achieved = before / count_nonzero(best)
    if abs(achieved / rate - 1) > RATE_TOLERANCE:
        raise EvaluatorError(f"{method} cannot reach compression rate {rate:g} within 5 % on this model (closest reachable "
                             f"{achieved:.2f}): its layers have too few filters, or one would vanish first")
    best.eval()
    outcome = PruneOutcome(method, spec.criterion, "filter", "global" if global_scope else "local", float(rate),
                           float(achieved), before, count_params(best), count_nonzero(best), best_ratio)
    return best, outcome
