from __future__ import annotations

import pytest
import torch

from evaluator.errors import EvaluatorError
from evaluator.catalogue import ARCHITECTURES
from exporters.architectures import BUILDERS, ArchSpec, build_model, final_classifier, reshape_to_state
from exporters.pruning.census import prunable_layers, take_census
from exporters.pruning.engine import Target, prune_to_target
from exporters.pruning.options import PruneOptions
from evaluator.catalogue import get_method


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_lenet5_has_the_studys_parameter_count() -> None:
    assert count_params(build_model(ArchSpec("lenet5"))) == 61706


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32)])
def test_every_architecture_fits_both_input_formats(name: str, channels: int, size: int) -> None:
    spec = ArchSpec(name, channels, size, 7, 0.25, (0.5,) * channels, (0.5,) * channels)
    model = build_model(spec).eval()
    assert model(torch.rand(3, channels, size, size)).shape == (3, 7)
    assert final_classifier(model).out_features == 7


def test_width_multiplier_scales_the_model() -> None:
    assert count_params(build_model(ArchSpec("vgg11", width=0.25))) < count_params(build_model(ArchSpec("vgg11"))) / 10


def test_the_train_command_offers_every_architecture() -> None:
    from evaluator.app.options import Architecture

    assert [choice.value for choice in Architecture] == list(ARCHITECTURES) == list(BUILDERS)


def test_bad_specs_are_user_errors() -> None:
    with pytest.raises(EvaluatorError, match="unknown architecture"):
        build_model(ArchSpec("alexnet"))
    with pytest.raises(EvaluatorError, match="28 or 32"):
        build_model(ArchSpec("lenet5", image_size=64))


@pytest.mark.train
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_pruned_weights_load_into_a_rebuilt_model(name: str) -> None:
    torch.manual_seed(0)
    spec = ArchSpec(name, width=1.0 if name == "lenet5" else 0.25)
    model = build_model(spec).eval()
    method, example = get_method("filter-l1"), torch.rand(1, 1, 28, 28)
    root = take_census(model, prunable_layers(model, "filter", False), example)
    options = PruneOptions(method, "local", example, (example, torch.zeros(1, dtype=torch.long)))
    pruned, _ = prune_to_target(model, Target(4), root, options)
    state = pruned.state_dict()
    rebuilt = reshape_to_state(build_model(spec), state)
    rebuilt.load_state_dict(state)
    x = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(rebuilt.eval()(x), pruned(x))


@pytest.mark.train
def test_exported_artifacts_carry_no_source_paths() -> None:
    """torch.export and torch.onnx.export record stack traces with this checkout's absolute paths; the artifacts keep
    none, so the same model is the same file wherever it is built."""
    import io
    from pathlib import Path

    from exporters.artifacts import export_program, to_onnx

    root = str(Path(__file__).resolve().parents[1]).encode()
    model = build_model(ArchSpec("lenet5")).eval()
    example = torch.zeros(2, 1, 28, 28)
    program = export_program(model, example)
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    proto = to_onnx(program, example)
    assert root not in buffer.getvalue() and root not in proto.SerializeToString()
    assert any(prop.key == "namespace" for prop in proto.graph.node[0].metadata_props)  # the path-free metadata stays
