"""The reproduction page: the study's tables, figures and findings (PAPER.md), measured by `evaluator sweep` results.

Each finding is one of the study's claims with a verdict computed from the sweep's table rows by a rule stated on the
page (never typed in by hand): "confirmed", "contradicted", "partly" or "no data". Rows are table rows (TableRow,
read from table.json of schema 1.0 or 1.1 by `TableRow.from_dict`); accuracies are shares in [0, 1], distances in the
norm's units (L0 in pixels), latencies in ms.

    python -m evaluator.app.reproduction results/study-lenet5 results/study-resnet8 ... --out docs/reproduction.md

Each section's data (the sweep's table.json) is written beside its figures in <page stem>/<parent>/, and the figures are
drawn from it, so the page can be rebuilt from those folders alone, and one architecture re-run while the others keep
their committed data.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from evaluator.app.reproduction_precision import PrecisionRows, precision_lines
from evaluator.errors import EvaluatorError
from evaluator.files import write_bytes_atomic, write_text_atomic
from evaluator.results import TableRow
from evaluator.scenario import middle_budget, scenario
from evaluator.table import PARENT_METHOD, budget_columns, number, parent_row

MODERATE_RATES = (2.0, 4.0, 8.0)
HIGH_RATE = 16.0
KEPT_CLEAN_DROP = 0.02  # "keeps clean accuracy": at most 2 points below the parent
COLLAPSE_MARGIN = 0.10  # "collapses": clean accuracy at most chance + 10 points
FASTER = 1.10  # "faster": throughput at least 10% above the parent's
SAME_SPEED = 0.10  # "not faster": throughput within +-10% of the parent's
FIGURES = ("grid", "scenario", "latency")
CHANCE = 0.1  # the study's and the zoo's data sets have ten classes


@dataclass(frozen=True)
class Finding:
    claim: str
    verdict: str  # confirmed | contradicted | partly | no data
    evidence: str


@dataclass(frozen=True)
class StudyResult:
    """One sweep's results directory: its name (the parent's stem), configuration and float32 table rows;
    `precision`: the parent in every precision measured (its table's, or with_precision_sweep's), else None."""

    name: str
    folder: Path
    config: dict[str, Any]
    rows: list[TableRow]
    failures: list[str]
    environment: dict[str, Any]
    precision: PrecisionRows | None = None


def load_result(folder: Path) -> StudyResult:
    """A sweep's table.json (or a table file itself, e.g. a page's precision.json); one clear error if none."""
    table = Path(folder) if Path(folder).suffix == ".json" else Path(folder) / "table.json"
    folder = table.parent
    try:
        data = json.loads(table.read_text())
    except FileNotFoundError:
        raise EvaluatorError(f"{table} not found: run `evaluator sweep` for it first") from None
    except json.JSONDecodeError as error:
        raise EvaluatorError(f"{table} is not valid JSON: {error}") from None
    every = [TableRow.from_dict(row) for row in data["rows"]]
    rows = [row for row in every if row.precision == "fp32"]
    parent = parent_row(rows)
    name = parent.variant if parent is not None else Path(folder).name
    config = data.get("config", {})
    parents = [row for row in every if row.method == PARENT_METHOD]
    precision = PrecisionRows(table, parents, config) if len(parents) > 1 else None
    return StudyResult(name, Path(folder), config, rows, data.get("failures", []), data.get("environment", {}), precision)


def with_precision_sweep(result: StudyResult, folder: Path) -> StudyResult:
    """`result` with the parent's precisions from a sweep of that parent alone (`--rates 1 --precisions ...`; its
    folder or its table file): its rows of the parent in each precision, timed side by side in that sweep."""
    other = load_result(folder)
    if other.name != result.name or other.precision is None:
        raise EvaluatorError(f"{folder} holds no reduced-precision rows of {result.name}")
    return replace(result, precision=other.precision)


def by_method(rows: Sequence[TableRow]) -> dict[str, dict[float, TableRow]]:
    """{method: {target rate: row}}, every method starting with the parent at rate 1."""
    parent = parent_row(rows)
    table: dict[str, dict[float, TableRow]] = {}
    for row in rows:
        if row.method != PARENT_METHOD:
            table.setdefault(row.method, {})[float(row.target_rate)] = row
    if parent is not None:
        for series in table.values():
            series[1.0] = parent
    return {method: dict(sorted(series.items())) for method, series in table.items()}


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def rate_label(rate: float) -> str:
    return f"{rate:g}"


def finding_clean(rows: Sequence[TableRow]) -> Finding:
    """Moderate unstructured (global magnitude) pruning keeps clean accuracy up to CR 8."""
    claim = f"Moderate unstructured pruning keeps clean accuracy (global magnitude, CR 2-8, at most {100 * KEPT_CLEAN_DROP:g} points below the parent)"
    series = by_method(rows).get("unstructured-global-magnitude", {})
    parent = parent_row(rows)
    measured = {rate: series[rate].clean_accuracy for rate in MODERATE_RATES if rate in series}
    if parent is None or not measured:
        return Finding(claim, "no data", "unstructured-global-magnitude or the parent is missing from the sweep")
    kept = {rate: parent.clean_accuracy - value <= KEPT_CLEAN_DROP for rate, value in measured.items()}
    verdict = "confirmed" if all(kept.values()) else "contradicted" if not any(kept.values()) else "partly"
    evidence = f"parent {pct(parent.clean_accuracy)}%; " + ", ".join(f"CR {rate_label(r)}: {pct(v)}%" for r, v in measured.items())
    return Finding(claim, verdict, evidence)


def trusted(rows: Sequence[TableRow]) -> list[TableRow]:
    """Rows whose sanity checks all passed: a failed check (gradient masking, a dead model, ...) makes robust
    accuracy an upper bound only, so robustness claims leave such rows out."""
    return [row for row in rows if not row.checks_failed]


def sweet_spots(rows: Sequence[TableRow], key: str) -> tuple[list[str], list[str]]:
    """(methods with a moderate rate at least as robust as the parent at budget key, methods measured at key);
    variants with a failed sanity check are left out."""
    rows = trusted(rows)
    parent = parent_row(rows)
    if parent is None or key not in parent.robust_accuracy:
        return [], []
    found, measured = [], []
    for method, series in by_method(rows).items():
        values = [series[rate].robust_accuracy.get(key) for rate in MODERATE_RATES if rate in series]
        values = [value for value in values if value is not None]
        if values:
            measured.append(method)
            if max(values) >= parent.robust_accuracy[key]:
                found.append(method)
    return found, measured


def middle_key(rows: Sequence[TableRow], norm: str) -> str | None:
    """The sweep's middle budget of a norm (the second of four): the one the scenario figure uses for Linf."""
    return middle_budget(budget_columns(rows), norm)


