"""Where the numbers were measured: versions, CPU, GPU, threads."""

from __future__ import annotations

import platform
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


INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "avx512f", "avx2", "asimddp")  # /proc/cpuinfo names
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # int8 dot products without the 16-bit saturation of AVX2


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def int8_instructions() -> dict[str, Any]:
    """What this CPU offers int8 kernels: the flags of INT8_FLAGS it has, and whether it has VNNI."""
    flags = cpu_flags()
    return {"flags": [flag for flag in INT8_FLAGS if flag in flags], "vnni": any(flag in flags for flag in VNNI_FLAGS),
            "x86": platform.machine().lower() in ("x86_64", "amd64", "i686")}


def gpu_names() -> list[str]:
    from evaluator.cuda_libraries import nvidia_smi

    out = nvidia_smi("--query-gpu=name", "--format=csv,noheader", timeout_s=10) or ""
    return [line.strip() for line in out.splitlines() if line.strip()]


def environment_record(threads: int) -> dict[str, Any]:
    import os

    ort_distributions = [name for name in ("onnxruntime", "onnxruntime-gpu") if package_version(name)]
    record: dict[str, Any] = {
        "evaluator": evaluator.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "node": platform.node(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "cpu_int8": int8_instructions(),
        "gpus": gpu_names(),
        "threads": threads,
        "packages": {name: package_version(name) for name in ("numpy", "onnx", *ort_distributions, "torch", "torch-pruning")},
    }
    if len(ort_distributions) > 1:
        record["warning"] = "both onnxruntime and onnxruntime-gpu are installed; uninstall one"
    return record
