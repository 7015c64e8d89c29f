"""A corpus of bad inputs, one or more per class: each is one line on stderr, exit 2, no traceback, nothing written.

Classes: usage mistakes, names and paths that would escape the output folder, metadata that lies about its types
or points outside its folder, broken .pt2 metadata, numbers out of range. Crafted archives that would run code are
in test_pt2_safety.py, header bombs in test_datasets_idx.py, test_datasets_npz.py and test_runtime.py, sweeps in
test_sweep_resilience.py.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
from pathlib import Path
from typing import Callable

import onnx
import pytest
from typer.testing import CliRunner

from evaluator.app.cli import app
from tests.conftest import ROOT, ZOO_CHILD, ZOO_PARENT

runner = CliRunner()
FAST_ASSESS = ("--samples", "10", "--no-latency", "--attacks", "square-linf:queries=5")


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*")}


def zoo_copy(folder: Path, stem: str = "lenet5_fmnist") -> Path:
    """The zoo parent's .onnx, .pt2 and .json copied into `folder`; returns the .onnx."""
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".onnx", ".pt2", ".json"):
        shutil.copyfile(ZOO_PARENT.with_suffix(suffix), folder / f"{stem}{suffix}")
    return folder / f"{stem}.onnx"


def with_metadata(onnx_path: Path, change: Callable[[dict], None]) -> Path:
    model = onnx.load(str(onnx_path))
    for prop in model.metadata_props:
        if prop.key == "evaluator":
            data = json.loads(prop.value)
            change(data)
            prop.value = json.dumps(data)
    onnx.save(model, str(onnx_path))
    return onnx_path


def with_pt2_metadata(pt2: Path, text: str) -> Path:
    with zipfile.ZipFile(pt2) as archive:
        entries = {info.filename: archive.read(info) for info in archive.infolist()}
    entries["archive/extra/evaluator.json"] = text.encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, payload in entries.items():
            archive.writestr(name, payload)
    pt2.write_bytes(buffer.getvalue())
    return pt2


def zoo_metadata_with(**changes: object) -> str:
    metadata = json.loads(ZOO_CHILD.with_suffix(".json").read_text())["metadata"]
    metadata.pop("source")
    return json.dumps({**metadata, **changes})


def assert_refused(args: list[str], folder: Path, *words: str) -> str:
    """Exit 2, one line (after any progress lines: '[k/N] ...' without a terminal), no traceback, and no file added
    under `folder`."""
    before = files_under(folder)
    result = runner.invoke(app, args)
    lines = [line for line in result.output.splitlines() if line.strip() and not re.match(r"\[\d+/\d+\] ", line)]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert files_under(folder) == before, sorted(map(str, files_under(folder) - before))
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("args, words", [
    (["assess", "--bogus"], ("No such option", "--help")),
    (["assess"], ("Missing argument",)),
    (["assess", str(ZOO_PARENT), "--samples", "many"], ("--samples",)),
    (["frobnicate"], ("No such command",)),
    (["prune", "--rate"], ("requires an argument",)),
    (["train"], ("Missing argument",)),
])
def test_usage_mistakes_are_one_line(tmp_path: Path, args: list[str], words: tuple[str, ...]) -> None:
    assert_refused(args, tmp_path, *words)


