"""The scenario figure: each variant's accuracy aggregated over a share r of adversarial inputs, with the best
variant's ranges (evaluator/scenario.py)."""

from __future__ import annotations

from typing import Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from evaluator.report.figure_ids import series_id
from evaluator.report.figure_rows import key_label, short_variant
from evaluator.report.figure_style import method_style, new_figure, percent_axis, variant_styles
from evaluator.results import TableRow
from evaluator.scenario import Scenario
from evaluator.table import parent_row

SCENARIO_LABEL_CHARS = 70  # characters of a 7-point range label that fit across the scenario axes (r from 0 to 1)


def scenario_figure(rows: Sequence[TableRow], result: Scenario) -> Figure | None:
    """Aggregated accuracy A_v(r) = (1 - r) clean_v + r robust_v for r in [0, 1], one line per variant; the variants
    that are best somewhere (and the parent) drawn in colour and named, the others thin and grey; every crossing
    marked faintly, the switches of the best variant boldly, its ranges shaded and named. None without lines.
    Series gids: 'scenario__<variant>' (points r = 0 and 1), 'scenario__crossings', 'scenario__envelope'."""
    if not result.lines:
        return None
    styles = variant_styles(rows)
    parent = parent_row(rows)
    parent_name = parent.variant if parent else None
    best = {segment.variant for segment in result.best}
    fig, (ax,) = new_figure(1, 1, width=7.0, height=4.6)
    for index, segment in enumerate(result.best):
        color = styles[segment.variant].color if segment.variant in styles else "#999999"
        ax.axvspan(segment.r_from, segment.r_to, color=color, alpha=0.12, linewidth=0,
                   gid=series_id("scenario", "best", str(index)))
        label = short_variant(segment.variant, parent_name)
        fits = (segment.r_to - segment.r_from) * SCENARIO_LABEL_CHARS >= len(label)
        ax.text((segment.r_from + segment.r_to) / 2, 0.03, label, ha="center", va="bottom", fontsize=7,
                rotation=0 if fits else 90, transform=ax.get_xaxis_transform())
    others = [line for line in result.lines if line.variant not in best and line.variant != parent_name]
    for index, line in enumerate(others):
        ax.plot([0.0, 1.0], [line.clean, line.robust], color="#b0b0b0", linewidth=0.7, alpha=0.6, zorder=2,
                label=f"{len(others)} other variants" if index == 0 else "_nolegend_", gid=series_id("scenario", line.variant))
    for line in result.lines:
        if line.variant in best or line.variant == parent_name:
            style = styles.get(line.variant, method_style(line.method))
            ax.plot([0.0, 1.0], [line.clean, line.robust], color=style.color, linestyle=style.linestyle, linewidth=1.8,
                    zorder=3, label=short_variant(line.variant, parent_name), gid=series_id("scenario", line.variant))
    if result.crossings:
        ax.scatter([c.r for c in result.crossings], [c.accuracy for c in result.crossings], s=8, color="#777777",
                   marker="x", linewidths=0.5, alpha=0.5, zorder=2, label="crossings", gid=series_id("scenario", "crossings"))
    envelope = [(s.r_from, s.accuracy_from) for s in result.best] + [(result.best[-1].r_to, result.best[-1].accuracy_to)]
    ax.plot([p[0] for p in envelope], [p[1] for p in envelope], color="#000000", linewidth=2.6, alpha=0.35, zorder=1,
            label="best variant", gid=series_id("scenario", "envelope"))
    for segment in result.best[1:]:
        ax.plot([segment.r_from], [segment.accuracy_from], marker="o", markersize=6, color="#000000", zorder=5,
                gid=series_id("scenario", "switch", f"{segment.r_from:.6f}"))
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    percent_axis(ax)
    ax.set_xlabel("share r of adversarial inputs")
    ax.set_ylabel("aggregated accuracy (1 − r)·clean + r·robust")
    ax.set_title(f"scenario: aggregated accuracy, {key_label(result.budget_key)}")
    fig.legend(loc="outside right upper", fontsize=7)
    return fig
