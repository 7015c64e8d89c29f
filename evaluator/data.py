"""Datasets as float32 NCHW arrays in [0, 1] with int64 labels; no torch needed.

Sources: MNIST-format IDX files (Fashion-MNIST, MNIST; gzipped or raw), found through an explicit
directory, the EVALUATOR_DATA_DIR environment variable, or Debian's /usr/share/datasets/<name>;
or a user's own `.npz` file.
"""

from __future__ import annotations

import gzip
import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from numpy.lib import format as npy_format

from evaluator.errors import EvaluatorError
from evaluator.limits import MAX_CLASSES

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
# Bytes of stored data that one dataset file (an IDX file, or all the arrays read from one .npz) may hold, checked
# against its header before anything is read or decompressed. uint8 images grow 4x as float32 NCHW, so 4 GiB of
# them become 16 GiB: about the most a 24 GiB machine holds with the stored copy. EMNIST, the largest MNIST-format
# set, stores 0.6 GiB; CIFAR-10 0.2 GiB.
MAX_DATASET_BYTES = 1 << 32
IDX_MAX_DIMS = 4  # (N, H, W, C) at most; images are (N, H, W), labels (N,)
NPZ_ARRAYS = ("x", "y", "x_train", "y_train", "x_test", "y_test", "classes")  # the arrays load_npz reads
READ_CHUNK = 1 << 24  # bytes per read of a (possibly gzipped) file: reading never asks for more at once


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


def load_dataset(name: str, data_dir: Path | None = None, test_only: bool = False) -> Dataset:
    """Load a named IDX dataset (`fashion-mnist`, `mnist`) or a `.npz` file given by path. `data_dir`, when given,
    must be a folder even where the dataset is a .npz that does not use it. test_only: an IDX dataset's training
    split is not read (train is None), for evaluation."""
    if data_dir is not None and not Path(data_dir).is_dir():
        raise EvaluatorError(f"data folder {data_dir} is not a folder")
    if name.endswith(".npz"):
        return load_npz(Path(name))
    if name not in IDX_DATASETS:
        known = ", ".join(sorted(IDX_DATASETS))
        raise EvaluatorError(f"unknown dataset {name!r}: expected one of {known} or a path to a .npz file")
    folder = find_idx_folder(name, data_dir)
    train = None if test_only else read_idx_split(folder, *IDX_FILES["train"])
    return Dataset(name, IDX_DATASETS[name], train, read_idx_split(folder, *IDX_FILES["test"]))


def find_idx_folder(name: str, data_dir: Path | None) -> Path:
    """The folder that holds the test images of dataset `name`: `data_dir` when given (it must hold them: a folder
    named on purpose is never silently replaced by another), else the first of $EVALUATOR_DATA_DIR(/name) and
    /usr/share/datasets/name that does."""
    if data_dir is not None:
        if find_idx_file(Path(data_dir), IDX_FILES["test"][0]) is None:
            raise EvaluatorError(f"data folder {data_dir} holds no {IDX_FILES['test'][0]} (raw or .gz) of {name!r}: "
                                 f"{HOW_TO_GET[name]}")
        return Path(data_dir)
    candidates: list[Path] = []
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
    if images.shape[0] == 0:
        raise EvaluatorError(f"{images_path} holds no images")
    x = (images.astype(np.float32) / 255.0)[:, None, :, :]
    return Split(np.ascontiguousarray(x), labels.astype(np.int64))


IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_at_most(handle: IO[bytes], count: int) -> bytes:
    """Up to `count` bytes from handle, fewer at its end; read in READ_CHUNK pieces, as a gzip file's read(n)
    allocates n bytes at once however little data there is."""
    chunks: list[bytes] = []
    left = count
    while left > 0:
        chunk = handle.read(min(left, READ_CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (magic 0x0000TTDD: type code TT, DD dimensions, big-endian sizes).

    The header is read first and its promised data size checked against MAX_DATASET_BYTES and the file (raw: its
    size; gzip: at most one byte more than promised is decompressed), so a small file cannot make it allocate more.
    """
    compressed = path.suffix == ".gz"
    try:
        with (gzip.open if compressed else open)(path, "rb") as handle:
            magic = read_at_most(handle, 4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_DTYPES:
                raise EvaluatorError(f"{path} is not an IDX file")
            ndim = magic[3]
            if not 1 <= ndim <= IDX_MAX_DIMS:
                raise EvaluatorError(f"{path}: its IDX header declares {ndim} dimensions, expected 1 to {IDX_MAX_DIMS}")
            sizes = read_at_most(handle, 4 * ndim)
            if len(sizes) < 4 * ndim:
                raise EvaluatorError(f"{path} is truncated: it ends inside its IDX header")
            shape = tuple(int.from_bytes(sizes[4 * i: 4 + 4 * i], "big") for i in range(ndim))
            dtype = np.dtype(IDX_DTYPES[magic[2]])
            expected = math.prod(shape) * dtype.itemsize
            if expected > MAX_DATASET_BYTES:
                raise EvaluatorError(f"{path}: its header promises data of shape {shape}, {expected:,} bytes, over the "
                                     f"limit of {MAX_DATASET_BYTES:,} bytes per dataset file")
            if compressed:  # one byte more than promised tells trailing data without decompressing the rest
                raw = read_at_most(handle, expected + 1)
                found = len(raw)
            else:  # a raw file's size says it all: read only when it fits
                found = os.fstat(handle.fileno()).st_size - 4 - 4 * ndim
                raw = read_at_most(handle, expected) if found == expected else b""
    except (OSError, EOFError, zlib.error) as error:
        raise EvaluatorError(f"cannot read {path}: {error}") from None
    if found < expected:
        raise EvaluatorError(f"{path} is truncated: header promises {expected} bytes of data, found {found}")
    if found > expected:
        raise EvaluatorError(f"{path}: more data follows the {expected:,} bytes its header promises")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def load_npz(path: Path) -> Dataset:
    """A user's `.npz`: `x`/`y` (evaluation only) or `x_train`/`y_train`/`x_test`/`y_test`.

    x may be uint8 (0-255) or float in [0, 1], shaped (N, H, W), NCHW or NHWC; y integer labels.
    An optional `classes` array names the classes. Only those arrays are read, each after its header is checked
    (npz_array_bytes), and their total against MAX_DATASET_BYTES; never a pickle.
    """
    if not path.is_file():
        raise EvaluatorError(f"dataset file not found: {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename.removesuffix(".npy"): info for info in archive.infolist() if info.filename.endswith(".npy")}
            wanted = {key: members[key] for key in NPZ_ARRAYS if key in members}
            total = sum(npz_array_bytes(path, key, archive, info) for key, info in wanted.items())
            if total > MAX_DATASET_BYTES:
                raise EvaluatorError(f"{path}: its arrays {', '.join(wanted)} hold {total:,} bytes in all, over the limit "
                                     f"of {MAX_DATASET_BYTES:,} bytes per dataset file")
            arrays = {}
            for key, info in wanted.items():
                with archive.open(info) as handle:
                    arrays[key] = npy_format.read_array(handle, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError) as error:
        raise EvaluatorError(f"{path} is not a readable .npz file: {error or type(error).__name__}") from None
    if {"x", "y"} <= arrays.keys():
        train, test = None, npz_split(path, arrays["x"], arrays["y"])
    elif {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        train = npz_split(path, arrays["x_train"], arrays["y_train"])
        test = npz_split(path, arrays["x_test"], arrays["y_test"])
    else:
        raise EvaluatorError(f"{path} needs arrays x and y (or x_train, y_train, x_test, y_test); found {sorted(members)}")
    if train is not None and train.x.shape[1:] != test.x.shape[1:]:
        raise EvaluatorError(f"{path}: train inputs {train.x.shape[1:]} and test inputs {test.x.shape[1:]} differ")
    labels = test.y if train is None else np.concatenate([train.y, test.y])
    if int(labels.max()) >= MAX_CLASSES:
        raise EvaluatorError(f"{path}: label {int(labels.max())} is over the limit of {MAX_CLASSES:,} classes")
    if "classes" in arrays:
        classes = tuple(str(name) for name in arrays["classes"])
    else:
        classes = tuple(str(index) for index in range(int(labels.max()) + 1))
    if int(labels.max()) >= len(classes):
        raise EvaluatorError(f"{path}: label {int(labels.max())} is out of range for {len(classes)} classes")
    return Dataset(str(path), classes, train, test)


def npz_array_bytes(path: Path, key: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> int:
    """Data bytes of array `key` of the .npz at path, from its .npy header alone (a few hundred bytes decompressed):
    no Python objects, at most MAX_DATASET_BYTES, and exactly what the zip member holds after the header."""
    with archive.open(info) as handle:
        version = npy_format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(handle)
        else:
            raise EvaluatorError(f"{path}: array {key!r} is in .npy format version {version}, expected 1.0 or 2.0")
        header = handle.tell()
    if dtype.hasobject:
        raise EvaluatorError(f"{path}: array {key!r} holds Python objects ({dtype}), which are never loaded (no pickles)")
    if any(d < 0 for d in shape):
        raise EvaluatorError(f"{path}: array {key!r} has a negative dimension in its shape {shape}")
    size = math.prod(shape) * dtype.itemsize
    if size > MAX_DATASET_BYTES:
        raise EvaluatorError(f"{path}: array {key!r} of shape {shape} and type {dtype} takes {size:,} bytes, over the limit "
                             f"of {MAX_DATASET_BYTES:,} bytes per dataset file")
    if size != info.file_size - header:
        raise EvaluatorError(f"{path}: array {key!r} of shape {shape} and type {dtype} needs {size:,} bytes, but its zip "
                             f"member holds {info.file_size - header:,}")
    return size


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
