"""A sign-off verdict's words and JSON form, shared by the report formats."""

from __future__ import annotations

from typing import Any, Iterable

from evaluator.policy import Verdict


def verdict_word(verdict: Verdict) -> str:
    return "PASS" if verdict.passed else "FAIL"


def as_list(verdicts: Verdict | Iterable[Verdict]) -> list[Verdict]:
    return [verdicts] if isinstance(verdicts, Verdict) else list(verdicts)


def verdict_to_dict(verdict: Verdict) -> dict[str, Any]:
    """JSON-ready: the policy, the model, the verdict and per rule its threshold, measured value and message."""
    return {
        "policy": {key: value for key, value in verdict.policy.to_dict().items() if key != "rules"},
        "model": {"path": verdict.model, "sha256": verdict.sha256},
        "verdict": verdict_word(verdict),
        "passed": verdict.passed,
        "rules": len(verdict.outcomes),
        "failures": len(verdict.failures),
        "within_interval": len(verdict.within_interval),  # rules whose threshold lies inside the 95% interval
        "outcomes": [outcome.to_dict() for outcome in verdict.outcomes],
    }
