"""Where torch computes: the white-box attacks' forward and backward passes, the transfer surrogate, training and
pruning's fine-tuning. `auto` is CUDA when torch sees a GPU, else the CPU. Imports torch: import it where torch is
needed anyway.

The attacks keep their state (points, steps, random draws from a CPU generator) on the CPU and move only the model's
work to the device (OnDevice): the same seed draws the same numbers on either device, so results agree within float
tolerance. Training moves the model and each batch (train_model); a finished model is handed back on the CPU.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from evaluator.errors import EvaluatorError

TORCH_DEVICES = ("auto", "cpu", "cuda")


def choose_torch_device(name: str) -> torch.device:
    """The torch.device for `name`: auto, cpu, cuda or cuda:N. Asking for CUDA where torch has none is an error."""
    text = str(name).strip().lower()
    kind, _, index = text.partition(":")
    if kind not in TORCH_DEVICES or (index and (kind != "cuda" or not index.isdigit())):
        raise EvaluatorError(f"torch_device must be auto, cpu, cuda or cuda:N, got {name!r}", field="torch_device")
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        build = f"torch {torch.__version__} is a CPU-only build" if torch.version.cuda is None else \
            f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU"
        raise EvaluatorError(f"torch_device {name} requested but {build}", field="torch_device")
    number = int(index or 0)
    if number >= torch.cuda.device_count():
        raise EvaluatorError(f"torch_device {name} requested but torch sees {torch.cuda.device_count()} GPU(s)",
                             field="torch_device")
    return torch.device("cuda", number)


def device_label(device: torch.device) -> str:
    """'cpu', or 'cuda:N (GPU name)' for a CUDA device: what the report records."""
    if device.type != "cuda":
        return str(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def on_device(module: nn.Module, device: torch.device) -> nn.Module:
    """`module` computing on `device`, taking and giving tensors where the caller keeps them; the module itself
    when `device` is the CPU."""
    return module if device.type == "cpu" else OnDevice(module, device)


class OnDevice(nn.Module):
    """x (N, C, H, W) on any device -> logits on x's device; the moves are differentiable, so gradients come back to
    the caller's tensors."""

    def __init__(self, module: nn.Module, device: torch.device) -> None:
        super().__init__()
        self.module = module.to(device)
        self.device = device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.to(self.device)).to(x.device)


_training: torch.device | None = None  # the device of the running train/prune/sweep command (training_device)


@contextmanager
def training_device(name: str) -> Iterator[torch.device]:
    """For work that trains (train, prune, sweep): train_model computes on the chosen device until the block ends."""
    global _training
    device, before = choose_torch_device(name), _training
    _training = device
    try:
        yield device
    finally:
        _training = before


def current_training_device() -> torch.device:
    """The device training runs on: the one training_device chose, else the CPU."""
    return _training if _training is not None else torch.device("cpu")
