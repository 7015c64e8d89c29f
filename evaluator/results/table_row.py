"""One row of the size / speed / robustness table (evaluator/table.py builds it from a ModelAssessment): a frozen
result with its JSON form, the sweep's table.json rows (TABLE_SCHEMA_VERSION); rows of schema 1.0 still read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TABLE_SCHEMA_VERSION = "1.3"  # 1.1: clean_accuracy_ci, attacked_samples, attacked_clean_accuracy(_ci), robust_accuracy_ci;
# 1.2: gradients; 1.3: precision, float_accuracy_drop, speedup_vs_float, fallback_kernels
Interval = tuple[float, float]  # (low, high): a 95 % Wilson interval of a share, JSON's [low, high]
Point = tuple[float, float]  # (epsilon, robust accuracy): one step of a robustness curve, JSON's [eps, acc]


def read_interval(value: Any) -> Interval | None:
    """JSON's [low, high] as an Interval; None for a missing or malformed one (rows from before the intervals)."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return value[0], value[1]
    return None


@dataclass(frozen=True)
class TableRow:
    """One model's results. Accuracies are shares in [0, 1]: clean_accuracy on the whole test set, robust accuracies
    out of the attacked_samples, whose clean accuracy is attacked_clean_accuracy; *_ci are 95 % Wilson intervals.
    Rates are x-fold (dense / non-zero parameters), sizes in bytes, latencies in ms, throughput in samples per
    second at throughput_batch. Budget keys are 'Linf@0.03137' (evaluator/table.py budget_key); distances are in the
    norm's units (L0 in pixels). Fields of schema 1.1 are None (or empty) in rows read from schema 1.0."""

    variant: str
    method: str  # the pruning method, 'none' for the unpruned parent
    target_rate: float
    achieved_rate: float
    params: int
    nonzero_params: int
    macs: int  # multiply-accumulates at batch 1
    size_bytes: int
    gzip_bytes: int
    provider: str
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    throughput_per_s: float | None
    throughput_batch: int | None
    clean_accuracy: float
    clean_accuracy_ci: Interval | None
    accuracy_drop: float | None  # the parent's clean accuracy minus this one's
    attacked_samples: int | None
    attacked_clean_accuracy: float | None
    attacked_clean_accuracy_ci: Interval | None
    robust_accuracy: dict[str, float]  # {budget key: share}
    robust_accuracy_ci: dict[str, Interval]  # {budget key: interval}
    median_distance: dict[str, float | None]  # {norm: median minimal distance}, None when most samples have none
    curves: dict[str, tuple[Point, ...]]  # {norm: robustness curve steps}
    checks_failed: tuple[str, ...]
    sha256: str
    path: str
    gradients: tuple[str, ...] = ()  # where the gradient attacks' gradients came from (ModelAssessment.gradient_sources)
    precision: str = "fp32"  # fp32, int8, int8-dynamic or fp16 (evaluator.precision)
    float_accuracy_drop: float | None = None  # an int8 / fp16 graph's float32 parent's clean accuracy minus its own
    speedup_vs_float: float | None = None  # its throughput over the float32 parent's, timed in the same run
    fallback_kernels: int | None = None  # kernels that ran in float32 or on another provider (evaluator.placement)

    def to_dict(self) -> dict[str, Any]:
        """The row's JSON form (a table.json row), keys in field order."""
        return {
            "variant": self.variant, "method": self.method, "target_rate": self.target_rate,
            "achieved_rate": self.achieved_rate, "params": self.params, "nonzero_params": self.nonzero_params,
            "macs": self.macs, "size_bytes": self.size_bytes, "gzip_bytes": self.gzip_bytes, "provider": self.provider,
            "latency_p50_ms": self.latency_p50_ms, "latency_p99_ms": self.latency_p99_ms,
            "throughput_per_s": self.throughput_per_s, "throughput_batch": self.throughput_batch,
            "clean_accuracy": self.clean_accuracy, "clean_accuracy_ci": interval_list(self.clean_accuracy_ci),
            "accuracy_drop": self.accuracy_drop, "attacked_samples": self.attacked_samples,
            "attacked_clean_accuracy": self.attacked_clean_accuracy,
            "attacked_clean_accuracy_ci": interval_list(self.attacked_clean_accuracy_ci),
            "robust_accuracy": dict(self.robust_accuracy),
            "robust_accuracy_ci": {key: list(value) for key, value in self.robust_accuracy_ci.items()},
            "median_distance": dict(self.median_distance),
            "curves": {norm: [list(point) for point in points] for norm, points in self.curves.items()},
            "checks_failed": list(self.checks_failed), "sha256": self.sha256, "path": self.path,
            "gradients": list(self.gradients), "precision": self.precision,
            "float_accuracy_drop": self.float_accuracy_drop, "speedup_vs_float": self.speedup_vs_float,
            "fallback_kernels": self.fallback_kernels,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TableRow":
        """A row of table schema 1.3, 1.2, 1.1 or 1.0 (without the intervals and attacked samples: those read None or empty)."""
        intervals = {key: read_interval(value) for key, value in (data.get("robust_accuracy_ci") or {}).items()}
        return cls(
            variant=data["variant"], method=data["method"], target_rate=data["target_rate"],
            achieved_rate=data["achieved_rate"], params=data["params"], nonzero_params=data["nonzero_params"],
            macs=data["macs"], size_bytes=data["size_bytes"], gzip_bytes=data["gzip_bytes"], provider=data["provider"],
            latency_p50_ms=data.get("latency_p50_ms"), latency_p99_ms=data.get("latency_p99_ms"),
            throughput_per_s=data.get("throughput_per_s"), throughput_batch=data.get("throughput_batch"),
            clean_accuracy=data["clean_accuracy"], clean_accuracy_ci=read_interval(data.get("clean_accuracy_ci")),
            accuracy_drop=data.get("accuracy_drop"), attacked_samples=data.get("attacked_samples"),
            attacked_clean_accuracy=data.get("attacked_clean_accuracy"),
            attacked_clean_accuracy_ci=read_interval(data.get("attacked_clean_accuracy_ci")),
            robust_accuracy=dict(data.get("robust_accuracy") or {}),
            robust_accuracy_ci={key: value for key, value in intervals.items() if value is not None},
            median_distance=dict(data.get("median_distance") or {}),
            curves={norm: tuple((eps, accuracy) for eps, accuracy in points)
                    for norm, points in (data.get("curves") or {}).items()},
            checks_failed=tuple(data.get("checks_failed") or ()), sha256=data["sha256"], path=data["path"],
            gradients=tuple(data.get("gradients") or ()), precision=data.get("precision") or "fp32",
            float_accuracy_drop=data.get("float_accuracy_drop"), speedup_vs_float=data.get("speedup_vs_float"),
            fallback_kernels=data.get("fallback_kernels"))


def interval_list(interval: Interval | None) -> list[float] | None:
    """JSON's [low, high], None for None."""
    return None if interval is None else list(interval)
