"""`evaluator sweep`: train or load a parent, prune it with every method to every rate, assess every variant, and
write one results directory (table, figures, report).

Layout of the results directory:
    sweep.json               the resolved configuration
    models/                  the parent and every pruned variant (.pt2, .onnx, .json card)
    assessments/NAME.json    one `evaluator assess --json` per variant, with the hash of its inputs
    table.csv|json|md        one row per variant
    figures/*.png|svg        the study's grid, robustness curves, latency vs robustness, the scenario
    report.html              everything above in one self-contained file

Every step is cached by a hash of its inputs and every file is written atomically, so a sweep that was
interrupted (also killed) resumes where it stopped and ends with the same results as an uninterrupted one (except
the wall-clock latency of variants assessed again, which no two runs share). A missing, partial or corrupt file
only means its step is done again.

The whole configuration is checked before anything is written. A running sweep holds an exclusive lock on
OUT/.sweep.lock (flock: the system releases it when the process ends, killed or not); a second sweep on the same
OUT refuses at once with the first one's pid rather than waiting. The lock file stays in OUT: deleting it could
let two sweeps lock two different files.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import re
import tomllib
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from evaluator.assessment import AssessConfig, assess, check_budgets
from evaluator.default_attacks import DEFAULT_ATTACKS, DEFAULT_CASCADES, default_attacks
from evaluator.errors import EvaluatorError
from evaluator.limits import MAX_EPOCHS
from evaluator.threads import choose_threads, training_threads
from evaluator.files import (is_inside, json_text, read_json_object, read_text_file, sha256_of, stem_file,
                             write_bytes_atomic, write_text_atomic)

SWEEP_SCHEMA_VERSION = "1.0"
TRAIN_CACHE_VERSION = "2"  # bump when a change of the evaluator changes trained parents
# bump when a change of the evaluator changes assessment numbers (3: CW warm start, ties; 4: nested sample of the
# test split, per-sample outcomes and intervals in the JSON; 5: APGD attacks stop when fooled)
ASSESS_CACHE_VERSION = "5"
ARCHITECTURES = ("lenet5", "resnet8", "vgg11")
STUDY_METHODS = tuple(f"{granularity}-{criterion}" for granularity in ("unstructured", "kernel", "filter")
                      for criterion in ("global-magnitude", "local-magnitude", "local-random"))
PROVIDERS = ("auto", "cpu", "cuda")
MAX_RETIME_ROUNDS = 100
MAX_SEED = 2**63 - 1  # as the CLI's other commands (torch takes up to 2**64 - 1)
LOCK_FILE = ".sweep.lock"
STALE_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")  # evaluator.files.write_bytes_atomic's, left by a killed run
RESULT_FOLDERS = ("", "models", "assessments", "figures")


@dataclass(frozen=True)
class SweepConfig:
    """Everything that decides a sweep's results. Budgets as in AssessConfig (Linf/L2/L1 pixel units, L0 pixels)."""

    source: str = "lenet5"  # an architecture to train, or a .pt2 made by `evaluator train` / `prune`
    out: Path = Path("sweep-results")
    dataset: str = "fashion-mnist"
    data_dir: Path | None = None
    width: float = 1.0
    train_epochs: int = 30
    methods: tuple[str, ...] = STUDY_METHODS
    rates: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64)
    schedule: str = "iterative"
    rate_tolerance: float = 0.05  # accepted relative distance of an achieved compression rate from its target
    finetune_epochs: int = 10
    patience: int = 3
    learning_rate: float = 1e-3
    attacks: tuple[str, ...] = DEFAULT_ATTACKS  # make_config: the default cascades of the norms whose budgets are given
    epsilons: tuple[float, ...] = (8 / 255,)
    epsilons_l2: tuple[float, ...] = (1.0,)
    epsilons_l1: tuple[float, ...] = (10.0,)
    epsilons_l0: tuple[float, ...] = (10.0,)
    samples: int = 1000
    provider: str = "auto"
    skip_latency: bool = False
    retime_rounds: int = 0  # > 0: after assessing, time every variant again in this many interleaved rounds
    threads: int | None = None  # torch's and ONNX Runtime's; None: the free cores (evaluator.threads); not in any cache key
    seed: int = 0

    def assess_config(self) -> AssessConfig:
        return AssessConfig(dataset=self.dataset, data_dir=self.data_dir, samples=self.samples, epsilons=self.epsilons,
                            epsilons_l2=self.epsilons_l2, epsilons_l1=self.epsilons_l1, epsilons_l0=self.epsilons_l0,
                            attacks=self.attacks, provider=self.provider, threads=self.threads, seed=self.seed,
                            skip_latency=self.skip_latency)

    def to_dict(self) -> dict[str, Any]:
        return {key: str(value) if isinstance(value, Path) else value for key, value in asdict(self).items()}

    def validate(self) -> None:
        """Every setting, the source and its files, the dataset and the results folder: all before anything is
        written. Loads the dataset (and a .pt2 source) once to see that they load and fit."""
        from exporters.pruning.methods import METHODS

        if not self.source.endswith(".pt2") and self.source not in ARCHITECTURES:
            raise EvaluatorError(f"source must be one of {', '.join(ARCHITECTURES)} or a .pt2 file, got {self.source!r}")
        if self.source.endswith(".pt2"):
            source = Path(self.source)
            if not source.is_file():
                raise EvaluatorError(f"source file not found: {self.source}")
            for suffix in (".onnx", ".json"):
                if not source.with_suffix(suffix).is_file():
                    raise EvaluatorError(f"{source.with_suffix(suffix)} is missing: a sweep's parent needs its .pt2, .onnx "
                                         "and .json (from `evaluator train`)")
        unknown = [method for method in self.methods if method not in METHODS]
        if unknown:
            raise EvaluatorError(f"unknown pruning method {unknown[0]!r}: see `evaluator prune --list`")
        if not self.rates or any(not (rate >= 1 and math.isfinite(rate)) for rate in self.rates):
            raise EvaluatorError(f"rates must be finite numbers >= 1 (1 = the unpruned parent), got {self.rates}")
        if self.schedule not in ("iterative", "oneshot"):
            raise EvaluatorError(f"schedule must be iterative or oneshot, got {self.schedule!r}")
        if not 0 < self.rate_tolerance < 1:
            raise EvaluatorError(f"rate_tolerance must be a share between 0 and 1, got {self.rate_tolerance:g}")
        if not 0 <= self.retime_rounds <= MAX_RETIME_ROUNDS:
            raise EvaluatorError(f"retime_rounds must be 0 (keep the latency of each assessment) to {MAX_RETIME_ROUNDS}, "
                                 f"got {self.retime_rounds}")
        for name, least in (("samples", 1), ("train_epochs", 1), ("patience", 1), ("finetune_epochs", 0)):
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
        if self.provider not in PROVIDERS:
            raise EvaluatorError(f"unknown provider {self.provider!r}: expected {', '.join(PROVIDERS)}")
        check_budgets(self.assess_config())
        self.assess_config().create_attacks()
        check_out(Path(self.out))
        self.check_data()

    def trains_here(self) -> bool:
        """Whether the sweep trains or fine-tunes (a parent from scratch, or any pruning step)."""
        return not self.source.endswith(".pt2") or (bool(self.methods) and any(rate > 1 for rate in self.rates))

    def check_data(self) -> None:
        """The dataset loads, has a training split larger than the validation split where the sweep trains, and a
        .pt2 source loads (checked as every .pt2) and takes the dataset's inputs."""
        from evaluator.data import load_dataset
        from exporters.workflows import VALIDATION_SIZE, recorded_validation_size

        dataset = load_dataset(self.dataset, self.data_dir)
        validation = VALIDATION_SIZE
        if self.source.endswith(".pt2"):
            from exporters.artifacts import load_trainable

            _, spec, metadata = load_trainable(Path(self.source))
            expected = (spec.in_channels, spec.image_size, spec.image_size)
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
        budgets = {"epsilons": "Linf", "epsilons_l2": "L2", "epsilons_l1": "L1", "epsilons_l0": "L0"}
        asked = [norm for key, norm in budgets.items() if values.get(key) is not None]
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
    return replace(defaults, **converted)


