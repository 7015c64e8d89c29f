"""Score-based attacks: they query the deployed ONNX graph's logits and nothing else."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluator.attacks.base import Attack, AttackKind, AttackOutput, AttackTarget, Norm, register_attack

# Square attack's schedule: the fraction of pixels changed per step halves at these shares of 10000 iterations.
SQUARE_SCHEDULE = ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128), (8000, 256))


def margins(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z_y - max_{j != y} z_j per sample (N,); <= 0 means misclassified."""
    true = logits[np.arange(len(y)), y]
    others = logits.copy()
    others[np.arange(len(y)), y] = -np.inf
    return true - others.max(axis=1)


def square_fraction(p_init: float, iteration: int, total: int) -> float:
    """Fraction of pixels in the square at `iteration` of `total` (Andriushchenko et al. 2020)."""
    progress = int(iteration / total * 10000)
    divisor = 512
    for threshold, value in SQUARE_SCHEDULE:
        if progress <= threshold:
            divisor = value
            break
    return p_init / divisor


@register_attack
@dataclass
class SquareLinf(Attack):
    """Square attack in Linf (Andriushchenko et al. 2020): random square updates of +-epsilon per channel,
    accepted when the margin loss falls; stops per sample at the first misclassification.

    Each step sends all still-unbroken samples to ONNX Runtime in one batch (fixed shapes on CUDA).
    """

    name = "square-linf"
    norm = Norm.LINF
    kind = AttackKind.SCORE
    summary = "Square attack on the deployed graph's logits"

    queries: int = 1000
    p_init: float = 0.8
    max_redraws: int = 10

    def run(self, target: AttackTarget, x: np.ndarray, y: np.ndarray, epsilon: float, seed: int) -> AttackOutput:
        rng = np.random.default_rng(seed)
        n, c, h, w = x.shape
        model = target.deployed
        stripes = rng.choice(np.array([-epsilon, epsilon], np.float32), size=(n, c, 1, w))
        x_best = np.clip(x + stripes, 0.0, 1.0).astype(np.float32)
        margin = margins(model.logits(x_best), y)
        used = np.ones(n, np.int64)
        for iteration in range(1, self.queries):
            active = np.flatnonzero(margin > 0)
            if active.size == 0:
                break
            side = int(round(np.sqrt(square_fraction(self.p_init, iteration, self.queries) * h * w)))
            side = min(max(side, 1), h - 1)
            window = random_windows(rng, active.size, h, w, side)
            candidate = self._candidate(rng, x[active], x_best[active], window, epsilon)
            new_margin = margins(model.logits(candidate), y[active])
            used[active] += 1
            better = new_margin < margin[active]
            x_best[active[better]] = candidate[better]
            margin[active[better]] = new_margin[better]
        return AttackOutput(x_best, used)

    def _candidate(self, rng: np.random.Generator, x: np.ndarray, x_best: np.ndarray, window: np.ndarray,
                   epsilon: float) -> np.ndarray:
        """x_best with the window set to x +- epsilon per channel. Where that changes nothing (clipping at 0 or 1
        often does), the signs are flipped, then re-drawn, so no query is spent on an unchanged input."""
        signs = rng.choice(np.array([-epsilon, epsilon], np.float32), size=(len(x), x.shape[1], 1, 1))
        candidate = square_update(x, x_best, window, signs, epsilon)
        for attempt in range(self.max_redraws):
            unchanged = np.flatnonzero((candidate == x_best).reshape(len(x), -1).all(axis=1))
            if unchanged.size == 0:
                break
            if attempt == 0:
                signs[unchanged] = -signs[unchanged]  # with one channel the only other choice
            else:
                signs[unchanged] = rng.choice(np.array([-epsilon, epsilon], np.float32), size=(unchanged.size, x.shape[1], 1, 1))
            candidate[unchanged] = square_update(x[unchanged], x_best[unchanged], window[unchanged], signs[unchanged], epsilon)
        return candidate


def random_windows(rng: np.random.Generator, count: int, height: int, width: int, side: int) -> np.ndarray:
    """(count, 1, H, W) boolean masks of one side x side square each, at random positions."""
    rows = rng.integers(0, height - side + 1, count)
    cols = rng.integers(0, width - side + 1, count)
    in_rows = (np.arange(height)[None, :] >= rows[:, None]) & (np.arange(height)[None, :] < rows[:, None] + side)
    in_cols = (np.arange(width)[None, :] >= cols[:, None]) & (np.arange(width)[None, :] < cols[:, None] + side)
    return in_rows[:, None, :, None] & in_cols[:, None, None, :]


def square_update(x: np.ndarray, x_best: np.ndarray, window: np.ndarray, signs: np.ndarray, epsilon: float) -> np.ndarray:
    """x_best with its window replaced by clip(x +- epsilon, 0, 1); x_best is already inside the ball and the box."""
    return np.where(window, np.clip(x + signs, 0.0, 1.0), x_best).astype(np.float32, copy=False)
