"""Auto-PGD (APGD; Croce & Hein, ICML 2020) on the PyTorch source, with three losses: cross-entropy (APGD-CE), the
difference of logits ratio (APGD-DLR) and its targeted form (APGD-T), AutoAttack's two gradient attacks.

APGD is PGD with momentum whose step size needs no tuning: it starts at 2 x epsilon and halves per sample at
checkpoints when the loss has stopped rising, restarting from the highest-loss point. One loop (`apgd_batch`)
serves every loss; a loss only maps logits (N, K), labels (N,) and, for APGD-T, target classes (N,) to a
per-sample loss (N,) to ascend. Whatever the loss, each sample keeps the iterate with the smallest margin seen
(z_y - max_{j != y} z_j, evaluator.attacks.margins), so a success at any step is never lost. L1 is not offered:
AutoAttack's L1 APGD is another algorithm (sparse steps, a projection onto the L1 ball inside the box, an epsilon
schedule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np

from evaluator.attacks.base import Attack, AttackKind, AttackOutput, AttackTarget, Norm, Work, register_attack
from evaluator.attacks.margins import margin_of
from evaluator.attacks.torch_norms import project_to_ball, steepest_direction
from evaluator.attacks.whitebox import COMPACT_SHARE, in_batches, settled
from evaluator.errors import EvaluatorError

MOMENTUM = 0.75  # weight of the new projected step against the last move (AutoAttack's alpha)
DLR_FLOOR = 1e-12  # keeps the DLR denominators above 0 when the top logits tie

# (logits (N, K), labels (N,), target classes (N,) or None) -> per-sample loss to ascend (N,)
Loss = Callable[[Any, Any, Any], Any]


def cross_entropy_loss(logits: Any, y: Any, targets: Any = None) -> Any:
    """Cross-entropy per sample (N,) of logits (N, K) against labels y (N,); untargeted (targets are ignored)."""
    import torch

    return torch.nn.functional.cross_entropy(logits, y, reduction="none")


def check_classes(classes: int, needed: int, loss: str) -> None:
    """An EvaluatorError unless a model with `classes` outputs has the `needed` logits `loss` ranks."""
    if classes < needed:
        raise EvaluatorError(f"the {loss} loss needs a model with at least {needed} classes (it ranks the top {needed} "
                             f"logits), this one has {classes}: use an APGD-CE attack (apgd-ce-linf, apgd-ce-l2)")


def dlr_loss(logits: Any, y: Any, targets: Any = None) -> Any:
    """DLR per sample (N,): -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12), pi the classes by logit, descending.

    Scale-free (a rescaled model gives the same loss) and positive exactly when the sample is misclassified.
    logits (N, K) with K >= 3, y (N,); untargeted (targets are ignored)."""
    check_classes(logits.shape[1], 3, "DLR")
    ranked = logits.sort(dim=1, descending=True).values
    return -margin_of(logits, y) / (ranked[:, 0] - ranked[:, 2] + DLR_FLOOR)


def targeted_dlr_loss(logits: Any, y: Any, targets: Any) -> Any:
    """Targeted DLR per sample (N,) towards targets (N,): -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12),
    positive once the target's logit passes the true one. logits (N, K) with K >= 4, y (N,)."""
    check_classes(logits.shape[1], 4, "targeted DLR")
    ranked = logits.sort(dim=1, descending=True).values
    gap = logits.gather(1, targets[:, None]).squeeze(1) - logits.gather(1, y[:, None]).squeeze(1)
    return gap / (ranked[:, 0] - (ranked[:, 2] + ranked[:, 3]) / 2 + DLR_FLOOR)


def target_ranking(logits: Any, y: Any, count: int) -> Any:
    """The `count` classes (N, count) other than y (N,) with the highest logits (N, K), highest first: for a correctly
    classified sample the 2nd to (count + 1)-th highest logits, AutoAttack's targets."""
    import torch

    others = logits.clone()
    others.scatter_(1, y[:, None], -torch.inf)
    return others.argsort(dim=1, descending=True, stable=True)[:, :count]


def apgd_checkpoints(steps: int) -> list[int]:
    """Iterations at which APGD may halve its step size: p0 = 0, p1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)."""
    shares = [0.0, 0.22]
    while shares[-1] < 1:
        shares.append(shares[-1] + max(shares[-1] - shares[-2] - 0.03, 0.06))
    # the shares are whole hundredths: rounding first keeps float error out of the ceiling (0.57 * 100 = 57.000...01)
    return sorted({int(np.ceil(round(share * steps, 6))) for share in shares[1:] if round(share, 6) <= 1})


