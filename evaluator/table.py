"""The size / speed / robustness table: one TableRow per model (`table_row` of a ModelAssessment), as CSV and Markdown.

The rows are also the sweep's table.json (`TableRow.to_dict`) and what its figures, HTML report and scenario analysis
read; rows written before the intervals (table schema 1.0, read by `TableRow.from_dict`) still render.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from typing import Sequence

from evaluator.norms import NORM_ORDER
from evaluator.results import Interval, ModelAssessment, TableRow, curve_points, worst_distances
from evaluator.results.table_row import TABLE_SCHEMA_VERSION  # noqa: F401 (the sweep's table.json names it from here)
from evaluator.stats import format_interval, wilson_interval

PARENT_METHOD = "none"  # the method of the unpruned parent's row


def budget_key(norm: str, epsilon: float) -> str:
    """'Linf@0.03137' - the column name of robust accuracy at (norm, epsilon)."""
    return f"{norm}@{epsilon:.4g}"


def table_row(model: ModelAssessment, variant: str | None = None) -> TableRow:
    """One row of one model's results (see TableRow for the units); variant defaults to the ONNX file's stem."""
    pruning = (model.metadata or {}).get("pruning") or {}
    target = (pruning.get("target") or {}).get("rate")
    attacked = model.attacked
    robust_counts = {budget_key(w.norm, w.epsilon): (w.robust_count if w.robust_count is not None
                                                    else round(w.robust_accuracy * w.samples), w.samples)
                     for w in model.worst_case}
    return TableRow(
        variant=variant or model.path.rsplit("/", 1)[-1].removesuffix(".onnx"),
        method=pruning.get("method", PARENT_METHOD),
        target_rate=float(target) if target is not None else 1.0,
        achieved_rate=float(pruning.get("achieved_rate", 1.0)),
        params=model.profile.params,
        nonzero_params=model.profile.nonzero_params,
        macs=model.profile.macs,
        size_bytes=model.profile.size_bytes,
        gzip_bytes=model.profile.gzip_bytes,
        provider=model.runtime.used,
        latency_p50_ms=model.latency.p50_ms if model.latency else None,
        latency_p99_ms=model.latency.p99_ms if model.latency else None,
        throughput_per_s=model.throughput.throughput_per_s if model.throughput else None,
        throughput_batch=model.throughput.batch_size if model.throughput else None,
        clean_accuracy=model.clean_accuracy,
        clean_accuracy_ci=wilson_interval(round(model.clean_accuracy * model.clean_samples), model.clean_samples),
        accuracy_drop=model.accuracy_drop,
        attacked_samples=len(attacked.indices) if attacked else None,
        attacked_clean_accuracy=attacked.clean_accuracy if attacked else None,
        attacked_clean_accuracy_ci=(wilson_interval(int(attacked.clean_correct.sum()), len(attacked.clean_correct))
                                    if attacked else None),
        robust_accuracy={budget_key(w.norm, w.epsilon): w.robust_accuracy for w in model.worst_case},
        robust_accuracy_ci={key: wilson_interval(*counts) for key, counts in robust_counts.items()},
        median_distance=model.median_distances(),
        curves={norm: tuple((eps, accuracy) for eps, accuracy in curve_points(values))
                for norm, values in worst_distances(list(model.minimal)).items()},
        checks_failed=tuple(check.name for check in model.checks if not check.passed),
        sha256=model.profile.sha256,
        path=model.path,
        gradients=model.gradient_sources(),
        precision=model.precision.name if model.precision else "fp32",
        float_accuracy_drop=model.float_accuracy_drop,
        speedup_vs_float=model.precision.speedup if model.precision else None,
        fallback_kernels=len(model.placement.fallbacks) if model.placement else None,
    )


def parent_row(rows: Sequence[TableRow]) -> TableRow | None:
    """The unpruned float32 parent (method 'none', precision fp32) when the table has exactly one."""
    parents = [row for row in rows if row.method == PARENT_METHOD and row.precision == "fp32"]
    return parents[0] if len(parents) == 1 else None


def with_parent_drop(rows: Sequence[TableRow]) -> list[TableRow]:
    """Fill accuracy_drop from the unpruned row (method 'none') where the assessment had no parent beside the model."""
    parent = parent_row(rows)
    if parent is None:
        return list(rows)
    return [row if row.accuracy_drop is not None else replace(row, accuracy_drop=parent.clean_accuracy - row.clean_accuracy)
            for row in rows]


def budget_columns(rows: Sequence[TableRow]) -> list[str]:
    """Robust-accuracy columns in order of norm then epsilon."""
    keys = {key for row in rows for key in row.robust_accuracy}
    return sorted(keys, key=lambda key: (NORM_ORDER.get(key.split("@")[0], 9), float(key.split("@")[1])))


def distance_columns(rows: Sequence[TableRow]) -> list[str]:
    """Median-distance columns in order of norm."""
    return sorted({norm for row in rows for norm in row.median_distance}, key=lambda norm: NORM_ORDER.get(norm, 9))


SCALAR_COLUMNS = ("variant", "method", "target_rate", "achieved_rate", "params", "nonzero_params", "macs", "size_bytes",
                  "gzip_bytes", "provider", "latency_p50_ms", "latency_p99_ms", "throughput_per_s", "throughput_batch",
                  "clean_accuracy", "accuracy_drop")


def scalar_cells(row: TableRow) -> dict[str, str | float | None]:
    """The row's SCALAR_COLUMNS, in that order."""
    return {"variant": row.variant, "method": row.method, "target_rate": row.target_rate,
            "achieved_rate": row.achieved_rate, "params": row.params, "nonzero_params": row.nonzero_params,
            "macs": row.macs, "size_bytes": row.size_bytes, "gzip_bytes": row.gzip_bytes, "provider": row.provider,
            "latency_p50_ms": row.latency_p50_ms, "latency_p99_ms": row.latency_p99_ms,
            "throughput_per_s": row.throughput_per_s, "throughput_batch": row.throughput_batch,
            "clean_accuracy": row.clean_accuracy, "accuracy_drop": row.accuracy_drop}


