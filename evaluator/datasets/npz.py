"""A user's own `.npz` file: its arrays checked by their headers before any is read, never a pickle."""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from evaluator.datasets.base import MAX_DATASET_BYTES, DatasetFormat, register_format
from evaluator.datasets.types import Dataset, Split
from evaluator.errors import EvaluatorError
from evaluator.limits import MAX_CLASSES

NPZ_ARRAYS = ("x", "y", "x_train", "y_train", "x_test", "y_test", "classes")  # the arrays load_npz reads


@register_format
class NpzFormat(DatasetFormat):
    name = "npz"
    summary = "a path to a .npz file"
    suffixes = (".npz",)

    def load(self, argument: str, data_dir: Path | None, test_only: bool) -> Dataset:
        """Both splits as the file holds them; data_dir and test_only are not used."""
        return load_npz(Path(argument))


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
    """x as to_nchw_unit takes it, y (N,) integer labels >= 0 -> a Split."""
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
