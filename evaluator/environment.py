"""Where the numbers were measured: versions, CPU, GPU, threads."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from importlib import metadata
from typing import Any

import evaluator


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> list[str]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def environment_record(threads: int) -> dict[str, Any]:
    import os

    ort_distributions = [name for name in ("onnxruntime", "onnxruntime-gpu") if package_version(name)]
    record: dict[str, Any] = {
        "evaluator": evaluator.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "gpus": gpu_names(),
        "threads": threads,
        "packages": {name: package_version(name) for name in ("numpy", "onnx", *ort_distributions, "torch", "torch-pruning")},
    }
    if len(ort_distributions) > 1:
        record["warning"] = "both onnxruntime and onnxruntime-gpu are installed; uninstall one"
    return record