def interval_columns(name: str, interval: Interval | None) -> dict[str, float | None]:
    """{name_ci_low: low, name_ci_high: high} (None without an interval)."""
    low, high = interval if interval else (None, None)
    return {f"{name}_ci_low": low, f"{name}_ci_high": high}


def flat_row(row: TableRow, budgets: Sequence[str], norms: Sequence[str]) -> dict[str, str | float | None]:
    """A CSV row: scalars, robust_<norm>@<eps>, median_<norm>, checks_failed, then (after the columns of table schema
    1.0, so that their positions hold) the attacked samples and the 95 % intervals as _ci_low / _ci_high columns."""
    flat = scalar_cells(row)
    flat.update({f"robust_{key}": row.robust_accuracy.get(key) for key in budgets})
    flat.update({f"median_{norm}": row.median_distance.get(norm) for norm in norms})
    flat["checks_failed"] = ";".join(row.checks_failed)
    flat.update(interval_columns("clean_accuracy", row.clean_accuracy_ci))
    flat["attacked_samples"] = row.attacked_samples
    flat["attacked_clean_accuracy"] = row.attacked_clean_accuracy
    flat.update(interval_columns("attacked_clean_accuracy", row.attacked_clean_accuracy_ci))
    for key in budgets:
        flat.update(interval_columns(f"robust_{key}", row.robust_accuracy_ci.get(key)))
    flat["gradients"] = ";".join(row.gradients)  # after the columns of table schema 1.1
    flat["precision"] = row.precision  # after those of 1.2
    flat["float_accuracy_drop"] = row.float_accuracy_drop
    flat["speedup_vs_float"] = row.speedup_vs_float
    flat["fallback_kernels"] = row.fallback_kernels
    return flat


