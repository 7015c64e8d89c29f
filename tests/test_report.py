"""The study's scenario analysis, its figures and the self-contained HTML report (checked in headless Chromium)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evaluator.report.html import inline_svg, render_html, table_header, write_html
from evaluator.report.plots import (
    FigureFiles, curves_figure, figure_series, grid_figure, latency_figure, method_style, plot_all, plot_latency,
    scenario_figure, series_id,
)
from evaluator.scenario import (
    Line, aggregated_lines, best_ranges, clear_lead, crossing, crossings, default_budget_key, pareto_front, scenario,
)
from evaluator.results import TableRow
from evaluator.stats import share_interval
from evaluator.table import table_csv, table_markdown, table_note, table_row, with_parent_drop

LINF = "Linf@0.03137"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
METHODS = ("unstructured-global-magnitude", "filter-l1", "kernel-local-random")


def make_row(variant: str, method: str, rate: float, clean: float, robust: dict[str, float], p99: float | None,
             curves: dict[str, tuple[tuple[float, float], ...]], failed: tuple[str, ...] = ()) -> TableRow:
    """A table row as evaluator/table.py `table_row` builds it, with hand-made numbers: clean accuracy on 10,000 test
    images, robust accuracies on 1,000 attacked ones (their clean accuracy a point above the whole set's)."""
    achieved = rate * 0.98 if rate > 1 else 1.0
    attacked_clean = round(min(clean + 0.01, 1.0), 4)
    return TableRow(
        variant=variant, method=method, target_rate=float(rate), achieved_rate=achieved, params=61706,
        nonzero_params=int(61706 / achieved), macs=int(429000 / (achieved if method.startswith("filter") else 1)),
        size_bytes=248000, gzip_bytes=int(229000 / achieved), provider="CPUExecutionProvider",
        latency_p50_ms=None if p99 is None else round(0.8 * p99, 4), latency_p99_ms=p99,
        throughput_per_s=None if p99 is None else round(8000 / p99), throughput_batch=64, clean_accuracy=clean,
        clean_accuracy_ci=share_interval(clean, 10_000), accuracy_drop=None, attacked_samples=1000,
        attacked_clean_accuracy=attacked_clean, attacked_clean_accuracy_ci=share_interval(attacked_clean, 1000),
        robust_accuracy=robust, robust_accuracy_ci={key: share_interval(value, 1000) for key, value in robust.items()},
        median_distance={"L2": 0.8 * clean, "Linf": 0.03 * clean},
        curves=curves, checks_failed=failed, sha256="ab" * 32, path=f"models/{variant}.onnx",
    )


def study_rows() -> list[TableRow]:
    """The parent and three methods at rates 2, 4, 8; kernel-local-random at rate 8 failed a check."""
    def curves(clean: float, scale: float) -> dict[str, tuple[tuple[float, float], ...]]:
        return {"Linf": ((0.0, clean), (0.01 * scale, round(0.8 * clean, 4)), (0.03 * scale, round(0.4 * clean, 4)),
                         (0.08 * scale, 0.0)),
                "L2": ((0.0, clean), (0.5 * scale, round(0.7 * clean, 4)), (2.0 * scale, 0.0))}

    rows = [make_row("parent", "none", 1, 0.9, {LINF: 0.3, "L2@1": 0.4, "L0@10": 0.5}, 0.5, curves(0.9, 1.0))]
    for m, method in enumerate(METHODS):
        for k, rate in enumerate((2, 4, 8)):
            clean = round(0.9 - (0.01 + 0.03 * m) * (k + 1), 4)
            robust = {LINF: round(0.3 - 0.04 * (k + 1) + 0.05 * m, 4), "L2@1": round(0.36 - 0.03 * k - 0.01 * m, 4),
                      "L0@10": round(0.45 - 0.05 * k + 0.02 * m, 4)}
            p99 = round(0.5 / rate ** 0.5, 4) if method.startswith("filter") else round(0.5 + 0.01 * k, 4)
            rows.append(make_row(f"{method}_cr{rate}", method, rate, clean, robust, p99, curves(clean, 1.0 - 0.1 * k),
                                 ("epsilon-monotone",) if (m, k) == (2, 2) else ()))
    return with_parent_drop(rows)


CONTEXT = {
    "title": "LeNet-5 on Fashion-MNIST <pruning study> & co",
    "config": {"dataset": "fashion-mnist", "samples": 1000, "attacks": ["apgd-ce", "fmn-l2"], "budgets": {"Linf": [0.03137]}},
    "environment": {"python": "3.11.2", "packages": {"numpy": "2.1", "onnxruntime": None}},
    "checks": {"kernel-local-random_cr8": [
        {"name": "epsilon-monotone", "passed": False, "detail": "robust accuracy rose <script>alert(1)</script>"},
        {"name": "logits-output", "passed": True, "detail": "the outputs are logits"}]},
    "notes": {"parent": ["trained for 30 epochs", "a <b>bold</b> claim & more"]},
}


@pytest.fixture(scope="module")
def rows() -> list[TableRow]:
    return study_rows()


@pytest.fixture(scope="module")
def figures(rows: list[TableRow], tmp_path_factory: pytest.TempPathFactory) -> list[FigureFiles]:
    return plot_all(rows, tmp_path_factory.mktemp("figures"))


def line(variant: str, clean: float, robust: float) -> Line:
    return Line(variant, "m", clean, robust)


# --- scenario ---------------------------------------------------------------------------------------------------


def test_two_lines_cross_where_hand_computed() -> None:
    a, b = line("a", 0.75, 0.25), line("b", 0.5, 0.5)  # 0.75 - 0.5 r = 0.5  ->  r = 0.5, A = 0.5
    point = crossing(a, b)
    assert point is not None
    assert (point.r, point.accuracy, point.below, point.above) == (0.5, 0.5, "a", "b")
    assert crossing(b, a) == type(point)("b", "a", 0.5, 0.5, "a", "b")
    assert [(s.r_from, s.r_to, s.variant) for s in best_ranges([a, b])] == [(0.0, 0.5, "a"), (0.5, 1.0, "b")]


def test_envelope_of_three_lines() -> None:
    # a: 0.75 - 0.5 r; c: 0.625 - 0.1875 r; b: 0.5. a = c at r = 0.4 (A = 0.55), c = b at r = 2/3 (A = 0.5),
    # a = b at r = 0.5 lies under c (c(0.5) = 0.53125) so it is a crossing but not a switch of the best variant.
    a, b, c = line("a", 0.75, 0.25), line("b", 0.5, 0.5), line("c", 0.625, 0.4375)
    points = crossings([a, b, c])
    assert [(p.a, p.b) for p in points] == [("a", "c"), ("a", "b"), ("b", "c")]
    assert [p.r for p in points] == pytest.approx([0.4, 0.5, 2 / 3], abs=1e-12)
    assert [p.accuracy for p in points] == pytest.approx([0.55, 0.5, 0.5], abs=1e-12)
    assert [(p.below, p.above) for p in points] == [("a", "c"), ("a", "b"), ("c", "b")]
    best = best_ranges([a, b, c])
    assert [s.variant for s in best] == ["a", "c", "b"]
    np.testing.assert_allclose([(s.r_from, s.r_to) for s in best], [(0.0, 0.4), (0.4, 2 / 3), (2 / 3, 1.0)], atol=1e-12)
    np.testing.assert_allclose([(s.accuracy_from, s.accuracy_to) for s in best], [(0.75, 0.55), (0.55, 0.5), (0.5, 0.5)],
                               atol=1e-12)
    assert best_ranges([c, b, a]) == best  # independent of the table order


def test_ties_and_degenerate_lines() -> None:
    # Equal lines never cross and tie everywhere: the variant name decides, whatever the order.
    twin_b, twin_a = line("twin-b", 0.8, 0.3), line("twin-a", 0.8, 0.3)
    assert crossing(twin_a, twin_b) is None
    assert [(s.r_from, s.r_to, s.variant) for s in best_ranges([twin_b, twin_a])] == [(0.0, 1.0, "twin-a")]
    # Same clean accuracy: they meet at r = 0 and the more robust wins the whole range.
    low, high = line("low", 0.8, 0.2), line("high", 0.8, 0.4)
    point = crossing(low, high)
    assert point is not None and (point.r, point.below, point.above) == (0.0, "low", "high")
    assert [(s.r_from, s.r_to, s.variant) for s in best_ranges([low, high])] == [(0.0, 1.0, "high")]
    # Parallel lines and lines meeting outside [0, 1] do not cross.
    assert crossing(line("p", 0.9, 0.5), line("q", 0.8, 0.4)) is None
    assert crossing(line("p", 0.9, 0.5), line("q", 0.5, 0.4)) is None
    assert best_ranges([]) == []
    single = best_ranges([line("only", 0.9, 0.1)])
    assert [(s.r_from, s.r_to, s.variant, s.accuracy_from, s.accuracy_to) for s in single] == [(0.0, 1.0, "only", 0.9, 0.1)]


def test_a_lead_is_clear_only_outside_both_intervals() -> None:
    """a: 0.9 - 0.6 r, b: 0.83 - 0.47 r cross at r = 7/13; each range's lead is judged at its middle."""
    a = Line("a", "m", 0.9, 0.3, (0.89, 0.91), (0.27, 0.33))
    b = Line("b", "m", 0.83, 0.36, (0.82, 0.84), (0.30, 0.42))  # a wide robust interval: few samples
    assert a.interval_at(0.0) == (0.89, 0.91) and a.interval_at(1.0) == (0.27, 0.33)
    assert a.interval_at(0.5) == pytest.approx((0.58, 0.62))
    first, second = best_ranges([a, b])
    assert (first.variant, first.runner_up, second.variant, second.runner_up) == ("a", "b", "b", "a")
    # middle of [0, 7/13]: A_a = 0.7385, A_b = 0.7036; a's interval starts at 0.7232 and b's ends at 0.7191: clear
    assert first.middle == pytest.approx(7 / 26) and first.lead == pytest.approx(0.07 - 0.13 * 7 / 26, abs=1e-12)
    assert first.clear is True
    # middle of [7/13, 1]: A_b = 0.4686 leads A_a = 0.4385 by 3 points, but b's interval starts at 0.4202: not clear
    assert second.middle == pytest.approx(10 / 13) and second.lead == pytest.approx(0.03, abs=1e-3)
    low, high = b.interval_at(second.middle)  # type: ignore[misc]
    assert low <= float(a.at(second.middle)) <= high and second.clear is False
    assert second.lead_text() == "lead over a at r = 77%: 3.0 points, within the 95% interval: not a clear difference"
    assert first.lead_text().endswith(", outside the 95% intervals")
    # rows from before the intervals: the lead is given, its clarity unknown
    plain = best_ranges([line("a", 0.9, 0.3), line("b", 0.83, 0.36)])
    assert [s.clear for s in plain] == [None, None] and plain[0].lead_text().startswith("lead over b at r = 27%: ")
    assert clear_lead(a, line("b", 0.83, 0.36), 0.5) is None
    assert best_ranges([a])[0].runner_up is None and best_ranges([a])[0].lead_text() == ""


def test_scenario_from_rows(rows: list[TableRow]) -> None:
    result = scenario(rows, LINF)
    assert [l.variant for l in result.lines] == [row.variant for row in rows]
    assert result.accuracies(np.array([0.0, 1.0])) == pytest.approx(
        np.array([[row.clean_accuracy, row.robust_accuracy[LINF]] for row in rows]))
    # The parent is best on clean inputs; kernel-local-random_cr2 (0.83 clean, 0.36 robust) is best under attack;
    # they cross where 0.9 - 0.6 r = 0.83 - 0.47 r, r = 7/13.
    assert [s.variant for s in result.best] == ["parent", "kernel-local-random_cr2"]
    assert result.best[0].r_to == pytest.approx(7 / 13, abs=1e-9)
    assert result.best_at(0.2) == "parent" and result.best_at(0.9) == "kernel-local-random_cr2"
    missing = [replace(rows[0], robust_accuracy={}), *rows[1:]]
    assert len(aggregated_lines(missing, LINF)) == len(rows) - 1


def test_pareto_front_and_default_budget() -> None:
    latency = np.array([0.5, 0.2, 0.3, 0.3, 0.6, 0.2])
    accuracy = np.array([0.4, 0.2, 0.3, 0.1, 0.4, 0.2])
    # sorted by latency: 0.2 (idx 1 and 5 tie: the first kept), 0.3 (idx 2 better than 3), 0.5 (idx 0); 0.6 is dominated.
    assert pareto_front(latency, accuracy).tolist() == [1, 2, 0]
    assert pareto_front(np.zeros(0), np.zeros(0)).tolist() == []
    assert default_budget_key(["L0@10", "L2@1", "Linf@0.01569", "Linf@0.03137"]) == "Linf@0.01569"
    assert default_budget_key(["L2@1"]) == "L2@1"
    assert default_budget_key([]) is None


# --- figures --------------------------------------------------------------------------------------------------


def test_figures_written_and_deterministic(rows: list[TableRow], figures: list[FigureFiles], tmp_path: Path) -> None:
    assert [f.name for f in figures] == ["grid", "curves", "latency", "scenario"]
    for figure in figures:
        assert figure.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = figure.svg.read_text(encoding="utf-8")
        assert "<svg" in svg and "</svg>" in svg and "<dc:date>" not in svg
        assert not list(figure.png.parent.glob(".*.tmp"))  # atomic writes leave no temporary file
    again = plot_all(rows, tmp_path)
    for first, second in zip(figures, again):
        assert first.svg.read_bytes() == second.svg.read_bytes(), first.name
        assert first.png.read_bytes() == second.png.read_bytes(), first.name
    grid_svg = figures[0].svg.read_text(encoding="utf-8")
    for method in METHODS:
        assert f'id="{series_id("grid", LINF, method)}"' in grid_svg


def test_grid_shows_the_table(rows: list[TableRow]) -> None:
    series = figure_series(grid_figure(rows))
    parent = rows[0]
    for method in METHODS:
        members = sorted((row for row in rows if row.method == method), key=lambda row: row.achieved_rate)
        for panel in ("clean", "L0@10", "L2@1", LINF):
            value = (lambda row: row.clean_accuracy) if panel == "clean" else (lambda row: row.robust_accuracy[panel])
            expected = [[1.0, value(parent)]] + [[row.achieved_rate, value(row)] for row in members]
            np.testing.assert_allclose(series[series_id("grid", panel, method)], expected)
    np.testing.assert_allclose(series[series_id("grid", LINF, "none")], [[1.0, 0.3]])
    assert method_style("filter-l1") == method_style("filter-l1") != method_style("filter-l2")


def test_curves_latency_and_scenario_show_the_table(rows: list[TableRow]) -> None:
    curves = figure_series(curves_figure(rows))  # type: ignore[arg-type]
    for row in rows:
        for norm, points in row.curves.items():
            drawn = curves[series_id("curve", norm, row.variant)]
            np.testing.assert_allclose(drawn[:-1], points)
            assert drawn[-1, 1] == points[-1][1] and drawn[-1, 0] > points[-1][0]  # the last step runs on
    assert curves_figure([replace(row, curves={}) for row in rows]) is None

    latency = figure_series(latency_figure(rows, LINF))  # type: ignore[arg-type]
    for row in rows:
        np.testing.assert_allclose(latency[series_id("latency", row.variant)],
                                   [[row.latency_p99_ms, row.robust_accuracy[LINF]]])
    # The filter-l1 variants are the fastest, each more robust than the next faster; kernel-local-random_cr2 is the most robust.
    front = ["filter-l1_cr8", "filter-l1_cr4", "filter-l1_cr2", "kernel-local-random_cr2"]
    by_variant = {row.variant: row for row in rows}
    np.testing.assert_allclose(latency[series_id("latency", "pareto")],
                               [[by_variant[v].latency_p99_ms, by_variant[v].robust_accuracy[LINF]] for v in front])
    p50_only = [replace(row, latency_p99_ms=None) for row in rows]
    p50_series = figure_series(latency_figure(p50_only, LINF))  # type: ignore[arg-type]
    assert p50_series[series_id("latency", "parent")][0, 0] == rows[0].latency_p50_ms
    untimed = [replace(row, latency_p50_ms=None, latency_p99_ms=None) for row in rows]
    assert latency_figure(untimed, LINF) is None
    assert plot_latency(untimed, Path("unused"), LINF) is None

    result = scenario(rows, LINF)
    drawn = figure_series(scenario_figure(rows, result))  # type: ignore[arg-type]
    for row in rows:
        np.testing.assert_allclose(drawn[series_id("scenario", row.variant)],
                                   [[0.0, row.clean_accuracy], [1.0, row.robust_accuracy[LINF]]])
    np.testing.assert_allclose(drawn[series_id("scenario", "crossings")], [[c.r, c.accuracy] for c in result.crossings])
    np.testing.assert_allclose(drawn[series_id("scenario", "envelope")], [[0.0, 0.9], [7 / 13, 0.9 - 0.6 * 7 / 13], [1.0, 0.36]],
                               atol=1e-9)


# --- HTML -----------------------------------------------------------------------------------------------------


def test_many_curves_get_a_panel_per_norm_and_method(rows: list[TableRow]) -> None:
    """A study's 55 variants in one panel are unreadable: past CURVES_PER_PANEL each method gets its own panels,
    every variant still drawn with its own data (and the parent in each of its method's panels)."""
    from evaluator.report.plots import CURVES_PER_PANEL, curve_panels

    many = [*rows, *(replace(row, variant=f"{row.variant}_copy{index}") for index in range(CURVES_PER_PANEL)
                     for row in rows if row.method != "none")]
    norms = sorted({norm for row in rows for norm in row.curves})
    methods = list(dict.fromkeys(row.method for row in rows if row.method != "none"))
    assert curve_panels(rows, norms) == [(norm, None) for norm in norms]
    assert curve_panels(many, norms) == [(norm, method) for norm in norms for method in methods]
    drawn = figure_series(curves_figure(many))  # type: ignore[arg-type]
    for row in many:
        for norm, points in row.curves.items():
            np.testing.assert_allclose(drawn[series_id("curve", norm, row.variant)][:-1], points)


def markdown_cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_html_table_matches_markdown_and_escapes(rows: list[TableRow]) -> None:
    page = render_html(rows, CONTEXT, [])
    markdown = table_markdown(rows).splitlines()
    assert table_header(rows) == markdown_cells(markdown[0])
    body = page.split('<tbody>', 1)[1].split("</tbody>", 1)[0]
    html_rows = [re.findall(r"<td[^>]*>(.*?)</td>", tr) for tr in body.split("</tr>")[:-1]]
    assert html_rows == [markdown_cells(line) for line in markdown[2:2 + len(rows)]]
    assert markdown[2 + len(rows):] == ["", table_note(rows)] and table_note(rows) in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page and "&lt;pruning study&gt; &amp; co" in page
    nasty = [replace(rows[1], variant='<img src=x onerror="alert(1)">'), *rows[2:]]
    page = render_html(nasty, {"title": "t", "checks": {}, "notes": {nasty[0].variant: ["</ul><script>x</script>"]}}, [])
    assert "<img" not in page and "<script>x" not in page


def test_table_says_what_robust_accuracy_is_out_of(rows: list[TableRow]) -> None:
    """Beside the whole test set's clean accuracy: the attacked samples, their clean accuracy, and 95% intervals."""
    lines = table_markdown(rows).splitlines()
    header = markdown_cells(lines[0])
    parent = dict(zip(header, markdown_cells(lines[2])))
    assert header[13:18] == ["clean %", "drop pts", "vs fp32: drop pts, speed-up", "attacked n", "attacked clean %"]
    assert parent["clean %"] == "90.0 (89.4-90.6)"  # 9,000 of 10,000: Wilson 0.8940-0.9058
    assert parent["attacked n"] == "1,000" and parent["attacked clean %"] == "91.0 (89.1-92.6)"
    assert parent[f"robust {LINF} %"] == "30.0 (27.2-32.9)"  # 300 of 1,000: Wilson 0.2724-0.3291
    assert lines[-1] == ("clean %: whole test set; attacked clean % and robust %: out of the 1,000 attacked test images, "
                         "robust = classified correctly before and after every attack run at that budget; "
                         "(low-high): 95% Wilson interval.")
    csv_header = table_csv(rows).splitlines()[0].split(",")
    assert csv_header[:16] == ["variant", "method", "target_rate", "achieved_rate", "params", "nonzero_params", "macs",
                               "size_bytes", "gzip_bytes", "provider", "latency_p50_ms", "latency_p99_ms",
                               "throughput_per_s", "throughput_batch", "clean_accuracy", "accuracy_drop"]
    old_columns = 16 + 3 + 2 + 1  # robust at three budgets, median in two norms, checks_failed: where schema 1.0 had them
    assert csv_header[old_columns - 1] == "checks_failed" and csv_header[old_columns:old_columns + 6] == [
        "clean_accuracy_ci_low", "clean_accuracy_ci_high", "attacked_samples", "attacked_clean_accuracy",
        "attacked_clean_accuracy_ci_low", "attacked_clean_accuracy_ci_high"]
    assert f"robust_{LINF}_ci_low" in csv_header and f"robust_{LINF}_ci_high" in csv_header


def test_rows_from_before_the_intervals_still_render(rows: list[TableRow]) -> None:
    """A table.json of schema 1.0 (the committed reproduction data): no intervals, no attacked samples."""
    new_keys = ("clean_accuracy_ci", "attacked_samples", "attacked_clean_accuracy", "attacked_clean_accuracy_ci",
                "robust_accuracy_ci")
    old = [TableRow.from_dict({key: value for key, value in row.to_dict().items() if key not in new_keys}) for row in rows]
    lines = table_markdown(old).splitlines()
    parent = dict(zip(markdown_cells(lines[0]), markdown_cells(lines[2])))
    assert parent["clean %"] == "90.0" and parent["attacked n"] == "-" and parent["attacked clean %"] == "-"
    assert parent[f"robust {LINF} %"] == "30.0" and "out of the attacked test images (attacked n)" in lines[-1]
    assert "attacked_samples" in table_csv(old).splitlines()[0]
    page = render_html(old, CONTEXT, [])
    assert "not a clear difference" not in page and "lead over" in page
    assert [s.clear for s in scenario(old, LINF).best] == [None, None]


def test_table_rows_read_back_from_json(rows: list[TableRow]) -> None:
    """TableRow.from_dict reads to_dict's JSON back to an equal row, and rows of table schema 1.0 (the committed
    reproduction data) with their new fields None or empty, their old values unchanged."""
    for row in rows:
        data = json.loads(json.dumps(row.to_dict()))
        assert TableRow.from_dict(data) == row and list(data) == [field.name for field in fields(TableRow)]
    tables = sorted((Path(__file__).resolve().parents[1] / "docs").glob("**/table.json"))
    assert tables
    for table in tables:
        data = json.loads(table.read_text())
        read = [TableRow.from_dict(row) for row in data["rows"]]
        assert [{key: row.to_dict()[key] for key in old} for row, old in zip(read, data["rows"])] == data["rows"]
        if data["schema_version"] == "1.0":
            assert all(row.clean_accuracy_ci is None and row.attacked_samples is None and row.robust_accuracy_ci == {}
                       for row in read)
        assert len(table_markdown(read).splitlines()) == len(read) + 4


def test_table_row_of_a_model_without_attacks() -> None:
    """A model assessed with no attack and no latency: the robustness and speed cells are empty, not made up."""
    from evaluator.results import ModelAssessment, ModelProfile, RuntimeChoice

    model = ModelAssessment("m.onnx", "fashion-mnist", ModelProfile("0", 1, 1, 1, 1, 1, 0, 0), RuntimeChoice("cpu", "CPUExecutionProvider"),
                            None, None, (), 0.9, None, 10_000, (), (), (), (), None, None)
    row = table_row(model)
    assert row.clean_accuracy_ci == share_interval(0.9, 10_000) and row.accuracy_drop is None
    assert row.attacked_samples is None and row.robust_accuracy == {} and row.robust_accuracy_ci == {}
    assert row.latency_p99_ms is None and row.method == "none" and row.variant == "m"
    assert TableRow.from_dict(json.loads(json.dumps(row.to_dict()))) == row


def test_html_scenario_says_when_a_lead_is_not_clear(rows: list[TableRow]) -> None:
    result = scenario(rows, LINF)
    page = render_html(rows, CONTEXT, [])
    for segment in result.best:
        assert segment.lead_text() and segment.lead_text() in page
    close = [replace(rows[0], robust_accuracy_ci={LINF: (0.1, 0.5)}), *rows[1:]]  # a parent attacked on few images
    texts = [segment.lead_text() for segment in scenario(close, LINF).best]
    assert any(text.endswith("within the 95% interval: not a clear difference") for text in texts)


def test_inline_svg_prefixes_ids() -> None:
    svg = ('<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg id="s"><metadata><rdf:RDF/></metadata><defs><clipPath id="c"/>'
           '<path id="m"/></defs><g gid="x" clip-path="url(#c)"><use xlink:href="#m"/></g></svg>')
    assert inline_svg(svg, "f-") == ('<svg id="f-s"><defs><clipPath id="f-c"/><path id="f-m"/></defs>'
                                     '<g gid="x" clip-path="url(#f-c)"><use xlink:href="#f-m"/></g></svg>')


def chrome_driver() -> Any:
    """Headless Chromium with its console log; skipped where it is not installed, except in CI."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the HTML report test needs {', '.join(missing)} in CI")
        pytest.skip(f"{', '.join(missing)} not installed")
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def test_html_report_renders_in_chromium(rows: list[TableRow], figures: list[FigureFiles], tmp_path: Path) -> None:
    path = write_html(tmp_path / "report.html", rows, CONTEXT, figures)
    page = path.read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:|//)|url\(\s*["']?(?!#)|@import""", page)
    assert page.count("<svg") == len(figures) and not list(tmp_path.glob(".*.tmp"))
    driver = chrome_driver()
    try:
        driver.get(path.as_uri())
        severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not severe, severe
        assert driver.title == CONTEXT["title"]
        widths = driver.execute_script(
            "return Array.from(document.querySelectorAll('figure svg')).map(function (s) { return s.getBBox().width; })"
            ".concat(Array.from(document.querySelectorAll('img')).map(function (i) { return i.naturalWidth; }));")
        assert len(widths) == len(figures) and all(width > 0 for width in widths), widths
        gid = "grid-" + series_id("grid", LINF, "filter-l1")  # the figure's series ids, prefixed per figure
        assert driver.execute_script(f"return document.getElementById('{gid}') !== null")
        table_rows = driver.execute_script(
            "return Array.from(document.querySelectorAll('#results tbody tr')).map(function (tr) {"
            " return [tr.cells[0].textContent, tr.className]; })")
        assert [cell for cell, _ in table_rows] == [row.variant for row in rows]
        assert [variant for variant, css in table_rows if css == "failed"] == ["kernel-local-random_cr8"]
        clean_column = table_header(rows).index("clean %")
        driver.execute_script(f"document.querySelectorAll('#results th')[{clean_column}].click()")
        first = driver.execute_script("return document.querySelector('#results tbody tr').cells[0].textContent")
        assert first == min(rows, key=lambda row: row.clean_accuracy).variant
        assert not [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    finally:
        driver.quit()


def test_the_table_says_where_gradients_came_from(tmp_path: Path) -> None:
    """Per model, the gradient sources of the attacks that ran: the source (or converted graph) for white-box attacks,
    the surrogate for transfer; in the row's JSON, the CSV's last column, the Markdown and HTML tables, the terminal."""
    from rich.console import Console

    from conftest import ZOO_CHILD
    from evaluator.assessment import AssessConfig, assess
    from evaluator.report.terminal import render_table

    config = AssessConfig(samples=20, skip_latency=True, threads=1,
                          attacks=("pgd-linf:steps=2", "transfer-pgd-linf:steps=2", "square-linf:queries=5"))
    assessment = assess([ZOO_CHILD], config)
    row = table_row(assessment.models[0])
    assert row.gradients == ("source", "surrogate") and TableRow.from_dict(row.to_dict()) == row
    header, cells = (line.split(",") for line in table_csv([row]).splitlines())
    assert cells[header.index("gradients")] == "source;surrogate"
    lines = table_markdown([row]).splitlines()
    assert dict(zip(markdown_cells(lines[0]), markdown_cells(lines[2])))["gradients from"] == "source, surrogate"
    assert re.search(r'<td data-sort="source, surrogate">source, surrogate</td>',
                     render_html([row], {"title": "t", "checks": {}, "notes": {}}, []))
    console = Console(width=400, record=True)
    render_table(assessment, console)
    assert "gradients from: source, surrogate" in console.export_text()
    from evaluator.report.terminal import gradients_line

    square_only = assess([ZOO_CHILD], replace(config, attacks=("square-linf:queries=5",)))
    mixed = replace(assessment, models=(assessment.models[0], replace(square_only.models[0], path="/m/other.onnx")))
    assert gradients_line(mixed) == "gradients from: lenet5_fmnist_filter-l1_cr4.onnx source, surrogate; other.onnx -"
    assert gradients_line(square_only) is None
    black_box = table_row(square_only.models[0])
    header, cells = (line.split(",") for line in table_csv([black_box]).splitlines())
    assert black_box.gradients == () and cells[header.index("gradients")] == ""
    old = {key: value for key, value in row.to_dict().items() if key != "gradients"}  # a row of table schema 1.1
    assert TableRow.from_dict(old).gradients == ()
