"""The robustness-curves figure: robust accuracy against the attack budget epsilon, per norm and variant, from the
minimal-norm attacks' curves; many variants are split into a panel per norm and pruning method."""

from __future__ import annotations

from typing import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from evaluator.norms import NORM_ORDER
from evaluator.report.figure_ids import series_id
from evaluator.report.figure_rows import methods_of, split_key
from evaluator.report.figure_style import grid_columns, legend_columns, new_figure, percent_axis, variant_styles
from evaluator.results import TableRow
from evaluator.table import PARENT_METHOD, budget_columns

CURVES_PER_PANEL = 12  # more variants than this: the curves figure gets a panel per norm and method


def curve_norms(rows: Sequence[TableRow]) -> list[str]:
    """The norms some row has a curve for, L0, L1, L2, Linf first."""
    norms = {norm for row in rows for norm, points in row.curves.items() if points}
    return sorted(norms, key=lambda norm: (NORM_ORDER.get(norm, 9), norm))


def curve_panels(rows: Sequence[TableRow], norms: Sequence[str]) -> list[tuple[str, str | None]]:
    """(norm, method) per panel: one panel per norm, or with more than CURVES_PER_PANEL variants one per norm and
    pruning method (each with the parent), so that no panel holds more lines than a reader can tell apart."""
    methods = methods_of(rows)
    if len(rows) <= CURVES_PER_PANEL or len(methods) < 2:
        return [(norm, None) for norm in norms]
    return [(norm, method) for norm in norms for method in methods]


def rate_colors(rows: Sequence[TableRow]) -> dict[float, str]:
    """A colour per target compression rate (light to dark as the rate grows), for panels that hold one method."""
    from matplotlib import colormaps

    rates = sorted({float(row.target_rate) for row in rows if row.method != PARENT_METHOD})
    shades = colormaps["viridis"](np.linspace(0.9, 0.0, len(rates))) if rates else []
    return {rate: matplotlib.colors.to_hex(shade) for rate, shade in zip(rates, shades)}


def curves_figure(rows: Sequence[TableRow]) -> Figure | None:
    """Robust accuracy against epsilon per norm (minimal-norm attacks' curves), one step line per variant; the last
    step runs on to the panel's right edge. Many variants are split into a panel per norm and method, coloured by
    compression rate (see curve_panels). None when no row has a curve. Series gids: 'curve__<norm>__<variant>';
    the table's budgets are dotted vertical lines 'budget__<key>'."""
    norms = curve_norms(rows)
    if not norms:
        return None
    panels = curve_panels(rows, norms)
    by_method = panels[0][1] is not None
    styles, shades = variant_styles(rows), rate_colors(rows)
    fig, axes = new_figure(len(panels), grid_columns(len(panels)))
    handles = {}
    keys = budget_columns(rows)
    for (norm, method), ax in zip(panels, axes):
        shown = [row for row in rows if row.curves.get(norm) and (method is None or row.method in (method, PARENT_METHOD))]
        curves = {row.variant: np.asarray(row.curves[norm], dtype=np.float64).reshape(-1, 2) for row in shown}
        budgets = [split_key(key)[1] for key in keys if split_key(key)[0] == norm]
        far = max([float(points[:, 0].max()) for points in curves.values()] + budgets + [0.0])
        right = far * 1.15 if far > 0 else 1.0
        for row in shown:
            points = curves[row.variant]
            parent = row.method == PARENT_METHOD
            if by_method:
                color, linestyle = ("#000000" if parent else shades[float(row.target_rate)]), "-"
                label = "parent" if parent else f"CR {float(row.target_rate):g}"
            else:
                color, linestyle, label = styles[row.variant].color, styles[row.variant].linestyle, row.variant
            xs = np.append(points[:, 0], right)
            ys = np.append(points[:, 1], points[-1, 1])
            (line,) = ax.step(xs, ys, where="post", color=color, linestyle=linestyle, linewidth=1.3, label=label,
                              gid=series_id("curve", norm, row.variant))
            handles.setdefault(label, line)
        for key in keys:
            key_norm, epsilon = split_key(key)
            if key_norm == norm:
                ax.axvline(epsilon, color="#555555", linestyle=":", linewidth=1, gid=series_id("budget", key))
        ax.set_xlim(0, right)
        percent_axis(ax)
        ax.set_title(f"robustness curve, {norm}" + (f": {method}" if method else ""))
        ax.set_xlabel(f"{norm} budget ε" + (" (pixels)" if norm == "L0" else ""))
        ax.set_ylabel("robust accuracy")
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=legend_columns(fig, list(handles)))
    return fig
