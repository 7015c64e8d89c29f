"""What an assessment adds for a graph's precision: an int8 or fp16 artifact against its float32 parent (clean
accuracy on the same test split, throughput of both timed side by side in alternating rounds at the throughput
batch), and where its kernels ran (evaluator.placement), with a note for every fallback and for a reduced-precision
graph that is not faster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from evaluator.errors import EvaluatorError
from evaluator.files import check_name, file_beside, sha256_of
from evaluator.latency import best_round, time_batch
from evaluator.precision import FP32, graph_precision, recorded_precision
from evaluator.profile import external_data_sha256
from evaluator.results import LatencyStats, Placement, PrecisionResult
from evaluator.runtime import CUDA_EP, OnnxClassifier

PLACEMENT_BATCH = 8  # samples per profiled run: which kernel runs where does not depend on the batch


def float_parent(path: Path, metadata: dict[str, Any] | None, config: Any) -> tuple[OnnxClassifier | None, list[str]]:
    """The float32 .onnx an int8 or fp16 artifact was made from: the file its precision record names, beside it, with
    the recorded sha256. (None, a note) when it is not at hand or differs."""
    parent = (recorded_precision(metadata) or {}).get("parent") or {}
    if not parent.get("file"):
        return None, []
    candidate = file_beside(path, check_name(parent["file"], "the float parent"), "the float parent")
    if not candidate.is_file():
        return None, [f"float parent {candidate.name} is not beside the model: no accuracy drop or speed-up against it"]
    if sha256_of(candidate) != parent.get("sha256") or external_data_sha256(candidate) != parent.get("data_sha256"):
        return None, [f"{candidate.name} is not the float parent recorded in the metadata (its sha256 differs): no "
                      "accuracy drop or speed-up against it"]
    try:
        return OnnxClassifier(candidate, config.provider, config.batch_size, config.threads, config.inputs,
                              config.device), []
    except EvaluatorError as error:
        return None, [f"float parent {candidate.name} cannot be loaded ({error}): no accuracy drop or speed-up against it"]


def precision_result(path: Path, classifier: OnnxClassifier, config: Any, test_x: np.ndarray, test_y: np.ndarray,
                     throughput: LatencyStats | None) -> tuple[PrecisionResult, list[str]]:
    """The graph's precision; for an artifact of `evaluator quantize`, its float parent's clean accuracy on
    (test_x, test_y) and the throughput ratio at `throughput`'s batch, the two timed side by side (None when latency
    is skipped)."""
    name = graph_precision(classifier.model)
    record = recorded_precision(classifier.metadata)
    if record is None:
        return PrecisionResult(name), []
    parent, notes = float_parent(Path(path), classifier.metadata, config)
    if parent is None:
        return PrecisionResult(name, record.get("method")), notes
    accuracy = float((parent.predict(test_x) == test_y).mean())
    parent_throughput = speedup = None
    if throughput is not None:
        own, theirs = side_by_side(classifier, parent, throughput.batch_size, config.seed)
        parent_throughput, speedup = theirs.throughput_per_s, own.throughput_per_s / theirs.throughput_per_s
        if speedup < 1.0:
            notes.append(f"the {name} graph is not faster than its float32 parent: {own.throughput_per_s:,.0f} vs "
                         f"{parent_throughput:,.0f} samples/s at batch {throughput.batch_size} ({speedup:.2f}x, timed "
                         f"side by side) on {classifier.runtime.used}")
    return PrecisionResult(name, record.get("method"), parent.path.name, accuracy, parent_throughput, speedup), notes


SIDE_BY_SIDE_ROUNDS = 3


def side_by_side(model: OnnxClassifier, parent: OnnxClassifier, batch: int, seed: int,
                 rounds: int = SIDE_BY_SIDE_ROUNDS) -> tuple[LatencyStats, LatencyStats]:
    """The model and its parent timed at `batch` in alternating rounds (parent, model, parent, model, ...); each
    keeps its round with the lowest median, as other work on a shared machine only ever adds time."""
    runs: tuple[list[list[float]], list[list[float]]] = ([], [])
    for _ in range(rounds):
        for collected, classifier in ((runs[1], parent), (runs[0], model)):
            collected.append(time_batch(classifier, batch, warmup=3, min_runs=20, min_seconds=0.25, max_seconds=3.0,
                                        seed=seed))
    own, theirs = (best_round(batch, each) for each in runs)
    return own, theirs


def placement_of(classifier: OnnxClassifier, precision: str, x: np.ndarray, threads: int | None
                 ) -> tuple[Placement | None, list[str]]:
    """Where each kernel of the graph ran on a profiled run of x[:PLACEMENT_BATCH] (the graph's fixed batch if it has
    one), and a note naming the fallbacks. (None, a note) when ONNX Runtime's profiler fails."""
    from evaluator.placement import node_placement

    batch = classifier.fixed_batch or min(PLACEMENT_BATCH, len(x))
    sample = x[:batch]
    if len(sample) < batch:
        sample = np.concatenate([sample, np.zeros((batch - len(sample), *sample.shape[1:]), sample.dtype)])
    try:
        on_gpu = {"device_id": str(classifier.device_id), "cudnn_conv_algo_search": "HEURISTIC"}
        placement = node_placement(classifier.graph, classifier.runtime.used, precision, sample, threads or 1,
                                   provider_options=on_gpu if classifier.runtime.used == CUDA_EP else None)
    except EvaluatorError as error:
        return None, [f"where the kernels ran is unknown: {error}"]
    fallbacks = placement.fallbacks
    if not fallbacks:
        return placement, []
    shown = ", ".join(f"{kernel.node} ({kernel.op}: {kernel.fallback})" for kernel in fallbacks[:3])
    more = f" and {len(fallbacks) - 3} more" if len(fallbacks) > 3 else ""
    scope = "" if precision == FP32 else f" of the {precision} graph"
    return placement, [f"{len(fallbacks)} of {len(placement.kernels)} kernels{scope} fall back: {shown}{more}"]
