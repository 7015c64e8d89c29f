"""The IDX format (evaluator/datasets/idx.py): Fashion-MNIST and MNIST files, raw or gzipped, and their headers
checked before anything is allocated."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from evaluator.datasets import Dataset, load_dataset
from evaluator.datasets.idx import read_idx, read_idx_split
from evaluator.errors import EvaluatorError
from memory_bound import MEMORY_LIMIT, refused_with_peak


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def idx_header(shape: tuple[int, ...], type_code: int = 0x08) -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)


def write_gzip(path: Path, header: bytes, data: bytes, zeros: int) -> None:
    """header + data + `zeros` zero bytes, gzipped in pieces (64 MiB of zeros is about 64 KiB on disk)."""
    with gzip.open(path, "wb", compresslevel=9) as handle:
        handle.write(header + data)
        for _ in range(zeros >> 20):
            handle.write(bytes(1 << 20))


def test_fashion_mnist_is_complete_and_scaled(fmnist: Dataset) -> None:
    assert fmnist.train is not None and len(fmnist.train) == 60000 and len(fmnist.test) == 10000
    assert fmnist.input_shape == (1, 28, 28)
    assert fmnist.test.x.dtype == np.float32 and 0.0 <= fmnist.test.x.min() and fmnist.test.x.max() == 1.0
    assert sorted(np.unique(fmnist.test.y)) == list(range(10))
    assert fmnist.classes[9] == "ankle boot"


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip_raw_and_gzip(tmp_path: Path, fmnist: Dataset, compress: bool) -> None:
    images = np.round(fmnist.test.x[:20, 0] * 255).astype(np.uint8)
    suffix = ".gz" if compress else ""
    for split, count in (("train", 20), ("t10k", 10)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte{suffix}", images[:count], compress)
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte{suffix}", fmnist.test.y[:count], compress)
    dataset = load_dataset("mnist", data_dir=tmp_path)
    assert len(dataset.test) == 10 and dataset.train is not None and len(dataset.train) == 20
    np.testing.assert_allclose(dataset.test.x[:, 0], images[:10] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(dataset.test.y, fmnist.test.y[:10])


def test_evaluation_reads_the_test_split_only(tmp_path: Path, fmnist: Dataset) -> None:
    """An assessment needs no training images: a folder with only the t10k files serves it (and reads less)."""
    from typer.testing import CliRunner

    from conftest import ZOO_CHILD
    from evaluator.app.cli import app

    images = np.round(fmnist.test.x[:50, 0] * 255).astype(np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images, compress=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", fmnist.test.y[:50], compress=False)
    dataset = load_dataset("fashion-mnist", data_dir=tmp_path, test_only=True)
    assert dataset.train is None and len(dataset.test) == 50
    with pytest.raises(EvaluatorError):  # training needs the training split
        load_dataset("fashion-mnist", data_dir=tmp_path)
    result = CliRunner().invoke(app, ["assess", str(ZOO_CHILD), "--data-dir", str(tmp_path), "--samples", "20", "--no-latency",
                                      "--attacks", "square-linf:queries=20"])
    assert result.exit_code == 0, result.output


def test_truncated_idx_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "t10k-images-idx3-ubyte"
    write_idx(path, np.zeros((4, 28, 28), np.uint8), compress=False)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(EvaluatorError, match="truncated"):
        read_idx(path)


def test_missing_dataset_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("evaluator.datasets.idx.SYSTEM_DATA_ROOT", tmp_path / "nothing")
    with pytest.raises(EvaluatorError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


def test_a_data_folder_named_on_purpose_is_not_replaced(tmp_path: Path) -> None:
    """The system's Fashion-MNIST exists here, but a data_dir without the files (or that is a file) is an error."""
    with pytest.raises(EvaluatorError, match="holds no t10k-images-idx3-ubyte"):
        load_dataset("fashion-mnist", data_dir=tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(EvaluatorError, match="is not a folder"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "file")


def test_environment_variable_points_to_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("evaluator.datasets.idx.SYSTEM_DATA_ROOT", tmp_path / "nothing")
    monkeypatch.setenv("EVALUATOR_DATA_DIR", "/usr/share/datasets")
    assert len(load_dataset("fashion-mnist").test) == 10000


def test_corrupt_gzip_idx_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage that is not deflate")
    with pytest.raises(EvaluatorError, match="cannot read"):
        read_idx(tmp_path / "t10k-images-idx3-ubyte.gz")


@pytest.mark.parametrize("compress", [True, False])
def test_an_idx_header_promising_terabytes_is_refused_after_the_header(tmp_path: Path, compress: bool) -> None:
    path = tmp_path / ("t10k-images-idx3-ubyte" + (".gz" if compress else ""))
    header = idx_header((2**32 - 1, 28, 28))  # 3.4 TB of images
    if compress:
        write_gzip(path, header, b"", 64 << 20)  # a gzip bomb behind it: never decompressed
    else:
        path.write_bytes(header + bytes(100))
    assert path.stat().st_size < 1 << 20
    peak = refused_with_peak(lambda: read_idx(path), r"shape \(4294967295, 28, 28\), 3,367,254,359,280 bytes, over the limit of 4,294,967,296")
    assert peak < MEMORY_LIMIT


def test_data_after_a_gzipped_idx_is_refused_without_decompressing_it(tmp_path: Path) -> None:
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    write_gzip(path, idx_header((10, 28, 28)), bytes(10 * 28 * 28), 64 << 20)
    peak = refused_with_peak(lambda: read_idx(path), "more data follows the 7,840 bytes its header promises")
    assert peak < MEMORY_LIMIT


def test_a_raw_idx_file_is_sized_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(idx_header((10, 28, 28)))
    with path.open("r+b") as handle:
        handle.truncate(256 << 20)  # sparse where the file system allows: a large file that costs no disk
    peak = refused_with_peak(lambda: read_idx(path), "more data follows the 7,840 bytes")
    assert peak < MEMORY_LIMIT


@pytest.mark.parametrize("ndim", [0, 5, 255])
def test_idx_headers_with_no_or_absurd_dimensions_are_refused(tmp_path: Path, ndim: int) -> None:
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, ndim]) + bytes(4 * ndim + 8))
    with pytest.raises(EvaluatorError, match=f"declares {ndim} dimensions, expected 1 to 4"):
        read_idx(path)


def test_an_idx_dataset_without_images_is_refused(tmp_path: Path) -> None:
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((0, 28, 28), np.uint8), compress=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(0, np.uint8), compress=False)
    with pytest.raises(EvaluatorError, match="holds no images"):
        read_idx_split(tmp_path, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
