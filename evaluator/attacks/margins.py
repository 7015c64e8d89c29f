"""The logit margin, in one sign for every attack: the true class's logit minus the largest other logit,
z_y - max_{j != y} z_j (Carlini & Wagner's). Above 0 the sample is correctly classified, below 0 misclassified; at 0,
a tie, argmax may still say y.

`margins` is the numpy form (the score-based attacks), `margin_of` the torch form (the white-box attacks; torch is
imported inside it, so importing this module stays torch-free).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def margins(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z_y - max_{j != y} z_j per sample (N,) of logits (N, K) and labels y (N,); < 0 means misclassified.
    logits is left as it was."""
    rows = np.arange(len(y))
    true = logits[rows, y]
    logits[rows, y] = -np.inf
    margin = true - logits.max(axis=1)
    logits[rows, y] = true
    return margin


def margin_of(logits: Any, y: Any) -> Any:
    """z_y - max_{j != y} z_j per sample (N,) of the torch logits (N, K) and labels y (N,); < 0 means misclassified.
    Differentiable in logits."""
    import torch

    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.clone()
    others.scatter_(1, y[:, None], -torch.inf)
    return true - others.max(1).values
