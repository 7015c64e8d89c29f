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
the figures observed at run time of variants assessed again, which no two runs share: latency, and the placement of
ONNX Runtime's kernels with their times). A missing, partial or corrupt file
only means its step is done again.

The whole configuration is checked before anything is written (SweepConfig.validate, evaluator/app/sweep_config.py).
A running sweep holds an exclusive lock on OUT/.sweep.lock (flock: the system releases it when the process ends,
killed or not); a second sweep on the same OUT refuses at once with the first one's pid rather than waiting. The
lock file stays in OUT: deleting it could let two sweeps lock two different files.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from evaluator.app.sweep_config import SweepConfig
from evaluator.app.sweep_engine import SerialEngine, bound, sweep_engine
from evaluator.app.sweep_latency import latency_record, retime_variants
from evaluator.app.sweep_precision import in_precisions
from evaluator.assess_config import AssessConfig
from evaluator.assessment import assess
from evaluator.errors import EvaluatorError
from evaluator.progress import Progress, SilentProgress
from evaluator.threads import training_threads
from evaluator.torch_device import training_device
from evaluator.results import Assessment, ModelAssessment, TableRow
from evaluator.files import (digest, is_inside, json_text, read_json_object, sha256_of, stem_file, write_bytes_atomic,
                             write_text_atomic)

SWEEP_SCHEMA_VERSION = "1.0"
TRAIN_CACHE_VERSION = "2"  # bump when a change of the evaluator changes trained parents
# bump when a change of the evaluator changes assessment numbers (3: CW warm start, ties; 4: nested sample of the
# test split, per-sample outcomes and intervals in the JSON; 5: APGD attacks stop when fooled;
# 6: minimal-norm candidates pushed past the deployed graph's boundary, precision and placement)
ASSESS_CACHE_VERSION = "6"
LOCK_FILE = ".sweep.lock"
STALE_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")  # evaluator.files.write_bytes_atomic's, left by a killed run
RESULT_FOLDERS = ("", "models", "assessments", "figures")


@dataclass
class SweepResult:
    out: Path
    rows: list[TableRow]
    failures: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


Say = Callable[[str], None]


def run_sweep(config: SweepConfig, progress: Progress = SilentProgress(), say: Say = lambda message: None) -> SweepResult:
    """The whole study for one parent; `progress` shows the long steps."""
    config = config.resolved()
    config.validate()
    out = Path(config.out)
    make_folder(out)
    with sweep_lock(out):
        for name in RESULT_FOLDERS[1:]:  # a link planted in OUT must not carry the results elsewhere
            if (out / name).exists() and not is_inside(out / name, out):
                raise EvaluatorError(f"{out / name} leads outside {out}: remove it or choose another --out")
        remove_stale_temporaries(out)
        with training_threads(config.threads), training_device(config.torch_device):
            return sweep_locked(config, out, progress, say)


def sweep_locked(config: SweepConfig, out: Path, progress: Progress, say: Say) -> SweepResult:
    """run_sweep's work, with the configuration checked and OUT locked."""
    engine = sweep_engine(config.workers, config.ray_address, config.threads, config.torch_device)  # before any file
    try:
        if not isinstance(engine, SerialEngine):
            say(f"steps run on {engine.description}")
        models = out / "models"
        make_folder(models)
        write_text_atomic(out / "sweep.json", json.dumps({"schema_version": SWEEP_SCHEMA_VERSION, "config": config.to_dict()},
                                                        indent=2) + "\n")
        parent = prepare_parent(config, models, progress, say)
        variants, failures = [parent], []
        for pruned, failure in engine.map(bound(prune_method, config, parent), config.methods, progress, say, "pruning"):
            variants += pruned
            if failure:
                failures.append(failure)
                say(f"[yellow]note[/yellow] {failure}")
        variants = in_precisions(config, variants, progress, say, failures, engine)
        cached = engine.map(bound(assess_step, config, out / "assessments"), variants, progress, say, "assessing")
    finally:
        engine.close()
    assessments, keys = [assessment for assessment, _ in cached], [key for _, key in cached]
    rounds = config.retime_rounds or (0 if isinstance(engine, SerialEngine) else 1)  # parallel tasks timed each other
    if rounds and not config.skip_latency:
        assessments = retime_variants(replace(config, retime_rounds=rounds), variants, assessments, keys,
                                      out / "assessments", progress, say)
    timing = {**latency_record(config, rounds, engine.description), "step_seconds": {
        label: [round(seconds, 3) for seconds in values] for label, values in engine.seconds.items()}}
    from evaluator.table import table_row, with_parent_drop

    rows = with_parent_drop([table_row(model) for assessment in assessments for model in assessment.models])
    files = write_outputs(config, out, rows, assessments, failures, timing)
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


