"""The dataset format contract and registry, and the size bounds every format's reader keeps.

A format takes a `dataset` argument - a known name ("fashion-mnist") or a path (".npz") - and loads it into a
Dataset. load_dataset asks the registered formats, in registration order, which one recognises the argument.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import IO, ClassVar

from evaluator.datasets.types import Dataset
from evaluator.errors import EvaluatorError

# Bytes of stored data that one dataset file (an IDX file, or all the arrays read from one .npz) may hold, checked
# against its header before anything is read or decompressed. uint8 images grow 4x as float32 NCHW, so 4 GiB of
# them become 16 GiB: about the most a 24 GiB machine holds with the stored copy. EMNIST, the largest MNIST-format
# set, stores 0.6 GiB; CIFAR-10 0.2 GiB.
MAX_DATASET_BYTES = 1 << 32
READ_CHUNK = 1 << 24  # bytes per read of a (possibly gzipped) file: reading never asks for more at once


class DatasetFormat(ABC):
    """One way to read a dataset. Subclasses set the class attributes and `load`; `@register_format` makes them
    known to load_dataset."""

    name: ClassVar[str]  # the format's name in the list of known formats: "idx", "npz"
    summary: ClassVar[str]  # the arguments it takes, for that list: "a path to a .npz file"
    names: ClassVar[tuple[str, ...]] = ()  # dataset names it serves: "fashion-mnist", "mnist"
    suffixes: ClassVar[tuple[str, ...]] = ()  # endings of the file paths it reads: ".npz"

    def recognises(self, argument: str) -> bool:
        """Whether the `dataset` argument is this format's: one of `names`, or a path ending in one of `suffixes`.
        A format recognised by a folder's layout overrides this."""
        return argument in self.names or argument.endswith(self.suffixes)

    @abstractmethod
    def load(self, argument: str, data_dir: Path | None, test_only: bool) -> Dataset:
        """The dataset: x (N, C, H, W) float32 in [0, 1], y (N,) int64 per split. data_dir: a folder to read named
        datasets from (checked to be a folder); test_only: the training split may be left out (train None)."""

    def load_for(self, argument: str, data_dir: Path | None, test_only: bool,
                 input_shape: tuple[int, int, int] | None) -> Dataset:
        """`load`, told the (C, H, W) of the model's inputs when the caller knows it: a format that decodes and
        resizes images (image-folder) makes them that shape; the others load what is stored (the caller checks)."""
        return self.load(argument, data_dir, test_only)


FORMATS: dict[str, DatasetFormat] = {}


def register_format(cls: type[DatasetFormat]) -> type[DatasetFormat]:
    """Class decorator: make format `cls` known to load_dataset under `cls.name`."""
    if cls.name in FORMATS:
        raise ValueError(f"dataset format {cls.name!r} registered twice")
    taken = sorted(name for fmt in FORMATS.values() for name in fmt.names if name in cls.names)
    if taken:
        raise ValueError(f"dataset format {cls.name!r}: dataset names {taken} belong to another format")
    FORMATS[cls.name] = cls()
    return cls


def list_formats() -> list[DatasetFormat]:
    return [FORMATS[name] for name in sorted(FORMATS)]


def find_format(argument: str) -> DatasetFormat:
    """The first registered format that recognises the `dataset` argument; none: an error listing the formats."""
    for fmt in FORMATS.values():
        if fmt.recognises(argument):
            return fmt
    known = ", ".join(f"{fmt.name} ({fmt.summary})" for fmt in list_formats())
    raise EvaluatorError(f"unknown dataset {argument!r}: expected one of the formats {known}", field="dataset")


def load_dataset(name: str, data_dir: Path | None = None, test_only: bool = False,
                 input_shape: tuple[int, int, int] | None = None) -> Dataset:
    """Load the dataset `name` (a known name such as `fashion-mnist`, or a path such as a `.npz` file) through its
    format. `data_dir`, when given, must be a folder even where the format does not use it. test_only: a format may
    leave out the training split (train None), for evaluation. input_shape: the model's (C, H, W), for formats that
    resize images to fit it (DatasetFormat.load_for)."""
    if data_dir is not None and not Path(data_dir).is_dir():
        raise EvaluatorError(f"data_dir {data_dir} is not a folder", field="data_dir")
    return find_format(name).load_for(name, data_dir, test_only, input_shape)


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


def dataset_record(name: str, folder: Path) -> str:
    """How an artifact written to `folder` records the dataset `name`: a known name as it is, a file or folder by its
    path relative to `folder` (so the artifacts can move with their data, and be read from any working folder)."""
    path = Path(name)
    if not path.exists():
        return name
    return os.path.relpath(path.resolve(), Path(folder).resolve())


def recorded_dataset(name: str, artifact: Path) -> str:
    """The dataset an artifact's metadata names, as load_dataset takes it: a path relative to the artifact's folder
    when one exists there, else the name as it is (a known name, or a path from before relative records)."""
    beside = Path(artifact).parent / name
    return os.path.normpath(beside) if not Path(name).is_absolute() and beside.exists() else name
