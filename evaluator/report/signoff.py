"""A sign-off verdict four ways: a rich terminal table, a JSON dict, Markdown (a merge-request comment), JUnit XML."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from evaluator.policy import Outcome, Verdict

JUNIT_SUITES = "evaluator sign-off"
INVALID_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")  # not allowed in XML 1.0
MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def verdict_word(verdict: Verdict) -> str:
    return "PASS" if verdict.passed else "FAIL"


def as_list(verdicts: Verdict | Iterable[Verdict]) -> list[Verdict]:
    return [verdicts] if isinstance(verdicts, Verdict) else list(verdicts)


def render_verdict_terminal(verdict: Verdict, console: Console) -> None:
    """One table row per rule; user text (rule names, messages) is printed literally, never as rich markup."""
    table = Table(title=Text(f"sign-off {verdict.policy.name}: {verdict.model_name}"), header_style="bold")
    for header in ("rule", "threshold", "measured", "result", "evidence / reason"):
        table.add_column(header, justify="right" if header in ("threshold", "measured") else "left",
                         overflow="fold")
    for outcome in verdict.outcomes:
        result = Text("pass", style="green") if outcome.passed else Text("FAIL", style="bold red")
        table.add_row(Text(outcome.name), Text(outcome.threshold), Text(outcome.measured_text), result,
                      Text(outcome.message, style="" if outcome.passed else "red"))
    console.print(table)
    failures = len(verdict.failures)
    summary = (Text(f"{verdict_word(verdict)}: ", style="bold green" if verdict.passed else "bold red")
               + Text(f"{verdict.model_name} {'meets' if verdict.passed else 'fails'} policy {verdict.policy.name} "
                      f"({len(verdict.outcomes) - failures} of {len(verdict.outcomes)} rules passed)"))
    console.print(summary)
    if verdict.within_interval:
        console.print(Text(f"{len(verdict.within_interval)} rule(s) decided with the threshold inside the measured value's "
                           "95% interval (not a clear difference at this sample size): "
                           + ", ".join(outcome.name for outcome in verdict.within_interval), style="yellow"))


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


def markdown_cell(text: str) -> str:
    """Literal text in a GitHub/GitLab table cell: markdown escaped, HTML neutralised, one line."""
    text = " ".join(text.split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return MARKDOWN_SPECIAL.sub(r"\\\1", text)


def result_cell(outcome: Outcome) -> str:
    """'✅ pass' / '❌ fail', with '(within 95% interval)' when the threshold lies inside the measured value's interval."""
    word = "✅ pass" if outcome.passed else "❌ fail"
    return f"{word} (within 95% interval)" if outcome.threshold_within_interval else word


def verdict_markdown(verdicts: Verdict | Iterable[Verdict]) -> str:
    """A heading with PASS/FAIL per model, a rule | threshold | measured | result table, the failures' reasons and the
    rules decided inside the 95% interval of their measured value."""
    sections = []
    for verdict in as_list(verdicts):
        icon = "✅" if verdict.passed else "❌"
        lines = [f"### {icon} {verdict_word(verdict)}: {markdown_cell(verdict.model_name)} against sign-off policy "
                 f"{markdown_cell(verdict.policy.name)}", ""]
        if verdict.policy.description:
            lines += [markdown_cell(verdict.policy.description), ""]
        lines += ["| rule | threshold | measured | result |", "|---|---|---|---|"]
        for outcome in verdict.outcomes:
            lines.append(f"| {markdown_cell(outcome.name)} | {markdown_cell(outcome.threshold)} | "
                         f"{markdown_cell(outcome.measured_text)} | {result_cell(outcome)} |")
        if verdict.failures:
            lines += ["", f"**{len(verdict.failures)} of {len(verdict.outcomes)} rules failed:**", ""]
            lines += [f"- {markdown_cell(o.name)}: {markdown_cell(o.message)}" for o in verdict.failures]
        unclear = [o for o in verdict.within_interval if o.passed]  # failures' messages above say it already
        if unclear:
            lines += ["", "**Passed, but not clearly: the threshold lies inside the measured value's 95% interval:**", ""]
            lines += [f"- {markdown_cell(o.name)}: {markdown_cell(o.message)}" for o in unclear]
        footer = f"model sha256 {verdict.sha256}" if verdict.sha256 else ""
        if footer:
            lines += ["", f"<sub>{markdown_cell(footer)}</sub>"]
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"


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
