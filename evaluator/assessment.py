"""One assessment: per deployed model its size, speed, clean accuracy and robustness under attack."""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from evaluator.attacks import Attack, AttackTarget, is_minimal
from evaluator.assess_config import AssessConfig, check_budgets, check_torch_device
from evaluator.checks import (
    FLOAT_SOURCE_DISAGREEMENT, QUANTIZED_TIES, above_chance, deterministic, epsilon_monotone, gradients_nonzero,
    int8_kernels_exact, output_is_logits, source_agrees, unbounded_attacks_succeed, white_box_strongest,
)
from evaluator.datasets import Dataset, Split, load_dataset, recorded_dataset
from evaluator.errors import EvaluatorError
from evaluator.files import check_name, file_beside, sha256_of
from evaluator.latency import measure_latency
from evaluator.limits import check_batch
from evaluator.profile import conv_alignment, profile_model
from evaluator.progress import Step, silent_step
from evaluator.robustness import evaluate_attack, evaluate_minimal, worst_cases
from evaluator.runtime import CPU_EP, OnnxClassifier, nchwc_block
from evaluator.threads import assessment_threads
from evaluator.work_estimate import estimate_work
from evaluator.precision import INT8
from evaluator.precision_assessment import placement_of, precision_result
from evaluator.results import FLOAT_SOURCE_SUFFIX, FROM_CONVERTED_GRAPH, FROM_FLOAT_SOURCE, FROM_SOURCE, Assessment, AttackResult, AttackedSamples, LatencyStats, MinimalNormResult, ModelAssessment





def resolve_pt2(model_path: Path, record: dict[str, Any] | None, role: str) -> tuple[Path | None, list[str]]:
    """A .pt2 named in a model's metadata: a plain name beside the model (links followed, it stays in that folder)
    whose sha256 matches the record, checked before the file is opened for anything else."""
    if not record or not record.get("file"):
        return None, []
    candidate = file_beside(model_path, record["file"], f"the {role} file")
    if not candidate.is_file():
        return None, [f"{role} {record['file']} named in the metadata is not beside the model: its attacks are skipped"]
    if not record.get("sha256"):
        return None, [f"{role} {record['file']} named in the metadata has no sha256 to check it by: its attacks are "
                      "skipped (pass it explicitly to use it)"]
    if sha256_of(candidate) != record["sha256"]:
        raise EvaluatorError(f"{candidate} does not match the sha256 recorded in {model_path.name}: pass it explicitly to use it anyway")
    return candidate, []


def resolve_source(model_path: Path, metadata: dict[str, Any] | None, override: Path | None) -> tuple[Path | None, list[str]]:
    """The .pt2 behind a deployed model: the `source` given, else the file named in its metadata."""
    if override is not None:
        if not override.is_file():
            raise EvaluatorError(f"source file not found: {override}")
        return override, []
    return resolve_pt2(model_path, (metadata or {}).get("source"), "source")


def resolve_surrogate(model_path: Path, metadata: dict[str, Any] | None, override: Path | None) -> tuple[Path | None, list[str]]:
    """The transfer surrogate: the `surrogate` given (a .pt2, or an .onnx through its source), else the unpruned root's
    source."""
    if override is not None:
        if override.suffix == ".onnx":
            from evaluator.runtime import load_onnx
            from evaluator.metadata import read_metadata

            source, notes = resolve_pt2(override, (read_metadata(load_onnx(override)) or {}).get("source"), "surrogate source")
            if source is None:
                raise EvaluatorError(f"surrogate {override} names no PyTorch source beside it: pass its .pt2", field="surrogate")
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


def attack_indices(size: int, samples: int, seed: int) -> np.ndarray:
    """(min(samples, size),) int64 indices into a split of `size`, ascending: the first `samples` of one seeded
    permutation of the split, so for one seed a smaller sample is always a subset of a larger one."""
    if samples >= size:
        return np.arange(size, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).permutation(size)[:samples]).astype(np.int64)


def attack_subset(test: Split, samples: int, seed: int) -> Split:
    """The seeded sample of the test split for the attacks (`attack_indices`; the whole split if `samples` >= its size)."""
    if samples >= len(test):
        return test
    return test.take(attack_indices(len(test), samples, seed))


