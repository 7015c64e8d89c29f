"""The size / speed / robustness table as CSV (report format "csv"): one row per model, the columns of the sweep's
table.csv (evaluator/table.py)."""

from __future__ import annotations

from typing import Sequence

from evaluator.policy import Verdict
from evaluator.report.writers import ReportWriter, register_writer
from evaluator.results import Assessment
from evaluator.table import table_csv, table_row


def render(assessment: Assessment, verdicts: Sequence[Verdict]) -> str:
    return table_csv([table_row(model) for model in assessment.models])


register_writer(ReportWriter("csv", ".csv", "the size / speed / robustness table, one row per model", False, render))
