"""Filter (channel) pruning with torch-pruning: whole filters leave the graph, with everything that depends on them."""

from __future__ import annotations

import copy
from typing import Callable

import torch
import torch_pruning as tp
from torch import nn

from evaluator.errors import EvaluatorError
from exporters.architectures import final_classifier
from evaluator.catalogue import PruningMethod
from exporters.pruning.options import PruneOptions

ImportanceFactory = Callable[[str], tp.importance.Importance]

# criterion -> importance for a scope; the study's global magnitude ranks raw L1 norms across layers.
IMPORTANCE: dict[str, ImportanceFactory] = {
    "magnitude": lambda scope: tp.importance.GroupMagnitudeImportance(p=1, normalizer=None if scope == "global" else "mean"),
    "random": lambda scope: tp.importance.RandomImportance(),
    "l1": lambda scope: tp.importance.GroupMagnitudeImportance(p=1),
    "l2": lambda scope: tp.importance.GroupMagnitudeImportance(p=2),
    "taylor": lambda scope: tp.importance.GroupTaylorImportance(),
    "bn-scale": lambda scope: tp.importance.BNScaleImportance(),
    "lamp": lambda scope: tp.importance.LAMPImportance(p=2),
    "fpgm": lambda scope: tp.importance.FPGMImportance(p=2),
}


def check_applicable(model: nn.Module, method: PruningMethod) -> None:
    if method.criterion == "bn-scale" and not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        raise EvaluatorError(f"{method.name} ranks filters by batch-norm scales, and this model has no batch norm")


def prune_channels(model: nn.Module, level: float, options: PruneOptions) -> nn.Module:
    """A copy of `model` with a share `level` of its channels removed: per group (local) or ranked across groups
    (global), by options.method's criterion; channel counts kept multiples of options.round_to (None: any)."""
    method, scope, example, round_to = options.method, options.scope, options.example, options.round_to
    candidate = copy.deepcopy(model).eval()
    if level <= 0:
        return candidate
    ignored: list[nn.Module] = [final_classifier(candidate)]
    if method.conv_only:
        ignored += [m for m in candidate.modules() if isinstance(m, nn.Linear)]
    torch.manual_seed(options.seed)  # the random criterion draws the same ranking at every level
    importance = IMPORTANCE[method.criterion](scope)
    if method.criterion == "taylor":
        x, y = options.calibration
        candidate.zero_grad()
        nn.functional.cross_entropy(candidate(x), y).backward()
    if scope == "global":
        prune_globally(candidate, importance, level, example, ignored, round_to)
    else:
        pruner = tp.pruner.MetaPruner(candidate, example, importance=importance, pruning_ratio=level,
                                      ignored_layers=ignored, round_to=round_to)
        pruner.step()
    candidate.zero_grad(set_to_none=True)
    return candidate


def prune_globally(model: nn.Module, importance: tp.importance.Importance, level: float, example: torch.Tensor,
                   ignored: list[nn.Module], round_to: int | None) -> None:
    """Remove the share `level` of all channels with the lowest importance across groups, keeping at least
    one channel (or `round_to`) per group. Fixed scores make the removed sets nested as `level` grows."""
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    scored = []
    for group in graph.get_all_groups(ignored_layers=ignored, root_module_types=[nn.Conv2d, nn.Linear]):
        scores = importance(group)
        if scores is not None:
            scored.append((group[0][0].target.module, group[0][0].handler, scores.detach()))
    if not scored:
        return
    sizes = [len(scores) for _, _, scores in scored]
    everything = torch.cat([scores for _, _, scores in scored])
    removed = torch.zeros(everything.numel(), dtype=torch.bool)
    removed[torch.argsort(everything, stable=True)[:int(level * everything.numel())]] = True  # ties broken by position
    for (module, handler, scores), chosen in zip(scored, torch.split(removed, sizes)):
        keep = max(len(scores) - int(chosen.sum()), round_to or 1)
        if round_to:
            keep = min(len(scores), -(-keep // round_to) * round_to)
        indices = torch.argsort(scores, stable=True)[:len(scores) - keep].tolist()
        if indices:
            group = graph.get_pruning_group(module, handler, indices)
            if graph.check_pruning_group(group):
                group.prune()
