"""Decision-based attacks: they query the deployed ONNX graph's top-1 label and nothing else.

HopSkipJump (Chen, Jordan & Wainwright 2020) in L2 and Linf, vectorised across samples: every stage
(start, binary search round, gradient estimation, step-size trial) sends all samples still at work to
ONNX Runtime in one predict call, and every sample has its own query counter and budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluator.attacks.base import AttackKind, AttackOutput, AttackTarget, MinimalNormAttack, Norm, Work, register_attack
from evaluator.norms import distances, steepest_direction
from evaluator.runtime import OnnxClassifier

MAX_ROWS = 1 << 15  # gradient-estimation probes per predict call at most (memory: 4 bytes x rows x C*H*W per array)
POOL = 512  # other-class images of the batch considered as starting points, at most
MAX_HALVINGS = 30  # geometric step-size search: a step shrinks by 2**-30 at most before the sample waits


class LabelOracle:
    """Top-1 label queries to the deployed graph against a per-sample budget.

    y: (N,) labels of the attacked samples; `used` (N,) counts every input sent on behalf of each sample.
    """

    def __init__(self, model: OnnxClassifier, y: np.ndarray, budget: int) -> None:
        self.model, self.y, self.budget = model, y, budget
        self.used = np.zeros(len(y), np.int64)

    def remaining(self) -> np.ndarray:
        return self.budget - self.used

    def affordable(self, owners: np.ndarray, reserve: int = 0) -> np.ndarray:
        """(M,) bool: of the requests owned by samples `owners` (M,), the first `remaining - reserve` of each sample."""
        order = np.argsort(owners, kind="stable")
        ranked = owners[order]
        rank = np.empty(len(owners), np.int64)
        rank[order] = np.arange(len(owners)) - np.searchsorted(ranked, ranked, side="left")
        return rank < self.remaining()[owners] - reserve

    def adversarial(self, points: np.ndarray, owners: np.ndarray) -> np.ndarray:
        """(M,) bool: the graph's label of points (M, C, H, W) in [0, 1] differs from y[owners]; one predict call."""
        if len(owners) == 0:
            return np.zeros(0, bool)
        self.used += np.bincount(owners, minlength=len(self.y))
        if (self.used > self.budget).any():
            raise RuntimeError("HopSkipJump spent more queries than its budget")  # a bug, never a user error
        return self.model.predict(np.ascontiguousarray(points, np.float32)) != self.y[owners]


def on_path(x: np.ndarray, adv: np.ndarray, scale: np.ndarray, norm: Norm) -> np.ndarray:
    """Points between x and adv (M, C, H, W): L2 blends (1 - s) x + s adv with s in [0, 1]; Linf clips adv
    into the box x +- s. scale: (M,) float64."""
    s = scale.astype(np.float32).reshape(-1, 1, 1, 1)
    point = (1 - s) * x + s * adv if norm is Norm.L2 else np.clip(adv, x - s, x + s)
    return np.clip(point, 0.0, 1.0).astype(np.float32, copy=False)


def boundary_search(oracle: LabelOracle, x: np.ndarray, adv: np.ndarray, owners: np.ndarray, norm: Norm,
                    tolerance: float) -> np.ndarray:
    """Binary search from the adversarial adv (M, C, H, W) towards x on `on_path`, per row, until the bracket is
    `tolerance` x its start width (L2: blend factor in [0, 1]; Linf: box half-width in [0, ||adv - x||inf]) or
    the owner's budget is spent. Returns the adversarial end of each bracket, exactly as queried."""
    high = np.ones(len(x)) if norm is Norm.L2 else distances(x, adv, Norm.LINF)
    low = np.zeros(len(x))
    width = tolerance * high
    best = adv.copy()
    while True:
        rows = np.flatnonzero(high - low > width)
        rows = rows[oracle.affordable(owners[rows])]
        if rows.size == 0:
            return best
        middle = (low[rows] + high[rows]) / 2
        candidate = on_path(x[rows], adv[rows], middle, norm)
        hit = oracle.adversarial(candidate, owners[rows])
        high[rows[hit]], best[rows[hit]] = middle[hit], candidate[hit]
        low[rows[~hit]] = middle[~hit]


