from __future__ import annotations

import gzip
import io
import tracemalloc
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from numpy.lib import format as npy_format

from evaluator.data import Dataset, load_dataset, read_idx, read_idx_split, train_validation_split
from evaluator.errors import EvaluatorError


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


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
    monkeypatch.setattr("evaluator.data.SYSTEM_DATA_ROOT", tmp_path / "nothing")
    with pytest.raises(EvaluatorError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


def test_a_data_folder_named_on_purpose_is_not_replaced(tmp_path: Path) -> None:
    """The system's Fashion-MNIST exists here, but a --data-dir without the files (or that is a file) is an error."""
    with pytest.raises(EvaluatorError, match="holds no t10k-images-idx3-ubyte"):
        load_dataset("fashion-mnist", data_dir=tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(EvaluatorError, match="is not a folder"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "file")


def test_environment_variable_points_to_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("evaluator.data.SYSTEM_DATA_ROOT", tmp_path / "nothing")
    monkeypatch.setenv("EVALUATOR_DATA_DIR", "/usr/share/datasets")
    assert len(load_dataset("fashion-mnist").test) == 10000


def test_npz_layouts_agree(tmp_path: Path, fmnist: Dataset) -> None:
    x = fmnist.test.x[:50]
    y = fmnist.test.y[:50]
    np.savez(tmp_path / "nchw.npz", x=x, y=y)
    np.savez(tmp_path / "nhwc_uint8.npz", x=np.round(x * 255).astype(np.uint8).transpose(0, 2, 3, 1), y=y)
    np.savez(tmp_path / "hw.npz", x=x[:, 0], y=y)
    loaded = [load_dataset(str(tmp_path / name)) for name in ("nchw.npz", "nhwc_uint8.npz", "hw.npz")]
    for dataset in loaded:
        assert dataset.train is None and dataset.input_shape == (1, 28, 28)
        np.testing.assert_allclose(dataset.test.x, x, atol=1 / 255)
        np.testing.assert_array_equal(dataset.test.y, y)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((3, 28, 28), np.float32), "y": np.array([0, -1, 2])}, "negative"),
        ({"x": np.full((3, 28, 28), 2.0, np.float32), "y": np.array([0, 1, 2])}, r"\[0, 1\]"),
        ({"x": np.zeros((3, 28, 28), np.float32), "y": np.array([0, 1])}, "3 inputs but 2 labels"),
        ({"x": np.zeros((3, 28, 28), np.float32), "y": np.array([0.0, 1.0, 2.0])}, "integer"),
        ({"images": np.zeros((3, 28, 28))}, "needs arrays x and y"),
        ({"x": np.zeros((2, 28, 28), np.float32), "y": np.array([0, 3]), "classes": np.array(["a", "b"])}, "out of range"),
    ],
)
def test_bad_npz_is_rejected(tmp_path: Path, arrays: dict, message: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(EvaluatorError, match=message):
        load_dataset(str(path))


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


def test_corrupt_gzip_idx_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage that is not deflate")
    with pytest.raises(EvaluatorError, match="cannot read"):
        read_idx(tmp_path / "t10k-images-idx3-ubyte.gz")


# --- sizes bounded before allocation: a small file never makes the loader allocate what its header promises --------

MEMORY_LIMIT = 16 << 20  # bytes of Python and numpy allocations a refused bad-header file may cost


def refused_with_peak(load: Callable[[], object], message: str) -> int:
    """Peak bytes traced (Python and numpy allocations) while `load` runs, which must raise EvaluatorError matching
    `message` in one line."""
    tracemalloc.start()
    try:
        with pytest.raises(EvaluatorError, match=message) as raised:
            load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "\n" not in str(raised.value)
    return peak


def write_gzip(path: Path, header: bytes, data: bytes, zeros: int) -> None:
    """header + data + `zeros` zero bytes, gzipped in pieces (64 MiB of zeros is about 64 KiB on disk)."""
    with gzip.open(path, "wb", compresslevel=9) as handle:
        handle.write(header + data)
        for _ in range(zeros >> 20):
            handle.write(bytes(1 << 20))


def idx_header(shape: tuple[int, ...], type_code: int = 0x08) -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)


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


def npy_bytes(shape: tuple[int, ...], dtype: str, data: bytes) -> bytes:
    """A .npy file whose header promises `shape` of `dtype`, followed by `data` (whatever its length)."""
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    return header.getvalue() + data


def write_npz(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)
    return path


LABELS = npy_bytes((2,), "<i8", np.array([0, 1]).tobytes())


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((2**40, 28, 28), r"array 'x' of shape \(1099511627776, 28, 28\) and type uint8 takes 862,017,116,176,384 bytes, over"),
        ((1 << 29,), r"array 'x' of shape \(536870912,\) and type uint8 needs 536,870,912 bytes, but its zip member holds 16"),
    ],
)
def test_an_npz_header_is_checked_before_its_array_is_allocated(tmp_path: Path, shape: tuple[int, ...], message: str) -> None:
    path = write_npz(tmp_path / "bomb.npz", {"x": npy_bytes(shape, "|u1", bytes(16)), "y": LABELS})
    assert path.stat().st_size < 4096
    peak = refused_with_peak(lambda: load_dataset(str(path)), f"{path}: {message}")
    assert peak < MEMORY_LIMIT


def test_npz_object_arrays_are_refused_by_their_header(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "objects.npz", {"x": npy_bytes((2,), "|O", bytes(16)), "y": LABELS})
    with pytest.raises(EvaluatorError, match="array 'x' holds Python objects"):
        load_dataset(str(path))


def test_a_compressed_npz_is_bounded_before_it_is_decompressed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("evaluator.data.MAX_DATASET_BYTES", 1 << 20)
    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, x=np.zeros((8192, 28, 28), np.uint8), y=np.zeros(8192, np.int64))  # 6.1 MiB in 8 KiB
    peak = refused_with_peak(lambda: load_dataset(str(bomb)), "array 'x' .* takes 6,422,528 bytes, over the limit of 1,048,576")
    assert peak < 1 << 20
    halves = tmp_path / "halves.npz"  # each array under the limit, all of them over it
    x = np.zeros((700, 28, 28), np.uint8)
    np.savez_compressed(halves, x_train=x, y_train=np.zeros(700, np.int64), x_test=x, y_test=np.zeros(700, np.int64))
    with pytest.raises(EvaluatorError, match="its arrays x_train, y_train, x_test, y_test hold 1,108,800 bytes in all, over"):
        load_dataset(str(halves))


def test_a_huge_sample_count_is_capped_by_the_test_set(fmnist: Dataset) -> None:
    from evaluator.assessment import attack_subset

    assert attack_subset(fmnist.test, 10**15, seed=0) is fmnist.test


def test_a_label_past_the_class_limit_is_refused_before_naming_classes(tmp_path: Path) -> None:
    """Unnamed classes are named 0..max label: a label of 10^12 would make a trillion names."""
    path = tmp_path / "labels.npz"
    np.savez(path, x=np.zeros((2, 8, 8), np.uint8), y=np.array([0, 10**12]))
    with pytest.raises(EvaluatorError, match="over the limit of 100,000 classes"):
        load_dataset(str(path))
