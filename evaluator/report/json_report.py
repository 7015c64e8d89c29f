"""The whole assessment as JSON (report format "json"): every model's results (ModelAssessment.to_dict, schema
SCHEMA_VERSION) and, with a policy, its sign-off under the model's "signoff" key."""

from __future__ import annotations

from typing import Any, Sequence

from evaluator.files import json_text
from evaluator.policy import Verdict
from evaluator.report.verdicts import verdict_to_dict
from evaluator.report.writers import ReportWriter, register_writer
from evaluator.results import Assessment


def assessment_json(assessment: Assessment, verdicts: Sequence[Verdict] = ()) -> dict[str, Any]:
    """Assessment.to_dict() with each model's verdict (in the order of the models) as its "signoff"."""
    data = assessment.to_dict()
    for model, verdict in zip(data["models"], verdicts):
        model["signoff"] = verdict_to_dict(verdict)
    return data


def render(assessment: Assessment, verdicts: Sequence[Verdict]) -> str:
    return json_text(assessment_json(assessment, verdicts)) + "\n"


register_writer(ReportWriter("json", ".json", "the whole assessment (and sign-off) as JSON", False, render))