def finding_sweet_spots(rows: Sequence[TableRow]) -> Finding:
    """Moderate pruning keeps or raises robustness: per norm, the methods with a CR in 2-8 at least as robust as CR 1."""
    claim = ("Moderate pruning keeps or raises robustness (a CR in 2-8 at least as robust as the parent, per method; "
             "variants with a failed sanity check left out)")
    parts, shares = [], []
    for norm in ("L0", "L2", "Linf"):
        key = middle_key(rows, norm)
        if key is None:
            continue
        found, measured = sweet_spots(rows, key)
        if measured:
            shares.append(len(found) / len(measured))
            parts.append(f"{key}: {len(found)}/{len(measured)} methods ({', '.join(found) or 'none'})")
    if not shares:
        return Finding(claim, "no data", "no robust accuracy at a budget shared by the parent and pruned variants")
    verdict = "confirmed" if min(shares) >= 0.5 else "contradicted" if max(shares) == 0 else "partly"
    return Finding(claim, verdict, "; ".join(parts))


def finding_filter_collapse(rows: Sequence[TableRow], failures: Sequence[str]) -> Finding:
    """Structured filter pruning collapses to chance at high compression rates (CR >= 16)."""
    claim = f"Filter pruning collapses to chance at high CR (clean accuracy at CR >= {HIGH_RATE:g} at most {pct(CHANCE + COLLAPSE_MARGIN)}%)"
    parts, collapsed = [], []
    for method, series in by_method(rows).items():
        if not method.startswith("filter"):
            continue
        high = {rate: row.clean_accuracy for rate, row in series.items() if rate >= HIGH_RATE}
        if not high:
            reason = next((failure for failure in failures if method in failure), "")
            parts.append(f"{method}: no rate >= {HIGH_RATE:g} reached" + (f" ({reason})" if reason else ""))
            continue
        rate, value = max(high.items())
        collapsed.append(value <= CHANCE + COLLAPSE_MARGIN)
        parts.append(f"{method}: {pct(value)}% at CR {rate_label(rate)}")
    if not collapsed:
        return Finding(claim, "no data", "; ".join(parts) or "no filter-pruned variant in the sweep")
    verdict = "confirmed" if all(collapsed) else "contradicted" if not any(collapsed) else "partly"
    return Finding(claim, verdict, "; ".join(parts))