def prepare_parent(config: SweepConfig, models: Path, progress: Progress, say: Say) -> Path:
    """The parent's .onnx in models/: trained (cached by a hash of the training inputs), copied from a given .pt2
    with its .onnx (and external data) and .json, or exported here from a .pt2 that has neither (a user's own)."""
    if config.source.endswith(".pt2"):
        source = Path(config.source)
        if all(source.with_suffix(suffix).is_file() for suffix in (".onnx", ".json")):
            return copy_parent(source, models)
        return import_parent(config, source, models, say)
    from exporters.train import TrainConfig
    from exporters.workflows import DataOptions, TrainRequest, train_architecture

    stem = models / f"{config.source}_{Path(config.dataset).stem}"
    train = TrainConfig(epochs=config.train_epochs, learning_rate=config.learning_rate, patience=config.patience, seed=config.seed)
    size = {} if config.image_size is None else {"image_size": config.image_size}  # keys of earlier sweeps unchanged
    key = digest({"arch": config.source, "width": config.width, "dataset": config.dataset, "train": asdict(train),
                  "cache": TRAIN_CACHE_VERSION, **size})
    if trained_parent_matches(stem, key):
        say(f"parent {stem.name}: cached")
        return stem_file(stem, ".onnx")
    say(f"training the parent {config.source} on {config.dataset}")
    request = TrainRequest(config.source, DataOptions(config.dataset, config.data_dir, input_shape=config.input_shape()),
                           train, config.width)
    artifacts, _ = train_architecture(request, stem, progress, card_extra={"sweep_key": key})
    return artifacts.onnx


def copy_parent(source: Path, models: Path) -> Path:
    """source's .pt2, .onnx (with the external data files it names) and .json copied into models/ (a copy that already
    matches is kept); the copy's .onnx."""
    from evaluator.profile import external_data_files

    folder = source.parent.resolve()
    originals = [source, source.with_suffix(".onnx"), source.with_suffix(".json"), *external_data_files(source.with_suffix(".onnx"))]
    for original in originals:
        copy = models / original.resolve().relative_to(folder)  # external data may sit in a subfolder
        make_folder(copy.parent)
        if copy.is_symlink() or not copy.is_file() or sha256_of(copy) != sha256_of(original):
            write_bytes_atomic(copy, original.read_bytes())  # a fresh file renamed over whatever was there
    return models / source.with_suffix(".onnx").name


def import_parent(config: SweepConfig, source: Path, models: Path, say: Say) -> Path:
    """A .pt2 without its .onnx and .json beside it (a user's own torch.export program, or an evaluator .pt2 alone):
    rebuilt, exported and verified into models/ as `evaluator train` writes a parent, cached by the .pt2's hash."""
    from evaluator.datasets import load_dataset
    from exporters.artifacts import load_trainable, save_artifacts
    from exporters.train import accuracy
    from exporters.workflows import base_metadata

    stem = models / source.stem
    key = digest({"pt2": sha256_of(source), "dataset": config.dataset, "cache": TRAIN_CACHE_VERSION})
    if trained_parent_matches(stem, key):
        say(f"parent {stem.name}: cached")
        return stem_file(stem, ".onnx")
    say(f"exporting the parent {source.name}")
    model, spec, metadata = load_trainable(source)
    dataset = load_dataset(config.dataset, config.data_dir, input_shape=spec.input_shape)
    metadata = {"training": None, "pruning": None, "parent": None, **metadata, **base_metadata(dataset, spec, models)}
    artifacts = save_artifacts(model, stem, metadata, dataset.test, {"sweep_key": key, "imported_from": str(source),
                                                                     "test_accuracy": accuracy(model, dataset.test)})
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


def prune_method(config: SweepConfig, parent: Path, method: str, progress: Progress, say: Say) -> tuple[list[Path], str | None]:
    """Every rate > 1 of one method; each step resumes from its cache. An unreachable rate ends the method with a reason
    (an iterative schedule cannot go past it) and keeps the steps before it."""
    from exporters.pruning.schedule import PruneJob, PruneRequest, run_schedule
    from exporters.train import TrainConfig

    rates = tuple(sorted(rate for rate in set(config.rates) if rate > 1))
    if not rates:
        return [], None
    finetune = TrainConfig(epochs=config.finetune_epochs, learning_rate=config.learning_rate, patience=config.patience, seed=config.seed)
    request = PruneRequest(method, rates, schedule=config.schedule, finetune=finetune, tolerance=config.rate_tolerance)  # type: ignore[arg-type]
    say(f"pruning {method} to rates {', '.join(f'{rate:g}' for rate in rates)}")
    stopped: list[str] = []
    job = PruneJob(parent.with_suffix(".pt2"), parent.parent, dataset=config.dataset, data_dir=config.data_dir, seed=config.seed)
    steps = run_schedule(job, request, progress, stopped)
    for step in steps:
        if step.resumed:
            say(f"{method} CR {step.rate:g}: cached")
    return [step.artifacts.onnx for step in steps], (stopped[0] if stopped else None)


