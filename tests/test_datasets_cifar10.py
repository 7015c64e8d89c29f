"""The CIFAR-10 binary format (evaluator/datasets/cifar10.py): batches written here from random images, read back
exactly; the pickled version and malformed batches refused with one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from evaluator.datasets import find_format, load_dataset
from evaluator.datasets.cifar10 import CIFAR10_CLASSES, RECORD_BYTES
from evaluator.errors import EvaluatorError

from conftest import ZOO_PARENT

TRAIN_NAMES = [f"data_batch_{index}.bin" for index in range(1, 6)]


def random_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(count, 3, 32, 32) uint8 images and (count,) uint8 labels in 0..9."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, count, dtype=np.uint8)


def batch_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """CIFAR-10 binary records: a label byte, then the 1024 R, 1024 G and 1024 B bytes of each image."""
    return np.concatenate([labels[:, None], images.reshape(len(images), -1)], axis=1).tobytes()


def write_cifar10(folder: Path, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Five training batches of 20 images and a test batch of 30 in folder; returns all 130 images and labels,
    training images first."""
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = random_images(130, seed)
    for index, name in enumerate(TRAIN_NAMES):
        part = slice(20 * index, 20 * index + 20)
        (folder / name).write_bytes(batch_bytes(images[part], labels[part]))
    (folder / "test_batch.bin").write_bytes(batch_bytes(images[100:], labels[100:]))
    return images, labels


