"""What a sign-off policy is: the metrics a rule can bound, the Rule and Policy types, and how a value of a metric is
written (format_value). Parsing the TOML is in evaluator.policy_file, checking a model in evaluator.policy_evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from evaluator.norms import NORM_NAMES

METRICS: dict[str, str] = {
    "clean_accuracy": "share of the whole test set classified correctly, in [0, 1]",
    "robust_accuracy": "worst case over the attacks run at (norm, epsilon): share robust, in [0, 1]",
    "median_distance": "median smallest adversarial distance of the minimal-norm attacks in a norm",
    "latency_p99_ms": "99th percentile wall time of one batch, in milliseconds",
    "size_bytes": "size of the .onnx file in bytes",
    "gzip_bytes": "size of the gzipped .onnx file in bytes",
    "accuracy_drop": "parent's clean accuracy minus the model's (0.02 = 2 points lost)",
    "float_accuracy_drop": "an int8 / fp16 model's float32 parent's clean accuracy minus its own (0.01 = 1 point)",
    "accuracy_vs_float": "an int8 / fp16 model's clean accuracy over its float32 parent's (MLPerf's 0.99 of FP32)",
    "speedup_vs_float": "an int8 / fp16 model's throughput over its float32 parent's, timed in the same run",
    "fallback_kernels": "kernels that ran in float32 in an int8 / fp16 graph or off the chosen provider",
}
EXTRA_KEYS: dict[str, tuple[str, ...]] = {"robust_accuracy": ("norm", "epsilon"), "median_distance": ("norm",),
                                          "latency_p99_ms": ("batch", "provider")}
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {"robust_accuracy": ("norm", "epsilon"), "median_distance": ("norm",),
                                             "latency_p99_ms": ("batch",)}
COMMON_KEYS = ("metric", "name", "min", "max", "precision")  # precision: the rule applies to models of that one only
POLICY_KEYS = ("name", "description", "require_checks", "black_box_evidence")
NORMS = NORM_NAMES
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
TOLERANCE = 1e-9  # relative, for float rounding in comparisons and in matching epsilons

Comparator = Literal["min", "max"]


@dataclass(frozen=True)
class Rule:
    """One threshold. epsilon in the norm's units (Linf/L2/L1 in [0, 1] pixel units, L0 in pixels); epsilon_text as
    written ("8/255"); provider as an ONNX Runtime name ("CPUExecutionProvider") or None for any."""

    name: str
    metric: str
    comparator: Comparator
    threshold: float
    norm: str | None = None
    epsilon: float | None = None
    epsilon_text: str | None = None
    batch: int | None = None
    provider: str | None = None
    precision: str | None = None  # fp32, int8, int8-dynamic or fp16: models of another precision are not judged

    def threshold_text(self) -> str:
        return f"{'>=' if self.comparator == 'min' else '<='} {format_value(self.metric, self.threshold, self.norm, exact=True)}"

    def passes(self, measured: float) -> bool:
        slack = TOLERANCE * max(1.0, abs(self.threshold))
        return measured >= self.threshold - slack if self.comparator == "min" else measured <= self.threshold + slack

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "metric": self.metric, "norm": self.norm, "epsilon": self.epsilon,
                "epsilon_text": self.epsilon_text, "batch": self.batch, "provider": self.provider,
                "comparator": self.comparator, "threshold": self.threshold, "precision": self.precision}


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    rules: tuple[Rule, ...]
    require_checks: bool = False
    path: str | None = None
    black_box_evidence: bool = False  # a robust accuracy measured by black-box attacks alone may pass a rule

    def latency_batches(self) -> tuple[int, ...]:
        """Batch sizes the latency rules need timed (sorted, unique): pass them as AssessConfig.latency_batches."""
        return tuple(sorted({rule.batch for rule in self.rules if rule.batch is not None}))

    def epsilons(self) -> dict[str, tuple[float, ...]]:
        """Per norm the epsilons the robust-accuracy rules need attacked (sorted, unique)."""
        budgets: dict[str, set[float]] = {}
        for rule in self.rules:
            if rule.metric == "robust_accuracy" and rule.norm is not None and rule.epsilon is not None:
                budgets.setdefault(rule.norm, set()).add(rule.epsilon)
        return {norm: tuple(sorted(values)) for norm, values in budgets.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "path": self.path,
                "require_checks": self.require_checks, "black_box_evidence": self.black_box_evidence,
                "rules": [rule.to_dict() for rule in self.rules]}


def format_value(metric: str, value: float, norm: str | None = None, exact: bool = False) -> str:
    """A measured value (exact=False: rounded) or a threshold (exact=True: as written) in the metric's unit."""
    if metric in ("size_bytes", "gzip_bytes"):
        return f"{value:,.0f} B ({value / 1024:.1f} KiB)"
    if metric == "fallback_kernels":
        return f"{value:.0f}"
    digits = 10 if exact else 6 if metric in ("clean_accuracy", "robust_accuracy", "accuracy_drop", "float_accuracy_drop",
                                              "accuracy_vs_float") else 4
    text = f"{value:.{digits}g}"  # 0.014000000000000012 -> 0.014
    if metric == "latency_p99_ms":
        return f"{text} ms"
    if metric == "speedup_vs_float":
        return f"{text}x"
    return f"{text} px" if metric == "median_distance" and norm == "L0" else text


def is_number(value: Any) -> bool:
    """An int or a float, not a bool (TOML and JSON values)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)

