"""MNIST-format IDX files (Fashion-MNIST, MNIST; gzipped or raw), found through an explicit data_dir, the
EVALUATOR_DATA_DIR environment variable, or Debian's /usr/share/datasets/<name>."""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from evaluator.datasets.base import MAX_DATASET_BYTES, DatasetFormat, read_at_most, register_format
from evaluator.datasets.types import Dataset, Split
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
    "fashion-mnist": "install it with `apt-get install dataset-fashion-mnist` or set data_dir to a folder holding "
    "its four IDX files",
    "mnist": "set data_dir to a folder holding MNIST's four IDX files",
}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_MAX_DIMS = 4  # (N, H, W, C) at most; images are (N, H, W), labels (N,)
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@register_format
class IdxFormat(DatasetFormat):
    name = "idx"
    summary = "fashion-mnist or mnist, read from IDX files"
    names = tuple(IDX_DATASETS)

    def load(self, argument: str, data_dir: Path | None, test_only: bool) -> Dataset:
        """test_only: the training split is not read (train None)."""
        folder = find_idx_folder(argument, data_dir)
        train = None if test_only else read_idx_split(folder, *IDX_FILES["train"])
        return Dataset(argument, IDX_DATASETS[argument], train, read_idx_split(folder, *IDX_FILES["test"]))


def find_idx_folder(name: str, data_dir: Path | None) -> Path:
    """The folder that holds the test images of dataset `name`: `data_dir` when given (it must hold them: a folder
    named on purpose is never silently replaced by another), else the first of $EVALUATOR_DATA_DIR(/name) and
    /usr/share/datasets/name that does."""
    if data_dir is not None:
        if find_idx_file(Path(data_dir), IDX_FILES["test"][0]) is None:
            raise EvaluatorError(f"data_dir {data_dir} holds no {IDX_FILES['test'][0]} (raw or .gz) of {name!r}: "
                                 f"{HOW_TO_GET[name]}", field="data_dir")
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
    """Images (N, H, W) uint8 and labels (N,) -> x (N, 1, H, W) float32 in [0, 1], y (N,) int64."""
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
