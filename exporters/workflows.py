"""The work behind `evaluator train` and `evaluator prune`: data, model, training, verified artifacts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rich.progress import Progress

from evaluator.data import Dataset, load_dataset, train_validation_split
from evaluator.errors import EvaluatorError
from evaluator.files import sha256_of
from exporters.architectures import ArchSpec, build_model
from exporters.artifacts import Artifacts, load_trainable, save_artifacts
from exporters.prune import PruneOutcome, count_params, prune_to_rate
from exporters.train import TrainConfig, TrainResult, accuracy, seed_everything, train_model


@dataclass(frozen=True)
class DataOptions:
    dataset: str = "fashion-mnist"
    data_dir: Path | None = None
    validation_size: int = 5000


def load_training_data(options: DataOptions, seed: int) -> tuple[Dataset, Any, Any]:
    dataset = load_dataset(options.dataset, options.data_dir)
    if dataset.train is None:
        raise EvaluatorError(f"dataset {dataset.name!r} has no training split (an .npz needs x_train, y_train, x_test, y_test)")
    train, validation = train_validation_split(dataset.train, options.validation_size, seed)
    return dataset, train, validation


def base_metadata(dataset: Dataset, spec: ArchSpec) -> dict[str, Any]:
    return {
        "dataset": dataset.name,
        "classes": list(dataset.classes),
        "input": {"shape": list(dataset.input_shape), "range": [0.0, 1.0], "layout": "NCHW", "dtype": "float32"},
        "architecture": spec.to_dict(),
    }


def training_record(config: TrainConfig, result: TrainResult, options: DataOptions) -> dict[str, Any]:
    return {**asdict(config), **asdict(result), "validation_size": options.validation_size, "optimizer": "adam"}


def train_architecture(arch: str, out_stem: Path, options: DataOptions, config: TrainConfig, width: float,
                       progress: Progress | None = None) -> tuple[Artifacts, dict[str, Any]]:
    """Train `arch` from scratch on the dataset and write verified artifacts at `out_stem`."""
    dataset, train, validation = load_training_data(options, config.seed)
    channels, size, _ = dataset.input_shape
    mean = tuple(float(train.x[:, c].mean()) for c in range(channels))
    std = tuple(float(train.x[:, c].std()) for c in range(channels))
    spec = ArchSpec(arch, channels, size, len(dataset.classes), width, mean, std)
    seed_everything(config.seed)
    model = build_model(spec)
    config = TrainConfig(**{**asdict(config), "augment": config.augment or channels == 3})
    result = train_model(model, train, validation, config, progress, f"training {arch}")
    metadata = {**base_metadata(dataset, spec), "training": training_record(config, result, options), "pruning": None, "parent": None}
    artifacts = save_artifacts(model, out_stem, metadata, dataset.test, {"test_accuracy": accuracy(model, dataset.test)})
    return artifacts, metadata


def prune_source(source: Path, out_stem: Path, method: str, rate: float, finetune: TrainConfig,
                 dataset_name: str | None, data_dir: Path | None, progress: Progress | None = None) -> tuple[Artifacts, PruneOutcome]:
    """Prune a .pt2 to `rate` with `method`, fine-tune, and write verified artifacts with the pruning record."""
    model, spec, parent_metadata = load_trainable(source)
    options = DataOptions(dataset_name or parent_metadata["dataset"], data_dir,
                          parent_metadata.get("training", {}).get("validation_size", 5000))
    dataset, train, validation = load_training_data(options, finetune.seed)
    if dataset.input_shape != (spec.in_channels, spec.image_size, spec.image_size):
        raise EvaluatorError(f"{source} expects inputs {(spec.in_channels, spec.image_size, spec.image_size)}, "
                             f"dataset {dataset.name!r} has {dataset.input_shape}")
    seed_everything(finetune.seed)
    example = torch.from_numpy(train.x[:1].copy())
    pruned, outcome = prune_to_rate(model, example, method, rate)
    accuracy_before_finetune = accuracy(pruned, validation)
    result = train_model(pruned, train, validation, finetune, progress, f"fine-tuning {method} CR {rate:g}") if finetune.epochs else None
    pruning = {
        **asdict(outcome), "schedule": "oneshot", "validation_accuracy_before_finetune": accuracy_before_finetune,
        "finetune": training_record(finetune, result, options) if result else None,
    }
    parent_onnx = source.with_suffix(".onnx")
    parent = {
        "source_file": source.name, "source_sha256": sha256_of(source),
        "file": parent_onnx.name if parent_onnx.is_file() else None,
        "sha256": sha256_of(parent_onnx) if parent_onnx.is_file() else None,
    }
    metadata = {**base_metadata(dataset, spec), "training": parent_metadata.get("training"), "pruning": pruning, "parent": parent}
    card_extra = {"test_accuracy": accuracy(pruned, dataset.test), "params": count_params(pruned)}
    return save_artifacts(pruned, out_stem, metadata, dataset.test, card_extra), outcome
