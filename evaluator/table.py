"""The size / speed / robustness table: one row per model, built from `evaluator assess --json` model entries.

Rows are built from the JSON (not from live objects) so that a sweep's table can be checked against, and
rebuilt from, the per-model assessment files it cached.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Sequence

TABLE_SCHEMA_VERSION = "1.0"
PARENT_METHOD = "none"  # the method of the unpruned parent's row


def budget_key(norm: str, epsilon: float) -> str:
    """'Linf@0.03137' - the column name of robust accuracy at (norm, epsilon)."""
    return f"{norm}@{epsilon:.4g}"


def table_row(model: dict[str, Any], variant: str | None = None) -> dict[str, Any]:
    """One row from one entry of an assessment's "models" list. Accuracies are shares in [0, 1]."""
    pruning = model.get("pruning") or {}
    latency = model.get("latency") or {}
    throughput = model.get("throughput") or {}
    target = (pruning.get("target") or {}).get("rate")
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
        "accuracy_drop": model.get("accuracy_drop"),
        "robust_accuracy": {budget_key(w["norm"], w["epsilon"]): w["robust_accuracy"] for w in model.get("robustness", [])},
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


def flat_row(row: dict[str, Any], budgets: list[str], norms: list[str]) -> dict[str, Any]:
    """A CSV row: scalars, robust_<norm>@<eps>, median_<norm>."""
    flat = {column: row[column] for column in SCALAR_COLUMNS}
    flat.update({f"robust_{key}": row["robust_accuracy"].get(key) for key in budgets})
    flat.update({f"median_{norm}": row["median_distance"].get(norm) for norm in norms})
    flat["checks_failed"] = ";".join(row["checks_failed"])
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


def table_markdown(rows: list[dict[str, Any]]) -> str:
    """A GitHub-flavoured Markdown table; accuracies in percent."""
    budgets, norms = budget_columns(rows), distance_columns(rows)
    header = (["variant", "method", "rate (target / achieved)", "params", "non-zero", "MACs", "size B", "gzip B", "p50 ms",
               "p99 ms", "samples/s", "provider", "clean %", "drop pts"]
              + [f"robust {key} %" for key in budgets] + [f"median {norm}" for norm in norms])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["variant"], row["method"], f"{row['target_rate']:g} / {row['achieved_rate']:.2f}", f"{row['params']:,}",
                 f"{row['nonzero_params']:,}", f"{row['macs']:,}", f"{row['size_bytes']:,}", f"{row['gzip_bytes']:,}",
                 "-" if row["latency_p50_ms"] is None else f"{row['latency_p50_ms']:.3f}",
                 "-" if row["latency_p99_ms"] is None else f"{row['latency_p99_ms']:.3f}",
                 "-" if row["throughput_per_s"] is None else f"{row['throughput_per_s']:,.0f}",
                 row["provider"].replace("ExecutionProvider", ""), percent(row["clean_accuracy"]),
                 "-" if row["accuracy_drop"] is None else f"{100 * row['accuracy_drop']:.1f}"]
        cells += [percent(row["robust_accuracy"].get(key)) for key in budgets]
        cells += ["-" if row["median_distance"].get(norm) is None else f"{row['median_distance'][norm]:.3g}" for norm in norms]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
