"""Unstructured and kernel pruning: zeroed weights in dense tensors (the graph keeps its shapes).

Every unit (a weight, or a k x k kernel) gets a removal priority in [0, 1): global criteria rank units
across all pruned layers, local ones within each layer. Pruning at level r zeroes every unit whose
priority is below r, so one ranking serves every rate and the rate search is a cheap threshold.
Units that are already zero (an iterative schedule's earlier steps) are always removed first. No layer is
ever emptied: its top-ranked unit stays at every level (an emptied layer cuts every path through it: a local
1/8 share of LeNet-5's 6 conv1 kernels was none). Kernels fed only by emptied channels are not ranked lower,
so a kernel method at a high rate can still leave a model whose output ignores its input.
"""

from __future__ import annotations

import torch
from torch import nn


def unit_scores(weight: torch.Tensor, granularity: str) -> torch.Tensor:
    """|w| per weight (unstructured) or the L1 norm of each k x k kernel (kernel): (out, in)."""
    magnitude = weight.detach().abs()
    return magnitude if granularity == "unstructured" else magnitude.sum(dim=(2, 3))


def removal_priority(model: nn.Module, layers: list[str], granularity: str, criterion: str, scope: str,
                     seed: int) -> dict[str, torch.Tensor]:
    """Per layer, a priority per unit in [0, 1); lower is removed first."""
    modules = dict(model.named_modules())
    generator = torch.Generator().manual_seed(seed)
    scores = {}
    for name in layers:
        magnitude = unit_scores(modules[name].weight, granularity)
        score = torch.rand(magnitude.shape, generator=generator) if criterion == "random" else magnitude.clone()
        score[magnitude == 0] = -1.0  # already pruned: first out
        scores[name] = score
    if scope == "global":
        flat = torch.cat([score.flatten() for score in scores.values()])
        ranks = torch.empty_like(flat)
        ranks[torch.argsort(flat, stable=True)] = torch.arange(flat.numel(), dtype=flat.dtype) / flat.numel()
        priorities, start = {}, 0
        for name, score in scores.items():
            priorities[name] = ranks[start:start + score.numel()].view_as(score)
            start += score.numel()
        return priorities
    priorities = {}
    for name, score in scores.items():
        flat = score.flatten()
        ranks = torch.empty_like(flat)
        ranks[torch.argsort(flat, stable=True)] = torch.arange(flat.numel(), dtype=flat.dtype) / flat.numel()
        priorities[name] = ranks.view_as(score)
    return priorities


class MaskedModel:
    """A model whose pruned layers can be masked at any level r, from weights saved at construction."""

    def __init__(self, model: nn.Module, priorities: dict[str, torch.Tensor], granularity: str) -> None:
        self.model = model
        self.granularity = granularity
        modules = dict(model.named_modules())
        self.layers = {name: modules[name] for name in priorities}
        self.priorities = priorities
        self.original = {name: module.weight.detach().clone() for name, module in self.layers.items()}

    def mask_at(self, level: float) -> None:
        with torch.no_grad():
            for name, module in self.layers.items():
                priority = self.priorities[name]
                keep = (priority >= min(level, float(priority.max()))).to(module.weight.dtype)
                if self.granularity == "kernel":
                    keep = keep[:, :, None, None]
                module.weight.copy_(self.original[name] * keep)


class MaskKeeper:
    """Keeps zeroed weights at zero while fine-tuning: call it after every optimizer step."""

    def __init__(self, model: nn.Module, layers: list[str]) -> None:
        modules = dict(model.named_modules())
        self.masks = [(modules[name].weight, (modules[name].weight.detach() != 0).to(modules[name].weight.dtype))
                      for name in layers]

    def __call__(self) -> None:
        with torch.no_grad():
            for i, (weight, mask) in enumerate(self.masks):
                if mask.device != weight.device:  # the model moved to the training device after the masks were taken
                    mask = mask.to(weight.device)
                    self.masks[i] = (weight, mask)
                weight.mul_(mask)
