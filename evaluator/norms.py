"""The norms of the perturbation budgets, and what the evaluator and the black-box attacks compute with them in
numpy: distances between inputs (every candidate of every attack is judged with these), the projection onto a
budget and the steepest-ascent step. Inputs are (N, C, H, W) arrays. The white-box attacks' torch twin is
evaluator.attacks.torch_norms; this module never imports torch.

L0 counts changed pixel positions (a pixel counts once whatever its channels); L1, L2 and Linf run
over all input values.
"""

from __future__ import annotations

from enum import Enum

import numpy as np


class Norm(str, Enum):
    """A budget's norm; the value is its name in JSON and on the command line."""

    L0 = "L0"
    L1 = "L1"
    L2 = "L2"
    LINF = "Linf"

    @property
    def dual(self) -> Norm:
        """The dual norm (L1 and Linf are each other's, L2 its own): |<g, d>| <= ||g||_dual x ||d||, so |margin| /
        ||grad||_dual is the linearised distance to the boundary. L0 is not a norm and has none (ValueError)."""
        if self is Norm.L0:
            raise ValueError("L0 has no dual norm")
        return {Norm.L1: Norm.LINF, Norm.L2: Norm.L2, Norm.LINF: Norm.L1}[self]


NORM_NAMES: tuple[str, ...] = tuple(norm.value for norm in Norm)  # "L0", "L1", "L2", "Linf": the order tables list them in
NORM_ORDER: dict[str, int] = {name: index for index, name in enumerate(NORM_NAMES)}


def distances(x: np.ndarray, x_adv: np.ndarray, norm: Norm) -> np.ndarray:
    """Per-sample distance (N,) float64 between x and x_adv (N, C, H, W) in `norm`."""
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
    """x_adv (N, C, H, W) moved into the `epsilon` ball around x (L2, Linf) and into [0, 1]; float32 (N, C, H, W)."""
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


def steepest_direction(grad: np.ndarray, norm: Norm) -> np.ndarray:
    """The steepest-ascent step of unit length per row of grad (N, ...), same shape and dtype: sign(grad) in Linf,
    grad / (||grad||_2 + 1e-12) in L2 (0 where grad is 0)."""
    if norm is Norm.LINF:
        return np.sign(grad)
    if norm is not Norm.L2:
        raise ValueError(f"no steepest direction in {norm.value} here")
    flat = grad.reshape(len(grad), int(np.prod(grad.shape[1:])))  # explicit sizes: N may be 0
    length = np.sqrt((flat**2).sum(axis=1)).reshape(-1, *[1] * (grad.ndim - 1))
    return grad / (length + 1e-12)
