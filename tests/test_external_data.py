"""A model saved with external data (the default of today's torch.onnx.export for large models): its size, gzip size
and sha256 cover the .onnx and the data file, and it assesses like the same model in one file."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import onnx
import pytest
from typer.testing import CliRunner

from conftest import ZOO_CHILD
from evaluator.app.cli import app
from evaluator.errors import EvaluatorError
from evaluator.profile import external_data_files, profile_model


def save_external(model_path: Path, folder: Path, location: str = "weights.bin") -> Path:
    model = onnx.load(str(model_path))
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / model_path.name), save_as_external_data=True, location=location, size_threshold=0)
    return folder / model_path.name


def test_size_and_sha256_cover_the_data_file(tmp_path: Path) -> None:
    external = save_external(ZOO_CHILD, tmp_path / "ext")
    data = tmp_path / "ext" / "weights.bin"
    profile = profile_model(external, onnx.load(str(external)))
    whole = external.read_bytes() + data.read_bytes()
    assert profile.external_data == ("weights.bin",)
    assert profile.size_bytes == len(whole) and profile.sha256 == hashlib.sha256(whole).hexdigest()
    assert profile.gzip_bytes == len(gzip.compress(whole, 9))
    one_file = profile_model(ZOO_CHILD, onnx.load(str(ZOO_CHILD)))
    assert one_file.external_data == () and one_file.size_bytes == ZOO_CHILD.stat().st_size
    assert profile.size_bytes > one_file.size_bytes * 0.95 and external.stat().st_size < one_file.size_bytes / 2
    assert (profile.params, profile.macs) == (one_file.params, one_file.macs)


def test_a_missing_or_escaping_data_file_is_one_line(tmp_path: Path) -> None:
    external = save_external(ZOO_CHILD, tmp_path / "ext")
    (tmp_path / "ext" / "weights.bin").rename(tmp_path / "elsewhere.bin")
    with pytest.raises(EvaluatorError, match="needs its external data file weights.bin, which is not beside it"):
        external_data_files(external)
    result = CliRunner().invoke(app, ["assess", str(external), "--samples", "5", "--no-latency"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1


def test_assess_reports_the_whole_model(tmp_path: Path) -> None:
    external = save_external(ZOO_CHILD, tmp_path / "ext")
    report = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["assess", str(external), "--samples", "20", "--attacks", "square-linf:queries=10",
                                      "--no-latency", "--json", str(report)])
    assert result.exit_code == 0, result.output
    model = json.loads(report.read_text())["models"][0]
    assert model["external_data"] == ["weights.bin"]
    assert model["size_bytes"] == external.stat().st_size + (tmp_path / "ext" / "weights.bin").stat().st_size
    assert model["clean_accuracy"] == pytest.approx(0.8922)


def test_a_data_location_outside_the_models_folder_is_refused(tmp_path: Path) -> None:
    """A hostile .onnx naming ../secret.bin as its external data: refused, never read into the size or hash."""
    external = save_external(ZOO_CHILD, tmp_path / "ext")
    (tmp_path / "ext" / "weights.bin").rename(tmp_path / "secret.bin")
    stub = onnx.load(str(external), load_external_data=False)
    for tensor in stub.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../secret.bin"
    onnx.save(stub, str(external))
    with pytest.raises(EvaluatorError, match="outside its folder"):
        external_data_files(external)
    result = CliRunner().invoke(app, ["assess", str(external), "--dataset", "fashion-mnist", "--samples", "5", "--no-latency"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
