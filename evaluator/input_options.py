"""What a user can say about how a deployed graph takes images and gives scores; evaluator.graph_input applies it.
Light (no onnx): assessment options and the command line carry it."""

from __future__ import annotations

from dataclasses import dataclass

LAYOUTS = ("NCHW", "NHWC")
RANGES = {"0-1": 1.0, "0-255": 255.0}  # the graph's pixel value for white
SCORES = ("logits", "probabilities")


@dataclass(frozen=True)
class InputOverrides:
    """What the user says about how a graph takes images and gives scores (evaluator.graph_input); None: ask the
    model's metadata, then the graph."""

    layout: str | None = None
    input_range: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    output: str | None = None
    scores: str | None = None
