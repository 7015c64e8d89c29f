"""The size / speed / robustness table: one row per model, built from `evaluator assess --json` model entries.

Rows are built from the JSON (not from live objects) so that a sweep's table can be checked against, and
rebuilt from, the per-model assessment files it cached.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Sequence

from evaluator.stats import format_interval, share_interval

TABLE_SCHEMA_VERSION = "1.1"  # 1.1: clean_accuracy_ci, attacked_samples, attacked_clean_accuracy(_ci), robust_accuracy_ci
PARENT_METHOD = "none"  # the method of the unpruned parent's row
Interval = list[float]  # [low, high], a 95 % Wilson interval of a share


def budget_key(norm: str, epsilon: float) -> str:
    """'Linf@0.03137' - the column name of robust accuracy at (norm, epsilon)."""
    return f"{norm}@{epsilon:.4g}"


def ci_of(entry: dict[str, Any], share_key: str, count: Any) -> Interval | None:
    """entry[share_key + "_ci"], or for an assessment from before the intervals, the Wilson interval of the share out of
    `count` samples; None when neither is known."""
    given = entry.get(f"{share_key}_ci")
    if isinstance(given, list) and len(given) == 2:
        return [float(given[0]), float(given[1])]
    share = entry.get(share_key)
    if isinstance(share, (int, float)) and isinstance(count, int) and count > 0:
        return list(share_interval(float(share), count))
    return None


def attacked_clean(model: dict[str, Any]) -> tuple[int | None, float | None, Interval | None]:
    """(samples attacked, their clean accuracy, its interval): what robust accuracies are out of. From `samples`, or in an
    assessment from before it, from the first attack result (every result holds the same samples)."""
    samples = model.get("samples")
    if isinstance(samples, dict) and isinstance(samples.get("count"), int):
        return samples["count"], samples.get("clean_accuracy"), ci_of(samples, "clean_accuracy", samples["count"])
    for result in [*(model.get("attacks") or []), *(model.get("minimal_norm") or [])]:
        if isinstance(result, dict) and isinstance(result.get("samples"), int):
            return result["samples"], result.get("clean_accuracy"), ci_of(result, "clean_accuracy", result["samples"])
    return None, None, None


def table_row(model: dict[str, Any], variant: str | None = None) -> dict[str, Any]:
    """One row from one entry of an assessment's "models" list (also one written before the intervals and per-sample
    results: their intervals are computed from the shares and sample counts). Accuracies are shares in [0, 1];
    clean_accuracy is on the whole test set, robust accuracies out of the attacked_samples, whose clean accuracy is
    attacked_clean_accuracy; *_ci are 95 % Wilson intervals [low, high]."""
    pruning = model.get("pruning") or {}
    latency = model.get("latency") or {}
    throughput = model.get("throughput") or {}
    target = (pruning.get("target") or {}).get("rate")
    attacked, attacked_accuracy, attacked_ci = attacked_clean(model)
    robustness = model.get("robustness", [])
    return {
        "variant": variant or model["path"].rsplit("/", 1)[-1].removesuffix(".onnx"),
        "method": pruning.get("method", "none"),
        "target_rate": float(target) if target is not None else 1.0,
        "achieved_rate": float(pruning.get("achieved_rate", 1.0)),
        "params": model["params"],
        "nonzero_params": model["nonzero_params"],
        "macs": model["macs"],
        "size_bytes": model["size_bytes"],
        "gzip_bytes": model["gzip_bytes"],
        "provider": model["provider"],
        "latency_p50_ms": latency.get("p50_ms"),
        "latency_p99_ms": latency.get("p99_ms"),
        "throughput_per_s": throughput.get("throughput_per_s"),
        "throughput_batch": throughput.get("batch_size"),
        "clean_accuracy": model["clean_accuracy"],
        "clean_accuracy_ci": ci_of(model, "clean_accuracy", model.get("clean_samples")),
        "accuracy_drop": model.get("accuracy_drop"),
        "attacked_samples": attacked,
        "attacked_clean_accuracy": attacked_accuracy,
        "attacked_clean_accuracy_ci": attacked_ci,
        "robust_accuracy": {budget_key(w["norm"], w["epsilon"]): w["robust_accuracy"] for w in robustness},
        "robust_accuracy_ci": {budget_key(w["norm"], w["epsilon"]): ci_of(w, "robust_accuracy", w.get("samples"))
                               for w in robustness},
        "median_distance": dict(model.get("median_distance") or {}),
        "curves": dict(model.get("curves") or {}),
        "checks_failed": [check["name"] for check in model.get("checks", []) if not check["passed"]],
        "sha256": model["sha256"],
        "path": model["path"],
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