def assess_model(path: Path, config: AssessConfig, datasets: dict[str, Dataset], progress: Step, say: Step) -> ModelAssessment:
    classifier = OnnxClassifier(path, config.provider, config.batch_size, config.threads,  # type: ignore[arg-type]
                                config.inputs, config.device)
    for batch in {config.throughput_batch, *config.latency_batches}:  # before the data is loaded or anything timed
        setting = "throughput_batch" if batch == config.throughput_batch else None
        check_batch(batch, classifier.input_shape, setting or "latency batch", setting)
    metadata = classifier.metadata
    name = config.dataset or ((metadata or {}).get("dataset") and recorded_dataset(metadata["dataset"], Path(path)))
    if not name:
        raise EvaluatorError(f"dataset is needed: {path} carries no evaluator metadata naming the data it classifies "
                             "(fashion-mnist, mnist, cifar10, an .npz file or an image folder)", field="dataset")
    key = f"{name} {classifier.input_shape}"  # an image folder is decoded at each model's input size
    if key not in datasets:
        datasets[key] = load_dataset(name, config.data_dir, test_only=True, input_shape=classifier.input_shape)
    dataset = datasets[key]
    check_fit(classifier, dataset)
    notes = ([classifier.runtime.note] if classifier.runtime.note else []) + classifier.notes
    source, source_notes = resolve_source(Path(path), metadata, config.source)
    surrogate, surrogate_notes = resolve_surrogate(Path(path), metadata, config.surrogate)
    notes += source_notes + surrogate_notes
    profile = profile_model(Path(path), classifier.model)
    block = nchwc_block() if classifier.runtime.used == CPU_EP and profile.conv_layers else 1
    convs, unaligned = conv_alignment(classifier.model, block) if block > 1 else (0, 0)
    if unaligned:
        notes.append(f"{unaligned} of {convs} conv layers have channel counts off a multiple of {block}, the "
                     "block of ONNX Runtime's fast convolutions (NCHWc) on this CPU: it pads their filters or skips them")
    latency = throughput = None
    timed: dict[int, LatencyStats] = {}
    if not config.skip_latency:
        progress(f"{Path(path).name}: latency")
        for batch in sorted({1, config.throughput_batch, *config.latency_batches}):
            stats = measure_latency(classifier, batch, seed=config.seed)
            timed[stats.batch_size] = stats
        latency = timed[classifier.fixed_batch or 1]
        throughput = timed[classifier.fixed_batch or config.throughput_batch]
    progress(f"{Path(path).name}: clean accuracy")
    clean_accuracy = float((classifier.predict(dataset.test.x) == dataset.test.y).mean())
    parent_accuracy, parent_notes = parent_clean_accuracy(Path(path), metadata, config, dataset)
    notes += parent_notes
    progress(f"{Path(path).name}: precision and kernel placement")
    precision, precision_notes = precision_result(Path(path), classifier, config, dataset.test.x, dataset.test.y, throughput)
    placement, placement_notes = placement_of(classifier, precision.name, dataset.test.x, config.threads)
    notes += precision_notes + placement_notes
    indices = attack_indices(len(dataset.test), config.samples, config.seed)
    subset = attack_subset(dataset.test, config.samples, config.seed)
    subset_predictions = classifier.predict(subset.x)  # once, not per attack and epsilon
    attacked = AttackedSamples(config.seed, indices, subset.y.copy(), subset_predictions == subset.y)
    attacks = config.create_attacks()
    target, gradients, notes_of_source = white_box_target(classifier, source, surrogate, config, precision.name,
                                                          attacks, subset.x)
    notes += notes_of_source
    second = (AttackTarget(classifier, source, surrogate, torch_device=config.torch_device)
              if gradients == FROM_CONVERTED_GRAPH and source is not None and precision.is_reduced else None)
    runnable = [attack for attack in attacks if skip_reason(attack, target) is None]
    if runnable and say is not silent_step:  # the probe costs a few passes: only when someone is told
        say(f"{Path(path).name}: attacks {estimate_work(target, runnable, config.epsilons_for, subset.x).line()}")
    results, minimal = run_attacks(attacks, target, subset, subset_predictions, config, f"{Path(path).name}: ", progress,
                                   notes, second)
    checks = [above_chance(clean_accuracy, len(dataset.test), classifier.num_classes),
              output_is_logits(classifier.logits(subset.x[:256])), deterministic(classifier, subset.x[:64])]
    if target.has_gradients() and any(r.kind == "white-box" for r in results):
        allowed = {FROM_FLOAT_SOURCE: FLOAT_SOURCE_DISAGREEMENT,
                   FROM_CONVERTED_GRAPH: QUANTIZED_TIES if precision.is_reduced else 0.0}.get(gradients or "", 0.0)
        checks.append(source_agrees(target.source(), classifier, subset.x, allowed))
        checks.append(gradients_nonzero(target.source(), subset.x[:500], subset.y[:500]))
    if precision.name == INT8 and classifier.runtime.used == CPU_EP:  # the reference runs on the CPU
        checks.append(int8_kernels_exact(classifier, subset.x[:256]))
    if results:
        checks += [white_box_strongest(results), epsilon_monotone(results)]
    if minimal:
        checks.append(unbounded_attacks_succeed(minimal))
    notes += [f"check {check.name} failed: {check.detail}" for check in checks if not check.passed]
    if classifier.runtime.note and classifier.runtime.note not in notes:  # the runtime moved to the CPU during a run
        notes.append(classifier.runtime.note)
    return ModelAssessment(str(path), dataset.name, profile, classifier.runtime, latency, throughput, tuple(timed.values()),
                           clean_accuracy, parent_accuracy,
                           len(dataset.test), tuple(results), tuple(minimal), tuple(worst_cases(results)), tuple(checks),
                           str(source) if source else None, metadata, tuple(notes), attacked, gradients, precision,
                           placement, target.device_used or (second.device_used if second else None))


