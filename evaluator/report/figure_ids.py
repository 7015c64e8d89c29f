"""The names of the figures' data series: every series is a matplotlib artist whose gid names it
('grid__Linf@0.03137__filter-l1'); the gid becomes the SVG element's id, and `figure_series` reads the plotted values
back from a figure, so tests can compare them with the table."""

from __future__ import annotations

import re

import numpy as np
from matplotlib.figure import Figure


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
