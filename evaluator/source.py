"""The PyTorch source of a deployed model: a torch.export program (.pt2), checked before torch reads it."""

from __future__ import annotations

import io
import json
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from evaluator.errors import EvaluatorError
from evaluator.metadata import check_metadata
from evaluator.pt2_safety import MAX_ARCHIVE_BYTES, check_pt2, check_zip_file
from evaluator.threads import apply_to_torch

PT2_METADATA_FILE = "evaluator.json"  # the evaluator's metadata among a .pt2's extra files


class SourceModel(nn.Module):
    """An exported program as a differentiable module: x (N, C, H, W) in [0, 1] -> logits (N, classes).
    Exported programs are frozen in eval mode and refuse train()/eval(); this wrapper makes those
    calls no-ops so that libraries which call model.eval() can use it. A program exported with a fixed batch B
    (no dynamic batch dimension) runs in chunks of B, the last one padded with zeros."""

    def __init__(self, program: torch.export.ExportedProgram) -> None:
        super().__init__()
        self.fixed_batch = static_batch(program)
        self.program = program.module()
        self.training = False  # frozen in eval mode at export time

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fixed_batch is None or x.shape[0] == self.fixed_batch:
            return self.program(x)
        return in_chunks(self.program, x, self.fixed_batch)

    def train(self, mode: bool = True) -> "SourceModel":
        return self


def user_input_values(program: torch.export.ExportedProgram) -> list[Any]:
    """The example values export recorded for the program's user inputs (fake tensors, None where absent), in order."""
    names = set(program.graph_signature.user_inputs)
    return [node.meta.get("val") for node in program.graph.nodes if node.op == "placeholder" and node.name in names]


def static_batch(program: torch.export.ExportedProgram) -> int | None:
    """The batch size a program was exported with when its first input's batch dimension is fixed, else None."""
    values = user_input_values(program)
    shape = getattr(values[0], "shape", None) if values else None
    if shape is not None and len(shape) >= 1 and isinstance(shape[0], int):
        return int(shape[0])
    return None


def in_chunks(module: Any, x: torch.Tensor, batch: int) -> torch.Tensor:
    """module on x (N, ...) in chunks of exactly `batch` samples (the last padded with zeros), outputs (N, ...)
    concatenated; differentiable."""
    outputs = []
    for start in range(0, x.shape[0], batch):
        chunk = x[start:start + batch]
        count = chunk.shape[0]
        if count < batch:
            chunk = torch.cat([chunk, chunk.new_zeros((batch - count, *chunk.shape[1:]))])
        outputs.append(module(chunk)[:count])
    return torch.cat(outputs)


def load_program(path: Path) -> tuple[torch.export.ExportedProgram, dict[str, str]]:
    """An exported program and its extra files (name -> text), read once and checked by evaluator.pt2_safety before
    torch sees it; torch.load is held to weights_only=True while torch reads it."""
    path = Path(path)
    if not path.is_file():
        raise EvaluatorError(f"source file not found: {path}")
    if path.stat().st_size > MAX_ARCHIVE_BYTES:
        raise EvaluatorError(f"{path} is larger than {MAX_ARCHIVE_BYTES >> 30} GiB")
    check_zip_file(str(path))
    try:
        data = path.read_bytes()
    except OSError as error:
        raise EvaluatorError(f"cannot read {path}: {error.strerror or error}") from None
    checked = check_pt2(data, str(path))
    logging.getLogger("torch.export").setLevel(logging.CRITICAL)  # it logs a traceback before raising
    logging.getLogger("torch._export").setLevel(logging.CRITICAL)
    try:
        with weights_only_loads():
            program = torch.export.load(io.BytesIO(checked.data))
    except Exception as error:  # torch raises several types for a corrupt archive
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EvaluatorError(f"{path} is not a torch.export program: {detail[:200]}") from None
    check_embedded_metadata(checked.extra_files, path)
    return program, checked.extra_files


def check_embedded_metadata(extra_files: dict[str, str], path: Path) -> None:
    """The evaluator's metadata inside a .pt2, where there is one: a JSON object whose fields have the right types."""
    text = extra_files.get(PT2_METADATA_FILE)
    if text is None:
        return
    try:
        metadata = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise EvaluatorError(f"{path}: its evaluator metadata is not valid JSON ({error})") from None
    if not isinstance(metadata, dict):
        raise EvaluatorError(f"{path}: its evaluator metadata is not a JSON object")
    check_metadata(metadata, f"{path}:")


@contextmanager
def weights_only_loads() -> Iterator[None]:
    """torch.load with weights_only=True, whatever its caller asks (torch's .pt2 reader asks for False)."""
    original = torch.load

    def load(*args: Any, **kwargs: Any) -> Any:
        return original(*args, **{**kwargs, "weights_only": True})

    torch.load = load  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.load = original  # type: ignore[assignment]


def load_source(path: Path) -> SourceModel:
    """The differentiable source behind a deployed model (see load_program for what is checked first)."""
    apply_to_torch()
    program, _ = load_program(path)
    try:
        model = SourceModel(program)
    except Exception as error:  # unlifting a program torch itself cannot rebuild
        raise EvaluatorError(f"{path} is not a usable torch.export program ({type(error).__name__})") from None
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model
