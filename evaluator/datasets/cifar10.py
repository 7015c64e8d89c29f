"""CIFAR-10 in its binary version (cifar-10-binary.tar.gz): never the pickled Python version, as unpickling runs code.

The dataset argument is either the name "cifar10", read from data_dir (else $EVALUATOR_DATA_DIR), or the path of
a folder. Either folder may be `cifar-10-batches-bin` itself (as the tarball extracts) or hold it. The folder holds
`test_batch.bin` and, unless only the test split is wanted, `data_batch_1.bin` .. `data_batch_5.bin`: records of
3073 bytes, one label byte (0-9) and a 32x32 RGB image stored channel-major (1024 R, 1024 G, 1024 B bytes, each
channel row by row). An optional `batches.meta.txt` names the 10 classes, one a line.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from evaluator.datasets.base import MAX_DATASET_BYTES, DatasetFormat, register_format
from evaluator.datasets.idx import DATA_DIR_ENV
from evaluator.datasets.types import Dataset, Split
from evaluator.errors import EvaluatorError

CIFAR10_NAME = "cifar10"
CIFAR10_FOLDER = "cifar-10-batches-bin"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TRAIN_FILES = tuple(f"data_batch_{index}.bin" for index in range(1, 6))
TEST_FILE = "test_batch.bin"
META_FILE = "batches.meta.txt"
MAX_META_BYTES = 1 << 16
IMAGE_SHAPE = (3, 32, 32)
RECORD_BYTES = 1 + 3 * 32 * 32  # one label byte, then the pixels
# Files of the pickled Python version (cifar-10-python.tar.gz), recognised only to say that they are never read.
PICKLED_FILES = ("test_batch", "data_batch_1", "batches.meta", "cifar-10-batches-py")
HOW_TO_GET = "use the binary version of CIFAR-10 (cifar-10-binary.tar.gz, which extracts to cifar-10-batches-bin)"


@register_format
class Cifar10Format(DatasetFormat):
    name = "cifar10"
    summary = f"cifar10 from data_dir, or a folder of CIFAR-10 binary batches ({CIFAR10_FOLDER})"
    names = (CIFAR10_NAME,)

    def recognises(self, argument: str) -> bool:
        """The name cifar10, or a folder holding CIFAR-10 batches (binary or, to refuse them, pickled)."""
        if argument in self.names:
            return True
        try:
            folder = Path(argument)
            return argument != "" and folder.is_dir() and any((folder / name).exists()
                                           for name in (TEST_FILE, TRAIN_FILES[0], CIFAR10_FOLDER, *PICKLED_FILES))
        except OSError:
            return False

    def load(self, argument: str, data_dir: Path | None, test_only: bool) -> Dataset:
        """x (N, 3, 32, 32) float32 in [0, 1], y (N,) int64 in 0..9; test_only: only test_batch.bin is read."""
        folder, field = find_cifar10_folder(argument, data_dir)
        train = None if test_only else read_cifar10_batches(folder, TRAIN_FILES, field)
        test = read_cifar10_batches(folder, (TEST_FILE,), field)
        return Dataset(argument, read_class_names(folder), train, test)


def find_cifar10_folder(argument: str, data_dir: Path | None) -> tuple[Path, str]:
    """The folder of the batches and the setting that named it ("dataset" or "data_dir"): the argument when it is
    a path, else data_dir, else the first of $EVALUATOR_DATA_DIR/{cifar-10-batches-bin,cifar10,.} that holds them."""
    if argument != CIFAR10_NAME:
        return batches_folder(Path(argument), "dataset"), "dataset"
    if data_dir is not None:
        return batches_folder(Path(data_dir), "data_dir"), "data_dir"
    if os.environ.get(DATA_DIR_ENV):
        env_dir = Path(os.environ[DATA_DIR_ENV])
        for folder in (env_dir / CIFAR10_FOLDER, env_dir / CIFAR10_NAME, env_dir):
            if (folder / TEST_FILE).is_file() or (folder / CIFAR10_FOLDER / TEST_FILE).is_file():
                return batches_folder(folder, "data_dir"), "data_dir"
    raise EvaluatorError(f"dataset {CIFAR10_NAME!r} not found: set data_dir to the folder {CIFAR10_FOLDER} "
                         f"(or ${DATA_DIR_ENV}), and {HOW_TO_GET}")


def batches_folder(folder: Path, field: str) -> Path:
    """`folder`, or its subfolder cifar-10-batches-bin, when it holds test_batch.bin; a pickled version: an error."""
    if (folder / CIFAR10_FOLDER).is_dir():
        folder = folder / CIFAR10_FOLDER
    if (folder / TEST_FILE).is_file():
        return folder
    pickled = [name for name in PICKLED_FILES if (folder / name).exists()]
    if pickled:
        raise EvaluatorError(f"{field} {folder} holds the pickled Python version of CIFAR-10 ({pickled[0]}), which is "
                             f"never read as unpickling runs code: {HOW_TO_GET}", field=field)
    raise EvaluatorError(f"{field} {folder} holds no {TEST_FILE} of CIFAR-10: {HOW_TO_GET}", field=field)


def read_cifar10_batches(folder: Path, names: tuple[str, ...], field: str) -> Split:
    """The batch files `names` of folder, one after another -> x (N, 3, 32, 32) float32 in [0, 1], y (N,) int64.
    Every file's size is checked (whole records, none empty, all together at most MAX_DATASET_BYTES) first."""
    paths = [folder / name for name in names]
    for path in paths:
        if not path.is_file():
            raise EvaluatorError(f"{field} {folder} lacks {path.name} of CIFAR-10's binary version", field=field)
    sizes = [path.stat().st_size for path in paths]
    for path, size in zip(paths, sizes):
        if size == 0:
            raise EvaluatorError(f"{path} holds no images")
        if size % RECORD_BYTES:
            raise EvaluatorError(f"{path}: its {size:,} bytes are not whole CIFAR-10 records of {RECORD_BYTES} bytes "
                                 "(a label byte and 3072 pixel bytes)")
    if sum(sizes) > MAX_DATASET_BYTES:
        raise EvaluatorError(f"{folder}: batch files {', '.join(names)} hold {sum(sizes):,} bytes in all, over the "
                             f"limit of {MAX_DATASET_BYTES:,} bytes per dataset")
    count = sum(sizes) // RECORD_BYTES
    x = np.empty((count, *IMAGE_SHAPE), np.float32)
    y = np.empty(count, np.int64)
    start = 0
    for path, size in zip(paths, sizes):
        try:
            records = np.fromfile(path, np.uint8, count=size)
        except OSError as error:
            raise EvaluatorError(f"cannot read {path}: {error}") from None
        if records.size != size:
            raise EvaluatorError(f"{path} changed while it was read: {records.size:,} bytes, expected {size:,}")
        records = records.reshape(-1, RECORD_BYTES)
        labels = records[:, 0]
        if int(labels.max()) >= len(CIFAR10_CLASSES):
            bad = int(np.argmax(labels >= len(CIFAR10_CLASSES)))
            raise EvaluatorError(f"{path}: record {bad} has label {int(labels[bad])}, expected 0 to "
                                 f"{len(CIFAR10_CLASSES) - 1}")
        end = start + records.shape[0]
        x[start:end] = records[:, 1:].reshape(-1, *IMAGE_SHAPE)
        y[start:end] = labels
        start = end
    x /= np.float32(255.0)
    return Split(x, y)


