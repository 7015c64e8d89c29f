"""Bounds on what a refused file may cost: a small file with a bad header never makes a loader allocate what the
header promises."""

from __future__ import annotations

import tracemalloc
from typing import Callable

import pytest

from evaluator.errors import EvaluatorError

MEMORY_LIMIT = 16 << 20  # bytes of Python and numpy allocations a refused bad-header file may cost


def refused_with_peak(load: Callable[[], object], message: str) -> int:
    """Peak bytes traced (Python and numpy allocations) while `load` runs, which must raise EvaluatorError matching
    `message` in one line."""
    tracemalloc.start()
    try:
        with pytest.raises(EvaluatorError, match=message) as raised:
            load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "\n" not in str(raised.value)
    return peak
