"""Every frozen result type of an assessment, with its JSON form (`to_dict`), apart from the code that computes it:
renderers, the policy and the sweep import these without loading the attacks, ONNX Runtime or torch."""

from evaluator.results.attacks import (
    BUDGET_SLACK, OUTCOME_CODES, AttackResult, MinimalNormResult, WorstCase, codes_text, curve_points, distance_list,
    interval, outcome_codes, worst_distances,
)
from evaluator.results.model import (
    SCHEMA_VERSION, Assessment, AttackedSamples, Check, LatencyStats, ModelAssessment, ModelProfile, RuntimeChoice,
)

__all__ = ["BUDGET_SLACK", "OUTCOME_CODES", "SCHEMA_VERSION", "Assessment", "AttackResult", "AttackedSamples", "Check",
           "LatencyStats", "MinimalNormResult", "ModelAssessment", "ModelProfile", "RuntimeChoice", "WorstCase",
           "codes_text", "curve_points", "distance_list", "interval", "outcome_codes", "worst_distances"]
