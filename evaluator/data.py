"""Datasets as float32 NCHW arrays in [0, 1] with int64 labels; no torch needed.

Sources: MNIST-format IDX files (Fashion-MNIST, MNIST; gzipped or raw), found through an explicit
directory, the EVALUATOR_DATA_DIR environment variable, or Debian's /usr/share/datasets/<name>;
or a user's own `.npz` file.
"""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluator.errors import EvaluatorError

DATA_DIR_ENV = "EVALUATOR_DATA_DIR"
SYSTEM_DATA_ROOT = Path("/usr/share/datasets")

FASHION_MNIST_CLASSES = (
    "t-shirt/top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)
IDX_DATASETS: dict[str, tuple[str, ...]] = {
    "fashion-mnist": FASHION_MNIST_CLASSES,
    "mnist": tuple(str(digit) for digit in range(10)),
}
HOW_TO_GET = {
    "fashion-mnist": "install it with `apt-get install dataset-fashion-mnist` or pass --data-dir "
    "to a folder holding its four IDX files",
    "mnist": "pass --data-dir to a folder holding MNIST's four IDX files",
}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class Split:
    """x: (N, C, H, W) float32 in [0, 1]; y: (N,) int64 class indices."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def take(self, indices: np.ndarray) -> "Split":
        return Split(self.x[indices], self.y[indices])

    def head(self, count: int) -> "Split":
        return Split(self.x[:count], self.y[:count])


@dataclass(frozen=True)
class Dataset:
    """A named dataset: an optional training split and the test split used only for evaluation."""

    name: str
    classes: tuple[str, ...]
    train: Split | None
    test: Split

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one input."""
        return tuple(int(d) for d in self.test.x.shape[1:])  # type: ignore[return-value]


def train_validation_split(train: Split, validation_size: int, seed: int) -> tuple[Split, Split]:
    """Carve a seeded, stratification-free validation split of `validation_size` from `train`."""
    if not 0 < validation_size < len(train):
        raise EvaluatorError(f"validation size {validation_size} does not fit a training split of {len(train)}")
    order = np.random.default_rng(seed).permutation(len(train))
    return train.take(np.sort(order[validation_size:])), train.take(np.sort(order[:validation_size]))


def load_dataset(name: str, data_dir: Path | None = None) -> Dataset:
    """Load a named IDX dataset (`fashion-mnist`, `mnist`) or a `.npz` file given by path."""
    if name.endswith(".npz"):
        return load_npz(Path(name))
    if name not in IDX_DATASETS:
        known = ", ".join(sorted(IDX_DATASETS))
        raise EvaluatorError(f"unknown dataset {name!r}: expected one of {known} or a path to a .npz file")
    folder = find_idx_folder(name, data_dir)
    splits = {split: read_idx_split(folder, *files) for split, files in IDX_FILES.items()}
    return Dataset(name, IDX_DATASETS[name], splits["train"], splits["test"])


def find_idx_folder(name: str, data_dir: Path | None) -> Path:
    """The first candidate folder that holds the test images of dataset `name`."""
    candidates: list[Path] = []
    if data_dir is not None:
        candidates.append(Path(data_dir))
    if os.environ.get(DATA_DIR_ENV):
        env_dir = Path(os.environ[DATA_DIR_ENV])
        candidates += [env_dir / name, env_dir]
    candidates.append(SYSTEM_DATA_ROOT / name)
    for folder in candidates:
        if find_idx_file(folder, IDX_FILES["test"][0]) is not None:
            return folder
    looked = ", ".join(str(folder) for folder in candidates)
    raise EvaluatorError(f"dataset {name!r} not found (looked in {looked}): {HOW_TO_GET[name]}")


def find_idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def read_idx_split(folder: Path, images_stem: str, labels_stem: str) -> Split:
    images_path = find_idx_file(folder, images_stem)
    labels_path = find_idx_file(folder, labels_stem)
    if images_path is None or labels_path is None:
        raise EvaluatorError(f"{folder} lacks {images_stem} or {labels_stem} (raw or .gz)")
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise EvaluatorError(f"{images_path} and {labels_path} do not form an image/label pair")
    x = (images.astype(np.float32) / 255.0)[:, None, :, :]
    return Split(np.ascontiguousarray(x), labels.astype(np.int64))


IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (magic 0x0000TTDD: type code TT, DD dimensions, big-endian sizes)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise EvaluatorError(f"cannot read {path}: {error}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise EvaluatorError(f"{path} is not an IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise EvaluatorError(f"{path} is truncated: header promises {expected} bytes of data, found {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def load_npz(path: Path) -> Dataset:
    """A user's `.npz`: `x`/`y` (evaluation only) or `x_train`/`y_train`/`x_test`/`y_test`.

    x may be uint8 (0-255) or float in [0, 1], shaped (N, H, W), NCHW or NHWC; y integer labels.
    An optional `classes` array names the classes.
    """
    if not path.is_file():
        raise EvaluatorError(f"dataset file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise EvaluatorError(f"{path} is not a readable .npz file: {error or type(error).__name__}") from None
    if {"x", "y"} <= arrays.keys():
        train, test = None, npz_split(path, arrays["x"], arrays["y"])
    elif {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        train = npz_split(path, arrays["x_train"], arrays["y_train"])
        test = npz_split(path, arrays["x_test"], arrays["y_test"])
    else:
        raise EvaluatorError(f"{path} needs arrays x and y (or x_train, y_train, x_test, y_test); found {sorted(arrays)}")
    if train is not None and train.x.shape[1:] != test.x.shape[1:]:
        raise EvaluatorError(f"{path}: train inputs {train.x.shape[1:]} and test inputs {test.x.shape[1:]} differ")
    labels = test.y if train is None else np.concatenate([train.y, test.y])
    if "classes" in arrays:
        classes = tuple(str(name) for name in arrays["classes"])
    else:
        classes = tuple(str(index) for index in range(int(labels.max()) + 1))
    if int(labels.max()) >= len(classes):
        raise EvaluatorError(f"{path}: label {int(labels.max())} is out of range for {len(classes)} classes")
    return Dataset(str(path), classes, train, test)


def npz_split(path: Path, x: np.ndarray, y: np.ndarray) -> Split:
    if x.ndim < 1:
        raise EvaluatorError(f"{path}: inputs must be an array of images, got a scalar")
    if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
        raise EvaluatorError(f"{path}: labels must be a 1-D integer array, got {y.dtype} of shape {y.shape}")
    if x.shape[0] != y.shape[0] or y.shape[0] == 0:
        raise EvaluatorError(f"{path}: {x.shape[0]} inputs but {y.shape[0]} labels")
    if y.min() < 0:
        raise EvaluatorError(f"{path}: label {int(y.min())} is negative")
    return Split(to_nchw_unit(path, x), y.astype(np.int64))


def to_nchw_unit(path: Path, x: np.ndarray) -> np.ndarray:
    """(N,H,W) | NCHW | NHWC, uint8 or float -> float32 NCHW in [0, 1]."""
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise EvaluatorError(f"{path}: inputs must be (N, H, W), NCHW or NHWC; got shape {x.shape}")
    if x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x, dtype=np.float32) / np.float32(255.0)
    if not np.issubdtype(x.dtype, np.floating):
        raise EvaluatorError(f"{path}: inputs must be uint8 or float, got {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all() or x.min() < 0.0 or x.max() > 1.0:
        raise EvaluatorError(f"{path}: float inputs must be finite and in [0, 1]")
    return x
