"""The study's aggregated-accuracy scenario, and the latency / robustness Pareto front.

If a share r in [0, 1] of a model's inputs are adversarial (attacked within one (norm, epsilon) budget) and the rest
are clean, the model's aggregated accuracy is A_v(r) = (1 - r) * clean_v + r * robust_v: a straight line from
clean accuracy at r = 0 to robust accuracy at r = 1. Which variant to deploy depends on r: this module finds where
the lines cross and which variant is best on each range of r (the upper envelope). Accuracies are shares in [0, 1];
r is a share in [0, 1]. Input rows are the sweep's table rows (TableRow, evaluator/table.py `table_row`).

Accuracies are measured on samples, so each range's best variant also says whether its lead is clear: at the middle of
the range, its lead over the runner-up counts as clear only when neither variant's aggregated accuracy lies inside the
other's 95 % interval (from the rows' Wilson intervals of clean and robust accuracy: (1 - r) low + r low to (1 - r) high
+ r high). The variants are attacked on the same images, so this is a rule of thumb for reading the figure, not a
paired significance test.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Sequence

import numpy as np

from evaluator.results import Interval, TableRow

TOLERANCE = 1e-9  # shares closer than this are equal (float rounding of hand-written or averaged accuracies)


@dataclass(frozen=True)
class Line:
    """One variant's aggregated accuracy A(r) = (1 - r) clean + r robust; clean and robust are shares in [0, 1]."""

    variant: str
    method: str
    clean: float
    robust: float
    clean_ci: tuple[float, float] | None = None  # 95 % interval of clean, shares; None when the row holds none
    robust_ci: tuple[float, float] | None = None

    @property
    def slope(self) -> float:
        """dA/dr in accuracy share per unit share of adversarial inputs (<= 0 when robust <= clean)."""
        return self.robust - self.clean

    def at(self, r: float | np.ndarray) -> float | np.ndarray:
        """A(r) = (1 - r) clean + r robust for a share r, or an array of shares (R,) -> (R,); exact at r = 0 and 1."""
        return (1 - r) * self.clean + r * self.robust

    def interval_at(self, r: float) -> tuple[float, float] | None:
        """The 95 % interval of A(r) as (low, high) shares: the clean and robust intervals mixed like A(r) (at least
        as wide as either's share of it); None without both intervals."""
        if self.clean_ci is None or self.robust_ci is None:
            return None
        return ((1 - r) * self.clean_ci[0] + r * self.robust_ci[0], (1 - r) * self.clean_ci[1] + r * self.robust_ci[1])


def clear_lead(best: Line, other: Line, r: float) -> bool | None:
    """Whether best's A(r) is ahead of other's by more than their intervals: neither point estimate lies inside the
    other's 95 % interval. None when either line has no intervals."""
    best_interval, other_interval = best.interval_at(r), other.interval_at(r)
    if best_interval is None or other_interval is None:
        return None
    best_value, other_value = float(best.at(r)), float(other.at(r))
    inside = (best_interval[0] <= other_value <= best_interval[1]) or (other_interval[0] <= best_value <= other_interval[1])
    return not inside


@dataclass(frozen=True)
class Crossing:
    """Lines a and b are equal at share r (accuracy share `accuracy`); `below` is the better variant for shares just
    below r and `above` the better one just above (at r = 0 or 1 one side lies outside [0, 1])."""

    a: str
    b: str
    r: float
    accuracy: float
    below: str
    above: str


