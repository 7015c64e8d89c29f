"""The sign-off gate: a TOML policy of thresholds, checked against one model of an assessment.

A policy file has an optional [policy] table (name, description, require_checks) and one [[rule]] per threshold:

    [[rule]]
    metric = "robust_accuracy"   # see METRICS
    norm = "Linf"                # robust_accuracy and median_distance: L0, L1, L2 or Linf
    epsilon = "8/255"            # robust_accuracy: a number or a fraction string
    min = 0.35                   # exactly one of min (measured >= min) or max (measured <= max)

Decisions, so that a gate never passes on missing evidence:
  * a rule whose value the assessment did not measure FAILS, with the reason (robust accuracy at an epsilon that was
    not run, a median distance without a minimal-norm attack in that norm or with more than half of the samples
    unbroken, an accuracy drop without a parent, a latency that was skipped or not timed at the rule's batch size);
  * a latency rule naming a provider FAILS when the model ran on another one;
  * with `require_checks = true` one more outcome, "sanity checks", FAILS when any check in the assessment failed
    (or when it holds none).
Comparisons are inclusive and allow a relative 1e-9 for float rounding (0.014000000000000012 meets max = 0.014).

Accuracies are measured on samples: a clean or robust accuracy rule carries the measured value's 95 % Wilson interval,
and when the threshold lies inside it the outcome says so (`threshold_within_interval`, and in its message): the
difference is not clear at that sample size. The rule still passes or fails on the measured value (the exit code does
not change); more samples narrow the interval.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from evaluator.errors import EvaluatorError
from evaluator.files import read_text_file
from evaluator.limits import MAX_BATCH
from evaluator.stats import share_interval

METRICS: dict[str, str] = {
    "clean_accuracy": "share of the whole test set classified correctly, in [0, 1]",
    "robust_accuracy": "worst case over the attacks run at (norm, epsilon): share robust, in [0, 1]",
    "median_distance": "median smallest adversarial distance of the minimal-norm attacks in a norm",
    "latency_p99_ms": "99th percentile wall time of one batch, in milliseconds",
    "size_bytes": "size of the .onnx file in bytes",
    "gzip_bytes": "size of the gzipped .onnx file in bytes",
    "accuracy_drop": "parent's clean accuracy minus the model's (0.02 = 2 points lost)",
}
EXTRA_KEYS: dict[str, tuple[str, ...]] = {"robust_accuracy": ("norm", "epsilon"), "median_distance": ("norm",),
                                          "latency_p99_ms": ("batch", "provider")}
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {"robust_accuracy": ("norm", "epsilon"), "median_distance": ("norm",),
                                             "latency_p99_ms": ("batch",)}
COMMON_KEYS = ("metric", "name", "min", "max")
POLICY_KEYS = ("name", "description", "require_checks")
NORMS = ("L0", "L1", "L2", "Linf")
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

    def threshold_text(self) -> str:
        return f"{'>=' if self.comparator == 'min' else '<='} {format_value(self.metric, self.threshold, self.norm, exact=True)}"

    def passes(self, measured: float) -> bool:
        slack = TOLERANCE * max(1.0, abs(self.threshold))
        return measured >= self.threshold - slack if self.comparator == "min" else measured <= self.threshold + slack

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "metric": self.metric, "norm": self.norm, "epsilon": self.epsilon,
                "epsilon_text": self.epsilon_text, "batch": self.batch, "provider": self.provider,
                "comparator": self.comparator, "threshold": self.threshold}


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    rules: tuple[Rule, ...]
    require_checks: bool = False
    path: str | None = None

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
                "require_checks": self.require_checks, "rules": [rule.to_dict() for rule in self.rules]}


@dataclass(frozen=True)
class Outcome:
    """One rule against one model. measured is None when the value was not measured (then passed is False);
    rule is None for the "sanity checks" outcome of require_checks. interval: the measured accuracy's 95 % Wilson
    interval (low, high) as shares, None for other metrics or when not measured."""

    name: str
    metric: str
    threshold: str
    measured: float | None
    measured_text: str
    passed: bool
    message: str
    rule: Rule | None = None
    interval: tuple[float, float] | None = None

    @property
    def threshold_within_interval(self) -> bool | None:
        """Whether the rule's threshold lies inside the measured value's 95 % interval (the verdict is then not a clear
        one at this sample size); None without an interval."""
        if self.interval is None or self.rule is None:
            return None
        return self.interval[0] <= self.rule.threshold <= self.interval[1]

    def to_dict(self) -> dict[str, Any]:
        rule = self.rule.to_dict() if self.rule else {"name": self.name, "metric": self.metric}
        return {**rule, "threshold_text": self.threshold, "measured": self.measured, "measured_text": self.measured_text,
                "interval": list(self.interval) if self.interval else None,
                "threshold_within_interval": self.threshold_within_interval, "passed": self.passed, "message": self.message}


@dataclass(frozen=True)
class Verdict:
    policy: Policy
    model: str
    sha256: str | None
    outcomes: tuple[Outcome, ...]

    @property
    def passed(self) -> bool:
        return bool(self.outcomes) and all(outcome.passed for outcome in self.outcomes)

    @property
    def failures(self) -> tuple[Outcome, ...]:
        return tuple(outcome for outcome in self.outcomes if not outcome.passed)

    @property
    def within_interval(self) -> tuple[Outcome, ...]:
        """Outcomes whose threshold lies inside the measured value's 95 % interval: decided, but not clearly."""
        return tuple(outcome for outcome in self.outcomes if outcome.threshold_within_interval)

    @property
    def model_name(self) -> str:
        return Path(self.model).name


