"""The look shared by every figure of the report: rcParams, a colour and marker per pruning method, the figure and
panel layout.

Figures are built on matplotlib's object API with the Agg canvas (pyplot and its global state are never used).
The rcParams fix svg.hashsalt and the dpi, so the same rows give byte-identical SVG and PNG.
"""

from __future__ import annotations

import hashlib
import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from evaluator.catalogue import METHODS
from evaluator.results import TableRow
from evaluator.table import PARENT_METHOD

DPI = 150
SVG_SALT = "evaluator-report"
STYLE = {"svg.hashsalt": SVG_SALT, "svg.fonttype": "none", "font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8,
         "figure.dpi": 100, "savefig.dpi": DPI, "savefig.bbox": None, "path.simplify": False}
# The pruning methods `evaluator prune --list` knows, in a fixed order: each keeps its colour and marker in every figure.
KNOWN_METHODS = tuple(METHODS)
# tab20, dark shades first so that the first ten methods are far apart.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
           "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
LINESTYLES = ("-", "--", ":", "-.")


@dataclass(frozen=True)
class Style:
    """A series' colour, marker and line style."""

    color: str
    marker: str
    linestyle: str = "-"


PRECISION_MARKERS = {"int8": "$8$", "int8-dynamic": "$d$", "fp16": "$h$"}  # a series "METHOD PRECISION" (a sweep's)


def method_style(method: str) -> Style:
    """The colour and marker of a pruning method: fixed for known methods, from a stable hash for others;
    the unpruned parent ('none') is black with a star. A sweep names its int8 / fp16 series "METHOD PRECISION": the
    method's colour with the precision's own marker (PRECISION_MARKERS: a mathtext 8, d or h)."""
    base, _, precision = method.rpartition(" ")
    if base and precision in PRECISION_MARKERS:
        return Style(method_style(base).color, PRECISION_MARKERS[precision])
    if method == PARENT_METHOD:
        return Style("#000000", "*")
    if method in KNOWN_METHODS:
        index = KNOWN_METHODS.index(method)
    else:
        index = int(hashlib.sha256(method.encode("utf-8")).hexdigest()[:8], 16)
    return Style(PALETTE[index % len(PALETTE)], MARKERS[index % len(MARKERS)])


def variant_styles(rows: Sequence[TableRow]) -> dict[str, Style]:
    """Per variant: its method's colour and marker, and a line style by the rank of its target rate within the method."""
    styles = {}
    for row in rows:
        rates = sorted({r.target_rate for r in rows if r.method == row.method})
        base = method_style(row.method)
        styles[row.variant] = Style(base.color, base.marker, LINESTYLES[rates.index(row.target_rate) % len(LINESTYLES)])
    return styles


@contextmanager
def report_style() -> Iterator[None]:
    """The rcParams every figure is built and saved with."""
    with matplotlib.rc_context(STYLE):
        yield


def new_figure(panels: int, columns: int, width: float = 4.2, height: float = 3.2) -> tuple[Figure, list[Axes]]:
    """A figure on the Agg canvas with `panels` axes in `columns` columns (the grid's spare axes hidden)."""
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
    """An accuracy axis: shares in [0, 1] shown as percent, with a light grid."""
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, linewidth=0.4, alpha=0.5)
