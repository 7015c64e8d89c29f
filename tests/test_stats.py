"""The Wilson score interval against published values (R's binom::binom.wilson, Wilson 1927 / Newcombe 1998)."""

from __future__ import annotations

import pytest

from evaluator.stats import Z_95, format_interval, share_interval, wilson_interval


@pytest.mark.parametrize(("successes", "trials", "low", "high"), [
    (0, 10, 0.0, 0.2775328),  # binom.wilson(0, 10)
    (1, 10, 0.01787621, 0.4041500),  # binom.wilson(1, 10)
    (5, 10, 0.2365931, 0.7634069),  # binom.wilson(5, 10)
    (10, 10, 0.7224672, 1.0),
    (81, 263, 0.2553, 0.3662),  # Newcombe (1998), Statistics in Medicine 17, table I: 81/263, method 3
    (15, 148, 0.0624, 0.1605),  # the same table: 15/148
    (0, 20, 0.0, 0.1611),  # the same table: 0/20
    (1, 29, 0.0061, 0.1718),  # the same table: 1/29
])
def test_known_values(successes: int, trials: int, low: float, high: float) -> None:
    digits = 7 if trials == 10 else 4
    got = wilson_interval(successes, trials)
    assert got == pytest.approx((low, high), abs=0.6 * 10 ** -digits)


def test_against_scipy_on_a_grid() -> None:
    stats = pytest.importorskip("scipy.stats")
    for trials in (1, 7, 50, 1000, 10_000):
        for successes in sorted({0, 1, trials // 3, trials // 2, trials - 1, trials}):
            expected = stats.binomtest(successes, trials).proportion_ci(0.95, "wilson")
            assert wilson_interval(successes, trials) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_shape_of_the_interval() -> None:
    assert Z_95 == pytest.approx(1.959963984540054)
    low, high = wilson_interval(414, 1000)
    assert low < 0.414 < high and high - low == pytest.approx(0.061, abs=1e-3)  # +-3 points on 1,000 samples
    narrow = wilson_interval(4140, 10_000)
    assert narrow[1] - narrow[0] < (high - low) / 3  # ten times the samples, about a third of the width
    assert wilson_interval(0, 0) == (0.0, 1.0)  # nothing measured
    assert wilson_interval(3, 10, confidence=0.99)[0] < wilson_interval(3, 10)[0]  # more confidence, wider
    assert wilson_interval(7, 10) == pytest.approx(tuple(1 - bound for bound in reversed(wilson_interval(3, 10))))


@pytest.mark.parametrize(("args", "message"), [((11, 10), "successes"), ((-1, 10), "successes"),
                                               ((1, 10, 1.0), "confidence")])
def test_impossible_counts_are_refused(args: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        wilson_interval(*args)  # type: ignore[arg-type]


def test_share_interval_and_text() -> None:
    assert share_interval(0.414, 1000) == wilson_interval(414, 1000)
    assert share_interval(0.1 + 0.2, 10) == wilson_interval(3, 10)  # 0.30000000000000004 of 10 is 3
    assert format_interval((0.3838578816, 0.4448003208)) == "38.4-44.5"
    assert format_interval([0.3838578816, 0.4448003208], percent=False) == "0.384-0.445"
