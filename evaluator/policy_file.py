"""The policy file: reading a TOML policy and validating its [policy] table and its [[rule]] entries into a Policy.

A policy file has an optional [policy] table (name, description, require_checks, black_box_evidence) and one [[rule]]
per threshold:

    [[rule]]
    metric = "robust_accuracy"   # see METRICS
    norm = "Linf"                # robust_accuracy and median_distance: L0, L1, L2 or Linf
    epsilon = "8/255"            # robust_accuracy: a number or a fraction string
    min = 0.35                   # exactly one of min (measured >= min) or max (measured <= max)

Every problem is one EvaluatorError line naming the file (and the rule), with a "did you mean" for misspelt keys.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from fractions import Fraction
from pathlib import Path
from typing import Any

from evaluator.errors import EvaluatorError
from evaluator.precision import PRECISIONS
from evaluator.files import read_text_file
from evaluator.limits import MAX_BATCH
from evaluator.policy_rules import (
    COMMON_KEYS, EXTRA_KEYS, METRICS, NORMS, POLICY_KEYS, PROVIDERS, REQUIRED_KEYS, Comparator, Policy, Rule, is_number,
)


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
    black_box = header.get("black_box_evidence", False)
    for key, value, kind in (("name", name, str), ("description", description, str), ("require_checks", require_checks, bool),
                             ("black_box_evidence", black_box, bool)):
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
    return Policy(name.strip(), description.strip(), tuple(rules), require_checks, None if origin.startswith("<") else origin,
                  black_box)


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
    precision = parse_precision(entry["precision"], where) if "precision" in entry else None
    name = entry.get("name")
    if name is None:
        name = default_name(metric, comparator, norm, epsilon_text, batch, provider, precision)
    elif not isinstance(name, str) or not name.strip():
        raise EvaluatorError(f"{where}: `name` must be a non-empty string, got {name!r}")
    return Rule(name.strip(), metric, comparator, threshold, norm, epsilon, epsilon_text, batch, provider, precision)


def parse_precision(value: Any, where: str) -> str:
    if value not in PRECISIONS:
        raise EvaluatorError(f"{where}: unknown precision {value!r} (expected one of {', '.join(PRECISIONS)})")
    return str(value)


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
                 provider: str | None, precision: str | None = None) -> str:
    """E.g. 'robust_accuracy Linf eps=8/255 min', 'latency_p99_ms batch=1 CPU max', 'speedup_vs_float int8 min'."""
    parts = [metric, precision, norm, f"eps={epsilon_text}" if epsilon_text else None, f"batch={batch}" if batch else None,
             provider.removesuffix("ExecutionProvider") if provider else None, comparator]
    return " ".join(part for part in parts if part)