def finding_speed(rows: Sequence[TableRow]) -> Finding:
    """Only filter pruning makes the dense runtime faster; unstructured and kernel pruning only shrink the gzip size."""
    claim = (f"Only filter pruning makes the dense runtime faster (throughput at CR 8 at least {FASTER:g}x the parent's; "
             f"unstructured and kernel within +-{100 * SAME_SPEED:g}%, smaller only when compressed)")
    parent = parent_row(rows)
    if parent is None or not parent.throughput_per_s:
        return Finding(claim, "no data", "no throughput measured for the parent (sweep run with --no-latency?)")
    holds, parts = [], []
    for method, series in by_method(rows).items():
        row = series.get(8.0)
        if row is None or not row.throughput_per_s:
            continue
        speedup = row.throughput_per_s / parent.throughput_per_s
        gzip = row.gzip_bytes / parent.gzip_bytes
        macs = row.macs / parent.macs
        if method.startswith("filter"):
            holds.append(speedup >= FASTER)
        else:
            holds.append(abs(speedup - 1) <= SAME_SPEED)
        parts.append(f"{method} {speedup:.2f}x throughput, {macs:.2f}x MACs, {gzip:.2f}x gzip bytes")
    if not holds:
        return Finding(claim, "no data", "no variant at CR 8 with a measured throughput")
    verdict = "confirmed" if all(holds) else "contradicted" if not any(holds) else "partly"
    return Finding(claim, verdict, "; ".join(parts))


def finding_scenario(rows: Sequence[TableRow]) -> Finding:
    """Which variant is best depends on the share r of adversarial inputs: more than one variant on the upper envelope."""
    key = middle_key(rows, "Linf") or middle_key(rows, "L2")
    claim = ("The best variant depends on the share r of adversarial inputs (aggregated accuracy, more than one best "
             "variant over r in [0, 1]; variants with a failed sanity check left out)")
    if key is None:
        return Finding(claim, "no data", "no fixed budget measured")
    result = scenario(trusted(rows), key)
    if not result.best:
        return Finding(claim, "no data", f"no variant with robust accuracy at {key}")
    ranges = "; ".join(f"r {segment.r_from:.2f}-{segment.r_to:.2f}: {segment.variant}"
                       + (f" ({segment.lead_text()})" if segment.clear is False else "") for segment in result.best)
    verdict = "confirmed" if len({segment.variant for segment in result.best}) > 1 else "contradicted"
    return Finding(claim, verdict, f"at {key}: {ranges}")


def findings(result: StudyResult) -> list[Finding]:
    rows = result.rows
    return [finding_clean(rows), finding_sweet_spots(rows), finding_filter_collapse(rows, result.failures),
            finding_speed(rows), finding_scenario(rows)]


def pivot(rows: Sequence[TableRow], value: Callable[[TableRow], str], rates: Sequence[float]) -> list[str]:
    """Markdown lines: one row per method, one column per rate, cells value(row) or '-'."""
    lines = ["| method | " + " | ".join(f"CR {rate_label(rate)}" for rate in rates) + " |",
             "|---|" + "---:|" * len(rates)]
    for method, series in by_method(rows).items():
        cells = [value(series[rate]) if rate in series else "-" for rate in rates]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def study_rates(rows: Sequence[TableRow]) -> list[float]:
    return sorted({float(row.target_rate) for row in rows} | {1.0})