@dataclass(frozen=True)
class Segment:
    """`variant` has the highest aggregated accuracy for shares r in [r_from, r_to]; accuracy shares at both ends.

    At the middle of the range, runner_up is the next best variant (None when there is no other), lead how far ahead
    `variant` is there (a share), and clear whether that lead is outside the 95 % intervals (`clear_lead`; None when
    the rows hold no intervals or there is no runner-up)."""

    r_from: float
    r_to: float
    variant: str
    accuracy_from: float
    accuracy_to: float
    runner_up: str | None = None
    lead: float | None = None
    clear: bool | None = None

    @property
    def middle(self) -> float:
        return (self.r_from + self.r_to) / 2

    def lead_text(self) -> str:
        """E.g. 'lead over b at r = 27%: 1.2 points, within the 95% interval: not a clear difference'; '' without a
        runner-up."""
        if self.runner_up is None or self.lead is None:
            return ""
        text = f"lead over {self.runner_up} at r = {100 * self.middle:.0f}%: {100 * self.lead:.1f} points"
        if self.clear is None:
            return text
        return text + (", outside the 95% intervals" if self.clear else ", within the 95% interval: not a clear difference")


@dataclass(frozen=True)
class Scenario:
    """The scenario at one budget key ('Linf@0.03137'): lines in table order, crossings in [0, 1] ordered by r then
    by pair, and the best variant per range of r from 0 to 1 (consecutive segments name different variants)."""

    budget_key: str
    lines: tuple[Line, ...]
    crossings: tuple[Crossing, ...]
    best: tuple[Segment, ...]

    def accuracies(self, r: np.ndarray) -> np.ndarray:
        """Aggregated accuracy per line at each share: r (R,) -> (V, R)."""
        r = np.asarray(r, dtype=np.float64)
        return np.array([line.at(r) for line in self.lines]).reshape(len(self.lines), r.size)

    def best_at(self, r: float) -> str | None:
        """The best variant at share r (the first segment containing it), None without lines."""
        for segment in self.best:
            if segment.r_from - TOLERANCE <= r <= segment.r_to + TOLERANCE:
                return segment.variant
        return None


def aggregated_lines(rows: Iterable[TableRow], budget_key: str) -> list[Line]:
    """One line per row that has a robust accuracy at budget_key (rows without it are left out), in table order."""
    lines = []
    for row in rows:
        robust = row.robust_accuracy.get(budget_key)
        if robust is None:
            continue
        lines.append(Line(row.variant, row.method, float(row.clean_accuracy), float(robust),
                          interval_of(row.clean_accuracy_ci), interval_of(row.robust_accuracy_ci.get(budget_key))))
    return lines


def interval_of(interval: Interval | None) -> tuple[float, float] | None:
    """A row's interval as floats; None without one (rows from before the intervals)."""
    return None if interval is None else (float(interval[0]), float(interval[1]))


def rank(line: Line) -> tuple[float, float, str]:
    """Tie-break order, smallest first: the more robust, then the more accurate clean, then the variant name."""
    return (-line.robust, -line.clean, line.variant)


def better_of(a: Line, b: Line, r: float) -> Line:
    """The line with the higher A(r); equal within TOLERANCE -> the one first by `rank`."""
    difference = float(a.at(r)) - float(b.at(r))
    if abs(difference) <= TOLERANCE:
        return min(a, b, key=rank)
    return a if difference > 0 else b


def crossing(a: Line, b: Line) -> Crossing | None:
    """Where A_a(r) = A_b(r) for r in [0, 1]; None for parallel lines (equal or never meeting) or outside [0, 1]."""
    slope = a.slope - b.slope  # A_a - A_b = (clean_a - clean_b) + r * slope
    if abs(slope) <= TOLERANCE:
        return None
    r = -(a.clean - b.clean) / slope
    if r < -TOLERANCE or r > 1 + TOLERANCE:
        return None
    r = min(max(r, 0.0), 1.0)
    below, above = (b, a) if slope > 0 else (a, b)  # a gains on b as r grows when slope > 0
    return Crossing(a.variant, b.variant, r, float(a.at(r)), below.variant, above.variant)


def crossings(lines: Sequence[Line]) -> list[Crossing]:
    """Crossings of every pair of lines (pairs in table order) within [0, 1], sorted by r, then by pair order."""
    found = []
    for i, a in enumerate(lines):
        for j in range(i + 1, len(lines)):
            point = crossing(a, lines[j])
            if point is not None:
                found.append((point.r, i, j, point))
    return [point for *_, point in sorted(found, key=lambda item: item[:3])]