def starting_points(oracle: LabelOracle, rng: np.random.Generator, x: np.ndarray, y: np.ndarray, norm: Norm,
                    attempts: int, noise_draws: int) -> tuple[np.ndarray, np.ndarray]:
    """A misclassified start per sample: the `attempts` nearest (L2) images of other classes in the batch, each
    searched towards x to 1e-3, the closest kept in `norm`; where none is misclassified, uniform noise.
    Returns starts (N, C, H, W) and found (N,) bool (starts equal x where not found)."""
    n = len(x)
    starts, best = x.copy(), np.full(n, np.inf)
    flat = x.reshape(n, -1).astype(np.float64)
    pool = np.sort(rng.choice(n, min(n, POOL), replace=False))
    gaps = (flat**2).sum(1)[:, None] + (flat[pool] ** 2).sum(1)[None, :] - 2 * flat @ flat[pool].T
    gaps[y[:, None] == y[pool][None, :]] = np.inf  # same class (and the sample itself) cannot start
    count = min(attempts, len(pool))
    if count:
        nearest = np.argsort(gaps, axis=1, kind="stable")[:, :count]
        usable = np.isfinite(np.take_along_axis(gaps, nearest, axis=1)).ravel()
        owners = np.repeat(np.arange(n), count)[usable]
        candidates = x[pool[nearest.ravel()[usable]]]
        keep = oracle.affordable(owners)
        owners, candidates = owners[keep], candidates[keep]
        hit = oracle.adversarial(candidates, owners)
        owners, candidates = owners[hit], candidates[hit]
        points = boundary_search(oracle, x[owners], candidates, owners, norm, 1e-3)
        gap = distances(x[owners], points, norm)
        order = np.lexsort((gap, owners))  # by sample, then distance: the first row of each sample wins
        first = order[np.r_[True, owners[order][1:] != owners[order][:-1]]] if order.size else order
        starts[owners[first]], best[owners[first]] = points[first], gap[first]
    for _ in range(noise_draws):
        missing = np.flatnonzero(~np.isfinite(best))
        missing = missing[oracle.affordable(missing)]
        if missing.size == 0:
            break
        noise = rng.random((missing.size, *x.shape[1:]), dtype=np.float32)
        hit = oracle.adversarial(noise, missing)
        starts[missing[hit]], best[missing[hit]] = noise[hit], distances(x[missing[hit]], noise[hit], norm)
    return starts, np.isfinite(best)


def estimate_direction(oracle: LabelOracle, rng: np.random.Generator, points: np.ndarray, owners: np.ndarray,
                       delta: np.ndarray, evals: np.ndarray, norm: Norm) -> np.ndarray:
    """Monte-Carlo estimate of the boundary's normal at points (K, C, H, W), towards the adversarial side.

    Row k probes evals[k] >= 1 points at L2 distance delta[k] in random directions (Gaussian for L2, uniform
    in [-1, 1] for Linf), ±1 by the label, baseline-subtracted (Chen et al. 2020, eq. 16). Returns (K, C, H, W)
    float32: the estimate's steepest-ascent step in `norm` (unit L2 direction for L2, its sign for Linf).
    """
    k, shape = len(points), points.shape[1:]
    flat = points.reshape(k, -1)
    gradient = np.zeros(flat.shape, np.float64)
    ends = np.cumsum(evals)
    start = 0
    while start < k:  # chunks of whole rows, each at most MAX_ROWS probes (one row always fits)
        stop = max(start + 1, int(np.searchsorted(ends, (ends[start - 1] if start else 0) + MAX_ROWS, side="right")))
        counts = evals[start:stop]
        row = np.repeat(np.arange(start, stop), counts)
        if norm is Norm.L2:
            noise = rng.standard_normal((row.size, flat.shape[1]), dtype=np.float32)
        else:
            noise = rng.uniform(-1.0, 1.0, (row.size, flat.shape[1])).astype(np.float32)
        noise /= np.sqrt((noise**2).sum(axis=1, keepdims=True)) + 1e-12
        step = delta[row].astype(np.float32)[:, None]
        probes = np.clip(flat[row] + step * noise, 0.0, 1.0)
        noise = (probes - flat[row]) / step  # the direction really taken, after clipping
        hit = oracle.adversarial(probes.reshape(-1, *shape), owners[row])
        sign = np.where(hit, 1.0, -1.0)
        mean = np.bincount(row - start, weights=sign, minlength=stop - start) / counts
        baseline = np.where(np.abs(mean) == 1.0, 0.0, mean)
        weighted = (sign - baseline[row - start]).astype(np.float32)[:, None] * noise
        offsets = np.r_[0, np.cumsum(counts)[:-1]]
        gradient[start:stop] = np.add.reduceat(weighted, offsets, axis=0) / counts[:, None]
        start = stop
    return steepest_direction(gradient, norm).astype(np.float32).reshape(points.shape)


@dataclass(frozen=True)
class HopSkipJumpOptions:
    """One HopSkipJump run's settings: the norm (L2, Linf) and the HopSkipJump attack's options, described there."""

    norm: Norm
    queries: int
    max_iterations: int
    init_evals: int
    max_evals: int
    init_attempts: int
    noise_draws: int
    gamma: float


