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

from evaluator.policy_rules import TOLERANCE, Policy, Rule, format_value, is_number
from evaluator.stats import share_interval


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
        return None, "latency was not measured (latency off)"
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