def machine_free(settings: dict[str, Any]) -> dict[str, Any]:
    """An assessment's settings less those naming this machine's devices (which GPU, where torch computes): the same
    results on any machine, so the same cache key."""
    return {key: value for key, value in settings.items() if key not in ("device", "torch_device")}


def assessment_key(assess_config: AssessConfig, onnx: Path) -> str:
    """The hash of what decides a variant's assessment: its files, the settings (threads aside) and the cache version."""
    from evaluator.profile import external_data_files

    inputs = {"onnx": sha256_of(onnx), "pt2": sha256_of(onnx.with_suffix(".pt2")) if onnx.with_suffix(".pt2").is_file() else None,
              "config": machine_free(replace(assess_config, threads=None).to_dict()), "cache": ASSESS_CACHE_VERSION}
    external = [sha256_of(path) for path in external_data_files(onnx)]
    if external:  # only then, so that the keys of earlier sweeps stay the same
        inputs["external_data"] = external
    return digest(inputs)


def assess_step(config: SweepConfig, folder: Path, onnx: Path, progress: Progress, say: Say) -> tuple[Assessment, str]:
    """assess_variant as an engine step (sweep_engine)."""
    return assess_variant(config, onnx, folder, say)


def assess_variant(config: SweepConfig, onnx: Path, folder: Path, say: Say) -> tuple[Assessment, str]:
    """`evaluator assess --json` of one variant, cached under folder/NAME.json with a hash of every input (the
    assessment and that hash)."""
    assess_config = config.assess_config()
    key = assessment_key(assess_config, onnx)
    cached = folder / f"{onnx.stem}.json"
    data = read_json_object(cached)
    if data is not None and data.get("sweep_key") == key:
        try:
            assessment = Assessment.from_dict(data)
        except (ValueError, KeyError, TypeError, AttributeError):
            pass  # written by another version: assessed again
        else:
            if len(assessment.models) == 1:
                say(f"assess {onnx.stem}: cached")
                return assessment, key
    say(f"assessing {onnx.stem}")
    assessment = assess([onnx], assess_config)
    write_text_atomic(cached, json_text({**assessment.to_dict(), "sweep_key": key}) + "\n")
    return assessment, key


def write_outputs(config: SweepConfig, out: Path, rows: list[TableRow], assessments: list[Assessment],
                  failures: list[str], timing: dict[str, Any] | None = None) -> list[Path]:
    """table.csv/json/md, figures and report.html from the rows; `timing` (latency_record) goes into table.json."""
    from evaluator.table import TABLE_SCHEMA_VERSION, table_csv, table_markdown

    environment = assessments[0].environment if assessments else {}
    table = {"schema_version": TABLE_SCHEMA_VERSION, "config": config.to_dict(), "environment": environment,
             "timing": timing, "failures": failures, "rows": [row.to_dict() for row in rows]}
    written = [out / "table.json", out / "table.csv", out / "table.md"]
    write_text_atomic(written[0], json_text(table) + "\n")
    write_text_atomic(written[1], table_csv(rows))
    write_text_atomic(written[2], table_markdown(rows))
    written += write_report(config, out, rows, assessments, failures, environment)
    return written


def write_report(config: SweepConfig, out: Path, rows: list[TableRow], assessments: list[Assessment],
                 failures: list[str], environment: dict[str, Any]) -> list[Path]:
    """Figures and the HTML report (needs matplotlib: the `report` extra)."""
    try:
        import matplotlib  # noqa: F401
    except ModuleNotFoundError:
        return []
    from evaluator.report.html import write_report as write_html_report

    models = [model for assessment in assessments for model in assessment.models]
    rows = [row if row.precision == "fp32" else replace(row, method=f"{row.method} {row.precision}") for row in rows]
    context = {"title": f"evaluator sweep: {config.source} on {config.dataset}", "config": config.to_dict(),
               "environment": environment,
               "checks": {variant_name(m): [check.to_dict() for check in m.checks] for m in models},
               "notes": {variant_name(m): [*m.notes, *(failures if not (m.metadata or {}).get("pruning") else [])]
                         for m in models}}  # the parent carries the sweep's failures
    report, figures = write_html_report(out / "report.html", rows, context, figure_dir=out / "figures")
    return [*(path for figure in figures for path in (figure.png, figure.svg)), report]


def variant_name(model: ModelAssessment) -> str:
    return model.path.rsplit("/", 1)[-1].removesuffix(".onnx")
