"""The study's grid figure: clean and robust accuracy against the achieved compression rate, one line per pruning
method. Accuracies are shares in [0, 1] shown as percent; compression rates are dense / non-zero parameters (x-fold)."""

from __future__ import annotations

import math
from typing import Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from evaluator.report.figure_ids import series_id
from evaluator.report.figure_rows import key_label, methods_of
from evaluator.report.figure_style import grid_columns, legend_columns, method_style, new_figure, percent_axis
from evaluator.results import TableRow
from evaluator.table import PARENT_METHOD, budget_columns, parent_row


def grid_figure(rows: Sequence[TableRow]) -> Figure:
    """The study's grid: robust accuracy against achieved compression rate (log2 axis), one line per method starting
    at the parent (rate 1), one panel per budget key after a clean-accuracy panel. Series gids:
    'grid__<panel>__<method>' (panel 'clean' or the budget key) and 'grid__<panel>__none' for the parent point."""
    keys = budget_columns(rows)
    panels = ["clean", *keys]
    fig, axes = new_figure(len(panels), grid_columns(len(panels)))
    parent = parent_row(rows)
    rates = [row.achieved_rate for row in rows] or [1.0]
    low, high = min(1.0, min(rates)) / 1.25, max(64.0, max(rates)) * 1.25
    ticks = [2.0 ** k for k in range(math.floor(math.log2(low)) + 1, math.ceil(math.log2(high)))]
    handles = {}
    for panel, ax in zip(panels, axes):
        def value(row: TableRow, panel: str = panel) -> float | None:
            return row.clean_accuracy if panel == "clean" else row.robust_accuracy.get(panel)

        for method in methods_of(rows):
            members = sorted((row for row in rows if row.method == method and value(row) is not None),
                             key=lambda row: (row.achieved_rate, row.variant))
            if parent is not None and value(parent) is not None:
                members = [parent, *members]
            if not members:
                continue
            style = method_style(method)
            (line,) = ax.plot([row.achieved_rate for row in members], [value(row) for row in members],
                              color=style.color, marker=style.marker, markersize=4, linewidth=1.4, label=method,
                              gid=series_id("grid", panel, method))
            handles.setdefault(method, line)
        if parent is not None and value(parent) is not None:
            style = method_style(PARENT_METHOD)
            (line,) = ax.plot([parent.achieved_rate], [value(parent)], linestyle="none", color=style.color,
                              marker=style.marker, markersize=9, zorder=5, label=f"parent ({parent.variant})",
                              gid=series_id("grid", panel, PARENT_METHOD))
            handles.setdefault(PARENT_METHOD, line)
        ax.set_xscale("log", base=2)
        ax.set_xlim(low, high)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        percent_axis(ax)
        ax.set_title("clean accuracy" if panel == "clean" else f"robust accuracy, {key_label(panel)}")
        ax.set_xlabel("compression rate (achieved, x-fold)")
        ax.set_ylabel("accuracy")
    if handles:
        ordered = [handles[m] for m in [PARENT_METHOD, *methods_of(rows)] if m in handles]
        labels = [str(h.get_label()) for h in ordered]
        fig.legend(ordered, labels, loc="outside lower center", ncols=legend_columns(fig, labels))
    return fig
