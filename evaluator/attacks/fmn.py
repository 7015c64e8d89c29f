"""Minimal-norm white-box attacks on the PyTorch source: Fast Minimum-Norm (FMN; Pintor et al., NeurIPS 2021) in
L0, L1, L2 and Linf, and a greedy pixel attack in L0.

FMN walks along the decision boundary. Each step moves the perturbation against the gradient of the logit margin
(z_y - max_{j != y} z_j, evaluator.attacks.margins) and projects it onto an epsilon ball; epsilon shrinks by
(1 - gamma) while the iterate is adversarial and grows by (1 + gamma) while it is not, and the step size and gamma
decay on a cosine schedule. One loop serves every norm: a norm only picks the distance, the steepest-ascent
direction (evaluator.attacks.torch_norms; L0 steps in L2), the projection onto the ball and the first guess of the
distance to the boundary. Per sample the closest adversarial iterate is kept.

The L0 attacks count changed pixel positions, as the evaluator does (a pixel counts once whatever its channels),
and set pixels to corners of the [0, 1] box. l0-greedy adds, one at a time, the pixel whose change lowers the
margin most, choosing among the candidates a linearisation ranks best by their exact margins; both L0 attacks
end by resetting every changed pixel that is not needed (backward elimination, exact margins again).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluator.attacks.base import AttackKind, AttackOutput, AttackTarget, MinimalNormAttack, Norm, Work, register_attack
from evaluator.attacks.margins import margin_of
from evaluator.attacks.torch_norms import dual_lengths, lengths, project, steepest_direction
from evaluator.attacks.whitebox import in_batches

GAMMA_FINAL = 0.001  # FMN's epsilon step at the end of the cosine schedule
EVAL_CHUNK = 512  # inputs per forward pass when candidates are scored without gradients (a size CPU caches favour)


def within_box(grad: Any, x_adv: Any) -> Any:
    """grad (N, C, H, W), the direction x_adv is about to move, with the entries that would push x_adv out of
    [0, 1] set to 0."""
    import torch

    blocked = ((x_adv <= 0) & (grad < 0)) | ((x_adv >= 1) & (grad > 0))
    return torch.where(blocked, torch.zeros_like(grad), grad)


def margin_and_descent(model: Any, x_adv: Any, y: Any) -> tuple[Any, Any]:
    """Margins (N,) of x_adv (N, C, H, W) (z_y - max_{j != y} z_j, negative when misclassified) and the gradients
    (N, C, H, W) of the negated margins: the attacks ascend these, lowering the margins."""
    import torch

    x_adv = x_adv.detach().clone().requires_grad_(True)
    margin = margin_of(model(x_adv), y)
    (descent,) = torch.autograd.grad((-margin).sum(), x_adv)
    return margin.detach(), descent


def model_margins(model: Any, x: Any, y: Any) -> Any:
    """Margins (N,) of x (N, C, H, W) without gradients, EVAL_CHUNK inputs per forward pass."""
    import torch

    with torch.no_grad():
        return torch.cat([margin_of(model(x[i:i + EVAL_CHUNK]), y[i:i + EVAL_CHUNK])
                          for i in range(0, len(x), EVAL_CHUNK)])


@dataclass(frozen=True)
class FMNOptions:
    """One FMN run's settings: the norm (L0, L1, L2, Linf) and the FastMinimumNorm attack's options, described
    there; refine and candidates are FMN-L0's (off for the other norms, which have no such options)."""

    norm: Norm
    steps: int
    alpha: float
    gamma: float
    min_margin: float
    batch_size: int
    refine: bool = False
    candidates: int = 0


