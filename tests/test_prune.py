from __future__ import annotations

import onnx
import pytest
import torch

from evaluator.errors import EvaluatorError
from evaluator.profile import profile_model
from exporters.architectures import ArchSpec, build_model
from exporters.prune import count_nonzero, count_params, prune_to_rate

from conftest import ZOO_CHILD, ZOO_PARENT


@pytest.mark.parametrize(("name", "width"), [("lenet5", 1.0), ("resnet8", 0.25), ("vgg11", 0.25)])
@pytest.mark.parametrize("rate", [2, 4, 8])
def test_filter_pruning_reaches_the_rate(name: str, width: float, rate: int) -> None:
    torch.manual_seed(0)
    model = build_model(ArchSpec(name, width=width)).eval()
    before = count_params(model)
    pruned, outcome = prune_to_rate(model, torch.rand(1, 1, 28, 28), "filter-l1", rate)
    assert abs(outcome.achieved_rate / rate - 1) <= 0.05
    assert outcome.achieved_rate == pytest.approx(before / count_nonzero(pruned))
    assert count_params(model) == before, "the parent must be left untouched"
    assert pruned(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_an_unreachable_rate_is_a_clear_error() -> None:
    model = build_model(ArchSpec("lenet5")).eval()
    with pytest.raises(EvaluatorError, match="cannot reach compression rate"):
        prune_to_rate(model, torch.rand(1, 1, 28, 28), "filter-l1", 5000)


def test_unknown_method_is_rejected() -> None:
    with pytest.raises(EvaluatorError, match="unknown pruning method"):
        prune_to_rate(build_model(ArchSpec("lenet5")), torch.rand(1, 1, 28, 28), "magic", 2)


def test_zoo_child_has_at_least_3_5x_fewer_onnx_parameters() -> None:
    parent = profile_model(ZOO_PARENT, onnx.load(str(ZOO_PARENT)))
    child = profile_model(ZOO_CHILD, onnx.load(str(ZOO_CHILD)))
    assert parent.params / child.params >= 3.5
    assert child.macs < parent.macs and child.size_bytes < parent.size_bytes
