"""Checks and parsing of command-line values shared by the commands: output paths, seeds, numbers, budgets, rates,
and the choices of the options that take one of a fixed set of words (typer checks them and --help lists them)."""

from __future__ import annotations

import math
import os
from enum import Enum
from fractions import Fraction
from pathlib import Path

from evaluator.catalogue import ARCHITECTURES
from evaluator.errors import EvaluatorError
from evaluator.input_options import LAYOUTS, RANGES, SCORES, InputOverrides

THREADS_HELP = "Threads of torch and ONNX Runtime, 1 to 1024 (default: the free cores, see README)."
TORCH_DEVICE_HELP = "Where torch computes: auto (CUDA when torch sees a GPU), cpu, cuda or cuda:N."
DEVICE_HELP = "The GPU ONNX Runtime's CUDA EP runs on (with --provider auto or cuda)."
MLFLOW_HELP = ("Log {what} to this MLflow tracking URI: a folder, file:PATH, sqlite:///PATH.db or http(s)://HOST:PORT "
               "(needs the mlflow extra; README, Experiment tracking).")
MLFLOW_EXPERIMENT_HELP = "The MLflow experiment of the runs (made if missing)."


class Choice(str, Enum):
    """A word from a fixed set: typer checks it and --help lists the set; it prints as the word itself."""

    def __str__(self) -> str:
        return str(self.value)


Layout = Choice("Layout", {name: name for name in LAYOUTS})  # type: ignore[misc]
"""The image layout a graph takes (evaluator.graph_input)."""
InputRange = Choice("InputRange", {name: name for name in RANGES})  # type: ignore[misc]
"""The pixel range a graph takes: 0-1 or 0-255."""
Scores = Choice("Scores", {name: name for name in SCORES})  # type: ignore[misc]
"""What a graph's output holds: logits or probabilities."""


def parse_numbers(text: str | None, flag: str) -> tuple[float, ...] | None:
    """'0.485,0.456,0.406' -> a tuple of finite numbers (None for None)."""
    if text is None:
        return None
    try:
        values = tuple(float(Fraction(part.strip())) for part in text.split(",") if part.strip())
    except (ValueError, ZeroDivisionError):
        raise EvaluatorError(f"{flag} takes numbers separated by commas, got {text!r}") from None
    if not values or not all(math.isfinite(value) for value in values):
        raise EvaluatorError(f"{flag} takes finite numbers separated by commas, got {text!r}")
    return values


def input_overrides(layout: Choice | None, input_range: Choice | None, mean: str | None, std: str | None,
                    output: str | None, scores: Choice | None) -> InputOverrides:
    """The input flags of `assess` and `describe` (--layout, --input-range, --mean, --std, --output, --scores)."""
    return InputOverrides(choice(layout), choice(input_range), parse_numbers(mean, "--mean"), parse_numbers(std, "--std"),
                          output, choice(scores))


class Provider(Choice):
    """Where ONNX Runtime runs (evaluator.runtime.Provider)."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


Architecture = Choice("Architecture", {name: name for name in ARCHITECTURES})  # type: ignore[misc]
"""The architectures `train` builds (evaluator.catalogue.ARCHITECTURES)."""


class Schedule(Choice):
    """iterative: prune, fine-tune, prune further; oneshot: prune the source to each rate."""

    iterative = "iterative"
    oneshot = "oneshot"


class RateTarget(Choice):
    """What a rate compresses: weights or MACs."""

    weights = "weights"
    macs = "macs"


class RateBasis(Choice):
    """The weights a compression rate counts: all of them or the pruned layers'."""

    all = "all"
    pruned = "pruned"


class Scope(Choice):
    """Where a channel criterion ranks units: per layer or across layers."""

    local = "local"
    global_ = "global"


def choice(value: Enum | None) -> str | None:
    """The plain string of a chosen option (None stays None), for the library."""
    return None if value is None else str(value.value)


def check_output_path(path: Path | None, flag: str) -> None:
    """Fail before the work, not after it, when a result file cannot be written."""
    if path is None:
        return
    if path.is_dir():
        raise EvaluatorError(f"{flag} {path} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if any(folder.exists() and not folder.is_dir() for folder in (parent, *parent.parents)):
        raise EvaluatorError(f"cannot write {path}: a parent of it is a file")
    if parent.exists() and not os.access(parent, os.W_OK):
        raise EvaluatorError(f"cannot write {path}: {parent} is not writable")


def check_output_folder(path: Path, flag: str = "--out") -> None:
    """An output folder that exists as a folder or can be made (no file in its place or above it)."""
    if path.exists() and not path.is_dir():
        raise EvaluatorError(f"{flag} {path} is a file, not a folder")
    if any(parent.exists() and not parent.is_dir() for parent in path.parents):
        raise EvaluatorError(f"{flag} {path}: a parent of it is a file")


def check_seed(seed: int) -> None:
    """--seed is a whole number from 0 to 2**63 - 1."""
    if not 0 <= seed < 2**63:
        raise EvaluatorError(f"--seed must be a whole number from 0 to 2**63 - 1, got {seed}")


def positive_finite(**values: float) -> None:
    """Each named flag's value is a finite number > 0."""
    for name, value in values.items():
        if not math.isfinite(value) or value <= 0:
            raise EvaluatorError(f"--{name.replace('_', '-')} must be a positive number, got {value}")


def parse_epsilons(text: str) -> tuple[float, ...]:
    """'8/255,0.1' -> (0.0313..., 0.1)."""
    values = []
    for part in text.split(","):
        try:
            values.append(float(Fraction(part.strip())))
        except (ValueError, ZeroDivisionError, OverflowError):
            raise EvaluatorError(f"cannot read epsilon {part.strip()!r}: use numbers or fractions like 8/255") from None
    return tuple(values)


def parse_rates(text: str) -> tuple[float, ...]:
    """'2,4,8' -> (2.0, 4.0, 8.0)."""
    try:
        rates = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise EvaluatorError(f"cannot read rates {text!r}: use numbers like 2,4,8") from None
    if not all(math.isfinite(rate) for rate in rates):
        raise EvaluatorError(f"rates must be finite numbers, got {text!r}")
    return rates
