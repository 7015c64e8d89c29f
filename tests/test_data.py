from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from evaluator.data import Dataset, load_dataset, read_idx, train_validation_split
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


def test_truncated_idx_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "t10k-images-idx3-ubyte"
    write_idx(path, np.zeros((4, 28, 28), np.uint8), compress=False)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(EvaluatorError, match="truncated"):
        read_idx(path)


def test_missing_dataset_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("evaluator.data.SYSTEM_DATA_ROOT", tmp_path / "nothing")
    with pytest.raises(EvaluatorError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", data_dir=tmp_path)


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
