"""Uncertainty of accuracies measured on a sample: the Wilson score interval of a binomial share.

An accuracy on N test images is k successes out of N trials; the interval says where the accuracy on the whole
distribution those images come from lies with 95 % confidence. Wilson's interval stays inside [0, 1] and keeps a
sensible width at k = 0 or k = N, where the normal approximation collapses to a point.
"""

from __future__ import annotations

import math
from statistics import NormalDist

CONFIDENCE = 0.95
Z_95 = NormalDist().inv_cdf(1 - (1 - CONFIDENCE) / 2)  # 1.959963984540054


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """(low, high) shares in [0, 1] around successes / trials: the Wilson score interval at `confidence`.

    Without continuity correction (as R's prop.test(correct = FALSE) and statsmodels' proportion_confint(method="wilson")).
    No trials: (0.0, 1.0), nothing known."""
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, trials], got {successes} of {trials}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if trials == 0:
        return 0.0, 1.0
    z = Z_95 if confidence == CONFIDENCE else NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends where rounding would leave 1e-17
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def share_interval(share: float, trials: int) -> tuple[float, float]:
    """The 95 % Wilson interval of an accuracy given as a share of `trials` (from a JSON that holds no interval):
    the count of successes is share * trials rounded."""
    return wilson_interval(min(max(round(share * trials), 0), trials), trials)


def format_interval(interval: tuple[float, float] | list[float], percent: bool = True) -> str:
    """'38.4-44.5' (percent, one decimal) or '0.384-0.445' (shares, three decimals)."""
    low, high = interval
    return f"{100 * low:.1f}-{100 * high:.1f}" if percent else f"{low:.3f}-{high:.3f}"
