"""Counting what pruning changes: parameters, non-zeros, the pruned layers' weights, MACs per sample."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch_pruning as tp
from torch import nn

from exporters.architectures import final_classifier


@dataclass(frozen=True)
class Census:
    """params / nonzero: all parameters; layer_weights / layer_nonzero: weight tensors of the pruned layers."""

    params: int
    nonzero: int
    layer_weights: int
    layer_nonzero: int
    macs: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def prunable_layers(model: nn.Module, granularity: str, conv_only: bool) -> list[str]:
    """Names of the layers a method prunes: unstructured takes conv and dense layers, kernel conv layers,
    filter methods conv layers (and hidden dense layers unless conv_only; never the classifier)."""
    classifier = final_classifier(model)
    names = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            names.append(name)
        elif isinstance(module, nn.Linear) and granularity != "kernel":
            if granularity == "unstructured" or (not conv_only and module is not classifier):
                names.append(name)
    return names


def take_census(model: nn.Module, layers: list[str], example: torch.Tensor) -> Census:
    """example: (1, C, H, W); MACs are counted by torch-pruning's operation counter."""
    modules = dict(model.named_modules())
    weights = [modules[name].weight for name in layers]
    with torch.no_grad():
        macs, _ = tp.utils.count_ops_and_params(model, example)
    return Census(
        params=sum(p.numel() for p in model.parameters()),
        nonzero=sum(int(torch.count_nonzero(p)) for p in model.parameters()),
        layer_weights=sum(w.numel() for w in weights),
        layer_nonzero=sum(int(torch.count_nonzero(w)) for w in weights),
        macs=int(macs),
    )


def achieved_rates(root: Census, now: Census) -> dict[str, float]:
    """Compression over all weights, over the pruned layers, and MAC reduction, each relative to the unpruned root."""
    return {
        "all": root.params / max(now.nonzero, 1),
        "pruned": root.layer_weights / max(now.layer_nonzero, 1),
        "macs": root.macs / max(now.macs, 1),
    }
