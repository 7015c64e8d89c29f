"""One assessment's results: per deployed model its profile, runtime, latency, the attacked samples, the attack
results and the sanity checks; frozen, with their JSON form. numpy only: renderers import these without the
attacks, the runtime or torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

import numpy as np

from evaluator.results.attacks import (
    OUTCOME_CODES, AttackResult, MinimalNormResult, WorstCase, curve_points, distance_list, interval, worst_distances,
)
from evaluator.results.placement import Placement
from evaluator.results.precision import PrecisionResult
from evaluator.results.schema import check_schema


class ConfigRecord(Protocol):
    """What an assessment's result keeps of its options (evaluator.assess_config.AssessConfig, which results do not
    import: it makes the attacks)."""

    cascade: bool

    def to_dict(self) -> dict[str, Any]: ...

@dataclass(frozen=True)
class LatencyStats:
    """Per-run wall time of one batch in milliseconds; throughput in samples per second."""

    batch_size: int
    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    throughput_per_s: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LatencyStats":
        return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class ModelProfile:
    """size_bytes, gzip_bytes and sha256 cover the .onnx file and its external data files, in that order (the files'
    bytes one after another); params / nonzero_params: elements of the weight initializers (floating-point, or int8 and int32 in a quantized
    graph; scales and zero points excluded); macs:
    multiply-accumulates at batch 1."""

    sha256: str
    size_bytes: int
    gzip_bytes: int
    params: int
    nonzero_params: int
    macs: int
    conv_layers: int
    unaligned_convs: int  # convs whose output channels (or input channels, past the first layer) are not multiples of 8
    external_data: tuple[str, ...] = ()  # the external data files (paths relative to the .onnx), counted in size and sha256

    def to_dict(self) -> dict:
        return {**asdict(self), "external_data": list(self.external_data)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelProfile":
        """From a model entry, where the profile's fields sit beside the others (no external_data before 1.3)."""
        plain = {f.name: data[f.name] for f in fields(cls) if f.name != "external_data"}
        return cls(**plain, external_data=tuple(data.get("external_data", ())))


@dataclass(frozen=True)
class RuntimeChoice:
    """The execution provider asked for, the one really used, whether CUDA graphs replay, and why (if it differs);
    on CUDA the GPU's number and name (from nvidia-smi, None where it is absent)."""

    requested: str
    used: str
    cuda_graph: bool = False
    note: str = ""
    device_id: int | None = None
    device_name: str | None = None


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Check":
        return cls(data["name"], data["passed"], data["detail"])


# 1.3: external_data (the model's external data files, counted in its size and sha256); gradients (where the
# white-box attacks' gradients came from).
FROM_SOURCE = "source"  # the model's PyTorch source (.pt2)
FROM_CONVERTED_GRAPH = "converted graph"  # the deployed graph converted to torch (evaluator.converted_source)
FROM_SURROGATE = "surrogate"  # the transfer attacks' surrogate (the unpruned parent's source, or --surrogate)
# 1.2: per-sample results (`samples`, `outcomes`, per-norm `distances`) and 95 % intervals (`*_ci`); the attacked
# sample is the first N of one seeded permutation of the test split (1.1 drew N without such nesting).
# 1.4: precision (the graph's precision; for an int8 or fp16 artifact its float32 parent's accuracy and throughput),
# float_accuracy_drop, placement (where each kernel ran, with fallbacks flagged).
# 1.5: cuda_graph, device_id, device_name (the GPU ONNX Runtime ran on), torch_device (where torch computed the attacks).
FROM_FLOAT_SOURCE = "float source"  # the float32 parent's PyTorch source, for an int8 or fp16 graph
# Appended to the name of a white-box attack that ran a second time with the float source's gradients, after an int8
# graph's own (converted) ones: the worst case per norm and epsilon takes both.
FLOAT_SOURCE_SUFFIX = " (float source)"
SCHEMA_VERSION = "1.5"
READABLE_SCHEMAS = ("1.2", "1.3", "1.4", "1.5")


