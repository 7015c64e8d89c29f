"""The .npz format (evaluator/datasets/npz.py): a user's arrays in any of the accepted layouts, and bad or
oversized files refused by their headers."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from evaluator.datasets import Dataset, load_dataset
from evaluator.errors import EvaluatorError
from memory_bound import MEMORY_LIMIT, refused_with_peak


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
    monkeypatch.setattr("evaluator.datasets.npz.MAX_DATASET_BYTES", 1 << 20)
    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, x=np.zeros((8192, 28, 28), np.uint8), y=np.zeros(8192, np.int64))  # 6.1 MiB in 8 KiB
    peak = refused_with_peak(lambda: load_dataset(str(bomb)), "array 'x' .* takes 6,422,528 bytes, over the limit of 1,048,576")
    assert peak < 1 << 20
    halves = tmp_path / "halves.npz"  # each array under the limit, all of them over it
    x = np.zeros((700, 28, 28), np.uint8)
    np.savez_compressed(halves, x_train=x, y_train=np.zeros(700, np.int64), x_test=x, y_test=np.zeros(700, np.int64))
    with pytest.raises(EvaluatorError, match="its arrays x_train, y_train, x_test, y_test hold 1,108,800 bytes in all, over"):
        load_dataset(str(halves))


def test_a_label_past_the_class_limit_is_refused_before_naming_classes(tmp_path: Path) -> None:
    """Unnamed classes are named 0..max label: a label of 10^12 would make a trillion names."""
    path = tmp_path / "labels.npz"
    np.savez(path, x=np.zeros((2, 8, 8), np.uint8), y=np.array([0, 10**12]))
    with pytest.raises(EvaluatorError, match="over the limit of 100,000 classes"):
        load_dataset(str(path))
