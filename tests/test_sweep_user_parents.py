"""`evaluator sweep` on parents the evaluator did not write: a plain torch.export .pt2 alone (no metadata, no .onnx
or .json beside it) is exported into the results, and a parent whose .onnx keeps its weights as external data is
copied with them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
import torch
from typer.testing import CliRunner

from conftest import ZOO_PARENT
from evaluator.app.cli import app
from exporters.artifacts import load_trainable

QUICK = ["--samples", "30", "--attacks", "pgd-linf:steps=3", "--eps", "8/255", "--no-latency", "--threads", "1"]


@pytest.mark.train
def test_a_plain_torch_export_program_is_swept(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    model, _, _ = load_trainable(ZOO_PARENT.with_suffix(".pt2"))
    user = tmp_path / "user" / "my_lenet.pt2"
    user.parent.mkdir()
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.export.save(torch.export.export(model.eval(), (torch.zeros(2, 1, 28, 28),), dynamic_shapes=({0: batch},)), str(user))
    out = tmp_path / "results"
    result = CliRunner().invoke(app, ["sweep", "--source", str(user), "--dataset", "fashion-mnist", "--methods", "filter-l1",
                                      "--rates", "1,2", "--finetune-epochs", "0", "--out", str(out), *QUICK])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in user.parent.iterdir()) == ["my_lenet.pt2"]  # nothing written beside the user's file
    card = json.loads((out / "models" / "my_lenet.json").read_text())
    assert card["imported_from"] == str(user) and card["metadata"]["architecture"]["name"] == "exported"
    rows = json.loads((out / "table.json").read_text())["rows"]
    assert [(row["method"], row["target_rate"]) for row in rows] == [("none", 1.0), ("filter-l1", 2.0)]
    parent = rows[0]
    assert parent["clean_accuracy"] == json.loads(ZOO_PARENT.with_suffix(".json").read_text())["test_accuracy"]
    rerun = CliRunner().invoke(app, ["sweep", "--source", str(user), "--dataset", "fashion-mnist", "--methods", "filter-l1",
                                     "--rates", "1,2", "--finetune-epochs", "0", "--out", str(out), *QUICK])
    assert rerun.exit_code == 0 and "parent my_lenet: cached" in rerun.output, rerun.output


def test_a_parent_with_external_data_is_copied_with_it(tmp_path: Path) -> None:
    folder = tmp_path / "parent"
    folder.mkdir()
    for suffix in (".pt2", ".json"):
        shutil.copyfile(ZOO_PARENT.with_suffix(suffix), folder / ZOO_PARENT.with_suffix(suffix).name)
    onnx_path = folder / ZOO_PARENT.name
    (folder / "weights").mkdir()
    onnx.save(onnx.load(str(ZOO_PARENT)), str(onnx_path), save_as_external_data=True, location="weights/lenet.bin",
              size_threshold=0)
    out = tmp_path / "results"
    result = CliRunner().invoke(app, ["sweep", "--source", str(onnx_path.with_suffix(".pt2")), "--dataset", "fashion-mnist",
                                      "--methods", "filter-l1", "--rates", "1", "--out", str(out), *QUICK])
    assert result.exit_code == 0, result.output
    copied = out / "models" / "weights" / "lenet.bin"
    assert copied.read_bytes() == (folder / "weights" / "lenet.bin").read_bytes()
    report = json.loads((out / "assessments" / f"{ZOO_PARENT.stem}.json").read_text())["models"][0]
    assert report["external_data"] == ["weights/lenet.bin"]
    assert report["size_bytes"] == onnx_path.stat().st_size + copied.stat().st_size


def test_the_dataset_comes_from_the_parents_metadata_or_must_be_given(tiny_model: Path, small_npz: Path, tmp_path: Path) -> None:
    """Without --dataset a sweep uses the data the parent .pt2's metadata names (an .npz, found relative to the .pt2,
    not Fashion-MNIST); a plain .pt2 names none: one line, exit 2, nothing written."""
    from evaluator.app.sweep_config import make_config

    config = make_config({"source": str(tiny_model.with_suffix(".pt2")), "rates": "1", "methods": "filter-l1"}).resolved()
    assert config.dataset is not None and Path(config.dataset).resolve() == small_npz.resolve()
    out = tmp_path / "results"
    result = CliRunner().invoke(app, ["sweep", "--source", str(tiny_model.with_suffix(".pt2")), "--methods", "filter-l1",
                                      "--rates", "1", "--out", str(out), *QUICK])
    assert result.exit_code == 0, result.output
    row = json.loads((out / "table.json").read_text())["rows"][0]
    assert row["attacked_samples"] == 30 and Path(json.loads((out / "sweep.json").read_text())["config"]["dataset"]).name == "fmnist_small.npz"
    model, _, _ = load_trainable(ZOO_PARENT.with_suffix(".pt2"))
    plain = tmp_path / "plain.pt2"
    torch.export.save(torch.export.export(model.eval(), (torch.zeros(2, 1, 28, 28),),
                                          dynamic_shapes=({0: torch.export.Dim("batch")},)), str(plain))
    refused = tmp_path / "refused"
    result = CliRunner().invoke(app, ["sweep", "--source", str(plain), "--out", str(refused), *QUICK])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "--dataset must be given: " in result.output and not refused.exists()
