"""Prune-and-retrain schedules over a list of rates, one verified artifact set per step, resumable.

iterative (the study's): prune to the first rate, fine-tune, prune that model to the next rate, ...
oneshot: prune the source to each rate independently. Rates are always relative to the unpruned root.
A step whose artifacts exist with the same step key (a hash of everything that decides it) is loaded
instead of redone, so an interrupted schedule resumes where it stopped with identical results.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from evaluator.datasets import recorded_dataset
from evaluator.errors import EvaluatorError
from evaluator.files import read_json_object, sha256_of, stem_file
from evaluator.progress import Progress, SilentProgress
from exporters.architectures import ArchSpec
from exporters.artifacts import Artifacts, load_trainable, save_artifacts
from exporters.pruning.census import Census, prunable_layers, take_census
from exporters.pruning.engine import StepOutcome, Target, prune_to_target, tolerance_matters
from exporters.pruning.masks import MaskKeeper
from exporters.pruning.options import RATE_TOLERANCE, PruneOptions
from evaluator.catalogue import PruningMethod, get_method
from exporters.train import TrainConfig, accuracy, seed_everything, train_model
from exporters.workflows import (DataOptions, TrainingData, base_metadata, load_training_data, recorded_validation_size,
                                 training_record)

CALIBRATION_SAMPLES = 256
ENGINE_VERSION = 3  # part of every step key: bump when pruning or fine-tuning would give other results


@dataclass(frozen=True)
class PruneRequest:
    """Everything that decides a schedule's results (and so its step keys)."""

    method: str
    rates: tuple[float, ...]
    metric: Literal["weights", "macs"] = "weights"
    basis: Literal["all", "pruned"] | None = None
    scope: Literal["local", "global"] | None = None
    round_to: int | None = None
    schedule: Literal["iterative", "oneshot"] = "iterative"
    finetune: TrainConfig = field(default_factory=TrainConfig)
    tolerance: float = RATE_TOLERANCE  # accepted relative distance of the achieved rate from the target

    def resolved(self) -> "PruneRequest":
        """Method defaults filled in; errors for choices the method does not allow."""
        method = get_method(self.method)
        if method.scope is not None and self.scope not in (None, method.scope):
            raise EvaluatorError(f"scope {self.scope} does not apply to {method.name}: it is {method.scope} by definition "
                                 f"(leave scope out or pick the {self.scope} variant)", field="scope")
        if not self.rates or any(rate < 1 for rate in self.rates):
            raise EvaluatorError(f"rates must be >= 1, got {', '.join(f'{r:g}' for r in self.rates) or 'none'}")
        if self.round_to is not None and (self.round_to < 1 or not method.physical):
            raise EvaluatorError("round_to takes a positive channel count and applies to filter methods only", field="round_to")
        if not 0 < self.tolerance < 1:
            raise EvaluatorError(f"tolerance must be a share between 0 and 1, got {self.tolerance:g}", field="tolerance")
        return PruneRequest(self.method, tuple(sorted(set(self.rates))), self.metric, self.basis or method.default_basis,  # type: ignore[arg-type]
                            self.scope or method.scope or "local", self.round_to, self.schedule, self.finetune, self.tolerance)


@dataclass(frozen=True)
class StepResult:
    rate: float
    artifacts: Artifacts
    outcome: dict[str, Any]
    test_accuracy: float
    resumed: bool


def step_key(source_sha: str, request: PruneRequest, rate: float, previous: str | None, with_tolerance: bool) -> str:
    """The hash of everything that decides a step's result. The tolerance only where it can change the result
    (engine.tolerance_matters); elsewhere it only accepts or refuses one, which finished_step checks."""
    fields = asdict(request)
    tolerance = fields.pop("tolerance")
    payload = {"engine": ENGINE_VERSION, "source": source_sha, "request": fields, "rate": rate, "previous": previous}
    if with_tolerance:
        payload["tolerance"] = tolerance
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def root_census(metadata: dict[str, Any], layers: list[str], current: Census) -> Census:
    """The unpruned root's counts: from the source's pruning record when it covers the same layers."""
    record = metadata.get("pruning") or {}
    if record.get("root") and record.get("layers") == layers:
        return Census(**record["root"])
    return current


