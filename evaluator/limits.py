"""Size bounds checked before any array is made: a careless or hostile graph, file or option gets one line, not
an allocation of petabytes. Pure Python, so that policies and reports can use them without ONNX or torch."""

from __future__ import annotations

import math

from evaluator.errors import EvaluatorError

MAX_INPUT_VALUES = 1 << 24  # C x H x W of one input: 64 MiB as float32 (3 x 2048 x 2048 fits)
MAX_BATCH = 1 << 16  # samples in one run: batch size, latency and throughput batches, a policy's batches
MAX_BATCH_BYTES = 1 << 32  # one float32 batch, batch x C x H x W x 4 bytes: 4 GiB
MAX_THREADS = 1024  # ONNX Runtime intra-op threads
MAX_DEVICES = 64  # GPU numbers ONNX Runtime's CUDA EP is given (device_id)
MAX_CLASSES = 100_000  # classes of a dataset or a classifier
# Counts far past any real use are typos that would run for years: refused with one line instead.
MAX_ATTACK_COUNT = 1_000_000  # an attack's whole-number option (steps, queries, evaluations, restarts, pixels)
MAX_EPOCHS = 10_000  # training or fine-tuning epochs
MAX_BUDGETS = 1_000  # epsilons of one norm in one assessment


def check_device(device_id: object) -> int:
    """A GPU number for ONNX Runtime's CUDA EP: a whole number from 0 to MAX_DEVICES - 1."""
    if isinstance(device_id, bool) or not isinstance(device_id, int) or not 0 <= device_id < MAX_DEVICES:
        raise EvaluatorError(f"device must be a GPU number from 0 to {MAX_DEVICES - 1}, got {device_id}", field="device")
    return device_id


def check_batch(batch: int, input_shape: tuple[int, ...], what: str, field: str | None = None) -> int:
    """`batch` when a float32 batch of `batch` inputs of input_shape (C, H, W) is at most MAX_BATCH samples and
    MAX_BATCH_BYTES; else an EvaluatorError naming `what` ("batch size", "latency batch", ...), the value and the limit
    (`field`: the setting at fault, when `what` is its name)."""
    if batch < 1:
        raise EvaluatorError(f"{what} must be at least 1, got {batch}", field)
    if batch > MAX_BATCH:
        raise EvaluatorError(f"{what} {batch:,} is over the limit of {MAX_BATCH:,} samples", field)
    values = math.prod(input_shape)
    if batch * values * 4 > MAX_BATCH_BYTES:
        shape = "x".join(str(d) for d in input_shape)
        raise EvaluatorError(f"{what} {batch:,} of {shape} float32 inputs takes {batch * values * 4 / 2**30:.1f} GiB, over "
                             f"the limit of {MAX_BATCH_BYTES / 2**30:g} GiB (at most {MAX_BATCH_BYTES // (values * 4):,} such inputs)",
                             field)
    return batch
