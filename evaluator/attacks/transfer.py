"""Transfer attacks: crafted with gradients of a surrogate model, evaluated on the deployed graph.

The default surrogate is the unpruned parent named in the pruned model's metadata: the realistic
threat for a pruned model whose parent is public.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluator.attacks.base import Attack, AttackKind, AttackOutput, AttackTarget, Norm, register_attack
from evaluator.attacks.whitebox import projected_gradient


@register_attack
@dataclass
class TransferLinfPGD(Attack):
    """PGD-Linf on the surrogate's source; the candidates are then judged on the deployed graph only."""

    name = "transfer-pgd-linf"
    norm = Norm.LINF
    kind = AttackKind.TRANSFER
    summary = "PGD-Linf crafted on a surrogate (default: the unpruned parent)"

    steps: int = 40
    rel_stepsize: float = 0.01 / 0.3
    random_start: bool = True
    batch_size: int = 500

    def run(self, target: AttackTarget, x: np.ndarray, y: np.ndarray, epsilon: float, seed: int) -> AttackOutput:
        return AttackOutput(projected_gradient(target.surrogate(), x, y, epsilon, self.norm, self.steps, self.rel_stepsize,
                                               self.random_start, seed, self.batch_size))
