"""A model trained on a user's .npz records the file relative to itself: it can be pruned and assessed from any
working folder, and moved together with its data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from conftest import ROOT
from evaluator.datasets import dataset_record, recorded_dataset


def test_records_are_relative_to_the_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "models").mkdir()
    (tmp_path / "data" / "set.npz").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert dataset_record("data/set.npz", tmp_path / "models") == "../data/set.npz"
    assert dataset_record("fashion-mnist", tmp_path / "models") == "fashion-mnist"
    assert recorded_dataset("../data/set.npz", tmp_path / "models" / "m.onnx") == str(tmp_path / "data" / "set.npz")
    assert recorded_dataset("fashion-mnist", tmp_path / "models" / "m.onnx") == "fashion-mnist"


def evaluator(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "evaluator", *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True)


@pytest.mark.train
def test_train_on_an_npz_then_prune_and_assess_from_elsewhere(tmp_path: Path) -> None:
    from evaluator.datasets import load_dataset

    fmnist = load_dataset("fashion-mnist")
    assert fmnist.train is not None
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    (work / "data").mkdir(parents=True)
    elsewhere.mkdir()
    np.savez(work / "data" / "small.npz", x_train=(fmnist.train.x[:700] * 255).astype(np.uint8)[:, 0],
             y_train=fmnist.train.y[:700], x_test=(fmnist.test.x[:200] * 255).astype(np.uint8)[:, 0], y_test=fmnist.test.y[:200])
    trained = evaluator("train", "lenet5", "--dataset", "data/small.npz", "--out", "models", "--epochs", "1",
                        "--validation-size", "100", "--width", "0.5", "--threads", "1", cwd=work)
    assert trained.returncode == 0, trained.stderr
    model = work / "models" / "lenet5_small.onnx"
    metadata = json.loads(next(p.value for p in onnx.load(str(model)).metadata_props if p.key == "evaluator"))
    assert metadata["dataset"] == "../data/small.npz"
    pruned = evaluator("prune", model.with_suffix(".pt2"), "--method", "filter-l1", "--rate", "2", "--finetune-epochs", "0",
                       "--threads", "1", cwd=elsewhere)
    assert pruned.returncode == 0, pruned.stderr
    shutil.move(str(work), str(tmp_path / "moved"))  # the models and their data move together
    assessed = evaluator("assess", tmp_path / "moved" / "models" / "lenet5_small_filter-l1_cr2.onnx", "--samples", "20",
                         "--attacks", "square-linf:queries=10", "--no-latency", "--json", "out.json", cwd=elsewhere)
    assert assessed.returncode == 0, assessed.stderr
    assert json.loads((elsewhere / "out.json").read_text())["models"][0]["clean_samples"] == 200
