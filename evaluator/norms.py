"""The norms of the perturbation budgets, and the distances between inputs the evaluator computes itself (every
candidate of every attack is judged with these). Inputs are (N, C, H, W) arrays.

L0 counts changed pixel positions (a pixel counts once whatever its channels); L1, L2 and Linf run
over all input values.
"""

from __future__ import annotations

from enum import Enum

import numpy as np


class Norm(str, Enum):
    L0 = "L0"
    L1 = "L1"
    L2 = "L2"
    LINF = "Linf"


def distances(x: np.ndarray, x_adv: np.ndarray, norm: Norm) -> np.ndarray:
    """Per-sample distance (N,) float64 between x and x_adv in `norm`."""
    n, channels, pixels = x.shape[0], x.shape[1], int(np.prod(x.shape[2:]))  # explicit sizes: N may be 0
    delta = (x_adv.astype(np.float64) - x.astype(np.float64)).reshape(n, channels, pixels)
    if norm is Norm.L0:
        return (np.abs(delta) > 0).any(axis=1).sum(axis=1).astype(np.float64)
    flat = delta.reshape(n, channels * pixels)
    if norm is Norm.L1:
        return np.abs(flat).sum(axis=1)
    if norm is Norm.L2:
        return np.sqrt((flat**2).sum(axis=1))
    return np.abs(flat).max(axis=1)


def project(x: np.ndarray, x_adv: np.ndarray, norm: Norm, epsilon: float) -> np.ndarray:
    """x_adv moved into the `epsilon` ball around x (L2, Linf) and into [0, 1]; float32 (N, C, H, W)."""
    if norm is Norm.LINF:
        projected = np.clip(x_adv, x - epsilon, x + epsilon)
    elif norm is Norm.L2:
        delta = x_adv - x
        length = np.sqrt((delta.reshape(len(x), -1).astype(np.float64) ** 2).sum(axis=1))
        scale = np.minimum(1.0, epsilon / np.maximum(length, 1e-12)).astype(np.float32)
        projected = x + delta * scale.reshape(-1, 1, 1, 1)
    else:
        projected = x_adv  # L0 and L1 budgets are checked, not projected
    return np.clip(projected, 0.0, 1.0).astype(np.float32)
