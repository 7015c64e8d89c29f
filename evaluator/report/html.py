"""The sweep's report as one self-contained HTML file: no external URL, figures inlined as SVG, CSS and a tiny
table-sorting script inline (the Content-Security-Policy allows nothing else to load or run).

Input: the sweep's table rows (TableRow, evaluator/table.py `table_row`) and a context mapping, every key optional:
    {"title": str,
     "config": {...}, "environment": {...},                       # nested JSON-like values, shown as tables
     "checks": {variant: [{"name": str, "passed": bool, "detail": str}, ...]},
     "notes": {variant: [str, ...]}}
All text from rows and context is HTML-escaped. The same inputs give the same bytes (no timestamps).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html import escape
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from evaluator.files import write_text_atomic
from evaluator.report.plots import FigureFiles, key_label, latency_of, plot_all
from evaluator.scenario import Scenario, default_budget_key, pareto_front, scenario
from evaluator.results import TableRow
from evaluator.table import budget_columns, distance_columns, number, percent_ci, table_header, table_note, versus_float

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem auto; max-width: 1400px;
       padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ccc; } h3 { font-size: 1.05rem; }
table { border-collapse: collapse; font-size: 0.82rem; margin: 0.5rem 0; }
th, td { border: 1px solid #d0d0d0; padding: 0.2rem 0.45rem; vertical-align: top; }
th { background: #f2f2f2; text-align: left; }
table.sortable th { cursor: pointer; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #fde2e2; }
td.fail, span.fail { color: #a00000; font-weight: bold; }
td.pass { color: #176917; }
.wide { overflow-x: auto; }
figure { margin: 1rem 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.9rem; color: #444; }
.flag { border: 1px solid #a00000; background: #fde2e2; padding: 0.5rem 0.8rem; }
.ok { border: 1px solid #176917; background: #e5f5e5; padding: 0.5rem 0.8rem; }
code { font-size: 0.85em; }
"""

SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var ascending = th.dataset.order !== "ascending";
      th.dataset.order = ascending ? "ascending" : "descending";
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.sort, y = b.cells[column].dataset.sort;
        var nx = parseFloat(x), ny = parseFloat(y);
        var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

XML_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.S)
SVG_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
SVG_ID = re.compile(r'\bid="([^"]*)"')
SVG_HREF = re.compile(r'\b((?:xlink:)?href)="#([^"]*)"')
SVG_URL = re.compile(r"url\(#([^)]*)\)")


def text(value: Any) -> str:
    """Any value as escaped HTML text."""
    return escape(str(value), quote=True)


def table_cells(row: TableRow, budgets: Sequence[str], norms: Sequence[str]) -> list[tuple[str, Any]]:
    """One row's cells as in `table_markdown` (accuracies in percent), each with its sort value (a number, or text)."""
    drop = row.accuracy_drop
    cells: list[tuple[str, Any]] = [
        (row.variant, row.variant), (row.method, row.method), (row.precision, row.precision),
        (f"{row.target_rate:g} / {row.achieved_rate:.2f}", row.achieved_rate),
        (f"{row.params:,}", row.params), (f"{row.nonzero_params:,}", row.nonzero_params),
        (f"{row.macs:,}", row.macs), (f"{row.size_bytes:,}", row.size_bytes),
        (f"{row.gzip_bytes:,}", row.gzip_bytes), (number(row.latency_p50_ms, ".3f"), row.latency_p50_ms),
        (number(row.latency_p99_ms, ".3f"), row.latency_p99_ms),
        (number(row.throughput_per_s, ",.0f"), row.throughput_per_s),
        (row.provider.replace("ExecutionProvider", ""), row.provider),
        (percent_ci(row.clean_accuracy, row.clean_accuracy_ci), row.clean_accuracy),
        ("-" if drop is None else f"{100 * drop:.1f}", drop), (versus_float(row), row.float_accuracy_drop),
        (number(row.attacked_samples, ","), row.attacked_samples),
        (percent_ci(row.attacked_clean_accuracy, row.attacked_clean_accuracy_ci), row.attacked_clean_accuracy),
    ]
    cells += [(percent_ci(row.robust_accuracy.get(key), row.robust_accuracy_ci.get(key)), row.robust_accuracy.get(key))
              for key in budgets]
    cells += [(number(row.median_distance.get(norm), ".3g"), row.median_distance.get(norm)) for norm in norms]
    cells.append((", ".join(row.gradients) or "-", ", ".join(row.gradients)))
    return cells


def sort_value(value: Any) -> str:
    if value is None:
        return "-Infinity"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(float(value))
    return str(value)


