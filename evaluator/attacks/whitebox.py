"""White-box attacks on the PyTorch source (gradients through the exported program): PGD, and the helpers the other
white-box attacks share (batches, settled margins). APGD is in evaluator.attacks.apgd; margins are in
evaluator.attacks.margins, the norms' torch side in evaluator.attacks.torch_norms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from evaluator.attacks.base import Attack, AttackKind, AttackOutput, AttackTarget, Norm, Work, register_attack
from evaluator.attacks.margins import margin_of
from evaluator.attacks.torch_norms import project_to_ball, steepest_direction


@dataclass(frozen=True)
class PGDOptions:
    """One PGD run's settings: `steps` steps of rel_stepsize x epsilon in `norm` (L2, Linf), from a random point of
    the ball when random_start, over batches of batch_size samples; stop_when_fooled: see projected_gradient."""

    norm: Norm
    steps: int
    rel_stepsize: float
    random_start: bool
    batch_size: int
    stop_when_fooled: bool = True


def projected_gradient(model: Any, x: np.ndarray, y: np.ndarray, epsilon: float, options: PGDOptions,
                       seed: int) -> np.ndarray:
    """PGD on cross-entropy in Linf or L2 (Madry et al. 2018), in batches; x (N, C, H, W) in [0, 1], labels y (N,);
    returns the candidates (N, C, H, W).

    Per sample it keeps the iterate with the smallest margin seen, so a success at any step is never lost
    to a later step (foolbox and ART return the last iterate). With `stop_when_fooled` a sample leaves the
    batch once it is misclassified by a settled margin (see `settled`): later steps could not change whether
    it counts as robust, so the remaining steps are spent on the samples still standing (the batch sheds them
    once they are COMPACT_SHARE of it).
    """
    return in_batches(x, y, options.batch_size, seed,
                      lambda clean, labels, generator: pgd_batch(model, clean, labels, epsilon, options, generator))


COMPACT_SHARE = 0.125  # the batch drops its settled samples once they are this share of it: a new batch shape at
# every step (one or two samples shed) can cost the CPU convolutions more than those samples do
SETTLED_MARGIN = 1e-3  # x (1 + the sample's largest |logit|): 10x the export check's source-vs-ONNX logit tolerance


def settled(logits: Any, margin: Any) -> Any:
    """Whether each sample (N,) of logits (N, K) is misclassified by more than SETTLED_MARGIN x (1 + its largest
    |logit|), its margin (N,) below minus that, so that the deployed graph (which agrees with the source to
    1e-4 x (1 + that) at export) misclassifies it too."""
    return margin < -SETTLED_MARGIN * (1 + logits.abs().amax(1))


def in_batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int,
               craft: Callable[[Any, Any, Any], np.ndarray]) -> np.ndarray:
    """Run `craft(x_batch, y_batch, generator)` on torch batches of x (N, C, H, W), one seeded generator throughout."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    chunks = [craft(torch.from_numpy(x[i:i + batch_size]), torch.from_numpy(y[i:i + batch_size]), generator)
              for i in range(0, len(x), batch_size)]
    return np.concatenate(chunks) if chunks else x.copy()


def pgd_batch(model: Any, x: Any, y: Any, epsilon: float, options: PGDOptions, generator: Any) -> np.ndarray:
    """PGD (see projected_gradient) on one torch batch x (N, C, H, W), labels y (N,); candidates (N, C, H, W)."""
    import torch

    norm, steps, step_size = options.norm, options.steps, options.rel_stepsize * epsilon
    x_adv = x.clone()
    if options.random_start:
        if norm is Norm.LINF:
            noise = (torch.rand(x.shape, generator=generator) * 2 - 1) * epsilon
        else:  # uniform in the L2 ball: a random direction (a Gaussian draw of unit length), radius eps * u^(1/d)
            direction = steepest_direction(torch.randn(x.shape, generator=generator), Norm.L2)
            radius = epsilon * torch.rand(len(x), generator=generator) ** (1 / x[0].numel())
            noise = direction * radius.view(-1, 1, 1, 1)
        x_adv = project_to_ball(x + noise, x, epsilon, norm)
    best = x_adv.clone()
    best_margin = torch.full((len(x),), torch.inf)
    active, clean, labels, point = torch.arange(len(x)), x, y, x_adv  # the samples still attacked
    for step in range(steps + 1):
        point.requires_grad_(True)
        logits = model(point)
        margin = margin_of(logits.detach(), labels)
        improved = margin < best_margin[active]
        best[active[improved]], best_margin[active[improved]] = point.detach()[improved], margin[improved]
        if step == steps:
            break
        loss = torch.nn.functional.cross_entropy(logits, labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, point)
        with torch.no_grad():
            point = project_to_ball(point.detach() + step_size * steepest_direction(grad, norm), clean, epsilon, norm)
            if options.stop_when_fooled:
                standing = ~settled(logits.detach(), best_margin[active])
                if standing.sum() <= (1 - COMPACT_SHARE) * len(active):
                    active, clean, labels, point = active[standing], clean[standing], labels[standing], point[standing]
        if len(active) == 0:
            break
    return best.numpy()


@dataclass
class ProjectedGradientAttack(Attack):
    """PGD options and run, shared by the white-box attacks and the transfer attack (which differ in the model)."""

    minimums = {"batch_size": 1, "steps": 1}
    positive = ("rel_stepsize",)
    steps: int = 40
    rel_stepsize: float = 0.01 / 0.3
    random_start: bool = True
    batch_size: int = 500

    def gradient_model(self, target: AttackTarget) -> Any:
        """The model whose gradients craft the candidates: the deployed model's own source."""
        return target.source()

    stop_when_fooled = True  # a class attribute, not an option: transfer attacks keep pushing the surrogate

    def work(self) -> Work:
        return Work(gradients=self.steps, forwards=1)

    def run(self, target: AttackTarget, x: np.ndarray, y: np.ndarray, epsilon: float, seed: int) -> AttackOutput:
        options = PGDOptions(norm=self.norm, stop_when_fooled=self.stop_when_fooled, **self.options())
        return AttackOutput(projected_gradient(self.gradient_model(target), x, y, epsilon, options, seed))


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
