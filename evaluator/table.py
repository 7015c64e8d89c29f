"""The size / speed / robustness table: one row per model (`table_row` of a ModelAssessment), as CSV and Markdown.

The rows are also the sweep's table.json and what its figures, HTML report and scenario analysis read; rows written
before the intervals (table schema 1.0) still render.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Sequence

from evaluator.results import ModelAssessment, curve_points, interval, worst_distances
from evaluator.stats import format_interval

TABLE_SCHEMA_VERSION = "1.1"  # 1.1: clean_accuracy_ci, attacked_samples, attacked_clean_accuracy(_ci), robust_accuracy_ci
PARENT_METHOD = "none"  # the method of the unpruned parent's row
Interval = list[float]  # [low, high], a 95 % Wilson interval of a share


def budget_key(norm: str, epsilon: float) -> str:
    """'Linf@0.03137' - the column name of robust accuracy at (norm, epsilon)."""
    return f"{norm}@{epsilon:.4g}"


def table_row(model: ModelAssessment, variant: str | None = None) -> dict[str, Any]:
    """One row of one model's results. Accuracies are shares in [0, 1]; clean_accuracy is on the whole test set,
    robust accuracies out of the attacked_samples, whose clean accuracy is attacked_clean_accuracy; *_ci are 95 %
    Wilson intervals [low, high]. The row is the table's own JSON form (table.json, TABLE_SCHEMA_VERSION)."""
    pruning = (model.metadata or {}).get("pruning") or {}
    target = (pruning.get("target") or {}).get("rate")
    attacked = model.attacked
    robust_counts = {budget_key(w.norm, w.epsilon): (w.robust_count if w.robust_count is not None
                                                    else round(w.robust_accuracy * w.samples), w.samples)
                     for w in model.worst_case}
    return {
        "variant": variant or model.path.rsplit("/", 1)[-1].removesuffix(".onnx"),
        "method": pruning.get("method", PARENT_METHOD),
        "target_rate": float(target) if target is not None else 1.0,
        "achieved_rate": float(pruning.get("achieved_rate", 1.0)),
        "params": model.profile.params,
        "nonzero_params": model.profile.nonzero_params,
        "macs": model.profile.macs,
        "size_bytes": model.profile.size_bytes,
        "gzip_bytes": model.profile.gzip_bytes,
        "provider": model.runtime.used,
        "latency_p50_ms": model.latency.p50_ms if model.latency else None,
        "latency_p99_ms": model.latency.p99_ms if model.latency else None,
        "throughput_per_s": model.throughput.throughput_per_s if model.throughput else None,
        "throughput_batch": model.throughput.batch_size if model.throughput else None,
        "clean_accuracy": model.clean_accuracy,
        "clean_accuracy_ci": interval(round(model.clean_accuracy * model.clean_samples), model.clean_samples),
        "accuracy_drop": model.accuracy_drop,
        "attacked_samples": len(attacked.indices) if attacked else None,
        "attacked_clean_accuracy": attacked.clean_accuracy if attacked else None,
        "attacked_clean_accuracy_ci": (interval(int(attacked.clean_correct.sum()), len(attacked.clean_correct))
                                       if attacked else None),
        "robust_accuracy": {budget_key(w.norm, w.epsilon): w.robust_accuracy for w in model.worst_case},
        "robust_accuracy_ci": {key: interval(*counts) for key, counts in robust_counts.items()},
        "median_distance": model.median_distances(),
        "curves": {norm: curve_points(values) for norm, values in worst_distances(list(model.minimal)).items()},
        "checks_failed": [check.name for check in model.checks if not check.passed],
        "sha256": model.profile.sha256,
        "path": model.path,
    }


