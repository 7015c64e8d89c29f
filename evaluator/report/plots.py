"""The study's figures from the sweep's table rows (evaluator/table.py `table_row`), as PNG and SVG.

Figures are built on matplotlib's object API with the Agg canvas (pyplot and its global state are never used).
The same rows give byte-identical SVG (fixed svg.hashsalt, no date) and PNG (fixed dpi). Every data series is a
matplotlib artist whose gid names it ('grid__Linf@0.03137__filter-l1'); the gid becomes the SVG element's id, and
`figure_series` reads the plotted values back from a figure, so tests can compare them with the table.
Accuracies are shares in [0, 1] shown as percent; compression rates are dense / non-zero parameters (x-fold).
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator, PercentFormatter

from evaluator.files import write_bytes_atomic
from evaluator.scenario import Scenario, default_budget_key, pareto_front, scenario
from evaluator.table import PARENT_METHOD, budget_columns, parent_row

DPI = 150
CURVES_PER_PANEL = 12  # more variants than this: the curves figure gets a panel per norm and method
LABELLED_POINTS = 12  # more variants than this: the latency figure names only the Pareto front and the parent
SCENARIO_LABEL_CHARS = 70  # characters of a 7-point range label that fit across the scenario axes (r from 0 to 1)
SVG_SALT = "evaluator-report"
NORM_ORDER = {"L0": 0, "L1": 1, "L2": 2, "Linf": 3}
STYLE = {"svg.hashsalt": SVG_SALT, "svg.fonttype": "none", "font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8,
         "figure.dpi": 100, "savefig.dpi": DPI, "savefig.bbox": None, "path.simplify": False}
# The pruning methods `evaluator prune --list` knows, in a fixed order: each keeps its colour and marker in every figure.
KNOWN_METHODS = tuple(f"{granularity}-{scope}-{criterion}" for granularity in ("unstructured", "kernel", "filter")
                      for scope, criterion in (("global", "magnitude"), ("local", "magnitude"), ("local", "random"))) + tuple(
    f"filter-{criterion}" for criterion in ("l1", "l2", "taylor", "bn-scale", "lamp", "fpgm", "random"))
# tab20, dark shades first so that the first ten methods are far apart.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
           "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
LINESTYLES = ("-", "--", ":", "-.")


@dataclass(frozen=True)
class Style:
    color: str
    marker: str
    linestyle: str = "-"


@dataclass(frozen=True)
class FigureFiles:
    """A written figure: `name` is the file stem, `title` a one-line caption."""

    name: str
    title: str
    png: Path
    svg: Path


def method_style(method: str) -> Style:
    """The colour and marker of a pruning method: fixed for known methods, from a stable hash for others;
    the unpruned parent ('none') is black with a star."""
    if method == PARENT_METHOD:
        return Style("#000000", "*")
    if method in KNOWN_METHODS:
        index = KNOWN_METHODS.index(method)
    else:
        index = int(hashlib.sha256(method.encode("utf-8")).hexdigest()[:8], 16)
    return Style(PALETTE[index % len(PALETTE)], MARKERS[index % len(MARKERS)])


def variant_styles(rows: Sequence[dict[str, Any]]) -> dict[str, Style]:
    """Per variant: its method's colour and marker, and a line style by the rank of its target rate within the method."""
    styles = {}
    for row in rows:
        rates = sorted({r["target_rate"] for r in rows if r["method"] == row["method"]})
        base = method_style(row["method"])
        styles[row["variant"]] = Style(base.color, base.marker, LINESTYLES[rates.index(row["target_rate"]) % len(LINESTYLES)])
    return styles


def slug(text: str) -> str:
    """A string safe inside an XML id: letters, digits and _ . @ - kept, anything else '_'."""
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", str(text)) or "_"


def series_id(*parts: str) -> str:
    """The gid of a data series: its parts slugged and joined by '__'."""
    return "__".join(slug(part) for part in parts)


def figure_series(fig: Figure) -> dict[str, np.ndarray]:
    """The data of every named series: gid -> (P, 2) array of (x, y) in data units (lines and scatter points)."""
    series: dict[str, np.ndarray] = {}
    for ax in fig.axes:
        for line in ax.lines:
            if line.get_gid():
                series[line.get_gid()] = np.asarray(line.get_xydata(), dtype=np.float64)
        for collection in ax.collections:
            if collection.get_gid():
                series[collection.get_gid()] = np.asarray(collection.get_offsets(), dtype=np.float64).reshape(-1, 2)
    return series


