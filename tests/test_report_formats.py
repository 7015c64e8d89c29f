"""Every registered report format renders a real assessment of two models, with and without sign-off verdicts."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest

from conftest import ZOO_CHILD, ZOO_PARENT
from evaluator.errors import EvaluatorError
from evaluator.policy import Verdict, evaluate_policy, policy_from_toml
from evaluator.report.writers import ReportWriter, register_writer, report_writer, report_writers
from evaluator.results import Assessment

POLICY = '[policy]\nname = "formats"\n[[rule]]\nmetric = "clean_accuracy"\nmin = 0.9\n'  # the parent passes, the child fails


@pytest.fixture(scope="module")
def assessed() -> tuple[Assessment, list[Verdict]]:
    from evaluator.assessment import AssessConfig, assess

    assessment = assess([ZOO_PARENT, ZOO_CHILD], AssessConfig(samples=20, attacks=("square-linf:queries=20",), skip_latency=True))
    policy = policy_from_toml(POLICY)
    return assessment, [evaluate_policy(policy, model) for model in assessment.models]


@pytest.mark.parametrize("name", sorted(report_writers()))
def test_every_format_renders_both_models(name: str, assessed: tuple[Assessment, list[Verdict]]) -> None:
    assessment, verdicts = assessed
    writer = report_writer(name)
    text = writer.render(assessment, verdicts)
    plain = text.replace("\\_", "_")  # Markdown escapes underscores
    assert text.endswith("\n") and all(model.path.rsplit("/", 1)[-1].removesuffix(".onnx") in plain for model in assessment.models)
    if not writer.needs_verdict:
        assert writer.render(assessment, []).endswith("\n")  # without a policy too
    if name == "json":
        data = json.loads(text)
        assert Assessment.from_dict(data).to_dict()["models"] == [{k: v for k, v in m.items() if k != "signoff"} for m in data["models"]]
        assert [m["signoff"]["passed"] for m in data["models"]] == [True, False]
    elif name == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [row["method"] for row in rows] == ["none", "filter-l1"] and rows[0]["robust_Linf@0.03137"]
    elif name == "junit":
        root = ET.fromstring(text)
        assert root.get("tests") == "2" and root.get("failures") == "1"
    elif name == "markdown":
        assert "PASS" in text and "FAIL" in text


def test_a_format_registered_twice_is_refused() -> None:
    json_writer = report_writer("json")
    with pytest.raises(ValueError, match="registered twice"):
        register_writer(ReportWriter("json", ".json", "again", False, json_writer.render))
    with pytest.raises(EvaluatorError, match="report format 'pdf' is unknown") as error:
        report_writer("pdf")
    assert error.value.field == "report"