def fmn_batch(model: Any, x: Any, y: Any, options: FMNOptions) -> Any:
    """FMN on one batch x (N, C, H, W) in [0, 1], labels y (N,); returns the closest adversarial iterate per
    sample (N, C, H, W), x where none had a margin below -min_margin.

    The step is alpha x epsilon long in `norm` (L0: alpha in L2, FMN's step), both alpha and gamma annealed by
    a cosine to alpha / 100 and GAMMA_FINAL. Until a sample is first adversarial, epsilon is its linearised
    distance to the boundary, never less than (1 + gamma) x the previous epsilon, so it cannot stall.
    """
    import torch

    norm, steps, alpha, gamma = options.norm, options.steps, options.alpha, options.gamma
    min_margin = options.min_margin
    n = len(x)
    delta = torch.zeros_like(x)
    if norm is Norm.L0:
        worst = torch.full((n,), float(x[0, 0].numel()))
        epsilon = torch.ones(n)
    else:
        worst = lengths(torch.max(x, 1 - x), norm)  # the farthest corner of the box
        epsilon = torch.full((n,), math.inf)
    best, best_norm = x.clone(), torch.full((n,), math.inf)
    found = torch.zeros(n, dtype=torch.bool)
    for k in range(steps + 1):
        cosine = (1 + math.cos(math.pi * k / max(steps, 1))) / 2
        step = alpha / 100 + (alpha - alpha / 100) * cosine
        rate = GAMMA_FINAL + (gamma - GAMMA_FINAL) * cosine
        x_adv = x + delta
        margin, descent = margin_and_descent(model, x_adv, y)
        with torch.no_grad():
            adversarial = margin < -min_margin
            length = lengths(delta, norm)
            better = adversarial & (length < best_norm)
            best[better], best_norm[better] = x_adv[better], length[better]
            found |= adversarial
            if k == steps:
                break
            descent = within_box(descent, x_adv)
            if norm is Norm.L0:
                epsilon = torch.where(adversarial,
                                      torch.minimum(torch.minimum(epsilon - 1, (epsilon * (1 - rate)).floor()), best_norm),
                                      torch.maximum(epsilon + 1, (epsilon * (1 + rate)).floor())).clamp_min(1)
            else:
                guess = length + (margin + min_margin).abs() / dual_lengths(descent, norm).clamp_min(1e-12)
                if k > 0:
                    guess = torch.maximum(guess, epsilon * (1 + rate))
                epsilon = torch.where(adversarial, torch.minimum(epsilon * (1 - rate), best_norm),
                                      torch.where(found, epsilon * (1 + rate), guess))
            epsilon = torch.minimum(epsilon, worst)
            size = torch.full((n,), step) if norm is Norm.L0 else step * epsilon
            direction = steepest_direction(descent, Norm.L2 if norm is Norm.L0 else norm)  # L0: FMN's L2 steps
            delta = project(delta + size.view(-1, 1, 1, 1) * direction, epsilon, norm)
            delta = (x + delta).clamp(0, 1) - x
    return best


def with_pixels(x: Any, pixels: Any, values: Any) -> Any:
    """Copies of x (K, C, H, W), M per sample (K, M, C, H, W), copy m with pixel pixels[:, m] (K, M) set to values (K, M, C)."""
    k, channels = x.shape[:2]
    count = pixels.shape[1]
    copies = x.flatten(2).unsqueeze(1).repeat(1, count, 1, 1)  # (K, M, C, H*W)
    copies.scatter_(3, pixels[:, :, None, None].expand(k, count, channels, 1), values.unsqueeze(-1))
    return copies.view(k, count, *x.shape[1:])


def pixel_values(x: Any, pixels: Any) -> Any:
    """Values (K, M, C) of x (K, C, H, W) at pixel positions pixels (K, M)."""
    k, channels = x.shape[:2]
    return x.flatten(2).gather(2, pixels[:, None, :].expand(k, channels, pixels.shape[1])).permute(0, 2, 1)