def finished_step(stem: Path, key: str, tolerance: float) -> dict[str, Any] | None:
    """The card of a step already done with this key, its files matching it; None means redo the step (missing,
    partial or corrupt files included)."""
    card_path, pt2, onnx = stem_file(stem, ".json"), stem_file(stem, ".pt2"), stem_file(stem, ".onnx")
    if not (card_path.is_file() and pt2.is_file() and onnx.is_file()):
        return None
    card = read_json_object(card_path)
    metadata = card.get("metadata") if card else None
    record = metadata.get("pruning") if isinstance(metadata, dict) else None
    if not isinstance(record, dict) or record.get("step_key") != key:
        return None
    achieved, target = record.get("achieved_rate"), record.get("target")
    rate = target.get("rate") if isinstance(target, dict) else None
    if not (is_number(achieved) and is_number(rate) and rate > 0 and is_number(card.get("test_accuracy"))):
        return None
    if abs(achieved / rate - 1) > tolerance:
        return None  # made under a wider tolerance than this request accepts
    files = card.get("files")
    if not isinstance(files, dict):
        return None
    for suffix, path in (("pt2", pt2), ("onnx", onnx)):
        entry = files.get(suffix)
        if not isinstance(entry, dict) or entry.get("sha256") != sha256_of(path):
            return None
    return card


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class PruneJob:
    """Where a schedule reads and writes: the parent's .pt2, the output folder and name prefix (default
    SOURCE_METHOD), the data (default: the dataset in the source's metadata) and the seed."""

    source: Path
    out_dir: Path
    name: str | None = None
    dataset: str | None = None
    data_dir: Path | None = None
    seed: int = 0


@dataclass(frozen=True)
class FinetuneOptions:
    """What every step of one schedule fine-tunes with: the resolved request, its method, the data and the seed."""

    request: PruneRequest
    method: PruningMethod
    data: TrainingData
    seed: int


def run_schedule(job: PruneJob, request: PruneRequest, progress: Progress = SilentProgress(),
                 stopped: list[str] | None = None) -> list[StepResult]:
    """Every step of the schedule. An unreachable rate raises EvaluatorError, unless `stopped` is given: then the
    reason is appended to it and the steps done so far are returned (an iterative schedule cannot go past it)."""
    request = request.resolved()
    method: PruningMethod = get_method(request.method)
    source, seed = job.source, job.seed
    base = job.name or f"{source.stem}_{method.name}"
    stems = [job.out_dir / f"{base}_cr{rate:g}{'_macs' if request.metric == 'macs' else ''}" for rate in request.rates]
    check_stems_spare_source(stems, source)
    parent_model, spec, parent_metadata = load_trainable(source)
    if not (job.dataset or parent_metadata.get("dataset")):
        raise EvaluatorError(f"dataset must be given: {source} carries no evaluator metadata naming one", field="dataset")
    data_options = DataOptions(job.dataset or recorded_dataset(parent_metadata["dataset"], source), job.data_dir,
                               recorded_validation_size(parent_metadata), spec.input_shape)  # an image folder at the model's size
    data = load_training_data(data_options, seed)
    dataset, train = data.dataset, data.train
    options = FinetuneOptions(request, method, data, seed)
    if dataset.input_shape != spec.input_shape:
        raise EvaluatorError(f"{source} expects inputs {spec.input_shape}, "
                             f"dataset {dataset.name!r} has {dataset.input_shape}")
    example = torch.from_numpy(train.x[:1].copy())
    calibration = (torch.from_numpy(train.x[:CALIBRATION_SAMPLES].copy()), torch.from_numpy(train.y[:CALIBRATION_SAMPLES].copy()))
    prune_options = PruneOptions(method, request.scope, example, calibration,  # type: ignore[arg-type]
                                 round_to=request.round_to, seed=seed, tolerance=request.tolerance)
    layers = prunable_layers(parent_model, method.granularity, method.conv_only)
    root = root_census(parent_metadata, layers, take_census(parent_model, layers, example))
    source_sha = sha256_of(source)
    root_record = (parent_metadata.get("pruning") or {}).get("root_source") or {"file": source.name, "sha256": source_sha}
    results: list[StepResult] = []
    current, current_path, previous_key = parent_model, source, None
    for index, (rate, stem) in enumerate(zip(request.rates, stems)):
        start, start_path = (current, current_path) if request.schedule == "iterative" else (parent_model, source)
        key = step_key(source_sha, request, rate, previous_key if request.schedule == "iterative" else None,
                       tolerance_matters(start, method, request.round_to))
        card = finished_step(stem, key, request.tolerance)
        if card is not None:
            pruned, _, _ = load_trainable(stem_file(stem, ".pt2"))
            artifacts = Artifacts(stem_file(stem, ".pt2"), stem_file(stem, ".onnx"), stem_file(stem, ".json"))
            results.append(StepResult(rate, artifacts, card["metadata"]["pruning"], card["test_accuracy"], True))
        else:
            seed_everything(seed)
            target = Target(rate, request.metric, request.basis)  # type: ignore[arg-type]
            try:
                pruned, outcome = prune_to_target(start, target, root, prune_options)
            except EvaluatorError as error:
                if stopped is None:
                    raise
                stopped.append(f"{method.name} stops before rate {rate:g}: {error}")
                return results
            context = StepContext(index, key, root_record, start_path, stem, spec, parent_metadata.get("training"))
            artifacts, record = finetune_and_save(pruned, outcome, options, context, progress)
            card = json.loads(artifacts.card.read_text())
            results.append(StepResult(rate, artifacts, record, card["test_accuracy"], False))
        current, current_path, previous_key = pruned, stem_file(stem, ".pt2"), key
    return results


