"""The norms in torch, for the white-box attacks: lengths, dual lengths, steepest-ascent directions and projections
onto balls, per sample of a batch. The numpy twin is evaluator.norms. torch is imported inside the functions, so
importing this module (and evaluator.attacks) stays torch-free.

Tensors are (N, C, H, W) batches of perturbations or gradients unless said otherwise; L0 counts pixel positions
with any channel changed.
"""

from __future__ import annotations

from typing import Any

from evaluator.norms import Norm

L1_SHARE = 0.01  # the L1 step moves this share of the input values (the largest gradient entries)


def lengths(delta: Any, norm: Norm) -> Any:
    """Per-sample length (N,) of delta in `norm`."""
    if norm is Norm.L0:
        return (delta != 0).any(dim=1).flatten(1).sum(dim=1).to(delta.dtype)
    flat = delta.flatten(1)
    if norm is Norm.L1:
        return flat.abs().sum(dim=1)
    if norm is Norm.L2:
        return flat.norm(dim=1)
    return flat.abs().amax(dim=1)


def dual_lengths(grad: Any, norm: Norm) -> Any:
    """Per-sample length (N,) of grad in the dual of `norm` (L1, L2, Linf): |margin| / dual length is the linearised
    distance in `norm` to the boundary."""
    return lengths(grad, norm.dual)


def steepest_direction(grad: Any, norm: Norm) -> Any:
    """The step (N, C, H, W) of steepest ascent along grad, of unit length in `norm` (L1, L2, Linf).

    Linf: sign(grad); L2: grad / ||grad||_2 (0 where grad is 0). L1's steepest direction is a single coordinate;
    like SLIDE (Tramer & Boneh 2019) the step spreads evenly over the largest L1_SHARE of the entries instead.
    """
    import torch

    if norm is Norm.LINF:
        return grad.sign()
    if norm is Norm.L2:
        return grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    if norm is not Norm.L1:
        raise ValueError(f"no steepest direction in {norm.value}")
    flat = grad.flatten(1)
    count = max(1, int(L1_SHARE * flat.shape[1]))
    threshold = flat.abs().topk(count, dim=1).values[:, -1:]
    chosen = (flat.abs() >= threshold) & (flat != 0)
    direction = torch.where(chosen, flat.sign(), torch.zeros_like(flat))
    return (direction / chosen.sum(dim=1, keepdim=True).clamp_min(1)).view_as(grad)


def project_l1(delta: Any, radius: Any) -> Any:
    """Euclidean projection of delta onto the L1 balls of radii radius (N,) (Duchi et al. 2008)."""
    import torch

    flat = delta.flatten(1)
    size = flat.abs()
    inside = size.sum(dim=1) <= radius
    sorted_size = size.sort(dim=1, descending=True).values
    cumulative = sorted_size.cumsum(dim=1)
    ranks = torch.arange(1, flat.shape[1] + 1, dtype=flat.dtype)
    support = (sorted_size * ranks > cumulative - radius[:, None]).sum(dim=1).clamp_min(1)
    threshold = ((cumulative.gather(1, (support - 1)[:, None]).squeeze(1) - radius) / support).clamp_min(0)
    projected = flat.sign() * (size - threshold[:, None]).clamp_min(0)
    return torch.where(inside[:, None], flat, projected).view_as(delta)


def keep_largest_pixels(delta: Any, count: Any) -> Any:
    """delta with all but the `count` (N,) pixel positions of largest change (max over channels) reset: its
    projection onto the L0 balls of radii count."""
    size = delta.abs().amax(dim=1).flatten(1)
    rank = size.argsort(dim=1, descending=True, stable=True).argsort(dim=1)
    keep = (rank < count[:, None]) & (size > 0)
    return delta * keep.view(len(delta), 1, *delta.shape[2:])


def project(delta: Any, radius: Any, norm: Norm) -> Any:
    """delta projected onto the `norm` balls (around 0) of radii radius (N,); L0 keeps the largest pixel changes."""
    import torch

    radii = radius.view(-1, 1, 1, 1)
    if norm is Norm.LINF:
        return torch.max(torch.min(delta, radii), -radii)
    if norm is Norm.L2:
        length = delta.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        return delta * (radii / length).clamp(max=1)
    if norm is Norm.L1:
        return project_l1(delta, radius)
    return keep_largest_pixels(delta, radius)


def project_to_ball(candidate: Any, x: Any, epsilon: float, norm: Norm) -> Any:
    """candidate moved into the `norm` ball (L2, Linf) of radius epsilon around x, then into [0, 1].

    Clipping to [0, 1] after the ball cannot leave the ball: x is inside [0, 1], so clipping only moves
    coordinates towards x.
    """
    import torch

    if norm is Norm.LINF:
        candidate = torch.min(torch.max(candidate, x - epsilon), x + epsilon)
    elif norm is Norm.L2:
        delta = candidate - x
        length = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
        candidate = x + delta * (epsilon / length).clamp(max=1.0).view(-1, 1, 1, 1)
    else:
        raise ValueError(f"no projection onto a {norm.value} ball here")
    return candidate.clamp(0, 1)
