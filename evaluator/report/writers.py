"""The report formats an assessment can be written in: a small registry, one module per format.

A format renders the whole assessment, and the sign-off verdicts when a policy was given, as one text file:
`evaluator assess --report NAME=PATH` writes it (`--json`, `--markdown` and `--junit` are short for three of them).
Adding a format is one module in evaluator/report/ that calls `register_writer` and is named in FORMAT_MODULES.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from evaluator.errors import EvaluatorError
from evaluator.results import Assessment

if TYPE_CHECKING:
    from evaluator.policy import Verdict

FORMAT_MODULES = ("json_report", "csv_report", "markdown_report", "junit_report")  # under evaluator.report


@dataclass(frozen=True)
class ReportWriter:
    """name: as `--report NAME=PATH` takes it; suffix: the usual file ending; needs_verdict: renders the sign-off, so
    it needs a policy; render(assessment, verdicts) -> the file's text (verdicts: one per model, empty without a
    policy)."""

    name: str
    suffix: str
    summary: str
    needs_verdict: bool
    render: Callable[[Assessment, Sequence["Verdict"]], str]


_WRITERS: dict[str, ReportWriter] = {}


def register_writer(writer: ReportWriter) -> ReportWriter:
    if writer.name in _WRITERS:
        raise ValueError(f"report format {writer.name!r} is registered twice")
    _WRITERS[writer.name] = writer
    return writer


def report_writers() -> dict[str, ReportWriter]:
    """Every registered format by name (the format modules are imported on first use)."""
    for module in FORMAT_MODULES:
        importlib.import_module(f"evaluator.report.{module}")
    return dict(_WRITERS)


def report_writer(name: str) -> ReportWriter:
    """The format called `name`; an unknown one is a one-line error naming the known ones."""
    writers = report_writers()
    if name not in writers:
        raise EvaluatorError(f"report format {name!r} is unknown: use one of {', '.join(sorted(writers))}", field="report")
    return writers[name]