@dataclass
class Walk:
    """The per-sample state of an APGD run over the samples still attacked; every tensor's first axis is theirs.

    index (A,): their rows in the batch; clean, point, previous (A, C, H, W): x, the iterate and the one before it;
    labels, targets (A,) (targets None when the loss has none); step (A,): step size in units of the norm;
    loss (A,): at the iterate; top, top_loss, top_grad: the highest-loss point so far, its loss and gradient;
    grad: the gradient at the iterate; rises (A,): steps since the last checkpoint whose loss rose;
    top_at_checkpoint (A,): top_loss at the last checkpoint; reduced (A,) bool: step halved there.
    """

    index: Any
    clean: Any
    labels: Any
    targets: Any
    point: Any
    previous: Any
    step: Any
    loss: Any
    grad: Any
    top: Any
    top_loss: Any
    top_grad: Any
    rises: Any
    top_at_checkpoint: Any
    reduced: Any

    def keep(self, rows: Any) -> Walk:
        """The state of the samples selected by rows (A,) bool only."""
        return Walk(**{name: None if value is None else value[rows] for name, value in vars(self).items()})


@dataclass(frozen=True)
class APGDOptions:
    """One APGD run's settings: `steps` steps in `norm` (L2, Linf) with the checkpoint threshold rho, over batches of
    batch_size samples; stop_when_fooled: see apgd_batch. target_classes: APGD-T's runs per batch (0 for the
    untargeted attacks, which have no such option)."""

    norm: Norm
    steps: int
    rho: float
    batch_size: int
    stop_when_fooled: bool
    target_classes: int = 0


def apgd_batch(model: Any, x: Any, y: Any, epsilon: float, options: APGDOptions, generator: Any,
               loss: Loss = cross_entropy_loss, targets: Any = None) -> tuple[Any, Any]:
    """APGD ascending `loss` in Linf or L2 on one batch x (N, C, H, W) in [0, 1] with labels y (N,) and, for a
    targeted loss, target classes targets (N,).

    Steps of 2 x epsilon at first along sign(grad) (Linf) or grad / ||grad||_2 (L2), momentum 0.75; at each
    checkpoint a sample's step size halves, and it restarts from its highest-loss point, when its loss rose in
    fewer than rho of the steps since the last checkpoint, or when its step was not halved there and its best loss
    has not risen since. Random start: uniform in the Linf cube; in L2 on the sphere of radius epsilon
    (AutoAttack's). With options.stop_when_fooled a sample leaves the batch once it is misclassified by a settled
    margin, as in PGD. Returns per sample the iterate with the smallest margin seen (N, C, H, W) and that margin (N,).
    """
    import torch

    norm, steps, rho = options.norm, options.steps, options.rho

    def loss_grad(point: Any, walk_labels: Any, walk_targets: Any) -> tuple[Any, Any, Any, Any]:
        point = point.clone().requires_grad_(True)
        logits = model(point)
        losses = loss(logits, walk_labels, walk_targets)
        (grad,) = torch.autograd.grad(losses.sum(), point)
        logits = logits.detach()
        return losses.detach(), grad, margin_of(logits, walk_labels), logits

    n = len(x)
    view = (-1, 1, 1, 1)
    if norm is Norm.LINF:
        start = project_to_ball(x + (torch.rand(x.shape, generator=generator) * 2 - 1) * epsilon, x, epsilon, norm)
    else:
        noise = torch.randn(x.shape, generator=generator)
        start = (x + epsilon * noise / noise.flatten(1).norm(dim=1).clamp_min(1e-12).view(view)).clamp(0, 1)
    loss_start, grad, margin, _ = loss_grad(start, y, targets)
    best, best_margin = start.clone(), margin.clone()
    walk = Walk(index=torch.arange(n), clean=x, labels=y, targets=targets, point=start, previous=start.clone(),
                step=torch.full((n,), 2 * epsilon), loss=loss_start, grad=grad, top=start.clone(), top_loss=loss_start.clone(),
                top_grad=grad.clone(), rises=torch.zeros(n), top_at_checkpoint=loss_start.clone(),
                reduced=torch.zeros(n, dtype=torch.bool))
    checkpoints = set(apgd_checkpoints(steps))
    last_checkpoint = 0
    for k in range(steps):
        with torch.no_grad():
            z = project_to_ball(walk.point + walk.step.view(view) * steepest_direction(walk.grad, norm), walk.clean, epsilon, norm)
            if k == 0:
                x_next = z
            else:
                x_next = project_to_ball(walk.point + MOMENTUM * (z - walk.point) + (1 - MOMENTUM) * (walk.point - walk.previous),
                                         walk.clean, epsilon, norm)
        new_loss, grad, margin, logits = loss_grad(x_next, walk.labels, walk.targets)
        with torch.no_grad():
            improved = margin < best_margin[walk.index]
            best[walk.index[improved]], best_margin[walk.index[improved]] = x_next[improved], margin[improved]
            walk.rises += (new_loss > walk.loss).float()
            better = new_loss > walk.top_loss
            walk.top[better], walk.top_loss[better], walk.top_grad[better] = x_next[better], new_loss[better], grad[better]
            walk.previous, walk.point, walk.loss, walk.grad = walk.point, x_next, new_loss, grad
            if k + 1 in checkpoints:
                window = k + 1 - last_checkpoint
                too_few = walk.rises < rho * window
                stalled = ~walk.reduced & (walk.top_loss <= walk.top_at_checkpoint)
                reduce = too_few | stalled
                walk.step[reduce] /= 2
                walk.point[reduce], walk.grad[reduce] = walk.top[reduce], walk.top_grad[reduce]  # restart from the best point
                walk.reduced, last_checkpoint = reduce, k + 1
                walk.rises.zero_()
                walk.top_at_checkpoint = walk.top_loss.clone()
            if options.stop_when_fooled:
                standing = ~settled(logits, best_margin[walk.index])
                if standing.sum() <= (1 - COMPACT_SHARE) * len(walk.index):
                    walk = walk.keep(standing)
                if len(walk.index) == 0:
                    break
    return best, best_margin