def split_key(key: str) -> tuple[str, float]:
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


def latency_of(row: dict[str, Any]) -> float | None:
    """p99 latency in ms, p50 when p99 was not measured, None without either."""
    value = row.get("latency_p99_ms")
    return row.get("latency_p50_ms") if value is None else value


def methods_of(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Pruning methods in order of first appearance, the parent left out."""
    return list(dict.fromkeys(row["method"] for row in rows if row["method"] != PARENT_METHOD))


@contextmanager
def report_style() -> Iterator[None]:
    """The rcParams every figure is built and saved with."""
    with matplotlib.rc_context(STYLE):
        yield


def new_figure(panels: int, columns: int, width: float = 4.2, height: float = 3.2) -> tuple[Figure, list[Axes]]:
    rows = math.ceil(panels / columns)
    fig = Figure(figsize=(width * columns, height * rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, columns, squeeze=False).ravel().tolist()
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[:panels]


def grid_columns(panels: int) -> int:
    """Panels per row: 2 x 2 for four panels, else up to three in a row."""
    return 2 if panels == 4 else min(panels, 3)


def legend_columns(fig: Figure, labels: Sequence[str]) -> int:
    """As many legend columns as the figure's width holds for the longest label (about 0.065 in per character)."""
    width = fig.get_figwidth()
    longest = max((len(label) for label in labels), default=1)
    return max(1, min(len(labels), int(width // (0.065 * longest + 0.6))))


def percent_axis(ax: Axes) -> None:
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, linewidth=0.4, alpha=0.5)


def grid_figure(rows: Sequence[dict[str, Any]]) -> Figure:
    """The study's grid: robust accuracy against achieved compression rate (log2 axis), one line per method starting
    at the parent (rate 1), one panel per budget key after a clean-accuracy panel. Series gids:
    'grid__<panel>__<method>' (panel 'clean' or the budget key) and 'grid__<panel>__none' for the parent point."""
    keys = budget_columns(list(rows))
    panels = ["clean", *keys]
    fig, axes = new_figure(len(panels), grid_columns(len(panels)))
    parent = parent_row(rows)
    rates = [row["achieved_rate"] for row in rows] or [1.0]
    low, high = min(1.0, min(rates)) / 1.25, max(64.0, max(rates)) * 1.25
    ticks = [2.0 ** k for k in range(math.floor(math.log2(low)) + 1, math.ceil(math.log2(high)))]
    handles = {}
    for panel, ax in zip(panels, axes):
        def value(row: dict[str, Any], panel: str = panel) -> float | None:
            return row["clean_accuracy"] if panel == "clean" else row["robust_accuracy"].get(panel)

        for method in methods_of(rows):
            members = sorted((row for row in rows if row["method"] == method and value(row) is not None),
                             key=lambda row: (row["achieved_rate"], row["variant"]))
            if parent is not None and value(parent) is not None:
                members = [parent, *members]
            if not members:
                continue
            style = method_style(method)
            (line,) = ax.plot([row["achieved_rate"] for row in members], [value(row) for row in members],
                              color=style.color, marker=style.marker, markersize=4, linewidth=1.4, label=method,
                              gid=series_id("grid", panel, method))
            handles.setdefault(method, line)
        if parent is not None and value(parent) is not None:
            style = method_style(PARENT_METHOD)
            (line,) = ax.plot([parent["achieved_rate"]], [value(parent)], linestyle="none", color=style.color,
                              marker=style.marker, markersize=9, zorder=5, label=f"parent ({parent['variant']})",
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


def curve_norms(rows: Sequence[dict[str, Any]]) -> list[str]:
    norms = {norm for row in rows for norm, points in (row.get("curves") or {}).items() if points}
    return sorted(norms, key=lambda norm: (NORM_ORDER.get(norm, 9), norm))


def curve_panels(rows: Sequence[dict[str, Any]], norms: Sequence[str]) -> list[tuple[str, str | None]]:
    """(norm, method) per panel: one panel per norm, or with more than CURVES_PER_PANEL variants one per norm and
    pruning method (each with the parent), so that no panel holds more lines than a reader can tell apart."""
    methods = methods_of(rows)
    if len(rows) <= CURVES_PER_PANEL or len(methods) < 2:
        return [(norm, None) for norm in norms]
    return [(norm, method) for norm in norms for method in methods]


def rate_colors(rows: Sequence[dict[str, Any]]) -> dict[float, str]:
    """A colour per target compression rate (light to dark as the rate grows), for panels that hold one method."""
    from matplotlib import colormaps

    rates = sorted({float(row["target_rate"]) for row in rows if row["method"] != PARENT_METHOD})
    shades = colormaps["viridis"](np.linspace(0.9, 0.0, len(rates))) if rates else []
    return {rate: matplotlib.colors.to_hex(shade) for rate, shade in zip(rates, shades)}


def curves_figure(rows: Sequence[dict[str, Any]]) -> Figure | None:
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
    keys = budget_columns(list(rows))
    for (norm, method), ax in zip(panels, axes):
        shown = [row for row in rows if (row.get("curves") or {}).get(norm)
                 and (method is None or row["method"] in (method, PARENT_METHOD))]
        curves = {row["variant"]: np.asarray(row["curves"][norm], dtype=np.float64).reshape(-1, 2) for row in shown}
        budgets = [split_key(key)[1] for key in keys if split_key(key)[0] == norm]
        far = max([float(points[:, 0].max()) for points in curves.values()] + budgets + [0.0])
        right = far * 1.15 if far > 0 else 1.0
        for row in shown:
            points = curves[row["variant"]]
            parent = row["method"] == PARENT_METHOD
            if by_method:
                color, linestyle = ("#000000" if parent else shades[float(row["target_rate"])]), "-"
                label = "parent" if parent else f"CR {float(row['target_rate']):g}"
            else:
                color, linestyle, label = styles[row["variant"]].color, styles[row["variant"]].linestyle, row["variant"]
            xs = np.append(points[:, 0], right)
            ys = np.append(points[:, 1], points[-1, 1])
            (line,) = ax.step(xs, ys, where="post", color=color, linestyle=linestyle, linewidth=1.3, label=label,
                              gid=series_id("curve", norm, row["variant"]))
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


def latency_figure(rows: Sequence[dict[str, Any]], budget_key: str) -> Figure | None:
    """Latency (p99 ms, p50 where p99 is missing) against robust accuracy at budget_key, every variant a point
    (named when there are at most LABELLED_POINTS, else only the front and the parent, with a legend of methods), and
    the Pareto front (lower latency and higher accuracy dominate) as a step line. None when no row has
    both. Series gids: 'latency__<variant>' (one point each) and 'latency__pareto'."""
    points = [row for row in rows if latency_of(row) is not None and row["robust_accuracy"].get(budget_key) is not None]
    if not points:
        return None
    styles = variant_styles(rows)
    fig, (ax,) = new_figure(1, 1, width=6.4, height=4.4)
    latency = np.array([latency_of(row) for row in points], dtype=np.float64)
    accuracy = np.array([row["robust_accuracy"][budget_key] for row in points], dtype=np.float64)
    front = pareto_front(latency, accuracy)
    crowded = len(points) > LABELLED_POINTS
    named = set(front.tolist()) if crowded else set(range(len(points)))
    parent = parent_row(rows)
    legend: set[str] = set()
    for index, (row, x, y) in enumerate(zip(points, latency, accuracy)):
        style = styles[row["variant"]]
        ax.plot([x], [y], linestyle="none", marker=style.marker, color=style.color,
                markersize=10 if row["method"] == PARENT_METHOD else 7, gid=series_id("latency", row["variant"]),
                label="_nolegend_" if row["method"] in legend or not crowded
                else "parent" if row["method"] == PARENT_METHOD else row["method"])
        legend.add(row["method"])
        if index in named or row["method"] == PARENT_METHOD:
            ax.annotate(short_variant(row["variant"], parent["variant"] if parent else None), (x, y), xytext=(4, 4),
                        textcoords="offset points", fontsize=7)
    ax.step(latency[front], accuracy[front], where="post", color="#333333", linestyle="--", linewidth=1.2,
            label="Pareto front", gid=series_id("latency", "pareto"))
    spread = float(latency.max() - latency.min()) or float(latency.max()) or 1.0
    ax.set_xlim(max(0.0, float(latency.min()) - 0.1 * spread), float(latency.max()) + 0.25 * spread)
    percent_axis(ax)
    all_p99 = all(row.get("latency_p99_ms") is not None for row in points)
    ax.set_xlabel("latency p99 (ms)" if all_p99 else "latency (ms; p99, p50 where p99 is missing)")
    ax.set_ylabel(f"robust accuracy, {key_label(budget_key)}")
    ax.set_title("latency against robustness" + (" (the front and the parent named)" if crowded else ""))
    if crowded:
        fig.legend(loc="outside right upper", fontsize=7)
    else:
        ax.legend(loc="best")
    return fig


def short_variant(variant: str, parent: str | None) -> str:
    """A variant's name without its parent's prefix ("lenet5_fmnist_filter-l1_cr4" -> "filter-l1_cr4")."""
    if parent and variant != parent and variant.startswith(parent + "_"):
        return variant[len(parent) + 1:]
    return variant


def scenario_figure(rows: Sequence[dict[str, Any]], result: Scenario) -> Figure | None:
    """Aggregated accuracy A_v(r) = (1 - r) clean_v + r robust_v for r in [0, 1], one line per variant; the variants
    that are best somewhere (and the parent) drawn in colour and named, the others thin and grey; every crossing
    marked faintly, the switches of the best variant boldly, its ranges shaded and named. None without lines.
    Series gids: 'scenario__<variant>' (points r = 0 and 1), 'scenario__crossings', 'scenario__envelope'."""
    if not result.lines:
        return None
    styles = variant_styles(rows)
    parent = parent_row(rows)
    parent_name = parent["variant"] if parent else None
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


def save_figure(fig: Figure, folder: Path, name: str, title: str) -> FigureFiles:
    """Write fig as <folder>/<name>.png (DPI dots per inch) and <name>.svg, each atomically (temp file, os.replace)."""
    folder = Path(folder)
    with report_style(), matplotlib.rc_context({"svg.id": name}):
        svg = io.BytesIO()
        fig.savefig(svg, format="svg", metadata={"Date": None})
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=DPI)
    paths = FigureFiles(name, title, folder / f"{name}.png", folder / f"{name}.svg")
    write_bytes_atomic(paths.png, png.getvalue())
    write_bytes_atomic(paths.svg, svg.getvalue())
    return paths


def plot_grid(rows: Sequence[dict[str, Any]], folder: Path) -> FigureFiles:
    with report_style():
        fig = grid_figure(rows)
    return save_figure(fig, folder, "grid", "Clean and robust accuracy against compression rate, one line per pruning method")


def plot_curves(rows: Sequence[dict[str, Any]], folder: Path) -> FigureFiles | None:
    with report_style():
        fig = curves_figure(rows)
    return None if fig is None else save_figure(fig, folder, "curves", "Robust accuracy against the attack budget, per variant")


def plot_latency(rows: Sequence[dict[str, Any]], folder: Path, budget_key: str) -> FigureFiles | None:
    with report_style():
        fig = latency_figure(rows, budget_key)
    title = f"Latency against robust accuracy at {key_label(budget_key)}, with the Pareto front"
    return None if fig is None else save_figure(fig, folder, "latency", title)


def plot_scenario(rows: Sequence[dict[str, Any]], folder: Path, budget_key: str) -> FigureFiles | None:
    with report_style():
        fig = scenario_figure(rows, scenario(rows, budget_key))
    title = f"Aggregated accuracy against the share of adversarial inputs at {key_label(budget_key)}"
    return None if fig is None else save_figure(fig, folder, "scenario", title)


def plot_all(rows: Sequence[dict[str, Any]], folder: Path, budget_key: str | None = None,
             names: Sequence[str] | None = None) -> list[FigureFiles]:
    """Every figure the rows allow (or those of `names`), in report order; budget_key (default: the middle Linf
    budget) for latency and scenario."""
    key = budget_key or default_budget_key(budget_columns(list(rows)))
    makers = {"grid": lambda: plot_grid(rows, folder), "curves": lambda: plot_curves(rows, folder)}
    if key is not None:
        makers |= {"latency": lambda: plot_latency(rows, folder, key), "scenario": lambda: plot_scenario(rows, folder, key)}
    figures = [make() for name, make in makers.items() if names is None or name in names]
    return [figure for figure in figures if figure is not None]
