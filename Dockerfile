# The evaluator in a container (README, "Docker"):
#   docker build -t evaluator --build-arg RUNTIME=cpu .       CPU image: CPU-only torch, onnxruntime
#   docker build -t evaluator:gpu --build-arg RUNTIME=gpu .   CUDA image: torch's CUDA 13 build from PyPI, whose
#       nvidia-* wheels (CUDA 13, cuDNN 9) onnxruntime-gpu (a CUDA 13 / cuDNN 9 build) loads through
#       onnxruntime.preload_dlls(); run it with --gpus all on an NVIDIA driver >= 580 (CUDA 13's floor).
# Versions come from constraints.txt, the file ./install.sh installs with. For a CPU build that cannot reach the
# torch index, put the CPU wheel in docker/wheels/. docker/smoke.sh builds and checks the image.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- build: the virtual environment /opt/venv; pip's downloads, local wheels and build tools stay in this stage
FROM ${BASE_IMAGE} AS build
# cpu installs onnxruntime, gpu installs onnxruntime-gpu: exactly one of them ends up in the image.
ARG RUNTIME=cpu
# RUNTIME=cpu takes torch from a torch-*.whl put in docker/wheels/ if there is one, else from this index of CPU-only
# wheels (PyPI's torch is the CUDA build, ~4 GB of NVIDIA libraries). RUNTIME=gpu takes PyPI's torch.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG DEBIAN_FRONTEND=noninteractive
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN case "$RUNTIME" in cpu|gpu) ;; *) echo "RUNTIME must be cpu or gpu, got '$RUNTIME'" >&2; exit 2 ;; esac
# python:3.11-slim has venv built in; a Debian python3 needs python3-venv (in this stage only).
RUN if ! python3 -c "import ensurepip" 2>/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends python3-venv && rm -rf /var/lib/apt/lists/*; \
    fi \
 && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY constraints.txt ./
COPY docker/wheels/ wheels/
RUN wheel=$(ls wheels/torch-*.whl 2>/dev/null | head -n 1); \
    if [ "$RUNTIME" = gpu ]; then pip install -c constraints.txt torch; \
    elif [ -n "$wheel" ]; then pip install -c constraints.txt "$wheel"; \
    else pip install -c constraints.txt --index-url "$TORCH_INDEX" torch; fi
COPY pyproject.toml README.md ./
COPY evaluator evaluator
COPY exporters exporters
RUN pip install -c constraints.txt ".[${RUNTIME},torch,report]"
COPY docker/check_image.py ./
RUN python check_image.py "$RUNTIME"

# ---- the image: the base, Fashion-MNIST, the environment, the zoo, the policies and the sweeps
FROM ${BASE_IMAGE}
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends dataset-fashion-mnist \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
# A non-root user; reports go to /out (mount a host folder there, README "Docker").
RUN useradd --create-home --uid 10001 evaluator && mkdir /out && chown evaluator /out
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MPLCONFIGDIR=/tmp/matplotlib
# Relative paths as in the README: models/..., policies/edge.toml, sweeps/small.toml (read-only; write under /out).
WORKDIR /app
COPY models models
COPY policies policies
COPY sweeps sweeps
USER evaluator
ENTRYPOINT ["evaluator"]
CMD ["assess", "models/lenet5_fmnist.onnx"]