def apgd_targeted_batch(model: Any, x: Any, y: Any, epsilon: float, options: APGDOptions, generator: Any) -> np.ndarray:
    """APGD-T on one batch x (N, C, H, W): one APGD run on the targeted DLR loss per target class, the classes other
    than y with the highest clean logits first, at most min(options.target_classes, K - 1) of them; each run attacks
    only the samples that no run before it misclassified by a settled margin (AutoAttack's). Returns the
    smallest-margin iterate over all runs (N, C, H, W)."""
    import torch

    with torch.no_grad():
        clean = model(x)
    check_classes(clean.shape[1], 4, "targeted DLR")
    targets = target_ranking(clean, y, min(options.target_classes, clean.shape[1] - 1))
    best, best_margin = x.clone(), torch.full((len(x),), torch.inf)
    standing = torch.ones(len(x), dtype=torch.bool)
    for rank in range(targets.shape[1]):
        index = standing.nonzero().squeeze(1)
        if len(index) == 0:
            break
        found, margin = apgd_batch(model, x[index], y[index], epsilon, options, generator, targeted_dlr_loss,
                                   targets[index, rank])
        better = margin < best_margin[index]
        best[index[better]], best_margin[index[better]] = found[better], margin[better]
        with torch.no_grad():
            logits = model(best[index])
        standing[index] = ~settled(logits, margin_of(logits, y[index]))
    return best.numpy()


@dataclass
class AutoProjectedGradientAttack(Attack):
    """APGD options and run, shared by the Linf and L2 attacks of every loss; a subclass picks the loss."""

    minimums = {"batch_size": 1, "steps": 1}
    maximums = {"rho": 1.0}
    steps: int = 100
    rho: float = 0.75
    batch_size: int = 500
    loss_name: ClassVar[str] = "cross-entropy"
    loss = staticmethod(cross_entropy_loss)
    # A sample leaves the batch once it is misclassified by a settled margin: the same samples fooled, in a fraction
    # of the time (bench/autoattack_speed.py). False walks every sample all its steps, as AutoAttack does.
    stop_when_fooled: bool = True

    def work(self) -> Work:
        """One gradient per step (the loss and the logits come with it); APGD-T walks once per target class."""
        return Work(gradients=self.steps * max(1, getattr(self, "target_classes", 1)), forwards=1)

    def craft(self, model: Any, x: Any, y: Any, epsilon: float, options: APGDOptions, generator: Any) -> np.ndarray:
        """Candidates (N, C, H, W) for one torch batch x with labels y."""
        return apgd_batch(model, x, y, epsilon, options, generator, self.loss)[0].numpy()

    def run(self, target: AttackTarget, x: np.ndarray, y: np.ndarray, epsilon: float, seed: int) -> AttackOutput:
        try:
            check_classes(target.deployed.num_classes, self.min_classes, self.loss_name)
        except EvaluatorError as error:
            raise EvaluatorError(f"attack {self.name!r}: {error}") from None
        model = target.source()
        options = APGDOptions(norm=self.norm, **self.options())
        return AttackOutput(in_batches(x, y, options.batch_size, seed, lambda clean, labels, generator: self.craft(
            model, clean, labels, epsilon, options, generator)))


