"""The latency figure: latency against robust accuracy at one budget, every variant a point, with the Pareto
front."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from evaluator.report.figure_ids import series_id
from evaluator.report.figure_rows import key_label, latency_of, short_variant
from evaluator.report.figure_style import new_figure, percent_axis, variant_styles
from evaluator.scenario import pareto_front
from evaluator.results import TableRow
from evaluator.table import PARENT_METHOD, parent_row

LABELLED_POINTS = 12  # more variants than this: the latency figure names only the Pareto front and the parent


def latency_figure(rows: Sequence[TableRow], budget_key: str) -> Figure | None:
    """Latency (p99 ms, p50 where p99 is missing) against robust accuracy at budget_key, every variant a point
    (named when there are at most LABELLED_POINTS, else only the front and the parent, with a legend of methods), and
    the Pareto front (lower latency and higher accuracy dominate) as a step line. None when no row has
    both. Series gids: 'latency__<variant>' (one point each) and 'latency__pareto'."""
    points = [row for row in rows if latency_of(row) is not None and row.robust_accuracy.get(budget_key) is not None]
    if not points:
        return None
    styles = variant_styles(rows)
    fig, (ax,) = new_figure(1, 1, width=6.4, height=4.4)
    latency = np.array([latency_of(row) for row in points], dtype=np.float64)
    accuracy = np.array([row.robust_accuracy[budget_key] for row in points], dtype=np.float64)
    front = pareto_front(latency, accuracy)
    crowded = len(points) > LABELLED_POINTS
    named = set(front.tolist()) if crowded else set(range(len(points)))
    parent = parent_row(rows)
    legend: set[str] = set()
    for index, (row, x, y) in enumerate(zip(points, latency, accuracy)):
        style = styles[row.variant]
        ax.plot([x], [y], linestyle="none", marker=style.marker, color=style.color,
                markersize=10 if row.method == PARENT_METHOD else 7, gid=series_id("latency", row.variant),
                label="_nolegend_" if row.method in legend or not crowded
                else "parent" if row.method == PARENT_METHOD else row.method)
        legend.add(row.method)
        if index in named or row.method == PARENT_METHOD:
            ax.annotate(short_variant(row.variant, parent.variant if parent else None), (x, y), xytext=(4, 4),
                        textcoords="offset points", fontsize=7)
    ax.step(latency[front], accuracy[front], where="post", color="#333333", linestyle="--", linewidth=1.2,
            label="Pareto front", gid=series_id("latency", "pareto"))
    spread = float(latency.max() - latency.min()) or float(latency.max()) or 1.0
    ax.set_xlim(max(0.0, float(latency.min()) - 0.1 * spread), float(latency.max()) + 0.25 * spread)
    percent_axis(ax)
    all_p99 = all(row.latency_p99_ms is not None for row in points)
    ax.set_xlabel("latency p99 (ms)" if all_p99 else "latency (ms; p99, p50 where p99 is missing)")
    ax.set_ylabel(f"robust accuracy, {key_label(budget_key)}")
    ax.set_title("latency against robustness" + (" (the front and the parent named)" if crowded else ""))
    if crowded:
        fig.legend(loc="outside right upper", fontsize=7)
    else:
        ax.legend(loc="best")
    return fig
