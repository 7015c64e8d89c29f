"""The libraries ONNX Runtime's CUDA EP needs, and why it did not start when it did not.

onnxruntime-gpu does not bundle CUDA or cuDNN: its CUDA provider library is loaded when a session asks for the CUDA
EP, and the dynamic loader must find libcudart, libcublas(Lt), libcudnn of the CUDA major it was built for. The NVIDIA
pip packages (nvidia-*-cu13, as torch's CUDA build installs them) are not on the loader's path; preload_dlls() loads
them first. When the EP still falls back to the CPU, ONNX Runtime only logs the cause: loading its provider library
here gives the loader's own message, which names the missing library.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from evaluator.errors import first_line

CUDA_PROVIDER_LIBRARY = "libonnxruntime_providers_cuda.so"
SHARED_PROVIDER_LIBRARY = "libonnxruntime_providers_shared.so"
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # preload_dlls() colours its warnings
DRIVER_HINT = "a GPU and an NVIDIA driver new enough for the CUDA major version this onnxruntime-gpu was built for"


@functools.lru_cache(maxsize=1)
def preload_cuda_libraries() -> str:
    """Load CUDA and cuDNN for the CUDA EP through onnxruntime.preload_dlls() (onnxruntime-gpu 1.21 and later): from
    torch's CUDA build or the nvidia-* pip packages. '' when it ran quietly, else what it said (a library it could
    not load) or why it could not run."""
    import onnxruntime

    preload = getattr(onnxruntime, "preload_dlls", None)
    if preload is None:
        return f"onnxruntime {onnxruntime.__version__} has no preload_dlls(): CUDA and cuDNN must be on the loader's path"
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            preload()
    except Exception as error:  # an OSError from ctypes, or anything the helper raises
        return f"onnxruntime.preload_dlls() failed: {first_line(error)}"
    lines = [ANSI_COLOUR.sub("", line).strip() for line in said.getvalue().splitlines() if line.strip()]
    return f"onnxruntime.preload_dlls(): {lines[0]}" if lines else ""


def provider_library(onnxruntime: Any) -> Path:
    """Where onnxruntime-gpu keeps its CUDA provider library (beside its Python bindings)."""
    return Path(onnxruntime.__file__).parent / "capi" / CUDA_PROVIDER_LIBRARY


def cuda_failure_reason(onnxruntime: Any, loader: Any = ctypes.CDLL) -> str:
    """Why the CUDA EP did not start, as far as the dynamic loader can tell: the library it could not find or load
    ('libcublasLt.so.13: cannot open shared object file ...'), else that the libraries load and the fault lies in the
    GPU or driver."""
    library = provider_library(onnxruntime)
    if not library.is_file():
        return f"{library.name} is not in this onnxruntime ({onnxruntime.__version__}): install onnxruntime-gpu"
    try:
        loader(str(library.with_name(SHARED_PROVIDER_LIBRARY)), mode=ctypes.RTLD_GLOBAL)
        loader(str(library))
    except OSError as error:
        return f"a library it needs is missing: {first_line(error)}"
    return f"its libraries load, so the fault is elsewhere: it needs {DRIVER_HINT}"


def nvidia_smi(*arguments: str, timeout_s: float = 20) -> str | None:
    """nvidia-smi's output for `arguments`; None where it is absent, fails or takes over `timeout_s` seconds."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        done = subprocess.run([smi, *arguments], capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def visible_gpu_count() -> int | None:
    """GPUs CUDA programs see here: nvidia-smi's list, narrowed by CUDA_VISIBLE_DEVICES (None without nvidia-smi)."""
    listed = nvidia_smi("-L")
    if listed is None:
        return None
    count = sum(1 for line in listed.splitlines() if line.startswith("GPU "))
    visible = visible_devices()
    return count if visible is None else min(count, len(visible))


def visible_devices() -> list[str] | None:
    """The GPUs CUDA_VISIBLE_DEVICES names (indices or UUIDs), in CUDA's numbering; None where it is not set."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return None if visible is None else [entry.strip() for entry in visible.split(",") if entry.strip()]


@functools.lru_cache(maxsize=16)
def gpu_name(device_id: int) -> str | None:
    """The name of CUDA device `device_id` from nvidia-smi (None where it is absent or fails). The number counts the
    GPUs CUDA_VISIBLE_DEVICES leaves visible, as ONNX Runtime's device_id does; nvidia-smi counts them all."""
    visible = visible_devices()
    if visible is not None and device_id >= len(visible):
        return None
    target = str(device_id) if visible is None else visible[device_id]  # an index or a UUID: nvidia-smi --id takes both
    lines = (nvidia_smi("--query-gpu=name", "--format=csv,noheader", f"--id={target}") or "").strip().splitlines()
    return lines[0].strip() if lines else None
