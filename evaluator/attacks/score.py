"""Score-based attacks: they query the deployed ONNX graph's logits and nothing else.

All three are random searches (Andriushchenko et al. 2020; Croce et al. 2022): each step proposes one candidate
per still-unbroken sample, sends those candidates to ONNX Runtime together (on the CPU in chunks of
CPU_CHUNK_PER_THREAD samples per ORT thread), and keeps a candidate when its margin loss is better. Square-Linf
and Sparse-RS touch a few pixels per step, so their proposals are built on the (A, C, P) values at P flat pixel
positions per sample (gather / scatter), never on full-image masks, and patched in place into the still-unbroken
samples' best inputs (undone where rejected), so no step copies whole images. Every sample sent to the graph counts
as a query (OnnxClassifier.queries agrees).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from evaluator.attacks.base import Attack, AttackKind, AttackOutput, AttackTarget, Norm, Work, register_attack
from evaluator.attacks.margins import margins
from evaluator.runtime import CPU_EP, OnnxClassifier

# Square attack's schedule: the fraction of pixels changed per step is p_init / divisor until these shares of 10000 steps.
SQUARE_SCHEDULE = ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128), (8000, 256))
SQUARE_LAST_DIVISOR = 512
# Sparse-RS's schedule for L0 (Croce et al. 2022): the share of the k perturbed pixels swapped per step.
SPARSE_SCHEDULE = ((10, 1), (50, 2), (200, 4), (500, 5), (1000, 6), (2000, 8), (4000, 10), (6000, 12), (8000, 15))
SPARSE_LAST_DIVISOR = 20
CPU_CHUNK_PER_THREAD = 64  # samples per ONNX Runtime thread and call on the CPU (see query_margins)


def query_margins(model: OnnxClassifier, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Margins (N,) of x (N, C, H, W) on the deployed graph (evaluator.attacks.margins: < 0 means misclassified);
    every sample counts as one query there.

    On the CPU the graph gets CPU_CHUNK_PER_THREAD samples per ORT thread per call: small batches keep a small
    model's activations in cache. CUDA runs the classifier's batch size at a time (its graphs replay one shape)."""
    chunk = CPU_CHUNK_PER_THREAD * model.threads if model.runtime.used == CPU_EP else None
    return margins(model.logits(x, batch=chunk), y)


def scheduled_fraction(p_init: float, iteration: int, total: int,
                       schedule: tuple[tuple[int, int], ...] = SQUARE_SCHEDULE, last: int = SQUARE_LAST_DIVISOR) -> float:
    """p_init / divisor at `iteration` of `total`, the schedule rescaled to `total` steps as if there were 10000."""
    progress = int(iteration / total * 10000)
    for threshold, divisor in schedule:
        if progress <= threshold:
            return p_init / divisor
    return p_init / last


def square_fraction(p_init: float, iteration: int, total: int) -> float:
    """Fraction of pixels in the square at `iteration` of `total` (Andriushchenko et al. 2020)."""
    return scheduled_fraction(p_init, iteration, total)


def random_squares(rng: np.random.Generator, count: int, height: int, width: int, side: int) -> np.ndarray:
    """(count, side * side) int64 flat pixel positions (row * width + col) of one side x side square each, at random places."""
    rows = rng.integers(0, height - side + 1, count)
    cols = rng.integers(0, width - side + 1, count)
    square = (np.arange(side)[:, None] * width + np.arange(side)[None, :]).ravel()
    return (rows * width + cols)[:, None] + square[None, :]


