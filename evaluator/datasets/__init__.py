"""Datasets as float32 NCHW arrays in [0, 1] with int64 labels, behind one registry of formats (no torch needed);
importing this package registers the built-in formats: one module each."""

from evaluator.datasets.base import (
    DatasetFormat, dataset_record, find_format, list_formats, load_dataset, recorded_dataset, register_format,
)
from evaluator.datasets.types import Dataset, Split, train_validation_split
# registration, in the order load_dataset asks them
from evaluator.datasets import idx, npz, cifar10, image_folder  # noqa: F401

__all__ = ["Dataset", "DatasetFormat", "Split", "dataset_record", "find_format", "list_formats", "load_dataset",
           "recorded_dataset", "register_format", "train_validation_split"]
