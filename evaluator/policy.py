"""The sign-off gate: a TOML policy of thresholds, checked against one model of an assessment.

The public face of three modules, so that callers import from one place:
  * evaluator.policy_rules: the metrics a rule can bound, Rule and Policy, how values are written;
  * evaluator.policy_file: the policy file format (load_policy, policy_from_toml): parsing and validating [[rule]]s;
  * evaluator.policy_evaluation: a policy against a model's results (evaluate_policy): measured values, intervals,
    outcomes, the Verdict and the exit code. Its docstring states the decisions (missing evidence fails).
"""

from __future__ import annotations

from evaluator.policy_evaluation import Outcome, Verdict, evaluate_policy, evaluate_rule, exit_code
from evaluator.policy_file import load_policy, policy_from_dict, policy_from_toml
from evaluator.policy_rules import METRICS, NORMS, PROVIDERS, TOLERANCE, Comparator, Policy, Rule, format_value

__all__ = ["METRICS", "NORMS", "PROVIDERS", "TOLERANCE", "Comparator", "Outcome", "Policy", "Rule", "Verdict",
           "evaluate_policy", "evaluate_rule", "exit_code", "format_value", "load_policy", "policy_from_dict",
           "policy_from_toml"]