def flat_positions(a: np.ndarray, samples: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Positions (A, C, P) in a.ravel() of every channel at the flat pixel positions pixels (A, P) of rows samples (A,)."""
    channels, plane = a.shape[1], a.shape[2] * a.shape[3]
    planes = (samples[:, None] * channels + np.arange(channels)[None, :]) * plane  # (A, C)
    return planes[:, :, None] + pixels[:, None, :]


def gather(a: np.ndarray, samples: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Values (A, C, P) of a (N, C, H, W) at the flat pixel positions pixels (A, P) of rows samples (A,); a copy."""
    return np.take(a, flat_positions(a, samples, pixels))


def scatter(a: np.ndarray, samples: np.ndarray, pixels: np.ndarray, values: np.ndarray | float) -> None:
    """Write values (A, C, P) into the C-contiguous a (N, C, H, W) in place, at pixels (A, P) of rows samples (A,)."""
    np.put(a, flat_positions(a, samples, pixels), values)


class RandomSearch:
    """Bookkeeping shared by the random searches: the best input and margin per sample, queries used.

    x (N, C, H, W) float32 clean inputs, y (N,) labels; the best inputs start at `start` and the margins at theirs
    (1 query). `work` holds, contiguous, the best inputs of the samples not yet broken (margin >= 0; their indices
    `rows`, in order) and `clean` their clean inputs: each step proposes one candidate per row, patched into `work`
    in place or given whole, and a sample leaves all three once its margin is negative, so whole images are
    copied only then and in output().
    """

    def __init__(self, model: OnnxClassifier, x: np.ndarray, y: np.ndarray, start: np.ndarray) -> None:
        self.model, self.x, self.y = model, x, y
        self.x_best = np.ascontiguousarray(start, dtype=np.float32)
        self.margin = query_margins(model, self.x_best, y)
        self.used = np.ones(len(x), np.int64)
        self.rows = np.flatnonzero(self.margin >= 0)
        self.work, self.clean = self.x_best[self.rows], x[self.rows]

    def try_patches(self, positions: np.ndarray, values: np.ndarray, current: np.ndarray, accept_ties: bool = False) -> np.ndarray:
        """Query `work` with values written at positions of work.ravel() (both (A, ...), `current` the values there
        now); keep each row's patch when its margin is lower than the best so far (or equal, with accept_ties), put
        the others back. Returns the (A,) bool mask of kept patches, for the rows as they were before the call."""
        np.put(self.work, positions, values)
        better = self._compare(query_margins(self.model, self.work, self.y[self.rows]), accept_ties)
        np.put(self.work, positions, current)  # most patches lose: undo all, then redo the kept ones
        np.put(self.work, positions[better], values[better])
        self._drop_broken(better)
        return better

    def try_inputs(self, candidate: np.ndarray, accept_ties: bool = False) -> np.ndarray:
        """Query whole candidates (A, C, H, W), one per row; keep each one whose margin is lower than the best so far
        (or equal, with accept_ties). Returns the (A,) bool mask of kept candidates, for the rows before the call."""
        better = self._compare(query_margins(self.model, candidate, self.y[self.rows]), accept_ties)
        self.work[better] = candidate[better]
        self._drop_broken(better)
        return better

    def _compare(self, new_margin: np.ndarray, accept_ties: bool) -> np.ndarray:
        """Count one query per row; record and return (A,) which new margins beat (or tie) the best so far."""
        self.used[self.rows] += 1
        best = self.margin[self.rows]
        better = new_margin <= best if accept_ties else new_margin < best
        self.margin[self.rows[better]] = new_margin[better]
        return better

    def _drop_broken(self, better: np.ndarray) -> None:
        """Rows whose kept candidate has a negative margin (misclassified; a tie is not) leave `work`, their input
        saved to x_best."""
        broken = np.flatnonzero(better & (self.margin[self.rows] < 0))
        if broken.size:
            self.x_best[self.rows[broken]] = self.work[broken]
            keep = self.rows.size - broken.size
            holes = broken[broken < keep]  # filled with the last rows that stay, so only len(broken) images move
            stays = np.ones(self.rows.size - keep, bool)
            stays[broken[broken >= keep] - keep] = False
            tail = keep + np.flatnonzero(stays)
            rows = self.rows.copy()  # callers may still hold the old order
            self.work[holes], self.clean[holes], rows[holes] = self.work[tail], self.clean[tail], rows[tail]
            self.rows, self.work, self.clean = rows[:keep], self.work[:keep], self.clean[:keep]

    def output(self) -> AttackOutput:
        self.x_best[self.rows] = self.work
        return AttackOutput(self.x_best, self.used)


@register_attack
@dataclass
class SquareLinf(Attack):
    """Square attack in Linf (Andriushchenko et al. 2020): random square updates of +-epsilon per channel,
    accepted when the margin loss falls; stops per sample at the first negative margin (misclassified).

    Every sample has its own square at each step.
    """

    name = "square-linf"
    norm = Norm.LINF
    kind = AttackKind.SCORE
    summary = "Square attack on the deployed graph's logits"
    minimums = {"queries": 1}
    positive = ("p_init",)
    maximums = {"p_init": 1.0}

    queries: int = 1000
    p_init: float = 0.8
    max_redraws: int = 10

    def work(self) -> Work:
        return Work(queries=self.queries)

    def run(self, target: AttackTarget, x: np.ndarray, y: np.ndarray, epsilon: float, seed: int) -> AttackOutput:
        rng = np.random.default_rng(seed)
        n, c, h, w = x.shape
        steps = np.array([-epsilon, epsilon], np.float32)
        stripes = rng.choice(steps, size=(n, c, 1, w))
        search = RandomSearch(target.deployed, x, y, np.clip(x + stripes, 0.0, 1.0))
        for iteration in range(1, self.queries):
            count = search.rows.size
            if count == 0:
                break
            side = int(round(np.sqrt(square_fraction(self.p_init, iteration, self.queries) * h * w)))
            side = min(max(side, 1), max(min(h, w) - 1, 1))
            positions = flat_positions(search.work, np.arange(count), random_squares(rng, count, h, w, side))
            current = np.take(search.work, positions)
            values = self._window_values(rng, np.take(search.clean, positions), current, steps)
            search.try_patches(positions, values, current)
        return search.output()

    def _window_values(self, rng: np.random.Generator, clean: np.ndarray, current: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """New window values (A, C, P): clip(x +- epsilon, 0, 1) with one sign per channel. Where that equals the
        current window (clipping at 0 or 1 often makes it so), the signs are flipped, then re-drawn, so no query is
        spent on an unchanged input."""
        count, channels = clean.shape[:2]
        signs = rng.choice(steps, size=(count, channels, 1))
        values = np.clip(clean + signs, 0.0, 1.0)
        for attempt in range(self.max_redraws):
            unchanged = np.flatnonzero((values == current).all(axis=(1, 2)))
            if unchanged.size == 0:
                break
            if attempt == 0:
                signs[unchanged] = -signs[unchanged]  # with one channel the only other choice
            else:
                signs[unchanged] = rng.choice(steps, size=(unchanged.size, channels, 1))
            values[unchanged] = np.clip(clean[unchanged] + signs[unchanged], 0.0, 1.0)
        return values


def rectangle_bump(rows: int, cols: int) -> np.ndarray:
    """(rows, cols) float64 pseudo-Gaussian of unit L2 norm: nested rectangles around the centre, the one at
    Chebyshev distance d from it weighted 1 / (d + 1)^2, so a pixel at distance d holds sum_{k >= d} 1 / (k + 1)^2."""
    levels = max(rows // 2, cols // 2) + 1
    tails = np.cumsum((1.0 / np.arange(1, levels + 1) ** 2)[::-1])[::-1]  # tails[d] = sum_{k=d}^{levels-1} 1/(k+1)^2
    distance = np.maximum(np.abs(np.arange(rows)[:, None] - rows // 2), np.abs(np.arange(cols)[None, :] - cols // 2))
    bump = tails[distance]
    return bump / np.sqrt((bump**2).sum())


@functools.lru_cache(maxsize=64)
def square_pattern(side: int) -> np.ndarray:
    """(side, side) float32 unit-L2 update of the L2 Square attack: a bump in the top half, minus one in the bottom.
    Cached: the array is read-only."""
    pattern = np.concatenate([rectangle_bump(side // 2, side), -rectangle_bump(side - side // 2, side)])
    pattern = (pattern / np.sqrt((pattern**2).sum())).astype(np.float32)
    pattern.flags.writeable = False
    return pattern


def oriented_patterns(rng: np.random.Generator, count: int, side: int) -> np.ndarray:
    """(count, 1, side * side) square patterns, each transposed (halves side by side) with probability 1/2."""
    pattern = square_pattern(side)
    transposed = rng.random(count) < 0.5
    return np.where(transposed[:, None, None], pattern.T, pattern).reshape(count, 1, side * side)


@register_attack
@dataclass
class SquareL2(Attack):
    """Square attack in L2 (Andriushchenko et al. 2020). Starts from a grid of signed pseudo-Gaussian blocks scaled to
    the epsilon-sphere; each step takes two random squares per sample, clears the second, and puts into the first
    its old content plus a fresh signed two-halves bump, with the mass of both windows plus the unused budget, so
    the perturbation stays on the sphere (then clipped to [0, 1]). Accepted when the margin falls; stops per sample
    at the first negative margin (misclassified).
    """

    name = "square-l2"
    norm = Norm.L2
    kind = AttackKind.SCORE
    summary = "Square attack in L2 on the deployed graph's logits"
    minimums = {"queries": 1}
    positive = ("p_init",)
    maximums = {"p_init": 1.0}

    queries: int = 1000
    p_init: float = 0.8

    def work(self) -> Work:
        return Work(queries=self.queries)

    def run(self, target: AttackTarget, x: np.ndarray, y: np.ndarray, epsilon: float, seed: int) -> AttackOutput:
        rng = np.random.default_rng(seed)
        n, c, h, w = x.shape
        search = RandomSearch(target.deployed, x, y, self._start(rng, x, epsilon))
        for iteration in range(1, self.queries):
            if search.rows.size == 0:
                break
            side = max(int(round(np.sqrt(square_fraction(self.p_init, iteration, self.queries) * h * w))), 3)
            side = min(side + 1 - side % 2, h, w)  # odd, as in the paper, and inside the image
            clean = search.clean
            delta = search.work - clean
            self._move_mass(rng, delta, epsilon, side)
            length = np.sqrt((delta.reshape(len(delta), -1) ** 2).sum(axis=1))
            delta *= (epsilon / np.maximum(length, 1e-12)).astype(np.float32)[:, None, None, None]
            delta += clean
            search.try_inputs(np.clip(delta, 0.0, 1.0, out=delta))
        return search.output()

    @staticmethod
    def _start(rng: np.random.Generator, x: np.ndarray, epsilon: float) -> np.ndarray:
        """x plus a grid of (H // 5)-sided blocks, each a square pattern with a random sign per channel, scaled to L2
        norm epsilon and clipped to [0, 1]."""
        n, c, h, w = x.shape
        side = max(h // 5, 1)
        first = (h - 5 * side) // 2 if h >= 5 else 0
        delta = np.zeros_like(x)
        for top in range(first, h - side + 1, side):
            for left in range(first, w - side + 1, side):  # one block per step: 25 steps on any batch
                signs = rng.choice(np.array([-1.0, 1.0], np.float32), size=(n, c, 1))
                block = oriented_patterns(rng, n, side) * signs
                delta[:, :, top:top + side, left:left + side] = block.reshape(n, c, side, side)
        length = np.sqrt((delta.reshape(n, -1).astype(np.float64) ** 2).sum(axis=1))
        scale = (epsilon / np.maximum(length, 1e-12)).astype(np.float32)
        return np.clip(x + delta * scale[:, None, None, None], 0.0, 1.0)

    @staticmethod
    def _move_mass(rng: np.random.Generator, delta: np.ndarray, epsilon: float, side: int) -> None:
        """One proposal on delta (A, C, H, W) in place: window 2 cleared; window 1 set, per channel, to a unit bump with
        a random sign plus its old content normalised, rescaled to the L2 mass both windows held plus an equal share
        of the budget the image does not use yet (epsilon^2 - ||delta||^2) / C."""
        count, channels, h, w = delta.shape
        rows = np.arange(count)
        unused = np.maximum(epsilon**2 - (delta.reshape(count, -1) ** 2).sum(axis=1), 0.0)[:, None] / channels  # (A, 1)
        first = random_squares(rng, count, h, w, side)
        second = random_squares(rng, count, h, w, side)
        old = gather(delta, rows, first)  # (A, C, P)
        cleared = gather(delta, rows, second)
        scatter(delta, rows, second, 0.0)
        rest = gather(delta, rows, first)  # window 1 without its overlap with window 2
        windows = (cleared**2).sum(axis=2) + (rest**2).sum(axis=2)  # (A, C) mass in the union of both windows
        signs = rng.choice(np.array([-1.0, 1.0], np.float32), size=(count, channels, 1))
        update = oriented_patterns(rng, count, side) * signs + old / (1e-12 + np.sqrt((old**2).sum(axis=2, keepdims=True)))
        length = np.sqrt((update**2).sum(axis=2, keepdims=True))
        update *= np.sqrt(unused + windows)[:, :, None] / np.maximum(length, 1e-12)
        scatter(delta, rows, first, update)


def sparse_fraction(p_init: float, iteration: int, total: int) -> float:
    """Share of the k perturbed pixels swapped at `iteration` of `total` (Sparse-RS's L0 schedule)."""
    return scheduled_fraction(p_init, iteration, total, SPARSE_SCHEDULE, SPARSE_LAST_DIVISOR)


def random_corners(rng: np.random.Generator, clean: np.ndarray) -> np.ndarray:
    """Random corners of [0, 1]^C (A, C, P) for pixels whose clean values are clean (A, C, P); a corner equal to the
    clean pixel (it would change nothing) is replaced by the opposite corner."""
    corners = rng.integers(0, 2, clean.shape).astype(np.float32)
    same = (corners == clean).all(axis=1, keepdims=True)
    return np.where(same, 1.0 - corners, corners).astype(np.float32, copy=False)


@register_attack
@dataclass
class SparseRSL0(Attack):
    """Sparse-RS in L0 (Croce et al., AAAI 2022): epsilon = k pixel positions (a pixel counts once over its channels)
    set to random corners of [0, 1]^C. Each step swaps a scheduled number of the perturbed pixels (restored to their
    clean values) with as many unperturbed ones (set to fresh corners); the swap is kept when the margin does not
    rise. Stops per sample at the first negative margin (misclassified).
    """

    name = "sparse-rs-l0"
    norm = Norm.L0
    kind = AttackKind.SCORE
    summary = "Sparse-RS random search over k pixels on the deployed graph's logits"
    minimums = {"queries": 1}
    positive = ("p_init",)
    maximums = {"p_init": 1.0}

    queries: int = 1000
    p_init: float = 0.3

    def work(self) -> Work:
        return Work(queries=self.queries)

    def run(self, target: AttackTarget, x: np.ndarray, y: np.ndarray, epsilon: float, seed: int) -> AttackOutput:
        rng = np.random.default_rng(seed)
        n, c, h, w = x.shape
        pixels = h * w
        k = min(int(np.floor(epsilon + 1e-9)), pixels - 1)
        if k < 1 or n == 0:
            return AttackOutput(x.copy(), np.zeros(n, np.int64))
        order = np.argsort(rng.random((n, pixels)), axis=1)
        perturbed, free = order[:, :k].copy(), order[:, k:].copy()  # per sample: perturbed and unperturbed positions
        start = x.copy()
        scatter(start, np.arange(n), perturbed, random_corners(rng, gather(x, np.arange(n), perturbed)))
        search = RandomSearch(target.deployed, x, y, start)
        for iteration in range(1, self.queries):
            active = search.rows
            if active.size == 0:
                break
            swaps = min(max(int(sparse_fraction(self.p_init, iteration, self.queries) * k), 1), k, pixels - k)
            out_slots = rng.permutation(k)[:swaps]  # slots shared by the batch; the pixels in them differ per sample
            in_slots = rng.permutation(pixels - k)[:swaps]
            leaving = perturbed[active[:, None], out_slots[None, :]]  # (A, swaps)
            entering = free[active[:, None], in_slots[None, :]]
            positions = flat_positions(search.work, np.arange(active.size), np.concatenate([leaving, entering], axis=1))
            clean = np.take(search.clean, positions)  # leaving pixels get their clean values back, entering ones corners
            values = np.concatenate([clean[:, :, :swaps], random_corners(rng, clean[:, :, swaps:])], axis=2)
            kept = search.try_patches(positions, values, np.take(search.work, positions), accept_ties=True)
            winners = active[kept]
            perturbed[winners[:, None], out_slots[None, :]] = entering[kept]
            free[winners[:, None], in_slots[None, :]] = leaving[kept]
        return search.output()
