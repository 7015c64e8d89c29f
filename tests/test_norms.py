"""The norms and the margin sign: the numpy side (evaluator.norms, evaluator.attacks.margins.margins) and the torch
side (evaluator.attacks.torch_norms, margin_of) agree with each other and with their contracts."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator.attacks.margins import margins
from evaluator.norms import Norm, distances, steepest_direction


def test_the_norm_values_are_the_names_users_write() -> None:
    assert [norm.value for norm in Norm] == ["L0", "L1", "L2", "Linf"] and Norm("Linf") is Norm.LINF


def test_dual_norms() -> None:
    assert (Norm.L1.dual, Norm.L2.dual, Norm.LINF.dual) == (Norm.LINF, Norm.L2, Norm.L1)
    with pytest.raises(ValueError):
        Norm.L0.dual


def test_numpy_steepest_direction_has_unit_length_and_ascends() -> None:
    grad = np.random.default_rng(0).standard_normal((4, 3, 5, 5))
    grad[3] = 0
    for norm in (Norm.L2, Norm.LINF):
        step = steepest_direction(grad, norm)
        assert step.shape == grad.shape
        np.testing.assert_allclose(distances(np.zeros_like(grad[:3]), step[:3], norm), 1.0)
        assert ((grad[:3] * step[:3]).sum(axis=(1, 2, 3)) > 0).all() and not step[3].any()
    with pytest.raises(ValueError):
        steepest_direction(grad, Norm.L1)


def test_margins_are_positive_when_correct_and_the_torch_twin_agrees() -> None:
    torch = pytest.importorskip("torch")
    from evaluator.attacks.margins import margin_of

    logits = np.float32([[3, 1, 0], [1, 2, 0], [0, 5, 5]])
    y = np.array([0, 0, 1])
    before = logits.copy()
    assert margins(logits, y).tolist() == [2, -1, 0] and np.array_equal(logits, before)
    assert margin_of(torch.from_numpy(logits), torch.from_numpy(y)).tolist() == [2, -1, 0]


def test_torch_lengths_are_the_evaluators_distances() -> None:
    torch = pytest.importorskip("torch")
    from evaluator.attacks.torch_norms import dual_lengths, lengths, steepest_direction as torch_steepest

    generator = torch.Generator().manual_seed(0)
    delta = torch.randn(5, 3, 4, 4, generator=generator) * (torch.rand(5, 3, 4, 4, generator=generator) > 0.5)
    zero = np.zeros(delta.shape, np.float32)
    for norm in Norm:
        np.testing.assert_allclose(lengths(delta, norm).numpy(), distances(zero, delta.numpy(), norm), rtol=1e-5)
    for norm in (Norm.L1, Norm.L2, Norm.LINF):
        np.testing.assert_allclose(dual_lengths(delta, norm).numpy(), distances(zero, delta.numpy(), norm.dual), rtol=1e-5)
        step = torch_steepest(delta, norm)
        np.testing.assert_allclose(lengths(step, norm).numpy(), 1.0, rtol=1e-5)
        assert ((delta * step).flatten(1).sum(1) > 0).all()