def convert(value: Any, default: Any, key: str) -> Any:
    if key == "threads":  # None: the free cores
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
    if key == "threads":
        return "whole number"
    if isinstance(default, tuple):
        return "list"
    return type(default).__name__


def digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class SweepResult:
    out: Path
    rows: list[dict[str, Any]]
    failures: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


Say = Callable[[str], None]


def run_sweep(config: SweepConfig, progress: Any = None, say: Say = lambda message: None) -> SweepResult:
    """The whole study for one parent; `progress` is a rich Progress for the long steps."""
    config.validate()
    out = Path(config.out)
    make_folder(out)
    with sweep_lock(out):
        for name in RESULT_FOLDERS[1:]:  # a link planted in OUT must not carry the results elsewhere
            if (out / name).exists() and not is_inside(out / name, out):
                raise EvaluatorError(f"{out / name} leads outside {out}: remove it or choose another --out")
        remove_stale_temporaries(out)
        with training_threads(config.threads):
            return sweep_locked(config, out, progress, say)


def sweep_locked(config: SweepConfig, out: Path, progress: Any, say: Say) -> SweepResult:
    """run_sweep's work, with the configuration checked and OUT locked."""
    models = out / "models"
    make_folder(models)
    write_text_atomic(out / "sweep.json", json.dumps({"schema_version": SWEEP_SCHEMA_VERSION, "config": config.to_dict()}, indent=2) + "\n")
    parent = prepare_parent(config, models, progress, say)
    variants, failures = [parent], []
    for method in config.methods:
        pruned, failure = prune_method(config, parent, method, progress, say)
        variants += pruned
        if failure:
            failures.append(failure)
            say(f"[yellow]note[/yellow] {failure}")
    assessments = [assess_variant(config, onnx, out / "assessments", say) for onnx in variants]
    if config.retime_rounds and not config.skip_latency:
        assessments = retime_variants(config, variants, assessments, out / "assessments", progress, say)
    from evaluator.table import table_row, with_parent_drop

    rows = with_parent_drop([table_row(model) for assessment in assessments for model in assessment["models"]])
    files = write_outputs(config, out, rows, assessments, failures)
    return SweepResult(out, rows, failures, files)


