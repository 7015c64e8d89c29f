"""Build-time check of the image's environment: `python check_image.py cpu|gpu` fails the build on a mismatch.

cpu: torch is a CPU-only build (PyPI's torch is the CUDA build, ~4 GB of NVIDIA libraries a CPU image does not use)
     and onnxruntime is the one ONNX Runtime.
gpu: onnxruntime-gpu is the one ONNX Runtime, torch's CUDA major is the one onnxruntime-gpu was built for, and
     onnxruntime.preload_dlls() loads every CUDA and cuDNN library that onnxruntime-gpu's CUDA provider needs from
     torch's nvidia-* wheels, so the CUDA EP cannot fall back to the CPU for a missing library. The driver's
     libcuda.so.1 and the GPU can only be checked when the image runs (--gpus all).
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

DRIVER_LIBRARY = "libcuda.so.1"  # comes with the NVIDIA driver when the container runs with --gpus all
CUDNN_LIBRARY = "libcudnn.so.9"  # onnxruntime-gpu 1.27 and later is a cuDNN 9 build; it loads cuDNN when it needs it


def installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def problems(runtime: str) -> list[str]:
    import onnxruntime
    import torch

    found = []
    runtimes = {name: installed(name) for name in ("onnxruntime", "onnxruntime-gpu")}
    wanted = "onnxruntime" if runtime == "cpu" else "onnxruntime-gpu"
    if [name for name, version in runtimes.items() if version] != [wanted]:
        found.append(f"expected {wanted} alone, found {runtimes}")
    torch_cuda = torch.version.cuda
    if runtime == "cpu":
        if torch_cuda:
            found.append(f"torch {torch.__version__} is a CUDA {torch_cuda} build: install a CPU-only torch "
                         "(TORCH_INDEX or a wheel in docker/wheels/)")
        return found
    from onnxruntime.capi import build_and_package_info

    ort_cuda = getattr(build_and_package_info, "cuda_version", "")
    if not torch_cuda or torch_cuda.split(".")[0] != ort_cuda.split(".")[0]:
        found.append(f"torch {torch.__version__} (CUDA {torch_cuda}) and onnxruntime-gpu {onnxruntime.__version__} "
                     f"(CUDA {ort_cuda}) disagree on the CUDA major version")
        return found
    onnxruntime.preload_dlls()  # as the evaluator does before it starts the CUDA EP
    loaded = {Path(line.split()[-1]).name for line in Path("/proc/self/maps").read_text().splitlines() if "/" in line}
    provider = Path(onnxruntime.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
    ldd = subprocess.run(["ldd", str(provider)], capture_output=True, text=True, check=True).stdout
    needed = {line.split()[0] for line in ldd.splitlines() if "not found" in line} - {DRIVER_LIBRARY}
    missing = sorted((needed | {CUDNN_LIBRARY}) - loaded)
    if missing:
        found.append(f"onnxruntime-gpu's CUDA provider needs {', '.join(missing)}, which onnxruntime.preload_dlls() "
                     "did not load")
    return found


def main() -> int:
    runtime = sys.argv[1] if len(sys.argv) == 2 else ""
    if runtime not in ("cpu", "gpu"):
        print("usage: check_image.py cpu|gpu", file=sys.stderr)
        return 2
    found = problems(runtime)
    for problem in found:
        print(f"check_image: {problem}", file=sys.stderr)
    if not found:
        import onnxruntime
        import torch

        print(f"check_image: {runtime} image: torch {torch.__version__} (CUDA {torch.version.cuda}), "
              f"onnxruntime {onnxruntime.__version__} {onnxruntime.get_available_providers()}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