@pytest.mark.parametrize("name", ["../escaped", "sub/name", "..", "", "/abs/name", "a\\b"])
def test_names_that_would_leave_the_output_folder(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(["train", "lenet5", "--out", str(out), "--name", name, "--epochs", "1"], tmp_path, "--name")
    pt2 = zoo_copy(tmp_path / "zoo").with_suffix(".pt2")
    assert_refused(["prune", str(pt2), "--out", str(out), "--name", name, "--finetune-epochs", "0"], tmp_path, "--name")


@pytest.mark.parametrize("source_file", ["../lenet5_fmnist.pt2", "/etc/passwd", "sub/lenet5_fmnist.pt2"])
def test_a_source_named_outside_the_model_folder_is_not_followed(tmp_path: Path, source_file: str) -> None:
    outside = zoo_copy(tmp_path)  # a real .pt2 one folder up: following the name would find it
    model = zoo_copy(tmp_path / "model")
    with_metadata(model, lambda data: data["source"].update(file=source_file))
    assert outside.with_suffix(".pt2").is_file()
    assert_refused(["assess", str(model), *FAST_ASSESS, "--attacks", "pgd-linf"], tmp_path, "plain file name")


def test_a_link_out_of_the_model_folder_is_not_followed(tmp_path: Path) -> None:
    outside = zoo_copy(tmp_path / "elsewhere")
    model = zoo_copy(tmp_path / "model")
    model.with_suffix(".pt2").unlink()
    model.with_suffix(".pt2").symlink_to(outside.with_suffix(".pt2"))
    assert_refused(["assess", str(model), *FAST_ASSESS, "--attacks", "pgd-linf"], tmp_path, "outside its folder")


def test_a_source_with_another_sha256_is_refused_before_it_is_loaded(tmp_path: Path) -> None:
    model = zoo_copy(tmp_path / "model")
    with_metadata(model, lambda data: data["source"].update(sha256="0" * 64))
    assert_refused(["assess", str(model), *FAST_ASSESS, "--attacks", "pgd-linf"], tmp_path, "sha256")


@pytest.mark.parametrize("change, words", [
    (lambda d: d.update(classes="ten"), ("classes",)),
    (lambda d: d.update(architecture=[1, 2]), ("architecture",)),
    (lambda d: d["architecture"].update(width="wide"), ("architecture.width",)),
    (lambda d: d.update(pruning={"method": 3, "achieved_rate": 2.0}), ("pruning.method",)),
    (lambda d: d.update(source={"file": 7}), ("source.file",)),
    (lambda d: d.update(parent="lenet5.onnx"), ("parent",)),
    (lambda d: d.update(dataset=["fashion-mnist"]), ("dataset",)),
])
def test_onnx_metadata_with_wrong_types(tmp_path: Path, change: Callable[[dict], None], words: tuple[str, ...]) -> None:
    model = with_metadata(zoo_copy(tmp_path / "model"), change)
    assert_refused(["assess", str(model), *FAST_ASSESS], tmp_path, "metadata is malformed", *words)


@pytest.mark.parametrize("text, words", [
    ("{not json", ("not valid JSON",)),
    ("[1, 2]", ("not a JSON object",)),
    (json.dumps({"dataset": "fashion-mnist"}), ("lacks the architecture",)),
    (zoo_metadata_with(architecture=["lenet5"]), ("architecture",)),
    (zoo_metadata_with(architecture={"name": "lenet5", "width": "x"}), ("architecture.width",)),
    (zoo_metadata_with(architecture={"name": "resnet8"}), ("do not fit",)),
    (zoo_metadata_with(architecture={"name": "lenet5", "image_size": 64}), ("28 or 32 px",)),
    (zoo_metadata_with(architecture={"name": "lenet5", "width": 1e9}), ("width",)),
    (zoo_metadata_with(pruning={"method": "filter-l1", "achieved_rate": 2, "root": "all"}), ("pruning.root",)),
])
def test_pt2_metadata_that_is_broken(tmp_path: Path, text: str, words: tuple[str, ...]) -> None:
    pt2 = with_pt2_metadata(zoo_copy(tmp_path / "zoo").with_suffix(".pt2"), text)
    out = tmp_path / "out"
    assert_refused(["prune", str(pt2), "--rate", "2", "--finetune-epochs", "0", "--out", str(out)], tmp_path, *words)


@pytest.mark.parametrize("text", ["{not json", "[1]", zoo_metadata_with(classes=3)])
def test_a_source_whose_embedded_metadata_is_broken_is_refused_by_assess(tmp_path: Path, text: str) -> None:
    pt2 = with_pt2_metadata(zoo_copy(tmp_path / "zoo").with_suffix(".pt2"), text)
    assert_refused(["assess", str(ZOO_PARENT), *FAST_ASSESS, "--attacks", "pgd-linf", "--source", str(pt2)], tmp_path,
                   str(pt2))


@pytest.mark.parametrize("args, words", [
    (["train", "lenet5", "--seed", "-1"], ("--seed",)),
    (["train", "lenet5", "--patience", "-1"], ("--patience",)),
    (["train", "lenet5", "--width", "0"], ("--width",)),
    (["train", "lenet5", "--out", str(ROOT / "README.md")], ("is a file",)),
    (["train", "lenet5", "--out", str(ROOT / "README.md" / "sub")], ("is a file",)),
    (["prune", str(ROOT / "models" / "lenet5_fmnist.pt2"), "--seed", "-3"], ("--seed",)),
    (["assess", str(ZOO_PARENT), *FAST_ASSESS, "--seed", "-1"], ("--seed",)),
    (["assess", str(ZOO_PARENT), *FAST_ASSESS, "--json", str(ROOT / "README.md" / "r.json")], ("a parent of it is a file",)),
    (["train", "lenet5", "--epochs", "1000000000000", "--patience", "1000000000000"], ("epochs must be at most 10,000",)),
    (["assess", str(ZOO_PARENT), *FAST_ASSESS, "--eps", ",".join(f"{index}/2000" for index in range(1, 1002))],
     ("1,001 Linf epsilons: at most 1,000 budgets per norm",)),
    (["assess", str(ZOO_PARENT), *FAST_ASSESS, "--attacks", "square-linf:queries=1000000000000"],
     ("queries must be at most 1,000,000",)),
    (["assess", str(ZOO_PARENT), *FAST_ASSESS, "--data-dir", str(ROOT / "README.md")], ("is not a folder",)),
])
def test_numbers_and_places_out_of_range(tmp_path: Path, args: list[str], words: tuple[str, ...]) -> None:
    assert_refused(args, tmp_path, *words)


def test_an_unforeseen_failure_is_still_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import evaluator.assessment

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("deep inside\nwith two lines")

    monkeypatch.setattr(evaluator.assessment, "assess", broken)
    assert_refused(["assess", str(ZOO_PARENT), *FAST_ASSESS], tmp_path, "ZeroDivisionError: deep inside", "--debug")
    result = runner.invoke(app, ["--debug", "assess", str(ZOO_PARENT), *FAST_ASSESS])
    assert isinstance(result.exception, ZeroDivisionError)


def test_files_of_gigabytes_are_refused_before_they_are_read(tmp_path: Path) -> None:
    """A 2.5 GB .onnx (sparse on disk) is over protobuf's limit; a .pt2 of 2.5 GB of zeros before the zoo archive is a
    valid zip, but its entries hold 0.3 MB: both are refused by their size, not read."""
    big_onnx = tmp_path / "big.onnx"
    with open(big_onnx, "wb") as handle:
        handle.truncate(2500 << 20)
    big_pt2 = tmp_path / "big.pt2"
    with open(big_pt2, "wb") as handle:
        handle.truncate(2500 << 20)
    with open(big_pt2, "ab") as handle:
        handle.write((ROOT / "models" / "lenet5_fmnist.pt2").read_bytes())
    assert_refused(["assess", str(big_onnx), *FAST_ASSESS], tmp_path, "2 GiB a protobuf can hold")
    assert_refused(["assess", str(ZOO_PARENT), *FAST_ASSESS, "--attacks", "pgd-linf", "--source", str(big_pt2)], tmp_path,
                   "its zip entries hold only")