def make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EvaluatorError(f"cannot create {folder}: {error.strerror or error}") from None


@contextmanager
def sweep_lock(out: Path) -> Iterator[None]:
    """OUT/.sweep.lock held exclusively (flock) while the block runs; EvaluatorError at once if another sweep holds it.
    The holder writes its pid into the file for the refusal to name."""
    path = out / LOCK_FILE
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as error:
        raise EvaluatorError(f"cannot open the lock file {path}: {error.strerror or error}") from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise EvaluatorError(f"cannot lock {path}: {error.strerror or error}") from None
            holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip()
            raise EvaluatorError(f"{out} is in use by another sweep (pid {holder if holder.isdigit() else 'unknown'})") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def remove_stale_temporaries(out: Path) -> None:
    """Temporary files a killed sweep left behind (atomic writes, parent copies); only called with OUT locked, when
    no other sweep can be writing them."""
    for name in RESULT_FOLDERS:
        folder = out / name
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            stale = STALE_TEMPORARY.fullmatch(path.name) or (name == "models" and path.name.endswith(".part"))
            if stale and (path.is_symlink() or path.is_file()):
                path.unlink(missing_ok=True)  # a link itself, never what it points to


def prepare_parent(config: SweepConfig, models: Path, progress: Any, say: Say) -> Path:
    """The parent's .onnx in models/: trained (cached by a hash of the training inputs) or copied from a given .pt2."""
    if config.source.endswith(".pt2"):
        source = Path(config.source)
        for suffix in (".pt2", ".onnx", ".json"):
            original = source.with_suffix(suffix)
            if not original.is_file():
                raise EvaluatorError(f"{original} is missing: a sweep's parent needs its .pt2, .onnx and .json (from `evaluator train`)")
            copy = models / original.name
            if copy.is_symlink() or not copy.is_file() or sha256_of(copy) != sha256_of(original):
                write_bytes_atomic(copy, original.read_bytes())  # a fresh file renamed over whatever was there
        return models / source.with_suffix(".onnx").name
    from exporters.train import TrainConfig
    from exporters.workflows import DataOptions, train_architecture

    stem = models / f"{config.source}_{Path(config.dataset).stem}"
    train = TrainConfig(epochs=config.train_epochs, learning_rate=config.learning_rate, patience=config.patience, seed=config.seed)
    key = digest({"arch": config.source, "width": config.width, "dataset": config.dataset, "train": asdict(train), "cache": TRAIN_CACHE_VERSION})
    if trained_parent_matches(stem, key):
        say(f"parent {stem.name}: cached")
        return stem_file(stem, ".onnx")
    say(f"training the parent {config.source} on {config.dataset}")
    artifacts, _ = train_architecture(config.source, stem, DataOptions(config.dataset, config.data_dir), train, config.width,
                                      progress, card_extra={"sweep_key": key})
    return artifacts.onnx