def section(result: StudyResult, figure_folder: Path, page: Path) -> list[str]:
    """The Markdown section of one sweep: settings, findings, tables, figures (copied next to the page)."""
    rows, config = result.rows, result.config
    rates = study_rates(rows)
    lines = [f"## {result.name}", ""]
    parent = parent_row(rows)
    if parent is not None:
        schema_1_1 = parent.attacked_samples is not None or parent.clean_accuracy_ci is not None
        nested = (": the first of one seeded permutation of the test set, so a smaller sample is part of a larger one"
                  if schema_1_1 else "")  # table schema 1.1 on; older sweeps drew them otherwise
        lines.append(f"Parent: {parent.params:,} parameters, clean accuracy {pct(parent.clean_accuracy)}% on the "
                     f"whole test set (every clean accuracy below is on the whole test set; robust accuracies and "
                     f"distances on a seeded sample of {config.get('samples', '?')} test images{nested}).")
    lines += [f"Sweep settings: methods {len(by_method(rows))}, rates {', '.join(rate_label(r) for r in rates)}, "
              f"{config.get('schedule', '?')} schedule with at most {config.get('finetune_epochs', '?')} fine-tuning "
              f"epoch(s) per step (patience {config.get('patience', '?')}), attacks {', '.join(config.get('attacks', []))}, "
              f"{config.get('samples', '?')} samples, seed {config.get('seed', '?')}, provider "
              f"{parent.provider if parent else '?'}.", ""]
    if config.get("retime_rounds"):
        lines += [f"Latency and throughput: every variant timed again after the sweep in {config['retime_rounds']} "
                  "interleaved rounds (each round visits every variant once); each keeps its round with the lowest "
                  "median, in place of the timing taken during its assessment.", ""]
    if result.failures:
        lines += ["Rates not reached: " + "; ".join(result.failures), ""]
    lines += ["### Findings", "", "| the study's claim | verdict | measured |", "|---|---|---|"]
    lines += [f"| {f.claim} | **{f.verdict}** | {f.evidence} |" for f in findings(result)]
    flagged = [row for row in rows if row.checks_failed]
    if flagged:
        lines += ["", "### Sanity flags", "",
                  "These variants failed a sanity check (see the report's checks): their robust accuracies and distances "
                  "are upper bounds (a dead model's constant output or masked gradients defeat the attacks), and the "
                  "robustness findings above leave them out.", "", "| variant | failed checks |", "|---|---|"]
        lines += [f"| {row.variant} | {', '.join(row.checks_failed)} |" for row in flagged]
    lines += ["", "### Clean accuracy (%) by compression rate", ""]
    lines += pivot(rows, lambda row: pct(row.clean_accuracy), rates)
    for norm in ("L0", "L2"):
        if any(norm in row.median_distance for row in rows):
            unit = " (pixels)" if norm == "L0" else ""
            lines += ["", f"### Median minimal {norm} distance{unit} by compression rate", ""]
            lines += pivot(rows, lambda row, norm=norm: number(row.median_distance.get(norm), ".3g"), rates)
    for norm in ("L0", "L2", "Linf"):
        key = middle_key(rows, norm)
        if key is not None:
            lines += ["", f"### Robust accuracy (%) at {key} by compression rate", ""]
            lines += pivot(rows, lambda row, key=key: pct(row.robust_accuracy.get(key)), rates)
    lines += ["", "### Throughput (images/s, batch of the table) relative to the parent", ""]
    base = parent.throughput_per_s if parent and parent.throughput_per_s else None
    lines += pivot(rows, lambda row: "-" if not base or not row.throughput_per_s else f"{row.throughput_per_s / base:.2f}x", rates)
    lines.append("")
    data_folder = figure_folder / result.name
    if result.precision is not None:
        lines += precision_lines(result.name, result.precision, parent, data_folder, page)
    write_bytes_atomic(data_folder / "table.json", (result.folder / "table.json").read_bytes())
    for name, svg in draw_figures(rows).items():
        target = data_folder / f"{name}.svg"
        write_bytes_atomic(target, svg)
        lines += [f"![{name} of {result.name}]({target.relative_to(page.parent).as_posix()})", ""]
    lines += [f"Data: [{result.name}/table.json]({(data_folder / 'table.json').relative_to(page.parent).as_posix()}) "
              "(every row of this section's sweep).", ""]
    return lines


