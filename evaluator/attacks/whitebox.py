"""White-box attacks on the PyTorch source (gradients through the exported program)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluator.attacks.base import Attack, AttackKind, AttackOutput, AttackTarget, Norm, register_attack


def margin_of(logits: Any, y: Any) -> Any:
    """max_{j != y} z_j - z_y per sample; positive means misclassified. logits (N, K), y (N,)."""
    import torch

    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.clone()
    others.scatter_(1, y[:, None], -torch.inf)
    return others.max(1).values - true


def projected_gradient(model: Any, x: np.ndarray, y: np.ndarray, epsilon: float, norm: Norm, steps: int,
                       rel_stepsize: float, random_start: bool, seed: int, batch_size: int) -> np.ndarray:
    """PGD on cross-entropy in Linf or L2 (Madry et al. 2018), in batches; x (N, C, H, W) in [0, 1].

    Per sample it keeps the iterate with the largest margin seen, so a success at any step is never lost
    to a later step (foolbox and ART return the last iterate).
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    chunks = []
    for start in range(0, len(x), batch_size):
        clean = torch.from_numpy(x[start:start + batch_size])
        labels = torch.from_numpy(y[start:start + batch_size])
        chunks.append(pgd_batch(model, clean, labels, epsilon, norm, steps, rel_stepsize * epsilon, random_start, generator))
    return np.concatenate(chunks) if chunks else x.copy()


def pgd_batch(model: Any, x: Any, y: Any, epsilon: float, norm: Norm, steps: int, step_size: float,
              random_start: bool, generator: Any) -> np.ndarray:
    import torch

    def project(candidate: Any) -> Any:
        if norm is Norm.LINF:
            candidate = torch.min(torch.max(candidate, x - epsilon), x + epsilon)
        else:
            delta = candidate - x
            length = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
            candidate = x + delta * (epsilon / length).clamp(max=1.0).view(-1, 1, 1, 1)
        return candidate.clamp(0, 1)

    x_adv = x.clone()
    if random_start:
        if norm is Norm.LINF:
            noise = (torch.rand(x.shape, generator=generator) * 2 - 1) * epsilon
        else:  # uniform in the L2 ball: a random direction, radius eps * u^(1/d)
            direction = torch.randn(x.shape, generator=generator)
            direction /= direction.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            radius = epsilon * torch.rand(len(x), generator=generator) ** (1 / x[0].numel())
            noise = direction * radius.view(-1, 1, 1, 1)
        x_adv = project(x + noise)
    best = x_adv.clone()
    best_margin = torch.full((len(x),), -torch.inf)
    for step in range(steps + 1):
        x_adv.requires_grad_(True)
        logits = model(x_adv)
        margin = margin_of(logits.detach(), y)
        improved = margin > best_margin
        best[improved], best_margin[improved] = x_adv.detach()[improved], margin[improved]
        if step == steps:
            break
        loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x_adv)
        with torch.no_grad():
            if norm is Norm.LINF:
                direction = grad.sign()
            else:
                direction = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            x_adv = project(x_adv.detach() + step_size * direction)
    return best.numpy()


@dataclass
class ProjectedGradientAttack(Attack):
    """PGD options and run, shared by the white-box attacks and the transfer attack (which differ in the model)."""

    steps: int = 40
    rel_stepsize: float = 0.01 / 0.3
    random_start: bool = True
    batch_size: int = 500

    def gradient_model(self, target: AttackTarget) -> Any:
        """The model whose gradients craft the candidates: the deployed model's own source."""
        return target.source()

    def run(self, target: AttackTarget, x: np.ndarray, y: np.ndarray, epsilon: float, seed: int) -> AttackOutput:
        return AttackOutput(projected_gradient(self.gradient_model(target), x, y, epsilon, self.norm, self.steps,
                                               self.rel_stepsize, self.random_start, seed, self.batch_size))


@register_attack
@dataclass
class LinfPGD(ProjectedGradientAttack):
    """PGD-Linf with a random start; step size `rel_stepsize` x epsilon (foolbox's default)."""

    name = "pgd-linf"
    norm = Norm.LINF
    kind = AttackKind.WHITE_BOX
    summary = "PGD with random start on the PyTorch source"


@register_attack
@dataclass
class L2PGD(ProjectedGradientAttack):
    """PGD-L2 with a random start in the ball; normalised gradient steps of `rel_stepsize` x epsilon."""

    name = "pgd-l2"
    norm = Norm.L2
    kind = AttackKind.WHITE_BOX
    summary = "PGD in L2 with random start on the PyTorch source"

    steps: int = 50
    rel_stepsize: float = 0.025
