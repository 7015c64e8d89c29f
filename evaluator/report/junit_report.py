"""The sign-off verdict as JUnit XML: one test case per rule, for CI test-report views (report format "junit")."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable, Sequence

from evaluator.policy import Verdict
from evaluator.report.verdicts import as_list, verdict_word
from evaluator.report.writers import ReportWriter, register_writer
from evaluator.results import Assessment

JUNIT_SUITES = "evaluator sign-off"
INVALID_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")  # not allowed in XML 1.0


def xml_text(text: str) -> str:
    """Drop the characters XML 1.0 cannot hold (ElementTree escapes &, <, > and quotes itself)."""
    return INVALID_XML.sub("", text)


def junit_classname(model: str) -> str:
    """evaluator.signoff.<model file stem> (its dots made underscores, as dots separate packages in JUnit viewers)."""
    return "evaluator.signoff." + Path(model).stem.replace(".", "_")


def verdict_junit(verdicts: Verdict | Iterable[Verdict]) -> str:
    """<testsuites> with one <testsuite> per model and one <testcase> per rule: <failure message=...> when it failed,
    <system-out> with the measured value either way."""
    items = as_list(verdicts)
    root = ET.Element("testsuites", name=JUNIT_SUITES, tests=str(sum(len(v.outcomes) for v in items)),
                      failures=str(sum(len(v.failures) for v in items)), errors="0")
    for verdict in items:
        suite = ET.SubElement(root, "testsuite", name=xml_text(f"{verdict.policy.name}: {verdict.model_name}"),
                              tests=str(len(verdict.outcomes)), failures=str(len(verdict.failures)), errors="0",
                              skipped="0")
        properties = ET.SubElement(suite, "properties")
        for key, value in (("policy", verdict.policy.name), ("policy_path", verdict.policy.path), ("model", verdict.model),
                           ("sha256", verdict.sha256), ("verdict", verdict_word(verdict))):
            if value is not None:
                ET.SubElement(properties, "property", name=key, value=xml_text(value))
        for outcome in verdict.outcomes:
            case = ET.SubElement(suite, "testcase", classname=xml_text(junit_classname(verdict.model)),
                                 name=xml_text(outcome.name))
            if not outcome.passed:
                failure = ET.SubElement(case, "failure", message=xml_text(outcome.message), type="threshold")
                failure.text = xml_text(f"{outcome.name}: measured {outcome.measured_text}, required {outcome.threshold}\n"
                                        f"{outcome.message}")
            out = ET.SubElement(case, "system-out")
            out.text = xml_text(f"measured: {outcome.measured_text}\nthreshold: {outcome.threshold}\n{outcome.message}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render(assessment: Assessment, verdicts: Sequence[Verdict]) -> str:
    return verdict_junit(verdicts)


register_writer(ReportWriter("junit", ".xml", "the sign-off verdict as JUnit XML (one test case per rule)", True, render))
