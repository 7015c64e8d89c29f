"""A sign-off verdict in the terminal: a rich table per model. Its JSON, Markdown and JUnit forms are report formats
(evaluator/report/json_report.py, markdown_report.py, junit_report.py)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from evaluator.policy import Verdict
from evaluator.report.verdicts import verdict_word


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