def trained_parent_matches(stem: Path, key: str) -> bool:
    """Whether stem.{pt2,onnx,json} are a parent trained with this key (a missing or corrupt file: train again)."""
    card = read_json_object(stem_file(stem, ".json"))
    if card is None or card.get("sweep_key") != key or not isinstance(card.get("files"), dict):
        return False
    for suffix in ("pt2", "onnx"):
        entry, path = card["files"].get(suffix), stem_file(stem, f".{suffix}")
        if not (isinstance(entry, dict) and path.is_file() and entry.get("sha256") == sha256_of(path)):
            return False
    return True


def prune_method(config: SweepConfig, parent: Path, method: str, progress: Any, say: Say) -> tuple[list[Path], str | None]:
    """Every rate > 1 of one method; each step resumes from its cache. An unreachable rate ends the method with a reason
    (an iterative schedule cannot go past it) and keeps the steps before it."""
    from exporters.pruning.schedule import PruneRequest, run_schedule
    from exporters.train import TrainConfig

    rates = tuple(sorted(rate for rate in set(config.rates) if rate > 1))
    if not rates:
        return [], None
    finetune = TrainConfig(epochs=config.finetune_epochs, learning_rate=config.learning_rate, patience=config.patience, seed=config.seed)
    request = PruneRequest(method, rates, schedule=config.schedule, finetune=finetune, tolerance=config.rate_tolerance)  # type: ignore[arg-type]
    say(f"pruning {method} to rates {', '.join(f'{rate:g}' for rate in rates)}")
    stopped: list[str] = []
    steps = run_schedule(parent.with_suffix(".pt2"), request, parent.parent, None, config.dataset, config.data_dir,
                         config.seed, progress, stopped)
    return [step.artifacts.onnx for step in steps], (stopped[0] if stopped else None)


def assessment_key(assess_config: AssessConfig, onnx: Path) -> str:
    """The hash of what decides a variant's assessment: its files, the settings (threads aside) and the cache version."""
    inputs = {"onnx": sha256_of(onnx), "pt2": sha256_of(onnx.with_suffix(".pt2")) if onnx.with_suffix(".pt2").is_file() else None,
              "config": replace(assess_config, threads=None).to_dict(), "cache": ASSESS_CACHE_VERSION}
    return digest(inputs)


def assess_variant(config: SweepConfig, onnx: Path, folder: Path, say: Say) -> dict[str, Any]:
    """`evaluator assess --json` of one variant, cached under folder/NAME.json by a hash of every input."""
    assess_config = config.assess_config()
    key = assessment_key(assess_config, onnx)
    cached = folder / f"{onnx.stem}.json"
    data = read_json_object(cached)
    if data is not None and data.get("sweep_key") == key and isinstance(data.get("models"), list) and data["models"]:
        say(f"assess {onnx.stem}: cached")
        return data
    say(f"assessing {onnx.stem}")
    data = {**assess([onnx], assess_config).to_dict(), "sweep_key": key}
    write_text_atomic(cached, json_text(data) + "\n")
    return data