def exit_code(verdicts: list[Verdict] | tuple[Verdict, ...]) -> int:
    """0 when every verdict passed, else 1 (errors exit 2 through EvaluatorError before a verdict exists)."""
    return 0 if verdicts and all(verdict.passed for verdict in verdicts) else 1


# --- formatting -------------------------------------------------------------------------------------------------

def format_value(metric: str, value: float, norm: str | None = None, exact: bool = False) -> str:
    """A measured value (exact=False: rounded) or a threshold (exact=True: as written) in the metric's unit."""
    if metric in ("size_bytes", "gzip_bytes"):
        return f"{value:,.0f} B ({value / 1024:.1f} KiB)"
    digits = 10 if exact else 6 if metric in ("clean_accuracy", "robust_accuracy", "accuracy_drop") else 4
    text = f"{value:.{digits}g}"  # 0.014000000000000012 -> 0.014
    if metric == "latency_p99_ms":
        return f"{text} ms"
    return f"{text} px" if metric == "median_distance" and norm == "L0" else text


# --- loading ----------------------------------------------------------------------------------------------------

def load_policy(path: Path) -> Policy:
    """Read and validate a TOML policy; every problem is one EvaluatorError line naming the file (and rule)."""
    text = read_text_file(Path(path), "policy file")
    return policy_from_toml(text, str(path))


