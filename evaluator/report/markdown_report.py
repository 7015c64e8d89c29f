"""The sign-off verdict as Markdown: a merge-request or pull-request comment (report format "markdown")."""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from evaluator.policy import Outcome, Verdict
from evaluator.report.verdicts import as_list, verdict_word
from evaluator.report.writers import ReportWriter, register_writer
from evaluator.results import Assessment

MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


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


def render(assessment: Assessment, verdicts: Sequence[Verdict]) -> str:
    return verdict_markdown(verdicts)


register_writer(ReportWriter("markdown", ".md", "the sign-off verdict as Markdown (a merge-request comment)", True, render))
