"""The study's figures from the sweep's table rows (evaluator/table.py `table_row`), written as PNG and SVG.

Each figure kind has its module (figure_grid, figure_curves, figure_latency, figure_scenario), built with the shared
look of figure_style and the series gids of figure_ids; this module saves them, byte-identical for the same rows
(fixed svg.hashsalt, no date, fixed dpi), and re-exports the names other code imports from here.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib
from matplotlib.figure import Figure

from evaluator.files import write_bytes_atomic
from evaluator.report.figure_curves import CURVES_PER_PANEL, curve_panels, curves_figure
from evaluator.report.figure_grid import grid_figure
from evaluator.report.figure_ids import figure_series, series_id
from evaluator.report.figure_latency import latency_figure
from evaluator.report.figure_rows import key_label, latency_of
from evaluator.report.figure_scenario import scenario_figure
from evaluator.report.figure_style import DPI, method_style, report_style
from evaluator.results import TableRow
from evaluator.scenario import default_budget_key, scenario
from evaluator.table import budget_columns

__all__ = ["CURVES_PER_PANEL", "FigureFiles", "curve_panels", "curves_figure", "figure_series", "grid_figure", "key_label",
           "latency_figure", "latency_of", "method_style", "plot_all", "plot_curves", "plot_grid", "plot_latency",
           "plot_scenario", "save_figure", "scenario_figure", "series_id"]


@dataclass(frozen=True)
class FigureFiles:
    """A written figure: `name` is the file stem, `title` a one-line caption."""

    name: str
    title: str
    png: Path
    svg: Path


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


def plot_grid(rows: Sequence[TableRow], folder: Path) -> FigureFiles:
    with report_style():
        fig = grid_figure(rows)
    return save_figure(fig, folder, "grid", "Clean and robust accuracy against compression rate, one line per pruning method")


def plot_curves(rows: Sequence[TableRow], folder: Path) -> FigureFiles | None:
    with report_style():
        fig = curves_figure(rows)
    return None if fig is None else save_figure(fig, folder, "curves", "Robust accuracy against the attack budget, per variant")


def plot_latency(rows: Sequence[TableRow], folder: Path, budget_key: str) -> FigureFiles | None:
    with report_style():
        fig = latency_figure(rows, budget_key)
    title = f"Latency against robust accuracy at {key_label(budget_key)}, with the Pareto front"
    return None if fig is None else save_figure(fig, folder, "latency", title)


def plot_scenario(rows: Sequence[TableRow], folder: Path, budget_key: str) -> FigureFiles | None:
    with report_style():
        fig = scenario_figure(rows, scenario(rows, budget_key))
    title = f"Aggregated accuracy against the share of adversarial inputs at {key_label(budget_key)}"
    return None if fig is None else save_figure(fig, folder, "scenario", title)


def plot_all(rows: Sequence[TableRow], folder: Path, budget_key: str | None = None,
             names: Sequence[str] | None = None) -> list[FigureFiles]:
    """Every figure the rows allow (or those of `names`), in report order; budget_key (default: the middle Linf
    budget) for latency and scenario."""
    key = budget_key or default_budget_key(budget_columns(rows))
    makers = {"grid": lambda: plot_grid(rows, folder), "curves": lambda: plot_curves(rows, folder)}
    if key is not None:
        makers |= {"latency": lambda: plot_latency(rows, folder, key), "scenario": lambda: plot_scenario(rows, folder, key)}
    figures = [make() for name, make in makers.items() if names is None or name in names]
    return [figure for figure in figures if figure is not None]