def hop_skip_jump(model: OnnxClassifier, x: np.ndarray, y: np.ndarray, options: HopSkipJumpOptions,
                  seed: int) -> AttackOutput:
    """Untargeted HopSkipJump on x (N, C, H, W) float32 in [0, 1], labels y (N,) (x assumed classified as y).

    Per sample: a misclassified start, binary search to the boundary, then up to `max_iterations` rounds of
    gradient-direction estimation (init_evals * sqrt(t) probes, at most max_evals), a geometric step search
    from ||x_t - x|| / sqrt(t), and a binary search back to the boundary; all within `queries` labels per
    sample. Returns the closest adversarial seen per sample (x where none) and the queries used (N,).
    """
    norm = options.norm
    rng = np.random.default_rng(seed)
    n, d = len(x), int(np.prod(x.shape[1:]))
    oracle = LabelOracle(model, y, options.queries)
    theta = options.gamma / d**1.5 if norm is Norm.L2 else options.gamma / d**2  # binary-search tolerance, relative
    search_rounds = int(np.ceil(np.log2(1 / theta))) + 1  # a whole binary search at most
    best, best_distance = x.copy(), np.full(n, np.inf)

    def keep_closest(rows: np.ndarray, candidates: np.ndarray) -> None:
        gap = distances(x[rows], candidates, norm)
        closer = gap < best_distance[rows]
        best[rows[closer]], best_distance[rows[closer]] = candidates[closer], gap[closer]

    starts, found = starting_points(oracle, rng, x, y, norm, options.init_attempts, options.noise_draws)
    rows = np.flatnonzero(found)
    current = x.copy()
    current[rows] = boundary_search(oracle, x[rows], starts[rows], rows, norm, theta)
    keep_closest(rows, current[rows])
    for t in range(1, options.max_iterations + 1):
        rows = rows[oracle.remaining()[rows] > search_rounds + 1]
        if rows.size == 0:
            break
        gap = distances(x[rows], current[rows], norm)
        delta = np.full(rows.size, 0.1) if t == 1 else (np.sqrt(d) if norm is Norm.L2 else d) * theta * gap
        delta = np.maximum(delta, 1e-6)
        planned = max(1, min(int(options.init_evals * np.sqrt(t)), options.max_evals))
        evals = np.minimum(planned, oracle.remaining()[rows] - search_rounds - 1)
        direction = estimate_direction(oracle, rng, current[rows], rows, delta, evals, norm)
        step = gap / np.sqrt(t)
        moved, success = current[rows].copy(), np.zeros(rows.size, bool)
        for _ in range(MAX_HALVINGS):
            trying = np.flatnonzero(~success)
            trying = trying[oracle.affordable(rows[trying])]
            if trying.size == 0:
                break
            size = step[trying].astype(np.float32).reshape(-1, 1, 1, 1)
            candidate = np.clip(current[rows[trying]] + size * direction[trying], 0.0, 1.0)
            hit = oracle.adversarial(candidate, rows[trying])
            moved[trying[hit]], success[trying[hit]] = candidate[hit], True
            step[trying[~hit]] /= 2
        jumped = rows[success]
        keep_closest(jumped, moved[success])
        current[jumped] = boundary_search(oracle, x[jumped], moved[success], jumped, norm, theta)
        keep_closest(jumped, current[jumped])
    return AttackOutput(best, oracle.used.copy())


@dataclass
class HopSkipJump(MinimalNormAttack):
    """HopSkipJump's options; `queries` is the label budget per sample, every model call counted.

    init_evals / max_evals: gradient-estimation probes at iteration t are min(init_evals * sqrt(t), max_evals).
    init_attempts: nearest other-class images of the batch tried as starts; noise_draws: uniform-noise starts
    tried where none of those is misclassified. gamma: binary-search tolerance gamma / d^1.5 (L2) or gamma / d^2
    (Linf), relative, and probe radius gamma * distance / d. The defaults (50 probes, 8 starts, gamma 10; the
    paper has 100, noise starts and 1) gave the lowest mean distance at 1000 queries on Fashion-MNIST test
    images 1000-1199 (bench/hsj_strength.py reports on images 0-199).
    """

    kind = AttackKind.DECISION
    minimums = {"queries": 1, "init_evals": 1, "max_evals": 1, "max_iterations": 1}
    positive = ("gamma",)

    queries: int = 1000
    max_iterations: int = 64
    init_evals: int = 50
    max_evals: int = 10000
    init_attempts: int = 8
    noise_draws: int = 20
    gamma: float = 10.0

    def work(self) -> Work:
        return Work(queries=self.queries)

    def run_minimal(self, target: AttackTarget, x: np.ndarray, y: np.ndarray, seed: int) -> AttackOutput:
        options = HopSkipJumpOptions(norm=self.norm, **self.options())
        return hop_skip_jump(target.deployed, np.asarray(x, np.float32), np.asarray(y), options, seed)


@register_attack
@dataclass
class L2HopSkipJump(HopSkipJump):
    """HopSkipJump minimising the L2 distance: blended binary searches, unit-norm gradient-direction steps."""

    name = "hsj-l2"
    norm = Norm.L2
    summary = "HopSkipJump (Chen et al. 2020) on the deployed graph's top-1 labels"


@register_attack
@dataclass
class LinfHopSkipJump(HopSkipJump):
    """HopSkipJump minimising the Linf distance: box binary searches, sign-of-gradient steps."""

    name = "hsj-linf"
    norm = Norm.LINF
    summary = "HopSkipJump in Linf (Chen et al. 2020) on the deployed graph's top-1 labels"
