"""Latency of the deployed graph: warm-up, then timed runs of one fixed-shape batch."""

from __future__ import annotations

import time

import numpy as np

from evaluator.limits import check_batch
from evaluator.runtime import OnnxClassifier
from evaluator.results import LatencyStats


def measure_latency(classifier: OnnxClassifier, batch_size: int, warmup: int = 10, min_runs: int = 100,
                    min_seconds: float = 0.5, max_seconds: float = 10.0, seed: int = 0) -> LatencyStats:
    """Time `classifier.run_batch` on a random batch until both minimums are met (or max_seconds passes): at least
    100 runs, so that p99 has a run above it, and half a second, so that a fast model is timed over thousands.

    A graph with a fixed batch dimension is timed at that batch size, whatever `batch_size` asks.
    """
    batch_size = classifier.fixed_batch or batch_size
    return latency_stats(batch_size, time_batch(classifier, batch_size, warmup, min_runs, min_seconds, max_seconds, seed))


def time_batch(classifier: OnnxClassifier, batch_size: int, warmup: int = 10, min_runs: int = 50,
               min_seconds: float = 1.0, max_seconds: float = 10.0, seed: int = 0) -> list[float]:
    """Seconds per run of one random (batch_size, C, H, W) batch, after `warmup` untimed runs: at least min_runs runs
    and min_seconds, at most max_seconds (then at least 5 runs). A batch over the runtime's bounds (check_batch) is
    an EvaluatorError before anything is made."""
    check_batch(batch_size, classifier.input_shape, "latency batch")
    x = np.random.default_rng(seed).random((batch_size, *classifier.input_shape), dtype=np.float32)
    for _ in range(warmup):
        classifier.run_batch(x)
    times: list[float] = []
    started = time.perf_counter()
    while True:
        begin = time.perf_counter()
        classifier.run_batch(x)
        times.append(time.perf_counter() - begin)
        elapsed = time.perf_counter() - started
        if (len(times) >= min_runs and elapsed >= min_seconds) or (elapsed >= max_seconds and len(times) >= 5):
            return times


def best_round(batch_size: int, rounds: list[list[float]]) -> LatencyStats:
    """The statistics of the round (per-run times in seconds) with the lowest median: other work on a shared machine
    only ever adds time, so the quietest round is the closest to the model's own speed."""
    return latency_stats(batch_size, min(rounds, key=lambda times: float(np.median(times))))


def latency_stats(batch_size: int, times: list[float]) -> LatencyStats:
    """Percentiles (ms) and throughput (samples/s at the median run) of per-run times in seconds."""
    ms = np.array(times) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return LatencyStats(batch_size, len(times), float(p50), float(p90), float(p99), float(ms.mean()),
                        float(batch_size / np.median(times)))