@dataclass(frozen=True)
class AttackedSamples:
    """The test images the attacks ran on, in the order of every per-sample list of the assessment.

    indices: (N,) int, ascending, into the dataset's test split (the first N of one seeded permutation of it, so the
    same seed with a smaller N attacks a subset); labels: (N,) int, their true classes; clean_correct: (N,) bool,
    classified correctly by the deployed graph without attack."""

    seed: int
    indices: np.ndarray = field(repr=False, compare=False)
    labels: np.ndarray = field(repr=False, compare=False)
    clean_correct: np.ndarray = field(repr=False, compare=False)

    @property
    def clean_accuracy(self) -> float:
        """Share of the attacked samples classified correctly without attack: what robust accuracy is out of."""
        return float(self.clean_correct.mean()) if len(self.clean_correct) else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": "test",
            "seed": self.seed,
            "count": len(self.indices),
            "indices": [int(i) for i in self.indices],
            "labels": [int(label) for label in self.labels],
            "clean_correct": [bool(c) for c in self.clean_correct],
            "clean_accuracy": self.clean_accuracy,
            "clean_accuracy_ci": interval(int(self.clean_correct.sum()), len(self.clean_correct)),
            "outcome_codes": dict(OUTCOME_CODES),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AttackedSamples":
        return cls(data["seed"], np.array(data["indices"], dtype=np.int64), np.array(data["labels"], dtype=np.int64),
                   np.array(data["clean_correct"], dtype=bool))