def white_box_target(classifier: OnnxClassifier, source: Path | None, surrogate: Path | None, config: AssessConfig,
                     precision: str, attacks: list[Attack], x: np.ndarray) -> tuple[AttackTarget, str | None, list[str]]:
    """Where the white-box attacks take their gradients: the PyTorch source; for an int8 artifact the deployed graph
    converted to torch when it converts and agrees with ONNX Runtime (its forward is the int8 arithmetic, the
    rounding straight-through), else its float parent's source; the converted graph when there is no source.
    (target, FROM_* or None, notes)."""
    target = functools.partial(AttackTarget, classifier, surrogate_path=surrogate, torch_device=config.torch_device)
    if not any(attack.kind.value == "white-box" for attack in attacks):
        return target(source), None, []
    recorded = (classifier.metadata or {}).get("precision") is not None
    float_source = recorded and (config.source is None or sha256_of(Path(config.source)) ==
                                 ((classifier.metadata or {}).get("source") or {}).get("sha256"))
    if source is not None and not float_source:  # a source given for this graph itself
        return target(source), FROM_SOURCE, []
    if source is not None and precision != INT8:  # fp16, int8-dynamic: the float function is theirs up to rounding
        return target(source), FROM_FLOAT_SOURCE, []
    from evaluator.converted_source import converted_graph

    module, note = converted_graph(classifier, x)
    if module is not None:
        return target(None, _source=module), FROM_CONVERTED_GRAPH, [note]
    if source is not None:
        reason = note.removeprefix("white-box attacks skipped: ").split("; give its")[0]
        return target(source), FROM_FLOAT_SOURCE, [
            f"the int8 graph's own gradients are unavailable ({reason}): white-box attacks use its float parent's source"]
    return target(None), None, [note]


def parent_clean_accuracy(path: Path, metadata: dict[str, Any] | None, config: AssessConfig,
                          dataset: Dataset) -> tuple[float | None, list[str]]:
    """Clean accuracy of the unpruned root of a pruned model: the .onnx beside the root's .pt2 named in the pruning
    record, whose own metadata must name that .pt2 (same sha256). An iterative schedule's immediate parent is itself
    pruned, so the drop is measured against the root."""
    root = ((metadata or {}).get("pruning") or {}).get("root_source") or {}
    if not root.get("file"):
        return None, []
    candidate = file_beside(path, Path(check_name(root["file"], "the unpruned parent")).with_suffix(".onnx").name,
                            "the unpruned parent")
    if not candidate.is_file():
        return None, [f"unpruned parent {candidate.name} is not beside the model: no accuracy drop"]
    classifier = OnnxClassifier(candidate, config.provider, config.batch_size, config.threads,  # type: ignore[arg-type]
                                device_id=config.device)
    if ((classifier.metadata or {}).get("source") or {}).get("sha256") != root.get("sha256"):
        return None, [f"{candidate.name} is not the unpruned parent recorded in the metadata (sha256 of its source differs): no accuracy drop"]
    return float((classifier.predict(dataset.test.x) == dataset.test.y).mean()), []


