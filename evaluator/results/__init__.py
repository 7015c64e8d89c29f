"""Every frozen result type of an assessment, with its JSON form (`to_dict`), apart from the code that computes it:
renderers, the policy and the sweep import these without loading the attacks, ONNX Runtime or torch."""

from evaluator.results.attacks import (
    BUDGET_SLACK, OUTCOME_CODES, AttackResult, MinimalNormResult, WorstCase, codes_text, curve_points, distance_list,
    interval, outcome_codes, worst_distances,
)
from evaluator.results.model import (
    FLOAT_SOURCE_SUFFIX, FROM_CONVERTED_GRAPH, FROM_FLOAT_SOURCE, FROM_SOURCE, SCHEMA_VERSION, Assessment, AttackedSamples, Check, LatencyStats, ModelAssessment, ModelProfile, RuntimeChoice,
)
from evaluator.results.placement import KernelPlacement, Placement
from evaluator.results.precision import PrecisionResult
from evaluator.results.table_row import TABLE_SCHEMA_VERSION, Interval, TableRow

__all__ = ["BUDGET_SLACK", "FLOAT_SOURCE_SUFFIX", "FROM_CONVERTED_GRAPH", "FROM_FLOAT_SOURCE", "FROM_SOURCE", "KernelPlacement", "Placement",
           "PrecisionResult", "OUTCOME_CODES", "SCHEMA_VERSION", "TABLE_SCHEMA_VERSION", "Assessment", "AttackResult",
           "AttackedSamples", "Check", "Interval", "LatencyStats", "MinimalNormResult", "ModelAssessment", "ModelProfile",
           "RuntimeChoice", "TableRow", "WorstCase",
           "codes_text", "curve_points", "distance_list", "interval", "outcome_codes", "worst_distances"]
