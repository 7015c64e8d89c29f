"""What every dataset format loads into: splits of float32 NCHW images in [0, 1] with int64 labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluator.errors import EvaluatorError


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
    """A named dataset: an optional training split and the test split used only for evaluation. split_note: how
    the format made the splits when the files do not say (a seeded share of one folder of images), else None."""

    name: str
    classes: tuple[str, ...]
    train: Split | None
    test: Split
    split_note: str | None = None

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