def draw_figures(rows: Sequence[TableRow]) -> dict[str, bytes]:
    """The SVGs of FIGURES drawn from the rows, as `evaluator sweep` draws them (byte-identical for the same rows);
    none without matplotlib (the `report` extra)."""
    try:
        from evaluator.report.plots import plot_all
    except ModuleNotFoundError:
        return {}
    with tempfile.TemporaryDirectory() as folder:
        drawn = {figure.name: figure.svg.read_bytes() for figure in plot_all(rows, Path(folder), names=FIGURES)}
    return {name: drawn[name] for name in FIGURES if name in drawn}


def render_page(results: Sequence[StudyResult], page: Path, command: str, missing: Sequence[Path] = (),
                remarks: Sequence[str] = ()) -> str:
    """The whole page; writes each section's table and figures into <page stem>/<parent>/ beside it. `missing`: results folders not measured yet;
    `remarks`: paragraphs about this run's conditions (e.g. other work on the machine while latency was measured)."""
    figure_folder = page.parent / page.stem
    lines = ["# Reproducing \"Pruning in the Face of Adversaries\" on Fashion-MNIST", "",
             "Every number and figure on this page was measured by `evaluator sweep` and written by "
             "`python -m evaluator.app.reproduction`; the verdicts follow the rules in each claim, applied to the "
             "measured table. Regenerate everything with:", "", "```bash", command, "```", "",
             f"Each section's data is kept beside its figures (`{page.stem}/<parent>/table.json`); "
             f"`python -m evaluator.app.reproduction {page.parent.as_posix()}/{page.stem}/* --out {page.as_posix()}` "
             "rebuilds the page from it without re-running a sweep (with `--precision` and each parent's "
             "`precision.json` for its deployment-precision table).", "",
             "The study (see `PAPER.md` in the project's shared notes) used MNIST / CIFAR-10 / Imagenette, retrained to "
             "convergence after every pruning step and averaged ~5 runs; this page is one run per architecture on "
             "Fashion-MNIST with the reduced settings stated per section, so differences of a point or two are "
             "within run-to-run noise.", ""]
    environment = results[0].environment if results else {}
    if environment:
        lines += ["Environment: " + ", ".join(f"{key} {value}" for key, value in sorted(environment.items())
                                              if isinstance(value, (str, int, float))), ""]
    for remark in remarks:
        lines += [remark, ""]
    if missing:
        lines += ["Not measured yet (no table.json): " + ", ".join(f"`{folder}`" for folder in missing), ""]
    per_result = [findings(result) for result in results]
    if per_result:
        lines += ["## Summary", "", "| claim | " + " | ".join(result.name for result in results) + " |",
                  "|---|" + "---|" * len(results)]
        for index, finding in enumerate(per_result[0]):
            lines.append(f"| {finding.claim} | " + " | ".join(found[index].verdict for found in per_result) + " |")
        lines.append("")
    for result in results:
        lines += section(result, figure_folder, page)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the reproduction page from sweep results directories "
                                     "(or from the page's own data folders).")
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/reproduction.md"))
    parser.add_argument("--command", default="bash docs/reproduce.sh")
    parser.add_argument("--remark", action="append", default=[], help="a paragraph about this run's conditions")
    parser.add_argument("--precision", action="append", default=[], type=Path,
                        help="a sweep of one parent alone in several precisions (its folder or a precision.json)")
    args = parser.parse_args(argv)
    missing = [folder for folder in args.results if not (folder / "table.json").is_file()]
    for folder in missing:
        print(f"note: {folder}/table.json not found: listed as not measured yet", file=sys.stderr)
    try:
        results = [load_result(folder) for folder in args.results if folder not in missing]
        for extra in args.precision:
            name = load_result(extra).name
            if name not in {result.name for result in results}:
                raise EvaluatorError(f"{extra}: its parent {name} is none of the sweeps' parents")
            results = [with_precision_sweep(result, extra) if result.name == name else result for result in results]
        if not results:
            raise EvaluatorError("none of the results folders has a table.json: run `evaluator sweep` first")
        write_text_atomic(args.out, render_page(results, args.out, args.command, missing, args.remark))
    except EvaluatorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