def retime_variants(config: SweepConfig, variants: list[Path], assessments: list[dict[str, Any]], folder: Path,
                    progress: Any, say: Say) -> list[dict[str, Any]]:
    """Latency of every variant measured again in config.retime_rounds rounds, each visiting every variant once at
    every batch size its assessment timed (odd rounds in reverse order). Each variant keeps its round with the lowest
    median: other work on a shared machine only ever adds time, and a slow spell then costs a variant one round
    rather than its figures, so ratios to the parent mean more. The new figures replace the assessment's and its
    cached file is rewritten (marked `latency_retimed`)."""
    from evaluator.latency import latency_stats, time_batch
    from evaluator.runtime import OnnxClassifier

    rounds = config.retime_rounds
    say(f"re-timing {len(variants)} variants in {rounds} interleaved rounds")
    runs: list[dict[int, list[list[float]]]] = [{int(batch): [] for batch in assessment["models"][0]["latency_by_batch"]}
                                                for assessment in assessments]
    threads = [(assessment.get("environment") or {}).get("threads") for assessment in assessments]  # as each was timed
    task = progress.add_task("re-timing latency", total=rounds * len(variants)) if progress else None
    for round_index in range(rounds):
        order = list(zip(variants, runs, threads))
        for onnx, collected, count in (order if round_index % 2 == 0 else order[::-1]):
            # a fresh session per visit: no 50 sessions held at once
            classifier = OnnxClassifier(onnx, config.provider, threads=count if isinstance(count, int) else None)
            for batch, per_round in collected.items():
                per_round.append(time_batch(classifier, batch, warmup=3, min_runs=20, min_seconds=0.25, max_seconds=3.0,
                                            seed=config.seed))
            if progress:
                progress.advance(task)
    updated = []
    for onnx, assessment, collected in zip(variants, assessments, runs):
        model = dict(assessment["models"][0])
        stats = {batch: latency_stats(batch, min(per_round, key=lambda times: float(np.median(times)))).to_dict()
                 for batch, per_round in collected.items()}
        model["latency_by_batch"] = {str(batch): value for batch, value in stats.items()}
        for key in ("latency", "throughput"):
            if model.get(key):
                model[key] = stats[int(model[key]["batch_size"])]
        data = {**assessment, "models": [model], "latency_retimed": {"rounds": rounds, "variants": len(variants)}}
        write_text_atomic(folder / f"{onnx.stem}.json", json_text(data) + "\n")
        updated.append(data)
    return updated


def write_outputs(config: SweepConfig, out: Path, rows: list[dict[str, Any]], assessments: list[dict[str, Any]],
                  failures: list[str]) -> list[Path]:
    """table.csv/json/md, figures and report.html from the rows."""
    from evaluator.table import TABLE_SCHEMA_VERSION, table_csv, table_markdown

    environment = assessments[0]["environment"] if assessments else {}
    table = {"schema_version": TABLE_SCHEMA_VERSION, "config": config.to_dict(), "environment": environment,
             "failures": failures, "rows": rows}
    written = [out / "table.json", out / "table.csv", out / "table.md"]
    write_text_atomic(written[0], json_text(table) + "\n")
    write_text_atomic(written[1], table_csv(rows))
    write_text_atomic(written[2], table_markdown(rows))
    written += write_report(config, out, rows, assessments, failures, environment)
    return written


def write_report(config: SweepConfig, out: Path, rows: list[dict[str, Any]], assessments: list[dict[str, Any]],
                 failures: list[str], environment: dict[str, Any]) -> list[Path]:
    """Figures and the HTML report (needs matplotlib: the `report` extra)."""
    try:
        import matplotlib  # noqa: F401
    except ModuleNotFoundError:
        return []
    from evaluator.report.html import write_report as write_html_report

    variant = lambda model: model["path"].rsplit("/", 1)[-1].removesuffix(".onnx")  # noqa: E731
    models = [model for assessment in assessments for model in assessment["models"]]
    context = {"title": f"evaluator sweep: {config.source} on {config.dataset}", "config": config.to_dict(),
               "environment": environment, "checks": {variant(m): m["checks"] for m in models},
               "notes": {variant(m): m["notes"] + (failures if m.get("pruning") is None else []) for m in models}}  # the parent carries the sweep's
    report, figures = write_html_report(out / "report.html", rows, context, figure_dir=out / "figures")
    return [*(path for figure in figures for path in (figure.png, figure.svg)), report]
