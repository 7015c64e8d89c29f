"""The work behind `evaluator train` and `evaluator prune`: data, model, training, verified artifacts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evaluator.datasets import Dataset, Split, dataset_record, load_dataset, train_validation_split
from evaluator.errors import EvaluatorError
from evaluator.progress import Progress, SilentProgress
from exporters.architectures import ArchSpec, build_model, check_input_size
from exporters.artifacts import Artifacts, save_artifacts
from exporters.train import TrainConfig, TrainResult, accuracy, seed_everything, train_model


VALIDATION_SIZE = 5000  # validation samples carved from the training set unless told otherwise


@dataclass(frozen=True)
class DataOptions:
    """input_shape: (C, H, W) that an image folder's images are decoded to (None: the format's default); the other
    formats keep their stored size."""

    dataset: str = "fashion-mnist"
    data_dir: Path | None = None
    validation_size: int = VALIDATION_SIZE
    input_shape: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class TrainingData:
    """A dataset with its training split cut into train and validation (`options` says how)."""

    dataset: Dataset
    train: Split
    validation: Split
    options: DataOptions


@dataclass(frozen=True)
class TrainRequest:
    """Everything that decides a trained parent: architecture, width multiplier, data and recipe."""

    arch: str
    data: DataOptions = field(default_factory=DataOptions)
    config: TrainConfig = field(default_factory=TrainConfig)
    width: float = 1.0


def load_training_data(options: DataOptions, seed: int) -> TrainingData:
    dataset = load_dataset(options.dataset, options.data_dir, input_shape=options.input_shape)
    if dataset.train is None:
        raise EvaluatorError(f"dataset {dataset.name!r} has no training split (an .npz needs x_train, y_train, x_test, y_test)")
    train, validation = train_validation_split(dataset.train, options.validation_size, seed)
    return TrainingData(dataset, train, validation, options)


def recorded_validation_size(metadata: dict[str, Any]) -> int:
    """The validation split a model was trained with (its metadata's training record), for its fine-tuning."""
    training = metadata.get("training")
    size = training.get("validation_size") if isinstance(training, dict) else None
    return size if isinstance(size, int) and not isinstance(size, bool) else VALIDATION_SIZE


def base_metadata(dataset: Dataset, spec: ArchSpec, folder: Path) -> dict[str, Any]:
    """The metadata every artifact written to `folder` carries (a dataset file by its path relative to `folder`)."""
    return {
        "dataset": dataset_record(dataset.name, folder),
        "classes": list(dataset.classes),
        "input": {"shape": list(dataset.input_shape), "range": [0.0, 1.0], "layout": "NCHW", "dtype": "float32"},
        "architecture": spec.to_dict(),
    }


def training_record(config: TrainConfig, result: TrainResult, options: DataOptions) -> dict[str, Any]:
    return {**asdict(config), **asdict(result), "validation_size": options.validation_size, "optimizer": "adam"}


def train_architecture(request: TrainRequest, out_stem: Path, progress: Progress = SilentProgress(),
                       card_extra: dict[str, Any] | None = None) -> tuple[Artifacts, dict[str, Any]]:
    """Train `request.arch` from scratch on the dataset and write verified artifacts at `out_stem`; `card_extra` goes
    into the card with the test accuracy (one write, so a card is never seen without it)."""
    config = request.config
    if request.data.input_shape is not None:  # before any image is decoded at that size
        check_input_size(request.arch, *request.data.input_shape[:2])
    data = load_training_data(request.data, config.seed)
    dataset, train = data.dataset, data.train
    channels, size, _ = dataset.input_shape
    asked = request.data.input_shape
    if asked is not None and dataset.input_shape[1:] != asked[1:]:
        raise EvaluatorError(f"image_size {asked[1]} resizes the images of an image folder only: dataset "
                             f"{dataset.name!r} has {size}x{dataset.input_shape[2]} px images", field="image_size")
    mean = tuple(float(train.x[:, c].mean()) for c in range(channels))
    std = tuple(float(train.x[:, c].std()) for c in range(channels))
    spec = ArchSpec(request.arch, channels, size, len(dataset.classes), request.width, mean, std)
    seed_everything(config.seed)
    model = build_model(spec)
    config = TrainConfig(**{**asdict(config), "augment": config.augment or channels == 3})
    result = train_model(model, train, data.validation, config, progress, f"training {request.arch}")
    metadata = {**base_metadata(dataset, spec, out_stem.parent), "training": training_record(config, result, request.data),
                "pruning": None, "parent": None}
    artifacts = save_artifacts(model, out_stem, metadata, dataset.test,
                               {**(card_extra or {}), "test_accuracy": accuracy(model, dataset.test)})
    return artifacts, metadata