def parent_row(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The unpruned parent (method 'none') when the table has exactly one."""
    parents = [row for row in rows if row["method"] == PARENT_METHOD]
    return parents[0] if len(parents) == 1 else None


def with_parent_drop(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill accuracy_drop from the unpruned row (method 'none') where the assessment had no parent beside the model."""
    parent_of_rows = parent_row(rows)
    if parent_of_rows is None:
        return rows
    parent = parent_of_rows["clean_accuracy"]
    return [{**row, "accuracy_drop": row["accuracy_drop"] if row["accuracy_drop"] is not None else parent - row["clean_accuracy"]}
            for row in rows]


def budget_columns(rows: list[dict[str, Any]]) -> list[str]:
    """Robust-accuracy columns in order of norm then epsilon."""
    order = {"L0": 0, "L1": 1, "L2": 2, "Linf": 3}
    keys = {key for row in rows for key in row["robust_accuracy"]}
    return sorted(keys, key=lambda key: (order.get(key.split("@")[0], 9), float(key.split("@")[1])))


def distance_columns(rows: list[dict[str, Any]]) -> list[str]:
    order = {"L0": 0, "L1": 1, "L2": 2, "Linf": 3}
    return sorted({norm for row in rows for norm in row["median_distance"]}, key=lambda norm: order.get(norm, 9))


SCALAR_COLUMNS = ("variant", "method", "target_rate", "achieved_rate", "params", "nonzero_params", "macs", "size_bytes",
                  "gzip_bytes", "provider", "latency_p50_ms", "latency_p99_ms", "throughput_per_s", "throughput_batch",
                  "clean_accuracy", "accuracy_drop")


def interval_columns(name: str, interval: Interval | None) -> dict[str, float | None]:
    """{name_ci_low: low, name_ci_high: high} (None without an interval)."""
    low, high = interval if interval else (None, None)
    return {f"{name}_ci_low": low, f"{name}_ci_high": high}


def flat_row(row: dict[str, Any], budgets: list[str], norms: list[str]) -> dict[str, Any]:
    """A CSV row: scalars, robust_<norm>@<eps>, median_<norm>, checks_failed, then (after the columns of table schema
    1.0, so that their positions hold) the attacked samples and the 95 % intervals as _ci_low / _ci_high columns."""
    flat = {column: row[column] for column in SCALAR_COLUMNS}
    flat.update({f"robust_{key}": row["robust_accuracy"].get(key) for key in budgets})
    flat.update({f"median_{norm}": row["median_distance"].get(norm) for norm in norms})
    flat["checks_failed"] = ";".join(row["checks_failed"])
    flat.update(interval_columns("clean_accuracy", row.get("clean_accuracy_ci")))
    flat["attacked_samples"] = row.get("attacked_samples")
    flat["attacked_clean_accuracy"] = row.get("attacked_clean_accuracy")
    flat.update(interval_columns("attacked_clean_accuracy", row.get("attacked_clean_accuracy_ci")))
    for key in budgets:
        flat.update(interval_columns(f"robust_{key}", (row.get("robust_accuracy_ci") or {}).get(key)))
    return flat


def table_csv(rows: list[dict[str, Any]]) -> str:
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


def table_header(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The columns of the Markdown and HTML tables."""
    return (["variant", "method", "rate (target / achieved)", "params", "non-zero", "MACs", "size B", "gzip B", "p50 ms",
             "p99 ms", "samples/s", "provider", "clean %", "drop pts", "attacked n", "attacked clean %"]
            + [f"robust {key} %" for key in budget_columns(list(rows))]
            + [f"median {norm}" for norm in distance_columns(list(rows))])


def table_note(rows: Sequence[dict[str, Any]]) -> str:
    """What the accuracy columns are out of, and what the intervals are: the line under the table."""
    counts = sorted({row["attacked_samples"] for row in rows if row.get("attacked_samples") is not None})
    attacked = f"the {counts[0]:,} attacked test images" if len(counts) == 1 else "the attacked test images (attacked n)"
    return (f"clean %: whole test set; attacked clean % and robust %: out of {attacked}, robust = classified correctly "
            "before and after every attack run at that budget; (low-high): 95% Wilson interval.")


def table_markdown(rows: list[dict[str, Any]]) -> str:
    """A GitHub-flavoured Markdown table, accuracies in percent with their 95 % intervals, then a note line saying
    what they are out of. Rows from before the intervals (table schema 1.0) show '-' or the share alone."""
    budgets, norms = budget_columns(rows), distance_columns(rows)
    header = table_header(rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        attacked = row.get("attacked_samples")
        cells = [row["variant"], row["method"], f"{row['target_rate']:g} / {row['achieved_rate']:.2f}", f"{row['params']:,}",
                 f"{row['nonzero_params']:,}", f"{row['macs']:,}", f"{row['size_bytes']:,}", f"{row['gzip_bytes']:,}",
                 "-" if row["latency_p50_ms"] is None else f"{row['latency_p50_ms']:.3f}",
                 "-" if row["latency_p99_ms"] is None else f"{row['latency_p99_ms']:.3f}",
                 "-" if row["throughput_per_s"] is None else f"{row['throughput_per_s']:,.0f}",
                 row["provider"].replace("ExecutionProvider", ""), percent_ci(row["clean_accuracy"], row.get("clean_accuracy_ci")),
                 "-" if row["accuracy_drop"] is None else f"{100 * row['accuracy_drop']:.1f}",
                 "-" if attacked is None else f"{attacked:,}",
                 percent_ci(row.get("attacked_clean_accuracy"), row.get("attacked_clean_accuracy_ci"))]
        intervals = row.get("robust_accuracy_ci") or {}
        cells += [percent_ci(row["robust_accuracy"].get(key), intervals.get(key)) for key in budgets]
        cells += ["-" if row["median_distance"].get(norm) is None else f"{row['median_distance'][norm]:.3g}" for norm in norms]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + table_note(rows) + "\n"
