"""A sweep's latency figures: re-timed after the assessments, one variant at a time on the driver, in interleaved
rounds (steadier ratios on a shared machine, and the only honest timing when the assessments ran in parallel as Ray
tasks), and the record of where the figures come from."""

from __future__ import annotations

import platform
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from evaluator.app.sweep_config import SweepConfig
from evaluator.files import json_text, write_text_atomic
from evaluator.progress import Progress
from evaluator.results import Assessment, ModelAssessment, RuntimeChoice

Say = Callable[[str], None]


def latency_record(config: SweepConfig, rounds: int, engine: str) -> dict[str, Any]:
    """Where the sweep's steps ran and where its latency figures come from: this machine (the driver) when they were
    re-timed after the sweep or timed by serial assessments; each assessment's `environment` names its own machine."""
    from evaluator.environment import cpu_name, gpu_names

    if config.skip_latency:
        how = "not measured"
    elif rounds:
        how = f"re-timed after the assessments in {rounds} interleaved rounds, one variant at a time, on this node"
    else:
        how = "timed by each assessment, one at a time, on this node"
    return {"steps": engine, "latency": how, "node": platform.node(), "cpu": cpu_name(), "gpus": gpu_names(),
            "provider": config.provider}


def retime_variants(config: SweepConfig, variants: list[Path], assessments: list[Assessment], keys: list[str],
                    folder: Path, progress: Progress, say: Say) -> list[Assessment]:
    """Latency of every variant measured again in config.retime_rounds rounds, each visiting every variant once at
    every batch size its assessment timed (odd rounds in reverse order). Each variant keeps its round with the lowest
    median: other work on a shared machine only ever adds time, and a slow spell then costs a variant one round
    rather than its figures, so ratios to the parent mean more. Every variant is timed with one thread count (the
    sweep's, else the first assessment's), and where the re-timing ran on another provider than the assessment (a
    driver without the workers' GPU) the variant's provider becomes the re-timing's, with a note. The new figures
    replace the assessment's and its cached file is rewritten under its cache key from `keys` (marked
    `latency_retimed`)."""
    from evaluator.latency import best_round, time_batch
    from evaluator.runtime import OnnxClassifier

    rounds = config.retime_rounds
    say(f"re-timing {len(variants)} variants in {rounds} interleaved rounds")
    runs: list[dict[int, list[list[float]]]] = [{stats.batch_size: [] for stats in assessment.models[0].latency_by_batch}
                                                for assessment in assessments]
    first = assessments[0].environment.get("threads") if assessments else None
    count = config.threads or (first if isinstance(first, int) else None)  # one count: ratios between variants hold
    runtimes: dict[Path, RuntimeChoice] = {}
    task = progress.task("re-timing latency", rounds * len(variants))
    for round_index in range(rounds):
        order = list(zip(variants, runs))
        for onnx, collected in (order if round_index % 2 == 0 else order[::-1]):
            # a fresh session per visit: no 50 sessions held at once
            classifier = OnnxClassifier(onnx, config.provider, threads=count, device_id=config.device)  # type: ignore[arg-type]
            runtimes[onnx] = classifier.runtime
            for batch, per_round in collected.items():
                per_round.append(time_batch(classifier, batch, warmup=3, min_runs=20, min_seconds=0.25, max_seconds=3.0,
                                            seed=config.seed))
            task.advance()
    updated = []
    retimed_throughput: dict[str, float] = {}
    for onnx, assessment, key, collected in zip(variants, assessments, keys, runs):
        model = assessment.models[0]
        stats = {batch: best_round(batch, per_round) for batch, per_round in collected.items()}
        model = replace(model, latency_by_batch=tuple(stats.values()),
                        latency=stats[model.latency.batch_size] if model.latency else None,
                        throughput=stats[model.throughput.batch_size] if model.throughput else None)
        if model.throughput is not None:
            retimed_throughput[onnx.name] = model.throughput.throughput_per_s
        model = with_retimed_speedup(model, retimed_throughput)
        if runtimes[onnx].used != model.runtime.used:
            model = replace(model, runtime=runtimes[onnx], notes=(*model.notes, (
                f"latency re-timed on {runtimes[onnx].used}; the assessment ran on {model.runtime.used}")))
        retimed = replace(assessment, models=(model,))
        record = {**retimed.to_dict(), "sweep_key": key,
                  "latency_retimed": {"rounds": rounds, "variants": len(variants), "node": platform.node()}}
        write_text_atomic(folder / f"{onnx.stem}.json", json_text(record) + "\n")
        updated.append(retimed)
    return updated


def with_retimed_speedup(model: ModelAssessment, throughput: dict[str, float]) -> ModelAssessment:
    """An int8 / fp16 model's speed-up against its float parent from the re-timed figures of both (`throughput`: file
    name -> samples/s, the parent re-timed before its variants), when the parent is among them."""
    precision = model.precision
    parent = throughput.get(precision.float_parent or "") if precision is not None else None
    if precision is None or parent is None or model.throughput is None:
        return model
    return replace(model, precision=replace(precision, float_parent_throughput_per_s=parent,
                                            speedup=model.throughput.throughput_per_s / parent))