def test_batches_are_read_exactly(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-bin"
    images, labels = write_cifar10(folder)
    dataset = load_dataset("cifar10", data_dir=folder)
    assert dataset.name == "cifar10" and dataset.classes == CIFAR10_CLASSES and dataset.input_shape == (3, 32, 32)
    assert dataset.train is not None and len(dataset.train) == 100 and len(dataset.test) == 30
    for split, part in ((dataset.train, slice(0, 100)), (dataset.test, slice(100, 130))):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        np.testing.assert_array_equal(split.x, images[part].astype(np.float32) / np.float32(255.0))
        np.testing.assert_array_equal(split.y, labels[part])
    assert dataset.test.x.min() >= 0.0 and dataset.test.x.max() <= 1.0
    assert load_dataset("cifar10", folder, test_only=True, input_shape=(1, 28, 28)).input_shape == (3, 32, 32)  # as stored


def test_the_channels_are_stored_one_after_another(tmp_path: Path) -> None:
    """1024 R bytes, then G, then B, each row by row: pixel (row 1, column 2) of G is byte 1 + 1024 + 32 + 2."""
    record = bytearray(RECORD_BYTES)
    record[0] = 7
    record[1 + 1024 + 32 + 2] = 255
    (tmp_path / "test_batch.bin").write_bytes(bytes(record))
    dataset = load_dataset(str(tmp_path), test_only=True)
    assert dataset.test.y.tolist() == [7] and dataset.test.x.sum() == 1.0 and dataset.test.x[0, 1, 1, 2] == 1.0


def test_the_folder_argument_the_parent_folder_and_test_only(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-bin"
    images, labels = write_cifar10(folder)
    (folder / "data_batch_3.bin").unlink()  # test_only reads test_batch.bin alone
    for dataset in (load_dataset("cifar10", tmp_path, test_only=True), load_dataset(str(folder), test_only=True),
                    load_dataset(str(tmp_path), test_only=True)):
        assert dataset.train is None
        np.testing.assert_array_equal(dataset.test.y, labels[100:])
    assert find_format(str(folder)).name == find_format(str(tmp_path)).name == "cifar10"


def test_class_names_come_from_batches_meta(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    names = [f"class {index}" for index in range(10)]
    (tmp_path / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    assert load_dataset("cifar10", tmp_path, test_only=True).classes == tuple(names)
    (tmp_path / "batches.meta.txt").write_text("cat\ndog\n")
    with pytest.raises(EvaluatorError, match=r"batches.meta.txt names 2 classes, expected 10 \(one a line\)$"):
        load_dataset("cifar10", tmp_path, test_only=True)


def one_line_error(argument: str, data_dir: Path | None = None, test_only: bool = False) -> EvaluatorError:
    with pytest.raises(EvaluatorError) as raised:
        load_dataset(argument, data_dir, test_only)
    assert "\n" not in str(raised.value)
    return raised.value


def test_an_empty_folder_and_a_missing_batch(tmp_path: Path) -> None:
    error = one_line_error("cifar10", tmp_path)
    assert str(error) == (f"data_dir {tmp_path} holds no test_batch.bin of CIFAR-10: use the binary version of "
                          "CIFAR-10 (cifar-10-binary.tar.gz, which extracts to cifar-10-batches-bin)")
    assert error.field == "data_dir"
    write_cifar10(tmp_path)
    (tmp_path / "data_batch_4.bin").unlink()
    assert str(one_line_error("cifar10", tmp_path)) == (f"data_dir {tmp_path} lacks data_batch_4.bin of CIFAR-10's "
                                                        "binary version")


def test_cifar10_without_data_dir_says_where_to_put_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALUATOR_DATA_DIR", raising=False)
    assert str(one_line_error("cifar10")).startswith("dataset 'cifar10' not found: set data_dir to the folder "
                                                     "cifar-10-batches-bin")


def test_the_environment_folder_is_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, labels = write_cifar10(tmp_path / "cifar-10-batches-bin")
    monkeypatch.setenv("EVALUATOR_DATA_DIR", str(tmp_path))
    np.testing.assert_array_equal(load_dataset("cifar10", test_only=True).test.y, labels[100:])


@pytest.mark.parametrize("name", ["test_batch", "data_batch_1", "batches.meta"])
def test_the_pickled_version_is_never_read(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"\x80\x04 not to be unpickled")
    for argument, data_dir, field in (("cifar10", tmp_path, "data_dir"), (str(tmp_path), None, "dataset")):
        error = one_line_error(argument, data_dir)
        assert str(error) == (f"{field} {tmp_path} holds the pickled Python version of CIFAR-10 ({name}), which is never "
                              "read as unpickling runs code: use the binary version of CIFAR-10 (cifar-10-binary.tar.gz, "
                              "which extracts to cifar-10-batches-bin)")
        assert error.field == field


def test_malformed_batches(tmp_path: Path) -> None:
    images, labels = random_images(3, seed=1)
    path = tmp_path / "test_batch.bin"
    path.write_bytes(batch_bytes(images, labels)[:-1])
    assert str(one_line_error(str(tmp_path), test_only=True)) == (
        f"{path}: its 9,218 bytes are not whole CIFAR-10 records of 3073 bytes (a label byte and 3072 pixel bytes)")
    labels[2] = 10
    path.write_bytes(batch_bytes(images, labels))
    assert str(one_line_error(str(tmp_path), test_only=True)) == f"{path}: record 2 has label 10, expected 0 to 9"
    path.write_bytes(b"")
    assert str(one_line_error(str(tmp_path), test_only=True)) == f"{path} holds no images"


def test_batches_over_the_size_limit_are_refused_before_reading(tmp_path: Path) -> None:
    """A sparse file of whole records, over MAX_DATASET_BYTES: refused from its size, nothing read."""
    with open(tmp_path / "test_batch.bin", "wb") as handle:
        handle.truncate(RECORD_BYTES * 1_400_000)
    assert str(one_line_error(str(tmp_path), test_only=True)) == (
        f"{tmp_path}: batch files test_batch.bin hold 4,302,200,000 bytes in all, over the limit of 4,294,967,296 bytes "
        "per dataset")


def test_assess_refuses_malformed_batches_with_one_line(tmp_path: Path) -> None:
    from evaluator.app.cli import app

    (tmp_path / "test_batch.bin").write_bytes(bytes(RECORD_BYTES + 5))
    result = CliRunner().invoke(app, ["assess", str(ZOO_PARENT), "--dataset", "cifar10", "--data-dir", str(tmp_path),
                                      "--no-latency"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert "test_batch.bin: its 3,078 bytes are not whole CIFAR-10 records of 3073 bytes" in lines[0]


def test_written_batches_read_back(tmp_path: Path) -> None:
    """write_batches (the format's writer, for data converted to it) and the reader are each other's inverse."""
    from evaluator.datasets.cifar10 import encode_records, write_batches

    train, test = random_images(23, 1), random_images(7, 2)
    write_batches(tmp_path / "batches", train, test, tuple(f"c{i}" for i in range(10)))
    dataset = load_dataset(str(tmp_path / "batches"))
    assert dataset.train is not None and dataset.classes == tuple(f"c{i}" for i in range(10))
    np.testing.assert_array_equal(np.round(dataset.train.x * 255).astype(np.uint8), train[0])
    np.testing.assert_array_equal(dataset.test.y, test[1])
    with pytest.raises(ValueError, match="uint8 images with labels 0-9"):
        encode_records(train[0], np.full(23, 10))
