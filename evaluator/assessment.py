"""One assessment: per deployed model its size, speed, clean accuracy and robustness under attack."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from evaluator.attacks import AttackTarget, create_attack
from evaluator.checks import Check, deterministic, output_is_logits, source_agrees, white_box_strongest
from evaluator.data import Dataset, Split, load_dataset
from evaluator.errors import EvaluatorError
from evaluator.files import sha256_of
from evaluator.latency import LatencyStats, measure_latency
from evaluator.profile import ModelProfile, profile_model
from evaluator.robustness import AttackResult, WorstCase, evaluate_attack, worst_cases
from evaluator.runtime import OnnxClassifier, RuntimeChoice

SCHEMA_VERSION = "1.0"
DEFAULT_DATASET = "fashion-mnist"


@dataclass(frozen=True)
class AssessConfig:
    """Options of `evaluator assess`; epsilons (Linf) and epsilons_l2 are budgets in [0, 1] pixel units."""

    def epsilons_for(self, norm: str) -> tuple[float, ...]:
        return {"Linf": self.epsilons, "L2": self.epsilons_l2}[norm]


    dataset: str | None = None
    data_dir: Path | None = None
    source: Path | None = None
    surrogate: Path | None = None
    samples: int = 1000
    epsilons: tuple[float, ...] = (8 / 255,)
    epsilons_l2: tuple[float, ...] = (1.0,)
    attacks: tuple[str, ...] = ("pgd-linf", "square-linf")
    provider: str = "auto"
    batch_size: int = 256
    throughput_batch: int = 256
    threads: int | None = None
    seed: int = 0
    skip_latency: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {key: str(value) if isinstance(value, Path) else value for key, value in data.items()}


@dataclass(frozen=True)
class ModelAssessment:
    path: str
    dataset: str
    profile: ModelProfile
    runtime: RuntimeChoice
    latency: LatencyStats | None
    throughput: LatencyStats | None
    clean_accuracy: float
    clean_samples: int
    attacks: tuple[AttackResult, ...]
    worst_case: tuple[WorstCase, ...]
    checks: tuple[Check, ...]
    source: str | None
    metadata: dict[str, Any] | None
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "dataset": self.dataset,
            **self.profile.to_dict(),
            "provider": self.runtime.used,
            "provider_requested": self.runtime.requested,
            "latency": self.latency.to_dict() if self.latency else None,
            "throughput": self.throughput.to_dict() if self.throughput else None,
            "clean_accuracy": self.clean_accuracy,
            "clean_samples": self.clean_samples,
            "attacks": [result.to_dict() for result in self.attacks],
            "robustness": [worst.to_dict() for worst in self.worst_case],
            "checks": [check.to_dict() for check in self.checks],
            "source": self.source,
            "architecture": (self.metadata or {}).get("architecture"),
            "pruning": (self.metadata or {}).get("pruning"),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Assessment:
    models: tuple[ModelAssessment, ...]
    config: AssessConfig
    environment: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "config": self.config.to_dict(),
            "environment": self.environment,
            "models": [model.to_dict() for model in self.models],
        }


Progress = Callable[[str], None]


def resolve_pt2(model_path: Path, record: dict[str, Any] | None, role: str) -> tuple[Path | None, list[str]]:
    """A .pt2 named in a model's metadata, beside the model and sha256-checked."""
    if not record or not record.get("file"):
        return None, []
    candidate = model_path.parent / record["file"]
    if not candidate.is_file():
        return None, [f"{role} {record['file']} named in the metadata is not beside the model: its attacks are skipped"]
    if record.get("sha256") and sha256_of(candidate) != record["sha256"]:
        raise EvaluatorError(f"{candidate} does not match the sha256 recorded in {model_path.name}: pass it explicitly to use it anyway")
    return candidate, []


def resolve_source(model_path: Path, metadata: dict[str, Any] | None, override: Path | None) -> tuple[Path | None, list[str]]:
    """The .pt2 behind a deployed model: --source, else the file named in its metadata."""
    if override is not None:
        if not override.is_file():
            raise EvaluatorError(f"source file not found: {override}")
        return override, []
    return resolve_pt2(model_path, (metadata or {}).get("source"), "source")


def resolve_surrogate(model_path: Path, metadata: dict[str, Any] | None, override: Path | None) -> tuple[Path | None, list[str]]:
    """The transfer surrogate: --surrogate (a .pt2, or an .onnx through its source), else the unpruned root's source."""
    if override is not None:
        if override.suffix == ".onnx":
            from evaluator.runtime import load_onnx
            from evaluator.metadata import read_metadata

            source, notes = resolve_pt2(override, (read_metadata(load_onnx(override)) or {}).get("source"), "surrogate source")
            if source is None:
                raise EvaluatorError(f"--surrogate {override} names no PyTorch source beside it: pass its .pt2")
            return source, notes
        if not override.is_file():
            raise EvaluatorError(f"surrogate file not found: {override}")
        return override, []
    pruning = (metadata or {}).get("pruning") or {}
    parent = (metadata or {}).get("parent") or {}
    root = pruning.get("root_source") or ({"file": parent.get("source_file"), "sha256": parent.get("source_sha256")} if parent else None)
    return resolve_pt2(model_path, root, "surrogate (unpruned parent)")