def top(lines: Sequence[Line], r: float) -> Line:
    """The line with the highest A(r), ties broken by `rank` (lines not empty)."""
    best = lines[0]
    for line in lines[1:]:
        best = better_of(best, line, r)
    return best


def best_ranges(lines: Sequence[Line]) -> list[Segment]:
    """The upper envelope of the lines on [0, 1] as segments (r_from, r_to, variant), from r = 0 to r = 1.

    The envelope can only change variant where two lines cross, so each interval between consecutive crossings is
    decided at its midpoint; ties (equal lines) go to the more robust, then the more clean-accurate, then the
    variant name that sorts first. Adjacent intervals with the same variant are merged, and each merged range gets its
    runner-up, lead and whether the lead is clear at its middle.
    """
    if not lines:
        return []
    cuts = sorted({0.0, 1.0, *(point.r for point in crossings(lines))})
    merged = [cuts[0]]
    for cut in cuts[1:]:
        if cut - merged[-1] > TOLERANCE:
            merged.append(cut)
    if len(merged) == 1:
        merged.append(1.0)
    merged[-1] = 1.0
    segments: list[Segment] = []
    for start, end in zip(merged[:-1], merged[1:]):
        best = top(lines, (start + end) / 2)
        if segments and segments[-1].variant == best.variant:
            last = segments[-1]
            segments[-1] = Segment(last.r_from, end, best.variant, last.accuracy_from, float(best.at(end)))
        else:
            segments.append(Segment(start, end, best.variant, float(best.at(start)), float(best.at(end))))
    return [with_runner_up(segment, lines) for segment in segments]


def with_runner_up(segment: Segment, lines: Sequence[Line]) -> Segment:
    """The segment with its runner-up at its middle, the lead over it and whether that lead is clear."""
    middle = segment.middle
    best = top(lines, middle)  # the segment's variant: the envelope keeps one variant over a merged range
    others = [line for line in lines if line is not best]
    if not others:
        return segment
    runner_up = top(others, middle)
    lead = float(best.at(middle)) - float(runner_up.at(middle))
    return replace(segment, runner_up=runner_up.variant, lead=lead, clear=clear_lead(best, runner_up, middle))


def scenario(rows: Iterable[TableRow], budget_key: str) -> Scenario:
    """Lines, crossings and best-variant ranges at one budget key."""
    lines = aggregated_lines(rows, budget_key)
    return Scenario(budget_key, tuple(lines), tuple(crossings(lines)), tuple(best_ranges(lines)))


def middle_budget(keys: Sequence[str], norm: str) -> str | None:
    """The middle budget of one norm among the keys, in their order (the second of four, the first of two), where
    robust accuracy is neither ~1 nor ~0; None when the norm has no key."""
    of_norm = [key for key in keys if key.split("@")[0] == norm]
    return of_norm[(len(of_norm) - 1) // 2] if of_norm else None


def default_budget_key(keys: Sequence[str]) -> str | None:
    """The budget the scenario uses when none is named: the middle Linf budget, else the first key."""
    return middle_budget(keys, "Linf") or (keys[0] if keys else None)


def pareto_front(latency_ms: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Indices of the points no other point dominates (lower-or-equal latency and higher-or-equal accuracy, one of
    them strictly), ordered by rising latency. latency_ms (P,) in milliseconds, accuracy (P,) shares."""
    latency_ms = np.asarray(latency_ms, dtype=np.float64)
    accuracy = np.asarray(accuracy, dtype=np.float64)
    if latency_ms.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((-accuracy, latency_ms))  # by latency, the more accurate first among equal latencies
    ordered = accuracy[order]
    best_before = np.concatenate([[-np.inf], np.maximum.accumulate(ordered)[:-1]])
    return order[ordered > best_before + TOLERANCE].astype(np.int64)