def policy_from_toml(text: str, origin: str = "<policy>") -> Policy:
    """Parse and validate policy TOML text; `origin` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise EvaluatorError(f"{origin}: not valid TOML: {error}") from None
    return policy_from_dict(data, origin)


def policy_from_dict(data: dict[str, Any], origin: str = "<policy>") -> Policy:
    """Validate a parsed policy (the TOML's tables as dicts)."""
    unknown(data, ("policy", "rule"), f"{origin}: unknown top-level key")
    header = data.get("policy", {})
    if not isinstance(header, dict):
        raise EvaluatorError(f"{origin}: `policy` must be a table ([policy])")
    unknown(header, POLICY_KEYS, f"{origin}: unknown key in [policy]")
    name = header.get("name", Path(origin).stem)
    description = header.get("description", "")
    require_checks = header.get("require_checks", False)
    for key, value, kind in (("name", name, str), ("description", description, str), ("require_checks", require_checks, bool)):
        if not isinstance(value, kind):
            raise EvaluatorError(f"{origin}: [policy] {key} must be a {'boolean' if kind is bool else 'string'}, got {value!r}")
    if not name.strip():
        raise EvaluatorError(f"{origin}: [policy] name must not be empty")
    entries = data.get("rule", [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise EvaluatorError(f"{origin}: rules must be an array of tables: write each as [[rule]]")
    if not entries and not require_checks:
        raise EvaluatorError(f"{origin}: the policy has no [[rule]] (and no require_checks): it would check nothing")
    rules: list[Rule] = []
    for number, entry in enumerate(entries, start=1):
        rule = parse_rule(entry, f"{origin}: rule {number}")
        clash = next((i for i, other in enumerate(rules, start=1) if other.name == rule.name), None)
        if clash is not None:
            raise EvaluatorError(f"{origin}: rule {number} has the same name as rule {clash} ({rule.name!r}): "
                                 "give each rule a distinct `name`")
        rules.append(rule)
    return Policy(name.strip(), description.strip(), tuple(rules), require_checks, None if origin.startswith("<") else origin)


def unknown(table: dict[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (expected: {', '.join(allowed)})"
            raise EvaluatorError(f"{prefix} {key!r}{hint}")


def parse_rule(entry: dict[str, Any], where: str) -> Rule:
    metric = entry.get("metric")
    if metric is None:
        raise EvaluatorError(f"{where}: missing `metric` (one of {', '.join(METRICS)})")
    if not isinstance(metric, str) or metric not in METRICS:
        close = difflib.get_close_matches(str(metric), list(METRICS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(METRICS)}"
        raise EvaluatorError(f"{where}: unknown metric {metric!r} ({hint})")
    where = f"{where} ({metric})"
    unknown(entry, COMMON_KEYS + EXTRA_KEYS.get(metric, ()), f"{where}: unknown key")
    for key in REQUIRED_KEYS.get(metric, ()):
        if key not in entry:
            raise EvaluatorError(f"{where}: missing `{key}`")
    comparator, threshold = parse_threshold(entry, metric, where)
    norm = parse_norm(entry["norm"], where) if "norm" in entry else None
    epsilon, epsilon_text = parse_epsilon(entry["epsilon"], norm, where) if "epsilon" in entry else (None, None)
    batch = parse_batch(entry["batch"], where) if "batch" in entry else None
    provider = parse_provider(entry["provider"], where) if "provider" in entry else None
    name = entry.get("name")
    if name is None:
        name = default_name(metric, comparator, norm, epsilon_text, batch, provider)
    elif not isinstance(name, str) or not name.strip():
        raise EvaluatorError(f"{where}: `name` must be a non-empty string, got {name!r}")
    return Rule(name.strip(), metric, comparator, threshold, norm, epsilon, epsilon_text, batch, provider)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_threshold(entry: dict[str, Any], metric: str, where: str) -> tuple[Comparator, float]:
    given = [key for key in ("min", "max") if key in entry]
    if not given:
        raise EvaluatorError(f"{where}: missing threshold: give `min` (measured >= min) or `max` (measured <= max)")
    if len(given) == 2:
        raise EvaluatorError(f"{where}: give exactly one of `min` or `max` (for a range write two rules)")
    comparator: Comparator = given[0]  # type: ignore[assignment]
    value = entry[comparator]
    if not is_number(value) or not math.isfinite(value):
        raise EvaluatorError(f"{where}: `{comparator}` must be a finite number, got {value!r}")
    value = float(value)
    if metric in ("clean_accuracy", "robust_accuracy") and not 0 <= value <= 1:
        raise EvaluatorError(f"{where}: accuracies are shares in [0, 1] (0.9, not 90), got {comparator} = {value:g}")
    if metric == "accuracy_drop" and not -1 <= value <= 1:
        raise EvaluatorError(f"{where}: the accuracy drop is a share in [-1, 1] (0.02 = 2 points), got {comparator} = {value:g}")
    if metric not in ("clean_accuracy", "robust_accuracy", "accuracy_drop") and value < 0:
        raise EvaluatorError(f"{where}: `{comparator}` must not be negative, got {value:g}")
    return comparator, value


def parse_norm(value: Any, where: str) -> str:
    norm = next((n for n in NORMS if isinstance(value, str) and value.strip().lower() == n.lower()), None)
    if norm is None:
        raise EvaluatorError(f"{where}: unknown norm {value!r} (expected one of {', '.join(NORMS)})")
    return norm


def parse_epsilon(value: Any, norm: str | None, where: str) -> tuple[float, str]:
    """A number or a fraction string like "8/255" -> (value, text as written); checked like the CLI's budgets."""
    if is_number(value):
        epsilon, text = float(value), f"{value:g}"
    elif isinstance(value, str):
        text = "".join(value.split())
        try:
            epsilon = float(Fraction(text))
        except (ValueError, ZeroDivisionError, OverflowError):
            raise EvaluatorError(f"{where}: epsilon {value!r} is not a number or a fraction like \"8/255\"") from None
    else:
        raise EvaluatorError(f"{where}: epsilon must be a number or a fraction string like \"8/255\", got {value!r}")
    if not math.isfinite(epsilon) or epsilon <= 0:
        raise EvaluatorError(f"{where}: epsilon must be a positive finite number, got {value!r}")
    if norm == "Linf" and epsilon > 1:
        raise EvaluatorError(f"{where}: a Linf epsilon is in [0, 1] pixel units (8/255, not 8), got {value!r}")
    if norm == "L0" and not epsilon.is_integer():
        raise EvaluatorError(f"{where}: an L0 epsilon counts changed pixels: a whole number, got {value!r}")
    return epsilon, text


def parse_batch(value: Any, where: str) -> int:
    """A latency rule's batch: the assessment times a batch of that many inputs, so it is bounded like any batch."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise EvaluatorError(f"{where}: `batch` must be a whole number >= 1, got {value!r}")
    if value > MAX_BATCH:
        raise EvaluatorError(f"{where}: `batch` {value:,} is over the limit of {MAX_BATCH:,} samples")
    return value


def parse_provider(value: Any, where: str) -> str:
    """'cpu' / 'cuda' / 'tensorrt' or an ONNX Runtime provider name -> the ONNX Runtime name."""
    if isinstance(value, str) and value.strip().lower() in PROVIDERS:
        return PROVIDERS[value.strip().lower()]
    if isinstance(value, str) and value.strip().endswith("ExecutionProvider") and value.strip() != "ExecutionProvider":
        return value.strip()
    raise EvaluatorError(f"{where}: unknown provider {value!r} (expected cpu, cuda, tensorrt or an ONNX Runtime "
                         "name like CPUExecutionProvider)")


def default_name(metric: str, comparator: Comparator, norm: str | None, epsilon_text: str | None, batch: int | None,
                 provider: str | None) -> str:
    """E.g. 'robust_accuracy Linf eps=8/255 min', 'latency_p99_ms batch=1 CPU max'."""
    parts = [metric, norm, f"eps={epsilon_text}" if epsilon_text else None, f"batch={batch}" if batch else None,
             provider.removesuffix("ExecutionProvider") if provider else None, comparator]
    return " ".join(part for part in parts if part)


# --- evaluation -------------------------------------------------------------------------------------------------

def number(value: Any) -> float | None:
    """A finite number from the model dict, else None (missing, null, NaN, a string)."""
    return float(value) if is_number(value) and math.isfinite(value) else None


def evaluate_policy(policy: Policy, model: dict[str, Any]) -> Verdict:
    """Check every rule against `model`, one entry of the assessment JSON's "models" list (ModelAssessment.to_dict())."""
    outcomes = [evaluate_rule(rule, model) for rule in policy.rules]
    if policy.require_checks:
        outcomes.append(checks_outcome(model))
    sha256 = model.get("sha256")
    return Verdict(policy, str(model.get("path", "<model>")), sha256 if isinstance(sha256, str) else None, tuple(outcomes))


def evaluate_rule(rule: Rule, model: dict[str, Any]) -> Outcome:
    measured, evidence = measure(rule, model)
    if measured is None:
        return Outcome(rule.name, rule.metric, rule.threshold_text(), None, "not measured", False, f"not measured: {evidence}", rule)
    text = format_value(rule.metric, measured, rule.norm)
    passed = rule.passes(measured)
    threshold = format_value(rule.metric, rule.threshold, rule.norm, exact=True)
    interval = measured_interval(rule, model)
    if interval is not None:
        span = f"{interval[0]:.4f}-{interval[1]:.4f}"
        if interval[0] <= rule.threshold <= interval[1]:
            evidence += (f"{'; ' if evidence else ''}{rule.comparator} {threshold} lies inside the 95% interval {span} of "
                         f"the measured value: not a clear {'pass' if passed else 'failure'} (decided on the measured value)")
        else:
            evidence += f"{'; ' if evidence else ''}95% interval {span}"
    if passed:
        message = evidence
    else:
        sign = "<" if rule.comparator == "min" else ">"
        message = f"{text} {sign} {rule.comparator} {threshold}"
        message += f"; {evidence}" if evidence else ""
    return Outcome(rule.name, rule.metric, rule.threshold_text(), measured, text, passed, message, rule, interval)


def measured_interval(rule: Rule, model: dict[str, Any]) -> tuple[float, float] | None:
    """The 95 % Wilson interval of a measured clean or robust accuracy: the assessment's `*_ci`, or for one from before
    the intervals, computed from the share and its sample count; None for other metrics or without a count."""
    if rule.metric == "clean_accuracy":
        entry, count = model, model.get("clean_samples")
    elif rule.metric == "robust_accuracy":
        entry = robust_entry(rule, model)
        count = entry.get("samples") if entry else None
    else:
        return None
    if entry is None:
        return None
    given = entry.get(f"{rule.metric}_ci")
    if isinstance(given, list) and len(given) == 2 and all(number(value) is not None for value in given):
        return float(given[0]), float(given[1])
    share = number(entry.get(rule.metric))
    if share is None or not isinstance(count, int) or isinstance(count, bool) or count < 1 or not 0 <= share <= 1:
        return None
    return share_interval(share, count)


def measure(rule: Rule, model: dict[str, Any]) -> tuple[float | None, str]:
    """(measured value or None, evidence: where it comes from, or why it is missing)."""
    if rule.metric == "robust_accuracy":
        return measure_robust(rule, model)
    if rule.metric == "median_distance":
        return measure_median(rule, model)
    if rule.metric == "latency_p99_ms":
        return measure_latency(rule, model)
    if rule.metric == "accuracy_drop":
        drop = number(model.get("accuracy_drop"))
        if drop is None:
            return None, "no parent model was assessed (the model's metadata names no parent .onnx beside it), so no accuracy drop"
        parent, clean = number(model.get("parent_clean_accuracy")), number(model.get("clean_accuracy"))
        return drop, (f"parent {parent:.4f}, model {clean:.4f}" if parent is not None and clean is not None else "")
    value = number(model.get(rule.metric))
    if value is None:
        return None, f"the assessment holds no {rule.metric}"
    if rule.metric == "clean_accuracy":
        samples = model.get("clean_samples")
        return value, f"on {samples:,} test images" if isinstance(samples, int) else ""
    return value, ""


def robust_entry(rule: Rule, model: dict[str, Any]) -> dict[str, Any] | None:
    """The assessment's robustness entry (worst case) at the rule's norm and epsilon, None when none was run."""
    assert rule.epsilon is not None
    for entry in model.get("robustness") or []:
        if not isinstance(entry, dict):
            continue
        epsilon = number(entry.get("epsilon"))
        if entry.get("norm") == rule.norm and epsilon is not None and math.isclose(epsilon, rule.epsilon, rel_tol=TOLERANCE):
            return entry
    return None


def measure_robust(rule: Rule, model: dict[str, Any]) -> tuple[float | None, str]:
    entries = [entry for entry in model.get("robustness") or [] if isinstance(entry, dict)]
    entry = robust_entry(rule, model)
    if entry is not None:
        value = number(entry.get("robust_accuracy"))
        attacks = ", ".join(str(a) for a in entry.get("attacks") or []) or "?"
        if value is None:
            return None, f"the robustness entry at {rule.norm} eps={rule.epsilon_text} holds no robust_accuracy"
        samples = entry.get("samples")
        on = f" on {samples:,} samples" if isinstance(samples, int) else ""
        return value, f"worst case of {attacks}{on}"
    run = sorted({f"{e.get('norm')} {number(e.get('epsilon')) or 0:.4g}" for e in entries})
    return None, (f"no attack ran at {rule.norm} eps={rule.epsilon_text} ({rule.epsilon:.6g}); "
                  f"measured: {', '.join(run) if run else 'no robustness at all'}")


def measure_median(rule: Rule, model: dict[str, Any]) -> tuple[float | None, str]:
    medians = model.get("median_distance") or {}
    if not isinstance(medians, dict) or rule.norm not in medians:
        return None, f"no minimal-norm attack in {rule.norm} was run"
    value = number(medians[rule.norm])
    if value is None:
        return None, (f"more than half of the samples have no {rule.norm} adversarial example found, so the median is "
                      "unbounded; an unbounded attack that fails is no evidence of robustness (too few steps or "
                      "gradient masking: see the unbounded-success check)")
    runs = [r for r in model.get("minimal_norm") or [] if isinstance(r, dict) and r.get("norm") == rule.norm]
    names = ", ".join(str(r.get("name")) for r in runs)
    return value, f"best of {names}" if names else ""


def measure_latency(rule: Rule, model: dict[str, Any]) -> tuple[float | None, str]:
    used = model.get("provider")
    if rule.provider is not None and (not isinstance(used, str) or used.lower() != rule.provider.lower()):
        return None, (f"the rule needs {rule.provider} but the model ran on {used}" if isinstance(used, str)
                      else f"the rule needs {rule.provider} but the assessment records no provider")
    by_batch = model.get("latency_by_batch")
    stats: Any = None
    if isinstance(by_batch, dict):
        stats = by_batch.get(str(rule.batch), by_batch.get(rule.batch))
    if stats is None and isinstance(model.get("latency"), dict) and model["latency"].get("batch_size") == rule.batch:
        stats = model["latency"]  # an assessment from before latency_by_batch
    if not by_batch and model.get("latency") is None:
        return None, "latency was not measured (--no-latency)"
    if not isinstance(stats, dict):
        timed = sorted(int(k) for k in by_batch if str(k).isdigit()) if isinstance(by_batch, dict) else []
        return None, (f"no latency at batch {rule.batch} (timed at batch {', '.join(map(str, timed)) or 'none'}; "
                      "assess with the policy's latency_batches)")
    value = number(stats.get("p99_ms"))
    if value is None:
        return None, f"the latency at batch {rule.batch} holds no p99_ms"
    runs = stats.get("runs")
    return value, f"p99 of {runs:,} runs at batch {rule.batch} on {used}" if isinstance(runs, int) else f"on {used}"


def checks_outcome(model: dict[str, Any]) -> Outcome:
    checks = [check for check in model.get("checks") or [] if isinstance(check, dict)]
    failed = [check for check in checks if check.get("passed") is not True]
    name, threshold = "sanity checks", "all pass"
    if not checks:
        return Outcome(name, "checks", threshold, None, "not measured", False, "not measured: the assessment holds no sanity checks")
    text = f"{len(checks) - len(failed)}/{len(checks)} passed"
    if failed:
        message = "; ".join(f"{check.get('name')} failed: {check.get('detail')}" for check in failed)
    else:
        message = ", ".join(str(check.get("name")) for check in checks)
    return Outcome(name, "checks", threshold, float(len(failed)), text, not failed, message)