@register_attack
@dataclass
class LinfAPGD(AutoProjectedGradientAttack):
    """APGD-CE in Linf (AutoAttack's first attack): PGD with momentum and an automatic step-size schedule."""

    name = "apgd-ce-linf"
    norm = Norm.LINF
    kind = AttackKind.WHITE_BOX
    summary = "APGD with cross-entropy (Croce & Hein 2020) on the PyTorch source"


@register_attack
@dataclass
class L2APGD(AutoProjectedGradientAttack):
    """APGD-CE in L2 (AutoAttack's L2 version): normalised-gradient steps, projection onto the L2 ball."""

    name = "apgd-ce-l2"
    norm = Norm.L2
    kind = AttackKind.WHITE_BOX
    summary = "APGD in L2 with cross-entropy (Croce & Hein 2020) on the PyTorch source"


@dataclass
class DLRAutoProjectedGradientAttack(AutoProjectedGradientAttack):
    """APGD on the DLR loss: invariant to shifting and rescaling the logits, so a model's over-confident logits
    (which flatten the cross-entropy's gradient) do not hide it. Needs 3 classes or more."""

    min_classes = 3
    loss_name = "DLR"
    loss = staticmethod(dlr_loss)


@register_attack
@dataclass
class LinfAPGDDLR(DLRAutoProjectedGradientAttack):
    """APGD-DLR in Linf."""

    name = "apgd-dlr-linf"
    norm = Norm.LINF
    kind = AttackKind.WHITE_BOX
    summary = "APGD with the DLR loss (Croce & Hein 2020) on the PyTorch source"


@register_attack
@dataclass
class L2APGDDLR(DLRAutoProjectedGradientAttack):
    """APGD-DLR in L2."""

    name = "apgd-dlr-l2"
    norm = Norm.L2
    kind = AttackKind.WHITE_BOX
    summary = "APGD in L2 with the DLR loss (Croce & Hein 2020) on the PyTorch source"


@dataclass
class TargetedAutoProjectedGradientAttack(AutoProjectedGradientAttack):
    """APGD-T (AutoAttack's second attack): APGD on the targeted DLR loss towards each of the `target_classes`
    classes with the highest clean logits after the true one (at most K - 1), in turn, each run on the samples
    still standing; `steps` per target. Needs 4 classes or more."""

    minimums = {"batch_size": 1, "steps": 1, "target_classes": 1}
    target_classes: int = 9
    min_classes = 4
    loss_name = "targeted DLR"
    loss = staticmethod(targeted_dlr_loss)

    def craft(self, model: Any, x: Any, y: Any, epsilon: float, options: APGDOptions, generator: Any) -> np.ndarray:
        return apgd_targeted_batch(model, x, y, epsilon, options, generator)


@register_attack
@dataclass
class LinfAPGDTargeted(TargetedAutoProjectedGradientAttack):
    """APGD-T in Linf (AutoAttack 'standard''s second attack)."""

    name = "apgd-t-linf"
    norm = Norm.LINF
    kind = AttackKind.WHITE_BOX
    summary = "targeted APGD on the DLR loss, one run per target class (Croce & Hein 2020), on the PyTorch source"


@register_attack
@dataclass
class L2APGDTargeted(TargetedAutoProjectedGradientAttack):
    """APGD-T in L2 (AutoAttack 'standard''s second attack in L2)."""

    name = "apgd-t-l2"
    norm = Norm.L2
    kind = AttackKind.WHITE_BOX
    summary = "targeted APGD in L2 on the DLR loss, one run per target class (Croce & Hein 2020), on the PyTorch source"