def results_table(rows: Sequence[TableRow]) -> str:
    """The table, one <tr> per row; rows with failed checks get class 'failed' and a tooltip naming them."""
    budgets, norms = budget_columns(rows), distance_columns(rows)
    head = "".join(f"<th>{text(name)}</th>" for name in table_header(rows))
    body = []
    for row in rows:
        failed = row.checks_failed
        attributes = f' class="failed" title="{text("failed checks: " + ", ".join(failed))}"' if failed else ""
        cells = []
        for shown, key in table_cells(row, budgets, norms):
            css = "" if isinstance(key, str) else ' class="num"'
            cells.append(f'<td{css} data-sort="{text(sort_value(key))}">{text(shown)}</td>')
        body.append(f"<tr{attributes}>{''.join(cells)}</tr>")
    return (f'<div class="wide"><table id="results" class="sortable"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div><p class=\"note\">{text(table_note(rows))}</p>")


def inline_svg(svg: str, prefix: str) -> str:
    """matplotlib's SVG file as markup for an HTML body: no XML prolog or metadata, every id (and reference to it)
    prefixed so that several figures can share one document."""
    svg = SVG_METADATA.sub("", XML_PROLOG.sub("", svg, count=1))
    svg = SVG_ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = SVG_HREF.sub(lambda m: f'{m.group(1)}="#{prefix}{m.group(2)}"', svg)
    return SVG_URL.sub(lambda m: f"url(#{prefix}{m.group(1)})", svg)


def figure_block(figure: FigureFiles) -> str:
    markup = inline_svg(figure.svg.read_text(encoding="utf-8"), f"{figure.name}-")
    return (f'<figure id="figure-{text(figure.name)}" class="figure">{markup}'
            f"<figcaption>{text(figure.title)} (<code>{text(figure.png.name)}</code>, <code>{text(figure.svg.name)}</code>)"
            f"</figcaption></figure>")


def share(value: float) -> str:
    return f"{100 * value:.1f}%"


def scenario_block(result: Scenario) -> str:
    """The best variant per range of r and every crossing, as text."""
    if not result.lines:
        return f"<h3>{text(key_label(result.budget_key))}</h3><p>No variant has a robust accuracy at this budget.</p>"
    items = "".join(f"<li>r from {share(s.r_from)} to {share(s.r_to)}: <strong>{text(s.variant)}</strong> "
                    f"(aggregated accuracy {share(s.accuracy_from)} to {share(s.accuracy_to)}"
                    + (f"; {text(s.lead_text())}" if s.lead_text() else "") + ")</li>" for s in result.best)
    parts = [f'<h3>{text(key_label(result.budget_key))}</h3><p>Best variant by share r of adversarial inputs:</p>'
             f'<ul class="best" data-key="{text(result.budget_key)}">{items}</ul>']
    if result.crossings:
        lines = "".join(f"<tr><td>{text(c.a)}</td><td>{text(c.b)}</td><td class=\"num\">{share(c.r)}</td>"
                        f"<td class=\"num\">{share(c.accuracy)}</td><td>{text(c.below)}</td><td>{text(c.above)}</td></tr>"
                        for c in result.crossings)
        parts.append(f"<details><summary>{len(result.crossings)} crossings of variant pairs in [0, 1]</summary>"
                     f'<table class="crossings"><thead><tr><th>variant a</th><th>variant b</th><th>r</th>'
                     f"<th>accuracy there</th><th>better below r</th><th>better above r</th></tr></thead>"
                     f"<tbody>{lines}</tbody></table></details>")
    else:
        parts.append("<p>No two variants' lines cross for r in [0, 1].</p>")
    return "".join(parts)


def pareto_block(rows: Sequence[TableRow], key: str) -> str:
    points = [row for row in rows if latency_of(row) is not None and row.robust_accuracy.get(key) is not None]
    if not points:
        return ""
    front = pareto_front(np.array([latency_of(row) for row in points], dtype=np.float64),
                         np.array([row.robust_accuracy[key] for row in points], dtype=np.float64))
    names = ", ".join(f"{text(row.variant)} ({latency_of(row):.3f} ms, {share(row.robust_accuracy[key])})"
                      for row in (points[i] for i in front))
    return f"<p>Pareto front of latency against robust accuracy at {text(key_label(key))}: {names}.</p>"


def checks_block(rows: Sequence[TableRow], checks: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """Per variant its sanity checks (failed ones highlighted); variants with failed checks are summarised first."""
    flagged = [row.variant for row in rows if row.checks_failed]
    flagged += [v for v, items in checks.items() if v not in flagged and any(not item.get("passed", True) for item in items)]
    summary = (f'<p class="flag">{len(flagged)} variant(s) failed sanity checks: '
               + ", ".join(f'<span class="fail">{text(v)}</span>' for v in flagged) + "</p>") if flagged else \
        '<p class="ok">Every variant passed its sanity checks.</p>'
    parts = [summary]
    variants = [row.variant for row in rows] + sorted(v for v in checks if v not in {row.variant for row in rows})
    failed = {row.variant: row.checks_failed for row in rows}
    for variant in variants:
        items = list(checks.get(variant, []))
        known = {item.get("name") for item in items}
        items += [{"name": name, "passed": False, "detail": "failed (from the table)"}
                  for name in failed.get(variant, ()) if name not in known]
        if not items:
            continue
        lines = "".join(f'<tr class="{"passed" if item.get("passed") else "failed"}"><td>{text(item.get("name", ""))}</td>'
                        + ('<td class="pass">pass</td>' if item.get("passed") else '<td class="fail">FAIL</td>')
                        + f'<td>{text(item.get("detail", ""))}</td></tr>' for item in items)
        parts.append(f'<h3>{text(variant)}</h3><table class="checks"><thead><tr><th>check</th><th>result</th><th>detail</th>'
                     f"</tr></thead><tbody>{lines}</tbody></table>")
    return "".join(parts)


def notes_block(rows: Sequence[TableRow], notes: Mapping[str, Sequence[str]]) -> str:
    in_table = [row.variant for row in rows]
    order = [v for v in in_table if v in notes] + sorted(v for v in notes if v not in in_table)
    parts = [f"<h3>{text(variant)}</h3><ul>{''.join(f'<li>{text(note)}</li>' for note in notes[variant])}</ul>"
             for variant in order if notes[variant]]
    return "".join(parts) or "<p>No notes.</p>"


def value_html(value: Any) -> str:
    """A JSON-like value: mappings as nested key/value tables, lists of scalars comma-separated, others as JSON."""
    if isinstance(value, Mapping):
        if not value:
            return "<em>none</em>"
        lines = "".join(f"<tr><th>{text(key)}</th><td>{value_html(item)}</td></tr>" for key, item in value.items())
        return f'<table class="kv"><tbody>{lines}</tbody></table>'
    if isinstance(value, (list, tuple)) and all(not isinstance(item, (Mapping, list, tuple)) for item in value):
        return text(", ".join("null" if item is None else str(item) for item in value)) if value else "<em>none</em>"
    if isinstance(value, str):
        return text(value)
    return text(json.dumps(value, sort_keys=True, default=str))


def script_hash(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def render_html(rows: Sequence[TableRow], context: Mapping[str, Any], figures: Sequence[FigureFiles],
                budget_key: str | None = None) -> str:
    """The report as an HTML string. budget_key picks the Pareto text (default: the first Linf budget); the
    scenario's best ranges and crossings are given for every budget key of the table."""
    rows = list(rows)
    title = str(context.get("title") or "Pruning study report")
    keys = budget_columns(rows)
    key = budget_key or default_budget_key(keys)
    policy = (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src '{script_hash(SORT_SCRIPT)}'")
    sections = [
        f"<h1>{text(title)}</h1>",
        f"<p>{len(rows)} variant(s); accuracies in percent of the test samples; robust accuracy is the worst case over "
        f"the attacks run at each budget. Click a column heading to sort.</p>",
        '<h2 id="results-heading">Results</h2>', results_table(rows),
        '<h2 id="checks">Sanity checks</h2>', checks_block(rows, context.get("checks") or {}),
        '<h2 id="figures">Figures</h2>', "".join(figure_block(figure) for figure in figures) or "<p>No figures.</p>",
        '<h2 id="scenario">Scenario: a share r of adversarial inputs</h2>',
        "<p>Aggregated accuracy A(r) = (1 &minus; r) &middot; clean + r &middot; robust. At the middle of each range, "
        "the best variant's lead over the runner-up is clear when neither's A(r) lies inside the other's 95% interval "
        "(the Wilson intervals of clean and robust accuracy mixed like A(r)); the variants are attacked on the same "
        "images, so this is a rule of thumb, not a paired test.</p>",
        "".join(scenario_block(scenario(rows, k)) for k in keys) or "<p>No robust accuracies in the table.</p>",
        pareto_block(rows, key) if key else "",
        '<h2 id="notes">Notes</h2>', notes_block(rows, context.get("notes") or {}),
        '<h2 id="config">Configuration</h2>', value_html(context.get("config") or {}),
        '<h2 id="environment">Environment</h2>', value_html(context.get("environment") or {}),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{text(policy)}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{text(title)}</title><style>{CSS}</style></head>\n<body>\n'
            + "\n".join(sections) + f"\n<script>{SORT_SCRIPT}</script>\n</body></html>\n")


def write_html(path: Path, rows: Sequence[TableRow], context: Mapping[str, Any], figures: Sequence[FigureFiles],
               budget_key: str | None = None) -> Path:
    """Render and write the report atomically; returns its path."""
    path = Path(path)
    write_text_atomic(path, render_html(rows, context, figures, budget_key))
    return path


def write_report(path: Path, rows: Sequence[TableRow], context: Mapping[str, Any], budget_key: str | None = None,
                 figure_dir: Path | None = None) -> tuple[Path, list[FigureFiles]]:
    """Draw every figure (PNG + SVG into figure_dir, default <report folder>/figures) and write the HTML report."""
    path = Path(path)
    figures = plot_all(rows, figure_dir if figure_dir is not None else path.parent / "figures", budget_key)
    return write_html(path, rows, context, figures, budget_key), figures
