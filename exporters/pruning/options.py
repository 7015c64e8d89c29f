"""The settings of one pruning step, shared by the engine (rate search) and the channel pruner."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from evaluator.catalogue import PruningMethod

RATE_TOLERANCE = 0.05


@dataclass(frozen=True)
class PruneOptions:
    """How a step prunes: the method and its ranking scope (local, global); example: one input (1, C, H, W) to trace
    the graph and count weights and MACs; calibration: a batch (x (N, C, H, W), y (N,)) for the Taylor criterion;
    round_to: channel counts kept multiples of this (filter methods; None: automatic in prune_to_target, none in
    prune_channels); seed: of the random criteria; tolerance: accepted relative distance of the rate from the target.
    """

    method: PruningMethod
    scope: str
    example: torch.Tensor
    calibration: tuple[torch.Tensor, torch.Tensor]
    round_to: int | None = None
    seed: int = 0
    tolerance: float = RATE_TOLERANCE