def encode_records(x: np.ndarray, y: np.ndarray) -> bytes:
    """The bytes of a batch file holding x (N, 3, 32, 32) uint8 with labels y (N,) in 0..9 (read_cifar10_batches'
    inverse), for writing data in this format."""
    if x.dtype != np.uint8 or x.shape[1:] != IMAGE_SHAPE or len(x) != len(y) or (len(y) and int(np.max(y)) > 9):
        raise ValueError(f"CIFAR-10 records hold (N, 3, 32, 32) uint8 images with labels 0-9, got {x.dtype} {x.shape}")
    return np.concatenate([np.asarray(y, np.uint8)[:, None], x.reshape(len(x), -1)], axis=1).tobytes()


def write_batches(folder: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                  classes: tuple[str, ...] = CIFAR10_CLASSES) -> None:
    """Images (N, 3, 32, 32) uint8 and labels in this format in `folder` (made if needed): the training pairs spread
    over the five batch files, the test pair in test_batch.bin, the class names in batches.meta.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in zip(TRAIN_FILES, np.array_split(np.arange(len(train[1])), len(TRAIN_FILES))):
        (folder / name).write_bytes(encode_records(train[0][part], train[1][part]))
    (folder / TEST_FILE).write_bytes(encode_records(*test))
    (folder / META_FILE).write_text("".join(f"{name}\n" for name in classes), encoding="utf-8")


def read_class_names(folder: Path) -> tuple[str, ...]:
    """The 10 names of batches.meta.txt (one a line, blank lines ignored), else CIFAR-10's own."""
    path = folder / META_FILE
    if not path.is_file():
        return CIFAR10_CLASSES
    if path.stat().st_size > MAX_META_BYTES:
        raise EvaluatorError(f"{path} is over {MAX_META_BYTES:,} bytes: it should name 10 classes, one a line")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise EvaluatorError(f"cannot read {path}: {error}") from None
    names = tuple(line.strip() for line in lines if line.strip())
    if len(names) != len(CIFAR10_CLASSES):
        raise EvaluatorError(f"{path} names {len(names)} classes, expected {len(CIFAR10_CLASSES)} (one a line)")
    return names
