"""Checking a policy against one model of an assessment: the measured value of each rule, the 95 % interval of a
measured accuracy, the outcome of each rule, the verdict and the exit code.

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

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluator.policy_rules import TOLERANCE, Policy, Rule, format_value
from evaluator.results import ModelAssessment, WorstCase
from evaluator.stats import wilson_interval


@dataclass(frozen=True)
class Outcome:
    """One rule against one model. measured is None when the value was not measured (then passed is False) or the
    rule does not apply to the model's precision (then passed is True); rule is None for the "sanity checks" outcome
    of require_checks. interval: the measured accuracy's 95 % Wilson
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


def evaluate_policy(policy: Policy, model: ModelAssessment) -> Verdict:
    """Check every rule against one model's results."""
    outcomes = [evaluate_rule(rule, model, policy.black_box_evidence) for rule in policy.rules]
    if policy.require_checks:
        outcomes.append(checks_outcome(model))
    return Verdict(policy, model.path, model.profile.sha256, tuple(outcomes))


def evaluate_rule(rule: Rule, model: ModelAssessment, black_box_evidence: bool = False) -> Outcome:
    own = model.precision.name if model.precision else "fp32"
    if rule.precision is not None and rule.precision != own:
        return Outcome(rule.name, rule.metric, rule.threshold_text(), None, "not applicable", True,
                       f"the rule applies to {rule.precision} models; this one is {own}", rule)
    measured, evidence = measure(rule, model)
    if measured is not None and rule.metric == "robust_accuracy" and not black_box_evidence:
        worst = worst_case_at(rule, model)
        kinds = {result.kind for result in model.attacks if worst and result.name in worst.attacks
                 and (result.norm, result.epsilon) == (worst.norm, worst.epsilon)}
        if "white-box" not in kinds:
            return Outcome(rule.name, rule.metric, rule.threshold_text(), None, "no white-box evidence", False,
                           f"only black-box attacks ran at {rule.norm} eps={rule.epsilon_text} ({evidence}): they overstate "
                           "robustness; give the PyTorch source, or a graph that converts to torch, or set black_box_evidence "
                           "= true in [policy] to accept them", rule)
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


def measured_interval(rule: Rule, model: ModelAssessment) -> tuple[float, float] | None:
    """The 95 % Wilson interval of a measured clean or robust accuracy; None for other metrics or when not measured."""
    if rule.metric == "clean_accuracy":
        return wilson_interval(round(model.clean_accuracy * model.clean_samples), model.clean_samples)
    if rule.metric == "robust_accuracy":
        worst = worst_case_at(rule, model)
        if worst is None or worst.samples < 1:
            return None
        robust = worst.robust_count if worst.robust_count is not None else round(worst.robust_accuracy * worst.samples)
        return wilson_interval(robust, worst.samples)
    return None


def finite(value: float | None) -> float | None:
    """value when it is a finite number, else None (not measured)."""
    return value if value is not None and math.isfinite(value) else None


def measure(rule: Rule, model: ModelAssessment) -> tuple[float | None, str]:
    """(measured value or None, evidence: where it comes from, or why it is missing)."""
    if rule.metric == "robust_accuracy":
        return measure_robust(rule, model)
    if rule.metric == "median_distance":
        return measure_median(rule, model)
    if rule.metric == "latency_p99_ms":
        return measure_latency(rule, model)
    if rule.metric == "accuracy_drop":
        drop, parent = finite(model.accuracy_drop), model.parent_clean_accuracy
        if drop is None or parent is None:
            return None, "no parent model was assessed (the model's metadata names no parent .onnx beside it), so no accuracy drop"
        return drop, f"parent {parent:.4f}, model {model.clean_accuracy:.4f}"
    if rule.metric in FLOAT_PARENT_METRICS:
        return measure_against_float(rule, model)
    if rule.metric == "fallback_kernels":
        if model.placement is None:
            return None, "where the kernels ran was not recorded"
        return float(len(model.placement.fallbacks)), model.placement.summary()
    if rule.metric == "clean_accuracy":
        value = finite(model.clean_accuracy)
        if value is None:
            return None, "the assessment holds no clean_accuracy"
        return value, f"on {model.clean_samples:,} test images"
    value = finite(float(getattr(model.profile, rule.metric)))
    return (value, "") if value is not None else (None, f"the assessment holds no {rule.metric}")


FLOAT_PARENT_METRICS = ("float_accuracy_drop", "accuracy_vs_float", "speedup_vs_float")


