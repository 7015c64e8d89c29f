"""The size / speed / robustness table in the terminal: one table when it fits the console, two when it does not."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from evaluator.assessment import AssessConfig, assess
from evaluator.results import Assessment
from evaluator.report.terminal import render_table
from evaluator.stats import wilson_interval

from conftest import ZOO_CHILD, ZOO_PARENT

ATTACKS = ("pgd-linf:steps=5", "pgd-l2:steps=5", "square-linf:queries=30", "square-l2:queries=30", "fmn-l2:steps=10")


@pytest.fixture(scope="module")
def assessment() -> Assessment:
    """The zoo pair with five attacks in two norms on 20 samples: 21 columns in one table."""
    return assess([ZOO_PARENT, ZOO_CHILD], AssessConfig(samples=20, attacks=ATTACKS, skip_latency=True))


def rendered(assessment: Assessment, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    render_table(assessment, console)
    return console.export_text()


def expected_rows(assessment: Assessment) -> dict[str, list[str]]:
    """Label -> the cell of each model, for every attack at every epsilon and every worst case."""
    rows: dict[str, list[str]] = {}
    for model in assessment.models:
        for result in model.attacks:
            queries = f" ({result.queries:.0f} q)" if result.queries is not None else ""
            rows.setdefault(f"{result.name} eps={result.epsilon:.4g}", []).append(f"{result.robust_accuracy:.3f}{queries}")
        for worst in model.worst_case:
            low, high = wilson_interval(worst.robust_count, worst.samples)  # type: ignore[arg-type]
            rows.setdefault(f"worst {worst.norm} eps={worst.epsilon:.4g}", []).append(
                f"{worst.robust_accuracy:.3f} [{low:.3f}-{high:.3f}]")
    return rows


def test_a_wide_console_gets_one_row_per_model(assessment: Assessment) -> None:
    text = rendered(assessment, 1000)
    assert "size / speed / robustness" in text and "…" not in text
    lines = [line for line in text.splitlines() if line.startswith(f"│ {Path(ZOO_CHILD).name}")]
    assert len(lines) == 1  # the child's whole row on one line, every figure in it
    for cells in expected_rows(assessment).values():
        assert cells[1].split(" (")[0] in lines[0]


def test_a_narrow_console_gets_a_robustness_table_with_one_row_per_figure(assessment: Assessment) -> None:
    text = rendered(assessment, 130)
    assert "size / speed / robustness" not in text and "size / speed" in text and "robustness" in text
    lines = text.splitlines()
    for label, cells in expected_rows(assessment).items():
        row = [line for line in lines if f" {label} " in line]
        assert len(row) == 1, (label, row)
        values = [cell.strip() for cell in row[0].strip(" │┃").split("│")[1:]]
        assert values == cells, (label, values, cells)
    assert any("median L2 dist" in line for line in lines)
    clean = [f"{model.attacked.clean_accuracy:.3f} of 20" for model in assessment.models]  # what robust accuracy is out of
    row = next(line for line in lines if " attacked clean acc " in line)
    assert [cell.strip() for cell in row.strip(" │┃").split("│")[1:]] == clean
    assert "…" not in "\n".join(line for line in lines if "eps=" in line)  # no figure cut short
