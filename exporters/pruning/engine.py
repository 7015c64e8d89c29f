"""One pruning step: any method, to a compression-rate target, found by bisection on the pruning level."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Literal

from torch import nn

from evaluator.errors import EvaluatorError
from exporters.pruning.census import Census, achieved_rates, prunable_layers, take_census
from exporters.pruning.channels import check_applicable, prune_channels
from exporters.pruning.masks import MaskedModel, removal_priority
from exporters.pruning.options import RATE_TOLERANCE, PruneOptions
from evaluator.catalogue import PruningMethod

SEARCH_STEPS = 40
MAX_LEVEL = 0.999
AUTO_ROUND_TO = 8  # ONNX Runtime's fast CPU convolutions (NCHWc) want channel counts in multiples of 8
MEASURES = {"all": "over all weights", "pruned": "over the pruned layers", "macs": "MACs"}


@dataclass(frozen=True)
class Target:
    """rate: weights before / non-zero weights after (metric 'weights', over `basis`) or MACs before / after."""

    rate: float
    metric: Literal["weights", "macs"] = "weights"
    basis: Literal["all", "pruned"] = "all"

    @property
    def measure(self) -> str:
        return "macs" if self.metric == "macs" else self.basis


@dataclass(frozen=True)
class StepOutcome:
    """What one pruning step reached; rates are relative to the unpruned root model."""

    method: str
    granularity: str
    criterion: str
    scope: str
    target: dict[str, Any]
    achieved_rate: float
    rates: dict[str, float]
    root: dict[str, int]
    after: dict[str, int]
    level: float
    round_to: int | None
    layers: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bisect_level(evaluate: Callable[[float], tuple[float, Any]], target: float) -> tuple[float, float, Any]:
    """The level in [0, MAX_LEVEL] whose rate (non-decreasing in level) is closest to `target`."""
    best_rate, best_thing = evaluate(0.0)
    best_level, low, high = 0.0, 0.0, MAX_LEVEL
    for _ in range(SEARCH_STEPS):
        level = (low + high) / 2
        rate, thing = evaluate(level)
        if abs(rate - target) < abs(best_rate - target):
            best_level, best_rate, best_thing = level, rate, thing
        if rate < target:
            low = level
        else:
            high = level
        if abs(rate / target - 1) < RATE_TOLERANCE / 10:
            break
    return best_level, best_rate, best_thing


def rounding_choices(model: nn.Module, round_to: int | None) -> list[int | None]:
    """Channel roundings a filter method tries in order: the given one, else 8 then none for a model whose conv
    layers all have multiples of 8 channels, else none."""
    if round_to is not None:
        return [round_to]
    aligned = all(m.out_channels % AUTO_ROUND_TO == 0 for m in model.modules() if isinstance(m, nn.Conv2d))
    return [AUTO_ROUND_TO, None] if aligned else [None]


def tolerance_matters(model: nn.Module, method: PruningMethod, round_to: int | None) -> bool:
    """Whether the rate tolerance can change a step's result (not only accept or refuse it): a filter method that
    keeps the first rounding within tolerance."""
    return method.physical and len(rounding_choices(model, round_to)) > 1


def prune_to_target(model: nn.Module, target: Target, root: Census,
                    options: PruneOptions) -> tuple[nn.Module, StepOutcome]:
    """A pruned copy of `model` (left untouched) whose rate against `root` is within options.tolerance (5 %) of
    `target`.

    The tolerance changes the result only where `tolerance_matters` (a filter method choosing between rounded and
    unrounded channel counts); elsewhere it only decides whether the closest reachable rate is accepted.

    For filter methods options.round_to=None means automatic: a model whose conv layers all have channel counts in
    multiples of 8 keeps them so when the rate can still be reached that way; pass 1 to never round.
    """
    method, example, round_to, tolerance = options.method, options.example, options.round_to, options.tolerance
    if target.rate < 1:
        raise EvaluatorError(f"compression rate must be >= 1, got {target.rate:g}")
    if target.metric == "macs" and not method.physical:
        raise EvaluatorError(f"{method.name} keeps dense shapes (it zeroes weights), so MACs cannot fall: target weights instead")
    layers = prunable_layers(model, method.granularity, method.conv_only)

    def rate_of(candidate: nn.Module) -> float:
        return achieved_rates(root, take_census(candidate, layers, example))[target.measure]

    if method.physical:
        check_applicable(model, method)

        for rounding in rounding_choices(model, round_to):
            def evaluate(level: float, rounding: int | None = rounding) -> tuple[float, nn.Module]:
                candidate = prune_channels(model, level, replace(options, round_to=rounding))
                return rate_of(candidate), candidate

            level, rate, pruned = bisect_level(evaluate, target.rate)
            round_to = rounding
            if abs(rate / target.rate - 1) <= tolerance:
                break
    else:
        pruned = copy.deepcopy(model).eval()
        priority = removal_priority(pruned, layers, method.granularity, method.criterion, options.scope, options.seed)
        masked = MaskedModel(pruned, priority, method.granularity)

        def evaluate(level: float) -> tuple[float, None]:
            masked.mask_at(level)
            return rate_of(pruned), None

        level, rate, _ = bisect_level(evaluate, target.rate)
        masked.mask_at(level)
    if abs(rate / target.rate - 1) > tolerance:
        raise EvaluatorError(
            f"{method.name} cannot reach a compression rate of {target.rate:g} ({MEASURES[target.measure]}) within "
            f"{tolerance:.0%} on this model "
            f"(closest reachable {rate:.2f}): its layers have too few units to prune, or one would vanish first"
        )
    after = take_census(pruned, layers, example)
    outcome = StepOutcome(method.name, method.granularity, method.criterion, options.scope, asdict(target), float(rate),
                          achieved_rates(root, after), root.to_dict(), after.to_dict(), float(level),
                          round_to if method.physical else None, layers)
    return pruned.eval(), outcome