def table_csv(rows: Sequence[TableRow]) -> str:
    """The table as CSV (the columns of flat_row), empty cells for None."""
    budgets, norms = budget_columns(rows), distance_columns(rows)
    flats = [flat_row(row, budgets, norms) for row in rows]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(flats[0]) if flats else list(SCALAR_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for flat in flats:
        writer.writerow({key: "" if value is None else value for key, value in flat.items()})
    return buffer.getvalue()


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def percent_ci(value: float | None, interval: Interval | None) -> str:
    """'41.4 (38.4-44.5)': a share in percent with its 95 % interval; the share alone without one; '-' without both."""
    if value is None or not interval:
        return percent(value)
    return f"{percent(value)} ({format_interval(interval)})"


def number(value: float | None, spec: str) -> str:
    """value formatted by spec, '-' for None."""
    return "-" if value is None else format(value, spec)


def versus_float(row: TableRow) -> str:
    """'0.5, 0.83x': an int8 / fp16 row's accuracy drop (points) and speed-up against its float32 parent; '-' if none."""
    if row.float_accuracy_drop is None and row.speedup_vs_float is None:
        return "-"
    return f"{number(None if row.float_accuracy_drop is None else 100 * row.float_accuracy_drop, '.1f')}, " \
           f"{'-' if row.speedup_vs_float is None else format(row.speedup_vs_float, '.2f') + 'x'}"


def table_header(rows: Sequence[TableRow]) -> list[str]:
    """The columns of the Markdown and HTML tables."""
    return (["variant", "method", "precision", "rate (target / achieved)", "params", "non-zero", "MACs", "size B", "gzip B", "p50 ms",
             "p99 ms", "samples/s", "provider", "clean %", "drop pts", "vs fp32: drop pts, speed-up", "attacked n",
             "attacked clean %"]
            + [f"robust {key} %" for key in budget_columns(rows)]
            + [f"median {norm}" for norm in distance_columns(rows)] + ["gradients from"])


def table_note(rows: Sequence[TableRow]) -> str:
    """What the accuracy columns are out of, and what the intervals are: the line under the table."""
    counts = sorted({row.attacked_samples for row in rows if row.attacked_samples is not None})
    attacked = f"the {counts[0]:,} attacked test images" if len(counts) == 1 else "the attacked test images (attacked n)"
    return (f"clean %: whole test set; attacked clean % and robust %: out of {attacked}, robust = classified correctly "
            "before and after every attack run at that budget; (low-high): 95% Wilson interval.")


def table_markdown(rows: Sequence[TableRow]) -> str:
    """A GitHub-flavoured Markdown table, accuracies in percent with their 95 % intervals, then a note line saying
    what they are out of. Rows from before the intervals (table schema 1.0) show '-' or the share alone."""
    budgets, norms = budget_columns(rows), distance_columns(rows)
    header = table_header(rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.variant, row.method, row.precision, f"{row.target_rate:g} / {row.achieved_rate:.2f}", f"{row.params:,}",
                 f"{row.nonzero_params:,}", f"{row.macs:,}", f"{row.size_bytes:,}", f"{row.gzip_bytes:,}",
                 number(row.latency_p50_ms, ".3f"), number(row.latency_p99_ms, ".3f"),
                 number(row.throughput_per_s, ",.0f"), row.provider.replace("ExecutionProvider", ""),
                 percent_ci(row.clean_accuracy, row.clean_accuracy_ci),
                 "-" if row.accuracy_drop is None else f"{100 * row.accuracy_drop:.1f}", versus_float(row),
                 number(row.attacked_samples, ","),
                 percent_ci(row.attacked_clean_accuracy, row.attacked_clean_accuracy_ci)]
        cells += [percent_ci(row.robust_accuracy.get(key), row.robust_accuracy_ci.get(key)) for key in budgets]
        cells += [number(row.median_distance.get(norm), ".3g") for norm in norms]
        cells.append(", ".join(row.gradients) or "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + table_note(rows) + "\n"