def score_trials(model: Any, x: Any, y: Any, pixels: Any, values: Any) -> Any:
    """Exact margins (K, M) of x (K, C, H, W) with pixel pixels[:, m] (K, M) set to values[:, m] (K, M, C), one
    change at a time; the trial inputs are built for about EVAL_CHUNK at a time, so memory stays small."""
    import torch

    count = pixels.shape[1]
    per = max(1, EVAL_CHUNK // count)
    return torch.cat([model_margins(model, with_pixels(x[i:i + per], pixels[i:i + per], values[i:i + per]).flatten(0, 1),
                              y[i:i + per].repeat_interleave(count)).view(-1, count) for i in range(0, len(x), per)])


def add_pixels(model: Any, x: Any, y: Any, candidates: int, max_pixels: int, min_margin: float) -> Any:
    """Greedy forward selection on x (N, C, H, W): each round, per sample not yet adversarial, the `candidates`
    unchanged pixels whose move to a corner of the box lowers the linearised margin most are each tried, and the
    one with the smallest exact margin is kept. At most max_pixels rounds; (N, C, H, W)."""
    import torch

    current = x.clone()
    changed = torch.zeros(len(x), x[0, 0].numel(), dtype=torch.bool)
    margin = model_margins(model, current, y)
    for _ in range(max_pixels):
        active = (margin >= -min_margin).nonzero().flatten()
        if active.numel() == 0:
            break
        point = current[active]
        _, descent = margin_and_descent(model, point, y[active])
        corner = (descent > 0).to(x.dtype)
        gain = (descent * (corner - point)).sum(dim=1).flatten(1)
        gain[changed[active]] = -math.inf
        pixels = gain.topk(min(candidates, gain.shape[1]), dim=1).indices  # (K, M)
        values = pixel_values(corner, pixels)
        scores = score_trials(model, point, y[active], pixels, values)
        scores[torch.gather(changed[active], 1, pixels)] = math.inf  # fewer unchanged pixels than candidates
        pick = scores.argmin(dim=1, keepdim=True)
        current[active] = with_pixels(point, pixels.gather(1, pick), values.gather(1, pick[..., None].expand(-1, -1, values.shape[2]))).squeeze(1)
        changed[active, pixels.gather(1, pick).squeeze(1)] = True
        margin[active] = scores.gather(1, pick).squeeze(1)
    return current


def drop_pixels(model: Any, x: Any, x_adv: Any, y: Any, candidates: int, min_margin: float) -> Any:
    """Backward elimination on x_adv (N, C, H, W): each round, per adversarial sample, the `candidates` changed
    pixels whose reset to x raises the linearised margin least are each tried, and the reset leaving the smallest
    exact margin is kept while that margin stays below -min_margin. Samples that are not adversarial become x."""
    import torch

    current = x_adv.clone()
    alive = model_margins(model, current, y) < -min_margin
    current[~alive] = x[~alive]
    while True:
        changed = (current != x).any(dim=1).flatten(1)
        active = (alive & changed.any(dim=1)).nonzero().flatten()
        if active.numel() == 0:
            return current
        point, clean = current[active], x[active]
        _, descent = margin_and_descent(model, point, y[active])
        loss = (descent * (point - clean)).sum(dim=1).flatten(1)  # linearised margin regained by each reset
        loss[~changed[active]] = math.inf
        pixels = loss.topk(min(candidates, int(changed[active].sum(dim=1).max())), dim=1, largest=False).indices
        values = pixel_values(clean, pixels)
        scores = score_trials(model, point, y[active], pixels, values)
        scores[~torch.gather(changed[active], 1, pixels)] = math.inf
        best, pick = scores.min(dim=1, keepdim=True)
        kept = best.squeeze(1) < -min_margin
        reset = with_pixels(point, pixels.gather(1, pick), values.gather(1, pick[..., None].expand(-1, -1, values.shape[2])))
        current[active[kept]] = reset.squeeze(1)[kept]
        alive[active[~kept]] = False


@dataclass
class FastMinimumNorm(MinimalNormAttack):
    """FMN options and run, shared by the four norms (they differ only in `norm` and defaults).

    steps: gradient steps per sample; alpha: initial step size (a share of epsilon; L0: the L2 length of the step),
    annealed to alpha / 100; gamma: initial epsilon step, annealed to 0.001; min_margin: a candidate counts as
    adversarial when its logit margin on the source is below -min_margin, so that rounding on the deployed graph
    does not undo it.
    """

    kind = AttackKind.WHITE_BOX
    minimums = {"batch_size": 1, "steps": 1}
    positive = ("alpha", "gamma")

    steps: int = 100
    alpha: float = 1.0
    gamma: float = 0.05
    min_margin: float = 1e-4
    batch_size: int = 500

    def work(self) -> Work:
        """A gradient per step, and per step the L0 variant's exact margins of `candidates` pixel sets."""
        return Work(gradients=self.steps, forwards=self.steps * getattr(self, "candidates", 0))

    def craft(self, model: Any, x: Any, y: Any, options: FMNOptions) -> Any:
        """The candidates (N, C, H, W) for one torch batch."""
        return fmn_batch(model, x, y, options)

    def run_minimal(self, target: AttackTarget, x: np.ndarray, y: np.ndarray, seed: int) -> AttackOutput:
        model = target.source()
        options = FMNOptions(norm=self.norm, **self.options())
        return AttackOutput(in_batches(x, y, options.batch_size, seed, lambda clean, labels, generator: self.craft(
            model, clean, labels, options).numpy()))


@register_attack
@dataclass
class FMNL2(FastMinimumNorm):
    """FMN in L2: normalised-gradient steps, projection onto the L2 ball."""

    name = "fmn-l2"
    norm = Norm.L2
    summary = "Fast Minimum-Norm (Pintor et al. 2021) in L2 on the PyTorch source"


@register_attack
@dataclass
class FMNLinf(FastMinimumNorm):
    """FMN in Linf: sign-gradient steps, projection onto the Linf ball."""

    name = "fmn-linf"
    norm = Norm.LINF
    summary = "Fast Minimum-Norm (Pintor et al. 2021) in Linf on the PyTorch source"


@register_attack
@dataclass
class FMNL1(FastMinimumNorm):
    """FMN in L1: sparse steps on the largest 1% of gradient entries, projection onto the L1 ball."""

    name = "fmn-l1"
    norm = Norm.L1
    summary = "Fast Minimum-Norm (Pintor et al. 2021) in L1 on the PyTorch source"


@register_attack
@dataclass
class FMNL0(FastMinimumNorm):
    """FMN in L0 (steps of L2 length alpha, epsilon counts pixels, projection keeps the epsilon largest changes),
    then, when `refine`, backward elimination of the pixels not needed (`candidates` tried per round)."""

    name = "fmn-l0"
    norm = Norm.L0
    summary = "Fast Minimum-Norm (Pintor et al. 2021) in L0 with a pixel-reset refinement, on the PyTorch source"

    minimums = {"batch_size": 1, "candidates": 1, "steps": 1}

    alpha: float = 3.0
    refine: bool = True
    candidates: int = 32

    def craft(self, model: Any, x: Any, y: Any, options: FMNOptions) -> Any:
        x_adv = super().craft(model, x, y, options)
        return drop_pixels(model, x, x_adv, y, options.candidates, options.min_margin) if options.refine else x_adv


@register_attack
@dataclass
class GreedyL0(MinimalNormAttack):
    """Greedy pixel attack in L0: forward selection of the pixel (set to a corner of the box) with the smallest exact
    margin among `candidates` gradient-ranked ones per round, at most `max_pixels` rounds, then backward elimination.
    Samples not adversarial after max_pixels pixels are returned unchanged."""

    name = "l0-greedy"
    norm = Norm.L0
    kind = AttackKind.WHITE_BOX
    summary = "greedy pixel selection with exact margins, then pixel-reset refinement, on the PyTorch source"
    minimums = {"batch_size": 1, "candidates": 1, "max_pixels": 1}

    candidates: int = 64
    max_pixels: int = 200
    min_margin: float = 1e-4
    batch_size: int = 500

    def work(self) -> Work:
        """Per added pixel a gradient and the exact margins of `candidates` pixels; the elimination as many again."""
        return Work(gradients=self.max_pixels, forwards=2 * self.max_pixels * self.candidates)

    def run_minimal(self, target: AttackTarget, x: np.ndarray, y: np.ndarray, seed: int) -> AttackOutput:
        model = target.source()

        def craft(clean: Any, labels: Any, generator: Any) -> np.ndarray:
            x_adv = add_pixels(model, clean, labels, self.candidates, self.max_pixels, self.min_margin)
            return drop_pixels(model, clean, x_adv, labels, self.candidates, self.min_margin).numpy()

        return AttackOutput(in_batches(x, y, self.batch_size, seed, craft))
