"""The PyTorch source of a deployed model: a torch.export program (.pt2), loaded without pickle."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from evaluator.errors import EvaluatorError


class SourceModel(nn.Module):
    """An exported program as a differentiable module: x (N, C, H, W) in [0, 1] -> logits (N, classes).

    Exported programs are frozen in eval mode and refuse train()/eval(); this wrapper makes those
    calls no-ops so that libraries which call model.eval() can use it.
    """

    def __init__(self, program: torch.export.ExportedProgram) -> None:
        super().__init__()
        self.program = program.module()
        self.training = False  # frozen in eval mode at export time

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.program(x)

    def train(self, mode: bool = True) -> "SourceModel":
        return self


def load_source(path: Path) -> SourceModel:
    path = Path(path)
    if not path.is_file():
        raise EvaluatorError(f"source file not found: {path}")
    logging.getLogger("torch.export").setLevel(logging.CRITICAL)  # it logs a traceback before raising
    logging.getLogger("torch._export").setLevel(logging.CRITICAL)
    try:
        program = torch.export.load(str(path))
    except Exception as error:  # torch raises several types for a corrupt archive
        raise EvaluatorError(f"{path} is not a torch.export program ({type(error).__name__})") from None
    model = SourceModel(program)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model