def run_attacks(attacks: list[Attack], target: AttackTarget, subset: Split, predictions: np.ndarray, config: AssessConfig,
                label: str, progress: Step, notes: list[str],
                float_source: AttackTarget | None = None) -> tuple[list[AttackResult], list[MinimalNormResult]]:
    """Every attack (in order) at every epsilon of its norm (config's budgets). A minimal-norm attack runs once on all samples and gives its result at
    each epsilon from its distances. In a cascade the reported robust accuracy of an attack is that after it and every
    attack before it at that (norm, epsilon)."""
    results: list[AttackResult] = []
    minimal: list[MinimalNormResult] = []
    still_robust: dict[tuple[str, float], np.ndarray] = {}
    stages = [(target, attacks, "")]
    if float_source is not None:  # an int8 graph's float parent's source: its white-box attacks after the graph's own
        stages.append((float_source, [attack for attack in attacks if attack.kind.value == "white-box"], FLOAT_SOURCE_SUFFIX))
    for stage_target, stage_attacks, suffix in stages:
        for attack in stage_attacks:
            reason = skip_reason(attack, stage_target)
            if reason is not None:
                notes.append(f"{attack.name}{suffix} skipped: {reason}")
                continue
            norm = attack.norm.value
            if is_minimal(attack):
                progress(f"{label}{attack.name}{suffix} (minimal {norm})")
                found = evaluate_minimal(attack, stage_target, subset, config.seed, predictions)  # type: ignore[arg-type]
                minimal.append(replace(found, name=found.name + suffix))
            for epsilon in config.epsilons_for(norm):
                key = (norm, epsilon)
                mask = still_robust.get(key) if config.cascade else None
                if is_minimal(attack):
                    result = found.at_epsilon(epsilon, mask)
                else:
                    progress(f"{label}{attack.name}{suffix} eps={epsilon:.4g}")
                    result = evaluate_attack(attack, stage_target, subset, epsilon, config.seed, predictions, mask)
                results.append(replace(result, name=result.name + suffix))
                still_robust[key] = result.robust
    return results, minimal


def skip_reason(attack: Attack, target: AttackTarget) -> str | None:
    """Why `attack` cannot run on `target` (None when it can)."""
    if attack.kind.value == "white-box" and not target.has_gradients():
        return "no PyTorch source"
    if attack.kind.value == "transfer" and target.surrogate_path is None:
        return "no surrogate"
    if attack.min_classes > target.deployed.num_classes:
        return f"it needs a model with at least {attack.min_classes} classes, this one has {target.deployed.num_classes}"
    return None


def assess(paths: list[Path], config: AssessConfig, progress: Step = silent_step, say: Step = silent_step) -> Assessment:
    """Assess every model in `paths` with the same data, attacks and seed. `progress` starts each step; `say` is told
    things worth a line of their own (the estimate of each model's attack work)."""
    from evaluator.environment import environment_record

    if config.samples < 1:
        raise EvaluatorError(f"samples must be at least 1, got {config.samples}", field="samples")
    if not 0 <= config.seed < 2**63:
        raise EvaluatorError(f"seed must be a whole number from 0 to 2**63 - 1, got {config.seed}", field="seed")
    for setting in ("batch_size", "throughput_batch"):
        if getattr(config, setting) < 1:
            raise EvaluatorError(f"{setting} must be at least 1, got {getattr(config, setting)}", field=setting)
    check_budgets(config)
    config.create_attacks()  # unknown attacks and options fail before any work
    check_torch_device(config.torch_device)
    with assessment_threads(config.threads) as threads:  # torch's and ONNX Runtime's, one number
        run_config = replace(config, threads=threads.threads)
        datasets: dict[str, Dataset] = {}
        models = tuple(assess_model(path, run_config, datasets, progress, say) for path in paths)
    environment = {**environment_record(threads.threads), "threads_reason": threads.reason}
    return Assessment(models, config, environment)
