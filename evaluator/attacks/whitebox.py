"""White-box attacks on the PyTorch source (gradients through the exported program)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluator.attacks.base import Attack, AttackKind, AttackOutput, AttackTarget, Norm, register_attack


@register_attack
@dataclass
class LinfPGD(Attack):
    """Projected gradient descent on cross-entropy with a random start (Madry et al. 2018).

    Step size `rel_stepsize` x epsilon. Per sample it keeps the iterate with the largest margin
    max_{j != y} z_j - z_y seen, so a success at any step is never lost to a later step.
    """

    name = "pgd-linf"
    norm = Norm.LINF
    kind = AttackKind.WHITE_BOX
    summary = "PGD with random start on the PyTorch source"

    steps: int = 40
    rel_stepsize: float = 0.01 / 0.3
    random_start: bool = True
    batch_size: int = 500

    def run(self, target: AttackTarget, x: np.ndarray, y: np.ndarray, epsilon: float, seed: int) -> AttackOutput:
        import torch

        model = target.source()
        generator = torch.Generator().manual_seed(seed)
        chunks = [self._attack_batch(model, torch.from_numpy(x[i:i + self.batch_size]), torch.from_numpy(y[i:i + self.batch_size]),
                                     epsilon, generator) for i in range(0, len(x), self.batch_size)]
        return AttackOutput(np.concatenate(chunks) if chunks else x.copy())

    def _attack_batch(self, model, x, y, epsilon: float, generator) -> np.ndarray:  # type: ignore[no-untyped-def]
        import torch

        step = self.rel_stepsize * epsilon
        x_adv = x.clone()
        if self.random_start:
            x_adv = (x + (torch.rand(x.shape, generator=generator) * 2 - 1) * epsilon).clamp(0, 1)
        best = x_adv.clone()
        best_margin = torch.full((len(x),), -torch.inf)
        for _ in range(self.steps + 1):
            x_adv.requires_grad_(True)
            logits = model(x_adv)
            margin = margin_of(logits.detach(), y)
            improved = margin > best_margin
            best[improved], best_margin[improved] = x_adv.detach()[improved], margin[improved]
            if _ == self.steps:
                break
            loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_adv)
            with torch.no_grad():
                x_adv = x_adv.detach() + step * grad.sign()
                x_adv = torch.min(torch.max(x_adv, x - epsilon), x + epsilon).clamp(0, 1)
        return best.numpy()


def margin_of(logits, y):  # type: ignore[no-untyped-def]
    """max_{j != y} z_j - z_y per sample; positive means misclassified. logits (N, K), y (N,)."""
    import torch

    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.clone()
    others.scatter_(1, y[:, None], -torch.inf)
    return others.max(1).values - true
