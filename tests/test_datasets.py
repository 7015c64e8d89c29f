"""The dataset registry (evaluator/datasets/base.py) and the types every format loads into; each format's own tests
are in tests/test_datasets_<format>.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluator.datasets import Dataset, DatasetFormat, Split, find_format, list_formats, load_dataset, train_validation_split
from evaluator.datasets.base import FORMATS, register_format
from evaluator.errors import EvaluatorError


def test_the_registry_lists_the_built_in_formats() -> None:
    formats = {fmt.name: fmt for fmt in list_formats()}
    assert sorted(formats) == ["cifar10", "idx", "image-folder", "npz"]
    assert formats["idx"].names == ("fashion-mnist", "mnist") and formats["npz"].suffixes == (".npz",)
    assert formats["cifar10"].names == ("cifar10",) and formats["image-folder"].names == ()
    assert all(fmt.summary for fmt in formats.values())


@pytest.mark.parametrize(("argument", "name"), [("fashion-mnist", "idx"), ("mnist", "idx"), ("data/mine.npz", "npz"),
                                                ("/tmp/a.b.npz", "npz"), ("cifar10", "cifar10")])
def test_a_format_is_found_by_name_or_suffix(argument: str, name: str) -> None:
    assert find_format(argument).name == name


def test_a_folder_is_found_by_its_layout(tmp_path: Path) -> None:
    """CIFAR-10 batches, or class folders of images; an empty folder is no format's."""
    (tmp_path / "cifar" / "test_batch.bin").parent.mkdir()
    (tmp_path / "cifar" / "test_batch.bin").write_bytes(b"")
    (tmp_path / "images" / "cat").mkdir(parents=True)
    (tmp_path / "images" / "cat" / "a.png").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    assert find_format(str(tmp_path / "cifar")).name == "cifar10"
    assert find_format(str(tmp_path / "images")).name == "image-folder"
    with pytest.raises(EvaluatorError, match="^unknown dataset"):
        find_format(str(tmp_path / "empty"))


@pytest.mark.parametrize("argument", ["cifar-99", "MNIST", "data/mine.npy", "mine.npz.gz", ""])
def test_an_unknown_dataset_is_one_line_listing_the_formats(argument: str) -> None:
    with pytest.raises(EvaluatorError) as raised:
        load_dataset(argument)
    message = str(raised.value)
    assert message == (f"unknown dataset {argument!r}: expected one of the formats cifar10 (cifar10 from data_dir, or "
                       "a folder of CIFAR-10 binary batches (cifar-10-batches-bin)), idx (fashion-mnist or mnist, read "
                       "from IDX files), image-folder (a folder of class folders of .png/.jpg images, or of train/ and "
                       "val/ or test/ folders of them), npz (a path to a .npz file)")
    assert raised.value.field == "dataset" and "\n" not in message


def test_a_data_dir_that_is_not_a_folder_names_the_setting(tmp_path: Path) -> None:
    """The library names the setting; the CLI shows it as its flag."""
    from evaluator.app.cli import with_flag

    (tmp_path / "file").write_text("x")
    with pytest.raises(EvaluatorError) as raised:
        load_dataset(str(tmp_path / "mine.npz"), data_dir=tmp_path / "file")
    assert str(raised.value) == f"data_dir {tmp_path / 'file'} is not a folder" and raised.value.field == "data_dir"
    assert with_flag(raised.value) == f"--data-dir {tmp_path / 'file'} is not a folder"


def test_a_registered_format_is_dispatched_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a format is one registered class: load_dataset finds it by its suffix and passes the arguments on."""
    monkeypatch.setattr("evaluator.datasets.base.FORMATS", dict(FORMATS))
    calls = []

    @register_format
    class Checkerboards(DatasetFormat):
        name = "checkerboards"
        summary = "a path to a .board file"
        suffixes = (".board",)

        def load(self, argument: str, data_dir: Path | None, test_only: bool) -> Dataset:
            calls.append((argument, data_dir, test_only))
            x = np.indices((2, 1, 4, 4)).sum(axis=0).astype(np.float32) % 2
            return Dataset(argument, ("even", "odd"), None, Split(x, np.array([0, 1], np.int64)))

    dataset = load_dataset("a.board", tmp_path, test_only=True)
    assert calls == [("a.board", tmp_path, True)] and dataset.input_shape == (1, 4, 4)
    assert [fmt.name for fmt in list_formats()] == ["checkerboards", "cifar10", "idx", "image-folder", "npz"]
    with pytest.raises(EvaluatorError, match=r"npz \(a path to a .npz file\)$"):
        load_dataset("a.boards")
    with pytest.raises(ValueError, match="registered twice"):
        register_format(Checkerboards)


def test_a_dataset_name_belongs_to_one_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("evaluator.datasets.base.FORMATS", dict(FORMATS))

    class OtherMnist(DatasetFormat):
        name = "other-mnist"
        summary = "mnist"
        names = ("mnist",)

        def load(self, argument: str, data_dir: Path | None, test_only: bool) -> Dataset:
            raise AssertionError("never loaded")

    with pytest.raises(ValueError, match=r"dataset names \['mnist'\] belong to another format"):
        register_format(OtherMnist)


def test_validation_split_is_seeded_and_disjoint(fmnist: Dataset) -> None:
    assert fmnist.train is not None
    train_a, val_a = train_validation_split(fmnist.train, 5000, seed=3)
    train_b, val_b = train_validation_split(fmnist.train, 5000, seed=3)
    _, val_c = train_validation_split(fmnist.train, 5000, seed=4)
    assert len(train_a) == 55000 and len(val_a) == 5000
    np.testing.assert_array_equal(val_a.x, val_b.x)
    assert not np.array_equal(val_a.x, val_c.x)
    together = np.concatenate([train_a.y, val_a.y])
    np.testing.assert_array_equal(np.bincount(together), np.bincount(fmnist.train.y))
    np.testing.assert_allclose(train_a.x.sum() + val_a.x.sum(), fmnist.train.x.sum(), rtol=1e-5)


def test_a_huge_sample_count_is_capped_by_the_test_set(fmnist: Dataset) -> None:
    from evaluator.assessment import attack_subset

    assert attack_subset(fmnist.test, 10**15, seed=0) is fmnist.test
