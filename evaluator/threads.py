"""How many threads torch and ONNX Runtime use: one number, chosen once, for both.

Left to themselves, torch and ONNX Runtime each start one thread per core. On a machine whose cores are busy
with other work those threads spin against each other and the white-box attacks run several times slower than
with fewer threads (see README, "Threads"). The default here counts the cores this process may use (affinity mask
and a container's CPU quota) and leaves out those the machine's load already occupies.
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from evaluator.errors import EvaluatorError
from evaluator.limits import MAX_THREADS

CGROUP_V2_LIMIT = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


@dataclass(frozen=True)
class ThreadChoice:
    """`threads` for torch's intra-op pool and ONNX Runtime's; `reason` says where the number came from."""

    threads: int
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"threads": self.threads, "reason": self.reason}


def cgroup_cpu_limit() -> float | None:
    """CPUs a container's quota allows (cgroup v2 cpu.max, else v1 cfs quota / period); None when unlimited."""
    try:
        quota, period = CGROUP_V2_LIMIT.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us, period_us = int(CGROUP_V1_QUOTA.read_text()), int(CGROUP_V1_PERIOD.read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def available_cores() -> int:
    """Cores this process may run on: its affinity mask, capped by a container's CPU quota (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        cores = min(cores, max(1, math.floor(limit)))
    return max(1, cores)


def machine_load() -> float:
    """Runnable processes over the last minute (0 where the platform does not say)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def default_threads(cores: int | None = None, load: float | None = None) -> ThreadChoice:
    """The cores this process may use less those the machine's one-minute load keeps busy, at least 1."""
    cores = available_cores() if cores is None else cores
    load = machine_load() if load is None else load
    free = max(1, min(cores, cores - round(load)))
    return ThreadChoice(free, f"{cores} cores available, load {load:.1f}: {free} free")


def choose_threads(threads: int | None) -> ThreadChoice:
    """The requested thread count (1 to MAX_THREADS), else default_threads()."""
    if threads is None:
        return default_threads()
    if isinstance(threads, bool) or not 1 <= threads <= MAX_THREADS:
        raise EvaluatorError(f"threads must be a whole number from 1 to {MAX_THREADS}, got {threads}", field="threads")
    return ThreadChoice(threads, "--threads")


@contextmanager
def training_threads(threads: int | None) -> Iterator[ThreadChoice]:
    """For work that trains (train, prune, sweep): torch's intra-op pool gets the chosen count until the block ends;
    an assessment inside it (a sweep's) takes its own choice and gives torch this one back after."""
    choice = choose_threads(threads)
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(choice.threads)
    try:
        yield choice
    finally:
        torch.set_num_threads(before)


_chosen: int | None = None  # the count of the running assessment, for torch when it is imported later
_torch_before: int | None = None  # torch's own count before the assessment changed it


@contextmanager
def assessment_threads(threads: int | None) -> Iterator[ThreadChoice]:
    """The thread count for one assessment: ONNX Runtime sessions take `.threads` as their intra_op_num_threads;
    torch's intra-op pool gets it now if torch is loaded, else when a source model is loaded (apply_to_torch), so
    that an assessment with only score attacks never imports torch. Afterwards torch's count is restored: training in
    the same process (a sweep) keeps its own."""
    global _chosen, _torch_before
    choice = choose_threads(threads)
    _chosen, _torch_before = choice.threads, None
    try:
        if "torch" in sys.modules:
            apply_to_torch()
        yield choice
    finally:
        if _torch_before is not None:
            sys.modules["torch"].set_num_threads(_torch_before)
        _chosen, _torch_before = None, None


def apply_to_torch() -> None:
    """Give torch the count chosen for the running assessment (nothing outside one)."""
    global _torch_before
    if _chosen is not None:
        import torch

        if _torch_before is None:
            _torch_before = torch.get_num_threads()
        torch.set_num_threads(_chosen)
