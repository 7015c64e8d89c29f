"""Transfer attacks: crafted with gradients of a surrogate model, evaluated on the deployed graph.

The default surrogate is the unpruned parent named in the pruned model's metadata: the realistic
threat for a pruned model whose parent is public.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evaluator.attacks.base import AttackKind, AttackTarget, Norm, Work, register_attack
from evaluator.attacks.whitebox import ProjectedGradientAttack


@register_attack
@dataclass
class TransferLinfPGD(ProjectedGradientAttack):
    """PGD-Linf on the surrogate's source; the candidates are then judged on the deployed graph only."""

    name = "transfer-pgd-linf"
    norm = Norm.LINF
    kind = AttackKind.TRANSFER
    summary = "PGD-Linf crafted on a surrogate (default: the unpruned parent)"
    stop_when_fooled = False  # fooling the surrogate is not the goal: a larger surrogate margin transfers better

    def gradient_model(self, target: AttackTarget) -> Any:
        return target.surrogate()

    def work(self) -> Work:
        return Work(surrogate_gradients=self.steps, queries=1)
