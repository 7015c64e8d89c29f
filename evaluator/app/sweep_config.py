"""The settings of `evaluator sweep`: SweepConfig, read from a TOML file or the command line (one clear error for an
unknown key or a wrong type) and checked as a whole before anything is written (evaluator/app/sweep_run.py runs it)."""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from evaluator.assess_config import BUDGET_FIELDS, AssessConfig, check_attack_norms, check_budgets, check_torch_device
from evaluator.catalogue import ARCHITECTURES, METHODS, STUDY_METHODS
from evaluator.default_attacks import DEFAULT_CASCADES, default_attacks
from evaluator.errors import EvaluatorError
from evaluator.files import read_text_file
from evaluator.limits import MAX_EPOCHS, check_device
from evaluator.threads import choose_threads

PROVIDERS = ("auto", "cpu", "cuda")
MAX_RETIME_ROUNDS = 100
MAX_WORKERS = 4096  # Ray tasks at once on a local runtime
MAX_SEED = 2**63 - 1  # as the CLI's other commands (torch takes up to 2**64 - 1)
DEFAULT_DATASET = "fashion-mnist"  # of a parent trained here


@dataclass(frozen=True)
class SweepConfig:
    """Everything that decides a sweep's results. Budgets as in AssessConfig (Linf/L2/L1 pixel units, L0 pixels)."""

    source: str = "lenet5"  # an architecture to train, or a .pt2: made by `evaluator train` / `prune`, or a user's own
    out: Path = Path("sweep-results")
    dataset: str | None = None  # None: the dataset a .pt2 parent's metadata names, DEFAULT_DATASET for one trained here
    data_dir: Path | None = None
    image_size: int | None = None  # side of the RGB images an image folder is decoded to for a parent trained here
    width: float = 1.0
    train_epochs: int = 30
    methods: tuple[str, ...] = STUDY_METHODS
    rates: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64)
    schedule: str = "iterative"
    rate_tolerance: float = 0.05  # accepted relative distance of an achieved compression rate from its target
    finetune_epochs: int = 10
    patience: int = 3
    learning_rate: float = 1e-3
    # Every variant (the parent and each pruned one) in each precision: fp32 as trained, int8 / int8-dynamic / fp16
    # made by `evaluator quantize` (int8 calibrated on calibration_samples training images with calibration_method).
    precisions: tuple[str, ...] = ("fp32",)
    calibration_samples: int = 512
    calibration_method: str = "minmax"
    # The assessment settings of every variant: the AssessConfig fields of the same names (and defaults), passed on
    # as they are; the per-model ones (source, surrogate, latency_batches) a sweep decides itself.
    attacks: tuple[str, ...] = AssessConfig.attacks  # make_config: the default cascades of the norms whose budgets are given
    epsilons: tuple[float, ...] = AssessConfig.epsilons
    epsilons_l2: tuple[float, ...] = AssessConfig.epsilons_l2
    epsilons_l1: tuple[float, ...] = AssessConfig.epsilons_l1
    epsilons_l0: tuple[float, ...] = AssessConfig.epsilons_l0
    cascade: bool = AssessConfig.cascade
    samples: int = AssessConfig.samples
    provider: str = AssessConfig.provider
    device: int = AssessConfig.device  # the GPU of ONNX Runtime's CUDA EP; not in any cache key
    torch_device: str = AssessConfig.torch_device  # training, fine-tuning and the attacks; not in any cache key
    batch_size: int = AssessConfig.batch_size
    throughput_batch: int = AssessConfig.throughput_batch
    skip_latency: bool = AssessConfig.skip_latency
    retime_rounds: int = 0  # > 0: after assessing, time every variant again in this many interleaved rounds
    threads: int | None = None  # torch's and ONNX Runtime's; None: the free cores (evaluator.threads); not in any cache key
    workers: int = 1  # > 1: the steps run as Ray tasks on a local Ray runtime of this many CPUs (sweep_engine)
    ray_address: str | None = None  # the Ray cluster the steps run on (HOST:PORT, ray://HOST:PORT or auto)
    seed: int = 0

    def assess_config(self) -> AssessConfig:
        """The assessment of every variant: each AssessConfig field this config shares by name."""
        return AssessConfig(**{name: getattr(self, name) for name in ASSESS_FIELDS})

    def to_dict(self) -> dict[str, Any]:
        return {key: str(value) if isinstance(value, Path) else value for key, value in asdict(self).items()}

    def resolved(self) -> SweepConfig:
        """This config with its dataset named: as given, else the one a .pt2 parent's evaluator metadata names (a path
        taken relative to the .pt2), else DEFAULT_DATASET for a parent trained here; still None for a .pt2 without
        metadata (or one that does not load: validate says why)."""
        if self.dataset is not None:
            return self
        if not self.source.endswith(".pt2"):
            return replace(self, dataset=DEFAULT_DATASET)
        from evaluator.datasets import recorded_dataset
        from evaluator.source import PT2_METADATA_FILE, load_program

        try:
            _, extra = load_program(Path(self.source))
            recorded = json.loads(extra[PT2_METADATA_FILE]).get("dataset") if PT2_METADATA_FILE in extra else None
        except (EvaluatorError, ValueError, AttributeError):
            return self
        return replace(self, dataset=recorded_dataset(recorded, Path(self.source))) if isinstance(recorded, str) else self

    def validate(self) -> None:
        """Every setting, the source and its files, the dataset and the results folder: all before anything is
        written. Loads the dataset (and a .pt2 source) once to see that they load and fit."""
        if self.dataset is None:
            resolved = self.resolved()  # reads a .pt2 parent's metadata: once
            if resolved.dataset is not None:
                return resolved.validate()
        if not self.source.endswith(".pt2") and self.source not in ARCHITECTURES:
            raise EvaluatorError(f"source must be one of {', '.join(ARCHITECTURES)} or a .pt2 file, got {self.source!r}")
        if self.source.endswith(".pt2") and not Path(self.source).is_file():
            raise EvaluatorError(f"source file not found: {self.source}")
        if self.dataset is None:
            raise EvaluatorError(f"dataset must be given: {self.source} carries no evaluator metadata naming the data it "
                                 "classifies", field="dataset")
        if self.image_size is not None and self.source.endswith(".pt2"):
            raise EvaluatorError("image_size is for a parent trained here: a .pt2 parent decodes images at its own input size")
        unknown = [method for method in self.methods if method not in METHODS]
        if unknown:
            raise EvaluatorError(f"unknown pruning method {unknown[0]!r}: see `evaluator prune --list`")
        if len(set(self.methods)) < len(self.methods):
            raise EvaluatorError(f"methods must name each method once, got {list(self.methods)}")
        if not self.rates or any(not (rate >= 1 and math.isfinite(rate)) for rate in self.rates):
            raise EvaluatorError(f"rates must be finite numbers >= 1 (1 = the unpruned parent), got {self.rates}")
        from evaluator.precision import PRECISIONS
        from exporters.quantize import CALIBRATION_METHODS

        wrong = [name for name in self.precisions if name not in PRECISIONS]
        if not self.precisions or wrong or len(set(self.precisions)) < len(self.precisions):
            raise EvaluatorError(f"precisions must name some of {', '.join(PRECISIONS)}, each once, got {list(self.precisions)}")
        if self.calibration_method not in CALIBRATION_METHODS:
            raise EvaluatorError(f"calibration_method must be minmax, entropy or percentile, got {self.calibration_method!r}")
        if self.schedule not in ("iterative", "oneshot"):
            raise EvaluatorError(f"schedule must be iterative or oneshot, got {self.schedule!r}")
        if not 0 < self.rate_tolerance < 1:
            raise EvaluatorError(f"rate_tolerance must be a share between 0 and 1, got {self.rate_tolerance:g}")
        if not 0 <= self.retime_rounds <= MAX_RETIME_ROUNDS:
            raise EvaluatorError(f"retime_rounds must be 0 (keep the latency of each assessment) to {MAX_RETIME_ROUNDS}, "
                                 f"got {self.retime_rounds}")
        if self.image_size is not None:
            from exporters.architectures import check_input_size

            check_input_size(self.source, 3, self.image_size)
        for name, least in (("samples", 1), ("calibration_samples", 1), ("train_epochs", 1), ("patience", 1), ("finetune_epochs", 0), ("batch_size", 1),
                            ("throughput_batch", 1)):
            if getattr(self, name) < least:
                raise EvaluatorError(f"{name} must be a whole number >= {least}, got {getattr(self, name)}")
        for name in ("train_epochs", "finetune_epochs"):
            if getattr(self, name) > MAX_EPOCHS:
                raise EvaluatorError(f"{name} must be at most {MAX_EPOCHS:,}, got {getattr(self, name):,}")
        for name in ("learning_rate", "width"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise EvaluatorError(f"{name} must be a finite number > 0, got {getattr(self, name)}")
        if not 0 <= self.seed <= MAX_SEED:
            raise EvaluatorError(f"seed must be a whole number from 0 to 2**63 - 1, got {self.seed}")
        if self.threads is not None:
            choose_threads(self.threads)
        if not 1 <= self.workers <= MAX_WORKERS:
            raise EvaluatorError(f"workers must be a whole number from 1 to {MAX_WORKERS}, got {self.workers}", field="workers")
        if self.workers > 1 or self.ray_address is not None:
            from evaluator.app.sweep_engine import check_reachable, import_ray

            import_ray()
            if self.ray_address is not None:
                self.check_paths_absolute()
                check_reachable(self.ray_address)
        if self.provider not in PROVIDERS:
            raise EvaluatorError(f"unknown provider {self.provider!r}: expected {', '.join(PROVIDERS)}")
        check_device(self.device)
        check_torch_device(self.torch_device)
        assess = self.assess_config()
        check_budgets(assess)
        assess.create_attacks()
        check_out(Path(self.out))
        self.check_data()

    def check_paths_absolute(self) -> None:
        """On a cluster every node resolves the sweep's paths in its own working folder: they must be absolute."""
        paths = {"out": self.out, "data_dir": self.data_dir, "source": self.source if self.source.endswith(".pt2") else None,
                 "dataset": self.dataset if self.dataset and Path(self.dataset).exists() else None}
        for name, value in paths.items():
            if value is not None and not Path(value).is_absolute():
                raise EvaluatorError(f"{name} must be an absolute path with ray_address (every node of the cluster "
                                     f"reads and writes it, on a filesystem they share), got {value}", field=name)

    def input_shape(self) -> tuple[int, int, int] | None:
        """The (C, H, W) an image folder is decoded to for a parent trained here (None: the format's default)."""
        return None if self.image_size is None else (3, self.image_size, self.image_size)

    def trains_here(self) -> bool:
        """Whether the sweep trains or fine-tunes (a parent from scratch, or any pruning step)."""
        return not self.source.endswith(".pt2") or (bool(self.methods) and any(rate > 1 for rate in self.rates))

    def check_data(self) -> None:
        """The dataset loads, has a training split larger than the validation split where the sweep trains, and a
        .pt2 source loads (checked as every .pt2) and takes the dataset's inputs."""
        from evaluator.datasets import load_dataset
        from exporters.workflows import VALIDATION_SIZE, recorded_validation_size

        validation, shape = VALIDATION_SIZE, self.input_shape()
        if self.source.endswith(".pt2"):
            from exporters.artifacts import load_trainable

            _, spec, metadata = load_trainable(Path(self.source))
            expected = shape = spec.input_shape
        assert self.dataset is not None  # validate checked it
        dataset = load_dataset(self.dataset, self.data_dir, input_shape=shape)
        if self.source.endswith(".pt2"):
            if dataset.input_shape != expected:
                raise EvaluatorError(f"{self.source} expects inputs {expected}, dataset {dataset.name!r} has {dataset.input_shape}")
            validation = recorded_validation_size(metadata)
        if not self.trains_here():
            return
        if dataset.train is None:
            raise EvaluatorError(f"dataset {dataset.name!r} has no training split (an .npz needs x_train, y_train, "
                                 "x_test, y_test): the sweep trains or fine-tunes")
        if not 0 < validation < len(dataset.train):
            raise EvaluatorError(f"dataset {dataset.name!r} has {len(dataset.train)} training samples: training and "
                                 f"fine-tuning hold out {validation} for validation and need more than that")


PER_MODEL_FIELDS = ("source", "surrogate", "latency_batches", "inputs")  # AssessConfig fields a sweep sets per variant, or not
# (a sweep's own `source` is the parent to train or prune, not a variant's PyTorch source)
ASSESS_FIELDS = tuple(f.name for f in fields(AssessConfig)
                      if f.name in {g.name for g in fields(SweepConfig)} and f.name not in PER_MODEL_FIELDS)


def check_out(out: Path) -> None:
    """The results folder is a folder or can be made one: neither it nor a folder above it is a file."""
    for folder in (out, *out.parents):
        if folder.is_dir():
            return
        if folder.exists():
            raise EvaluatorError(f"out {out} is a file, not a folder" if folder == out else f"out {out}: {folder} is a file, not a folder")
        if folder.is_symlink():
            raise EvaluatorError(f"out {out}: {folder} is a broken link")


def load_sweep_file(path: Path, overrides: dict[str, Any]) -> SweepConfig:
    """A TOML file of SweepConfig keys (a [sweep] table or top level), then command-line overrides."""
    path = Path(path)
    text = read_text_file(path, "sweep file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise EvaluatorError(f"{path} is not valid TOML: {error}") from None
    if "sweep" in data:
        if not isinstance(data["sweep"], dict):
            raise EvaluatorError(f"{path}: sweep must be a table of settings ([sweep]), got a {toml_type(data['sweep'])}")
        outside = sorted(set(data) - {"sweep"})
        if outside:
            raise EvaluatorError(f"{path}: setting {outside[0]!r} is outside the [sweep] table (put every setting in it)")
        data = data["sweep"]
    return make_config({**data, **overrides}, str(path))


def toml_type(value: Any) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "list", dict: "table"}
    return names.get(type(value), "date or time")


def make_config(values: dict[str, Any], origin: str = "options") -> SweepConfig:
    """SweepConfig from plain values (TOML types or strings); one clear error for an unknown key or a wrong type."""
    known = {f.name: f for f in fields(SweepConfig)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise EvaluatorError(f"{origin}: unknown sweep setting {unknown[0]!r}: expected one of {', '.join(sorted(known))}")
    defaults = SweepConfig()
    if "attacks" not in values:
        asked = [norm for norm, key in BUDGET_FIELDS.items() if values.get(key) is not None]
        without = [norm for norm in asked if norm not in DEFAULT_CASCADES]
        if without:
            raise EvaluatorError(f"{origin}: {without[0]} budgets are given but no default attack works in {without[0]}: "
                                 "name the attacks (see `evaluator attacks`)")
        defaults = replace(defaults, attacks=default_attacks(asked))
    converted: dict[str, Any] = {}
    for key, value in values.items():
        default = getattr(defaults, key)
        try:
            converted[key] = convert(value, default, key)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            raise EvaluatorError(f"{origin}: sweep setting {key} = {value!r} is not a valid {describe(default, key)}") from None
    config = replace(defaults, **converted)
    if "attacks" in values:
        try:
            check_attack_norms(config.assess_config(), [norm for norm, key in BUDGET_FIELDS.items() if key in values])
        except EvaluatorError as error:
            raise EvaluatorError(f"{origin}: {error}") from None
    return config


def convert(value: Any, default: Any, key: str) -> Any:
    if key in ("threads", "image_size"):  # None: the free cores; the format's default size
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError
        return value
    if key in ("out", "data_dir"):
        if value is not None and ("\0" in str(value) or not str(value).strip()):
            raise ValueError  # an empty path would mean the current folder
        return None if value is None else Path(value)
    if isinstance(default, tuple):
        items = value.split(",") if isinstance(value, str) else list(value)
        element = default[0] if default else ""
        if isinstance(element, str):
            return tuple(str(item).strip() for item in items if str(item).strip())
        return tuple(float(Fraction(str(item).strip())) for item in items)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise TypeError
        return int(value)
    if isinstance(default, float):
        return float(Fraction(str(value)))
    if not isinstance(value, str):
        raise TypeError
    return value


def describe(default: Any, key: str) -> str:
    if key in ("out", "data_dir"):
        return "path"
    if key in ("dataset", "ray_address"):
        return "str"
    if key in ("threads", "image_size"):
        return "whole number"
    if isinstance(default, tuple):
        return "list"
    return type(default).__name__