@dataclass(frozen=True)
class ModelAssessment:
    path: str
    dataset: str
    profile: ModelProfile
    runtime: RuntimeChoice
    latency: LatencyStats | None
    throughput: LatencyStats | None
    latency_by_batch: tuple[LatencyStats, ...]
    clean_accuracy: float
    parent_clean_accuracy: float | None
    clean_samples: int
    attacks: tuple[AttackResult, ...]
    minimal: tuple[MinimalNormResult, ...]
    worst_case: tuple[WorstCase, ...]
    checks: tuple[Check, ...]
    source: str | None
    metadata: dict[str, Any] | None
    notes: tuple[str, ...] = field(default=())
    attacked: AttackedSamples | None = None
    gradients: str | None = None  # where the white-box attacks' gradients came from: FROM_SOURCE, FROM_CONVERTED_GRAPH,
    # FROM_FLOAT_SOURCE
    precision: PrecisionResult | None = None
    placement: Placement | None = None
    torch_device: str | None = None  # where torch computed the white-box and transfer attacks ('cpu', 'cuda:0 (NAME)')

    def to_dict(self) -> dict[str, Any]:
        """The JSON entry of one model (README, "JSON report"). Per-sample lists (`samples`, each result's `outcomes`
        and `distances`, the per-norm `distances`) are in the order of `samples.indices`."""
        return {
            "path": self.path,
            "dataset": self.dataset,
            **self.profile.to_dict(),
            "provider": self.runtime.used,
            "provider_requested": self.runtime.requested,
            "cuda_graph": self.runtime.cuda_graph,
            "device_id": self.runtime.device_id,
            "device_name": self.runtime.device_name,
            "torch_device": self.torch_device,
            "latency": self.latency.to_dict() if self.latency else None,
            "throughput": self.throughput.to_dict() if self.throughput else None,
            "latency_by_batch": {str(stats.batch_size): stats.to_dict() for stats in self.latency_by_batch},
            "clean_accuracy": self.clean_accuracy,
            "clean_accuracy_ci": interval(round(self.clean_accuracy * self.clean_samples), self.clean_samples),
            "parent_clean_accuracy": self.parent_clean_accuracy,
            "accuracy_drop": self.accuracy_drop,
            "clean_samples": self.clean_samples,
            "samples": self.attacked.to_dict() if self.attacked else None,
            "attacks": [result.to_dict() for result in self.attacks],
            "robustness": [worst.to_dict() for worst in self.worst_case],
            "minimal_norm": [result.to_dict() for result in self.minimal],
            "median_distance": self.median_distances(),
            "distances": {norm: distance_list(values) for norm, values in worst_distances(list(self.minimal)).items()},
            "curves": {norm: curve_points(values) for norm, values in worst_distances(list(self.minimal)).items()},
            "checks": [check.to_dict() for check in self.checks],
            "source": self.source,
            "gradients": self.gradients,
            "precision": self.precision.to_dict() if self.precision else None,
            "float_accuracy_drop": self.float_accuracy_drop,
            "placement": self.placement.to_dict() if self.placement else None,
            "architecture": (self.metadata or {}).get("architecture"),
            "pruning": (self.metadata or {}).get("pruning"),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelAssessment":
        """One entry of an assessment's "models" list as to_dict wrote it. What the JSON does not hold comes back
        empty: the metadata beyond architecture and pruning, the runtime's note (it is among the notes)."""
        metadata = {key: data[key] for key in ("architecture", "pruning") if data.get(key) is not None}
        latency = lambda entry: None if entry is None else LatencyStats.from_dict(entry)  # noqa: E731
        return cls(
            path=data["path"], dataset=data["dataset"], profile=ModelProfile.from_dict(data),
            runtime=RuntimeChoice(data["provider_requested"], data["provider"], bool(data.get("cuda_graph", False)),
                                  device_id=data.get("device_id"), device_name=data.get("device_name")),
            latency=latency(data["latency"]), throughput=latency(data["throughput"]),
            latency_by_batch=tuple(LatencyStats.from_dict(entry) for entry in data["latency_by_batch"].values()),
            clean_accuracy=data["clean_accuracy"], parent_clean_accuracy=data["parent_clean_accuracy"],
            clean_samples=data["clean_samples"],
            attacks=tuple(AttackResult.from_dict(entry) for entry in data["attacks"]),
            minimal=tuple(MinimalNormResult.from_dict(entry) for entry in data["minimal_norm"]),
            worst_case=tuple(WorstCase.from_dict(entry) for entry in data["robustness"]),
            checks=tuple(Check.from_dict(entry) for entry in data["checks"]),
            source=data["source"], metadata=metadata or None, notes=tuple(data["notes"]),
            attacked=None if data["samples"] is None else AttackedSamples.from_dict(data["samples"]),
            gradients=data.get("gradients"),
            precision=PrecisionResult.from_dict(data.get("precision")),
            placement=None if data.get("placement") is None else Placement.from_dict(data["placement"]),
            torch_device=data.get("torch_device"),
        )

    @property
    def accuracy_drop(self) -> float | None:
        """Parent's clean accuracy minus this model's, on the same test set (points as a share; None without a parent)."""
        return None if self.parent_clean_accuracy is None else self.parent_clean_accuracy - self.clean_accuracy

    @property
    def float_accuracy_drop(self) -> float | None:
        """For an int8 or fp16 graph: its float32 parent's clean accuracy minus its own (None without the parent)."""
        parent = self.precision.float_parent_accuracy if self.precision else None
        return None if parent is None else parent - self.clean_accuracy

    def gradient_sources(self) -> tuple[str, ...]:
        """Where the gradients of the attacks that ran came from, in the order the attacks ran: `gradients` (the
        source or the converted graph) for white-box attacks, FROM_SURROGATE for transfer attacks; () for none."""
        sources = [(FROM_FLOAT_SOURCE if result.name.endswith(FLOAT_SOURCE_SUFFIX) else self.gradients)
                   if result.kind == "white-box" else FROM_SURROGATE
                   for result in self.attacks if result.kind in ("white-box", "transfer")]
        return tuple(dict.fromkeys(source for source in sources if source))

    def median_distances(self) -> dict[str, float | None]:
        """Per norm the median over samples of the smallest adversarial distance any minimal-norm attack found
        (0 for samples misclassified without attack; None when more than half have none)."""
        medians = {}
        for norm, values in worst_distances(list(self.minimal)).items():
            median = float(np.median(values))
            medians[norm] = median if np.isfinite(median) else None
        return medians


@dataclass(frozen=True)
class Assessment:
    models: tuple[ModelAssessment, ...]
    config: ConfigRecord
    environment: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "config": self.config.to_dict(),
            "environment": self.environment,
            "models": [model.to_dict() for model in self.models],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Assessment":
        """An assessment as to_dict wrote it (schema READABLE_SCHEMAS; another raises ValueError). Keys beside
        the schema's (a sweep's cache key) are ignored."""
        check_schema(data, READABLE_SCHEMAS, "assessment")
        return cls(tuple(ModelAssessment.from_dict(model) for model in data["models"]), RecordedConfig(data["config"]),
                   data["environment"])


@dataclass(frozen=True)
class RecordedConfig:
    """The options of an assessment read back from its JSON (the AssessConfig that made it is not rebuilt)."""

    options: dict[str, Any]

    @property
    def cascade(self) -> bool:
        return bool(self.options.get("cascade", True))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.options)
