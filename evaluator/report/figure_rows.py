"""What the figures read from the sweep's table rows (evaluator/table.py `table_row`) and how they name it: budget
keys and their labels, latency, pruning methods, short variant names."""

from __future__ import annotations

from typing import Sequence

from evaluator.results import TableRow
from evaluator.table import PARENT_METHOD


def split_key(key: str) -> tuple[str, float]:
    """'Linf@0.03137' -> ('Linf', 0.03137)."""
    norm, epsilon = key.split("@", 1)
    return norm, float(epsilon)


def key_label(key: str) -> str:
    """'Linf@0.03137' -> 'Linf ε=0.03137 (8/255)'; L0 budgets are in pixels."""
    norm, epsilon = split_key(key)
    if norm == "L0":
        return f"L0 ε={epsilon:g} px"
    in_255 = epsilon * 255
    fraction = f" ({round(in_255):d}/255)" if norm == "Linf" and abs(in_255 - round(in_255)) < 1e-3 and in_255 >= 0.5 else ""
    return f"{norm} ε={epsilon:.4g}{fraction}"


def latency_of(row: TableRow) -> float | None:
    """p99 latency in ms, p50 when p99 was not measured, None without either."""
    return row.latency_p50_ms if row.latency_p99_ms is None else row.latency_p99_ms


def methods_of(rows: Sequence[TableRow]) -> list[str]:
    """Pruning methods in order of first appearance, the parent left out."""
    return list(dict.fromkeys(row.method for row in rows if row.method != PARENT_METHOD))


def short_variant(variant: str, parent: str | None) -> str:
    """A variant's name without its parent's prefix ("lenet5_fmnist_filter-l1_cr4" -> "filter-l1_cr4")."""
    if parent and variant != parent and variant.startswith(parent + "_"):
        return variant[len(parent) + 1:]
    return variant