def check_stems_spare_source(stems: list[Path], source: Path) -> None:
    """No step writes over the files it prunes: an output stem (OUT/NAME_crRATE) that is the source's own stem would
    replace the source's .pt2, .onnx and .json with the pruned model's."""
    for stem in stems:
        for suffix in (".pt2", ".onnx", ".json"):
            output, original = stem_file(stem, suffix), source.with_suffix(suffix)
            if output.resolve() == original.resolve():
                raise EvaluatorError(f"the step written to {output} would replace the source's own {original.name}: "
                                     "choose another name or output folder")


@dataclass(frozen=True)
class StepContext:
    """Where a step sits: its index and key, the root and immediate parent, the output stem, the architecture."""

    index: int
    key: str
    root_record: dict[str, str]
    parent_path: Path
    stem: Path
    spec: ArchSpec
    training: dict[str, Any] | None


def finetune_and_save(pruned: torch.nn.Module, outcome: StepOutcome, options: FinetuneOptions, context: StepContext,
                      progress: Progress = SilentProgress()) -> tuple[Artifacts, dict[str, Any]]:
    """Fine-tune a pruned model (keeping zeroed weights at zero) and write its verified artifacts."""
    method, request, seed, data = options.method, options.request, options.seed, options.data
    dataset, validation = data.dataset, data.validation
    before = accuracy(pruned, validation)
    keeper = None if method.physical else MaskKeeper(pruned, outcome.layers)
    config = TrainConfig(**{**asdict(request.finetune), "seed": seed})
    result = None
    if config.epochs:
        result = train_model(pruned, data.train, validation, config, progress, f"fine-tuning {method.name} CR {outcome.target['rate']:g}",
                             after_step=keeper)
    record = {
        **outcome.to_dict(), "schedule": request.schedule, "step": context.index + 1, "rates_requested": list(request.rates),
        "seed": seed, "step_key": context.key, "root_source": context.root_record,
        "validation_accuracy_before_finetune": before,
        "finetune": training_record(config, result, data.options) if result else None,
    }
    parent_onnx = context.parent_path.with_suffix(".onnx")
    parent = {
        "source_file": context.parent_path.name, "source_sha256": sha256_of(context.parent_path),
        "file": parent_onnx.name if parent_onnx.is_file() else None,
        "sha256": sha256_of(parent_onnx) if parent_onnx.is_file() else None,
    }
    metadata = {**base_metadata(dataset, context.spec, context.stem.parent), "training": context.training, "pruning": record, "parent": parent}
    card_extra = {"test_accuracy": accuracy(pruned, dataset.test)}
    return save_artifacts(pruned, context.stem, metadata, dataset.test, card_extra), record
