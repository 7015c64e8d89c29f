"""Carlini-Wagner L2 (Carlini & Wagner 2017): the minimal-norm white-box attack on the PyTorch source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluator.attacks.base import AttackKind, AttackOutput, AttackTarget, MinimalNormAttack, Norm, Work, register_attack
from evaluator.attacks.margins import margin_of
from evaluator.attacks.whitebox import in_batches

TANH_SHRINK = 1 - 1e-6  # keeps arctanh finite at pixels 0 and 1
MAX_CONST = 1e10


@dataclass(frozen=True)
class CarliniWagnerOptions:
    """One CW-L2 run's settings: the L2CarliniWagner attack's options, described in cw_l2_batch."""

    binary_search_steps: int
    steps: int
    stepsize: float
    initial_const: float
    confidence: float
    abort_early: bool
    warm_start: bool
    batch_size: int


def cw_l2_batch(model: Any, x: Any, y: Any, options: CarliniWagnerOptions) -> np.ndarray:
    """CW-L2 on one batch x (N, C, H, W) in [0, 1], labels y (N,); returns (N, C, H, W) float32 candidates.

    Per sample it minimises ||x_adv - x||_2^2 + c * max(z_y - max_{j != y} z_j + confidence, 0) over w, with
    x_adv = (tanh(w) + 1) / 2 (always inside [0, 1]), by Adam (learning rate `stepsize`, in w) from
    w = arctanh(2x - 1); c starts at `initial_const`, grows x10 until an adversarial is found, then is bisected
    (per sample, `binary_search_steps` values). With `warm_start` each new c starts from the previous c's last
    iterate instead of x (a continuation: far fewer steps reach the same distance). Early abort: a sample stops
    its Adam run for this c when, over a tenth of `steps`, its loss fell by less than 0.01% (CW's rule) and its
    closest adversarial by less than 0.1% (so a run still sliding along the boundary goes on); stopped samples
    leave the batch.
    Keeps per sample the closest candidate seen that the source misclassifies by more than `confidence` (margin
    below -confidence); x where none.
    """
    import torch

    binary_search_steps, steps, stepsize = options.binary_search_steps, options.steps, options.stepsize
    confidence, warm_start = options.confidence, options.warm_start
    n = len(x)
    w_clean = torch.atanh((2 * x - 1) * TANH_SHRINK)
    best, best_norm = x.clone(), torch.full((n,), torch.inf)
    const = torch.full((n,), options.initial_const, dtype=torch.float64)
    lower, upper = torch.zeros(n, dtype=torch.float64), torch.full((n,), torch.inf, dtype=torch.float64)
    check_every = max(int(np.ceil(steps / 10)), 1)
    beta1, beta2, eps_adam = 0.9, 0.999, 1e-8
    delta = torch.zeros_like(x)
    for search in range(binary_search_steps):
        if search == binary_search_steps - 1 and binary_search_steps >= 10:
            const = upper.clamp(max=MAX_CONST)  # the last search repeats the smallest successful c (as CW do)
        if not warm_start:
            delta = torch.zeros_like(x)
        found = torch.zeros(n, dtype=torch.bool)
        # the samples still running, compacted: global index, their inputs, c, iterate and a fresh Adam state
        index = torch.arange(n)
        x_a, y_a, w_a, c_a = x, y, w_clean, const.float()
        delta_a, m, v = delta.clone(), torch.zeros_like(x), torch.zeros_like(x)
        previous, previous_best = torch.full((n,), torch.inf), best_norm.clone()
        for step in range(steps):
            w = (w_a + delta_a).requires_grad_(True)
            x_adv = (torch.tanh(w) + 1) / 2
            logits = model(x_adv)
            margin = margin_of(logits, y_a)  # < 0: misclassified
            squared = (x_adv - x_a).flatten(1).square().sum(1)
            losses = squared + c_a * (margin + confidence).clamp_min(0)
            (grad,) = torch.autograd.grad(losses.sum(), w)
            with torch.no_grad():
                margin, squared, losses = margin.detach(), squared.detach(), losses.detach()
                adversarial = margin < -confidence
                if step > 0 or search == 0 or not warm_start:  # a warm start's first point is the last c's work
                    found[index[adversarial]] = True
                norm = squared.sqrt()
                closer = adversarial & (norm < best_norm[index])
                best[index[closer]], best_norm[index[closer]] = x_adv.detach()[closer], norm[closer]
                t = step + 1  # Adam with bias correction; every running sample has taken the same number of steps
                m.mul_(beta1).add_(grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                delta_a -= stepsize / (1 - beta1**t) * m / ((v / (1 - beta2**t)).sqrt_() + eps_adam)
                if options.abort_early and step % check_every == 0:
                    # stalled: the loss fell by < 0.01% (CW's rule) and the closest adversarial by < 0.1%
                    stalled = (losses > 0.9999 * previous) & (best_norm[index] >= 0.999 * previous_best[index])
                    previous_best = best_norm.clone()
                    if stalled.any():
                        delta[index[stalled]] = delta_a[stalled]
                        keep = ~stalled
                        index, x_a, y_a, w_a, c_a = index[keep], x_a[keep], y_a[keep], w_a[keep], c_a[keep]
                        delta_a, m, v, losses = delta_a[keep], m[keep], v[keep], losses[keep]
                    previous = losses
                    if index.numel() == 0:
                        break
        delta[index] = delta_a
        upper = torch.where(found, torch.minimum(upper, const), upper)
        lower = torch.where(found, lower, torch.maximum(lower, const))
        const = torch.where(torch.isinf(upper), const * 10, (lower + upper) / 2)
    return best.numpy()


@register_attack
@dataclass
class L2CarliniWagner(MinimalNormAttack):
    """Carlini-Wagner L2 (Carlini & Wagner 2017), minimal norm: tanh box constraint, Adam on distance + c x margin
    loss, binary search on c per sample, early abort; per sample the smallest-L2 adversarial seen.

    Option names follow foolbox's L2CarliniWagnerAttack (stepsize = Adam's learning rate). The defaults (9 x 100
    steps, stepsize 0.02, warm start) are sized for LeNet-5 on 1000 Fashion-MNIST images on a small CPU; they
    stop short of convergence (foolbox's defaults, 9 x 10000 steps, come a little closer at a far larger cost).
    warm_start=False with stepsize 0.01 and many more steps is closest to the original algorithm.
    """

    name = "cw-l2"
    norm = Norm.L2
    kind = AttackKind.WHITE_BOX
    summary = "Carlini-Wagner L2 minimal-norm attack on the PyTorch source"
    minimums = {"binary_search_steps": 1, "batch_size": 1, "steps": 1}
    positive = ("stepsize",)

    binary_search_steps: int = 9
    steps: int = 100
    stepsize: float = 0.02
    initial_const: float = 1e-3
    confidence: float = 0.0
    abort_early: bool = True
    warm_start: bool = True
    batch_size: int = 500

    def work(self) -> Work:
        return Work(gradients=self.binary_search_steps * self.steps)

    def run_minimal(self, target: AttackTarget, x: np.ndarray, y: np.ndarray, seed: int) -> AttackOutput:
        model = target.source()
        options = CarliniWagnerOptions(**self.options())
        return AttackOutput(in_batches(x, y, options.batch_size, seed,
                                       lambda clean, labels, _generator: cw_l2_batch(model, clean, labels, options)))
