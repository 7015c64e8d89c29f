"""One thread count for torch and ONNX Runtime: the user's, else the free cores."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evaluator import threads as threads_module
from evaluator.errors import EvaluatorError
from evaluator.threads import apply_to_torch, assessment_threads, available_cores, choose_threads, default_threads


@pytest.mark.parametrize("cores, load, expected", [(2, 0.0, 2), (2, 0.4, 2), (2, 1.6, 1), (2, 7.0, 1), (16, 3.2, 13)])
def test_the_default_leaves_out_the_busy_cores(cores: int, load: float, expected: int) -> None:
    choice = default_threads(cores, load)
    assert choice.threads == expected and f"{cores} cores available" in choice.reason


def test_a_container_quota_caps_the_cores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limit = tmp_path / "cpu.max"
    monkeypatch.setattr(threads_module, "CGROUP_V2_LIMIT", limit)
    monkeypatch.setattr(threads_module.os, "sched_getaffinity", lambda pid: set(range(8)))
    limit.write_text("150000 100000\n")
    assert available_cores() == 1
    limit.write_text("max 100000\n")
    assert available_cores() == 8


@pytest.mark.parametrize("value", [0, -1, 1025, True])
def test_bad_thread_counts_are_refused(value: int) -> None:
    with pytest.raises(EvaluatorError, match="^threads must be a whole number from 1 to 1024"):
        choose_threads(value)


def test_the_choice_governs_torch_during_the_assessment_only() -> None:
    before = torch.get_num_threads()
    with assessment_threads(1) as choice:
        assert choice.threads == 1 and torch.get_num_threads() == 1
        apply_to_torch()  # as a source model's loading does
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before  # training afterwards in the same process keeps its own count
    apply_to_torch()
    assert torch.get_num_threads() == before


def test_training_threads_hold_for_the_block_and_are_given_back() -> None:
    from evaluator.threads import training_threads

    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    with training_threads(wanted) as choice:
        assert choice.threads == wanted and torch.get_num_threads() == wanted
        with assessment_threads(1):  # a sweep's assessment inside
            apply_to_torch()
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == wanted
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("command", [["train", "lenet5"], ["prune", "models/lenet5_fmnist.pt2"], ["sweep"]])
def test_every_command_that_trains_refuses_a_bad_thread_count(command: list[str], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from evaluator.app.cli import app

    result = CliRunner().invoke(app, [*command, "--threads", "0", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "--threads must be a whole number from 1 to" in result.output
    assert not (tmp_path / "out").exists()


def test_a_sweep_takes_threads_from_its_file_and_keeps_them_out_of_its_cache_keys(tmp_path: Path) -> None:
    from dataclasses import replace

    from conftest import ZOO_PARENT
    from evaluator.app.sweep_config import make_config
    from evaluator.app.sweep_run import assessment_key

    config = make_config({"threads": 1})
    assert config.threads == 1 and config.assess_config().threads == 1
    assert assessment_key(config.assess_config(), ZOO_PARENT) == assessment_key(replace(config, threads=2).assess_config(), ZOO_PARENT)
    with pytest.raises(EvaluatorError, match="threads = 'two' is not a valid whole number"):
        make_config({"threads": "two"})