def check_fit(classifier: OnnxClassifier, dataset: Dataset) -> None:
    if classifier.input_shape != dataset.input_shape:
        raise EvaluatorError(f"{classifier.path}: the model expects inputs of shape {classifier.input_shape}, "
                             f"but dataset {dataset.name!r} has {dataset.input_shape}")
    top_label = int(dataset.test.y.max())
    if top_label >= classifier.num_classes:
        raise EvaluatorError(f"dataset {dataset.name!r} has label {top_label}, out of range for a model with "
                             f"{classifier.num_classes} outputs")


def attack_subset(test: Split, samples: int, seed: int) -> Split:
    """A seeded sample of the test split for the attacks (the whole split if `samples` >= its size)."""
    if samples >= len(test):
        return test
    index = np.sort(np.random.default_rng(seed).choice(len(test), samples, replace=False))
    return test.take(index)


def assess_model(path: Path, config: AssessConfig, datasets: dict[str, Dataset], progress: Progress) -> ModelAssessment:
    classifier = OnnxClassifier(path, config.provider, config.batch_size, config.threads)  # type: ignore[arg-type]
    metadata = classifier.metadata
    name = config.dataset or (metadata or {}).get("dataset") or DEFAULT_DATASET
    if name not in datasets:
        datasets[name] = load_dataset(name, config.data_dir)
    dataset = datasets[name]
    check_fit(classifier, dataset)
    notes = ([classifier.runtime.note] if classifier.runtime.note else []) + classifier.notes
    source, source_notes = resolve_source(Path(path), metadata, config.source)
    surrogate, surrogate_notes = resolve_surrogate(Path(path), metadata, config.surrogate)
    notes += source_notes + surrogate_notes
    profile = profile_model(Path(path), classifier.model)
    if profile.unaligned_convs and classifier.runtime.used == "CPUExecutionProvider":
        notes.append(f"{profile.unaligned_convs} of {profile.conv_layers} conv layers have channel counts that are not "
                     "multiples of 8, which ONNX Runtime's fast CPU convolutions (NCHWc) need")
    latency = throughput = None
    if not config.skip_latency:
        progress(f"{Path(path).name}: latency")
        latency = measure_latency(classifier, 1, seed=config.seed)
        throughput = measure_latency(classifier, config.throughput_batch, seed=config.seed)
    progress(f"{Path(path).name}: clean accuracy")
    clean_accuracy = float((classifier.predict(dataset.test.x) == dataset.test.y).mean())
    subset = attack_subset(dataset.test, config.samples, config.seed)
    subset_predictions = classifier.predict(subset.x)  # once, not per attack and epsilon
    target = AttackTarget(classifier, source, surrogate)
    missing = {"white-box": source is None, "transfer": surrogate is None}
    results = []
    for attack_name in config.attacks:
        attack = create_attack(attack_name)
        if missing.get(attack.kind.value):
            notes.append(f"{attack_name} skipped: no {'PyTorch source' if attack.kind.value == 'white-box' else 'surrogate'}")
            continue
        for epsilon in config.epsilons_for(attack.norm.value):
            attack = create_attack(attack_name)
            progress(f"{Path(path).name}: {attack_name} eps={epsilon:.4g}")
            results.append(evaluate_attack(attack, target, subset, epsilon, config.seed, subset_predictions))
    checks = [output_is_logits(classifier.logits(subset.x[:256])), deterministic(classifier, subset.x[:64])]
    if source is not None and any(r.kind == "white-box" for r in results):
        checks.append(source_agrees(target.source(), classifier, subset.x))
    if results:
        checks.append(white_box_strongest(results))
    notes += [f"check {check.name} failed: {check.detail}" for check in checks if not check.passed]
    return ModelAssessment(str(path), dataset.name, profile, classifier.runtime, latency, throughput, clean_accuracy,
                           len(dataset.test), tuple(results), tuple(worst_cases(results)), tuple(checks), str(source) if source else None, metadata, tuple(notes))


def assess(paths: list[Path], config: AssessConfig, progress: Progress = lambda message: None) -> Assessment:
    """Assess every model in `paths` with the same data, attacks and seed."""
    from evaluator.environment import environment_record

    if config.samples < 1:
        raise EvaluatorError(f"--samples must be at least 1, got {config.samples}")
    if config.batch_size < 1 or config.throughput_batch < 1 or (config.threads is not None and config.threads < 1):
        raise EvaluatorError("--batch-size, --throughput-batch and --threads must be at least 1")
    for epsilon in config.epsilons:
        if not 0 < epsilon <= 1:  # also refuses NaN
            raise EvaluatorError(f"Linf epsilon must be in (0, 1] (pixel units), got {epsilon}")
    for epsilon in config.epsilons_l2:
        if not 0 < epsilon < float("inf"):
            raise EvaluatorError(f"L2 epsilon must be a positive number, got {epsilon}")
    for attack_name in config.attacks:
        create_attack(attack_name)
    datasets: dict[str, Dataset] = {}
    models = tuple(assess_model(path, config, datasets, progress) for path in paths)
    threads = config.threads or os.cpu_count() or 1
    return Assessment(models, config, environment_record(threads))