def measure_against_float(rule: Rule, model: ModelAssessment) -> tuple[float | None, str]:
    """The int8 / fp16 model against its float32 parent (evaluator quantize's record, the parent beside it)."""
    precision = model.precision
    if precision is None or not precision.is_reduced:
        return None, "the model is float32: it has no float parent to compare with (scope the rule with precision)"
    parent = precision.float_parent_accuracy
    if parent is None:
        return None, "the float32 parent was not assessed (its .onnx, named in the precision record, is not beside the model)"
    if rule.metric == "float_accuracy_drop":
        return parent - model.clean_accuracy, f"float32 parent {parent:.4f}, model {model.clean_accuracy:.4f}"
    if rule.metric == "accuracy_vs_float":
        return (model.clean_accuracy / parent if parent else None), f"float32 parent {parent:.4f}, model {model.clean_accuracy:.4f}"
    if precision.speedup is None:
        return None, "latency was not measured (switched off), so no speed-up"
    return precision.speedup, f"{precision.float_parent_throughput_per_s:,.0f} samples/s for the float32 parent"


def worst_case_at(rule: Rule, model: ModelAssessment) -> WorstCase | None:
    """The worst case at the rule's norm and epsilon, None when no attack ran there."""
    assert rule.epsilon is not None
    for worst in model.worst_case:
        if worst.norm == rule.norm and math.isclose(worst.epsilon, rule.epsilon, rel_tol=TOLERANCE):
            return worst
    return None


def measure_robust(rule: Rule, model: ModelAssessment) -> tuple[float | None, str]:
    worst = worst_case_at(rule, model)
    if worst is not None:
        value = finite(worst.robust_accuracy)
        if value is None:
            return None, f"the robustness entry at {rule.norm} eps={rule.epsilon_text} holds no robust_accuracy"
        return value, f"worst case of {', '.join(worst.attacks) or '?'} on {worst.samples:,} samples"
    run = sorted({f"{w.norm} {w.epsilon:.4g}" for w in model.worst_case})
    return None, (f"no attack ran at {rule.norm} eps={rule.epsilon_text} ({rule.epsilon:.6g}); "
                  f"measured: {', '.join(run) if run else 'no robustness at all'}")


def measure_median(rule: Rule, model: ModelAssessment) -> tuple[float | None, str]:
    medians = model.median_distances()
    if rule.norm not in medians:
        return None, f"no minimal-norm attack in {rule.norm} was run"
    value = medians[rule.norm]
    if value is None:
        return None, (f"more than half of the samples have no {rule.norm} adversarial example found, so the median is "
                      "unbounded; an unbounded attack that fails is no evidence of robustness (too few steps or "
                      "gradient masking: see the unbounded-success check)")
    names = ", ".join(result.name for result in model.minimal if result.norm == rule.norm)
    return value, f"best of {names}"


def measure_latency(rule: Rule, model: ModelAssessment) -> tuple[float | None, str]:
    used = model.runtime.used
    if rule.provider is not None and used.lower() != rule.provider.lower():
        return None, f"the rule needs {rule.provider} but the model ran on {used}"
    if not model.latency_by_batch:
        return None, "latency was not measured (switched off)"
    stats = next((entry for entry in model.latency_by_batch if entry.batch_size == rule.batch), None)
    if stats is None:
        timed = sorted(entry.batch_size for entry in model.latency_by_batch)
        return None, (f"no latency at batch {rule.batch} (timed at batch {', '.join(map(str, timed))}; "
                      "assess with the policy's latency_batches)")
    value = finite(stats.p99_ms)
    if value is None:
        return None, f"the latency at batch {rule.batch} holds no p99_ms"
    return value, f"p99 of {stats.runs:,} runs at batch {rule.batch} on {used}"


def checks_outcome(model: ModelAssessment) -> Outcome:
    failed = [check for check in model.checks if not check.passed]
    name, threshold = "sanity checks", "all pass"
    if not model.checks:
        return Outcome(name, "checks", threshold, None, "not measured", False, "not measured: the assessment holds no sanity checks")
    text = f"{len(model.checks) - len(failed)}/{len(model.checks)} passed"
    if failed:
        message = "; ".join(f"{check.name} failed: {check.detail}" for check in failed)
    else:
        message = ", ".join(check.name for check in model.checks)
    return Outcome(name, "checks", threshold, float(len(failed)), text, not failed, message)
