# CPU image by default:   docker build -t evaluator .
# CUDA image:             docker build -t evaluator:gpu --build-arg RUNTIME=gpu \
#                           --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 .
# Run:                    docker run --rm evaluator assess /app/models/lenet5_fmnist.onnx
#                         docker run --rm --gpus all evaluator:gpu assess /app/models/lenet5_fmnist.onnx --provider cuda
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
# cpu installs onnxruntime, gpu installs onnxruntime-gpu: exactly one of them ends up in the image.
ARG RUNTIME=cpu
# torch is pinned like the README's install; pass another spec (or an index with CPU wheels) to change it.
ARG TORCH_SPEC=torch==2.13.0

ENV PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && (command -v python3 >/dev/null || apt-get install -y --no-install-recommends python3 python3-venv) \
 && (python3 -m venv --help >/dev/null 2>&1 || apt-get install -y --no-install-recommends python3-venv) \
 && (apt-get install -y --no-install-recommends dataset-fashion-mnist \
     || echo "dataset-fashion-mnist is not packaged for this base: mount the IDX files and set EVALUATOR_DATA_DIR") \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app
COPY pyproject.toml README.md ./
COPY evaluator evaluator
COPY exporters exporters
COPY models models
RUN pip install "${TORCH_SPEC}" && pip install ".[${RUNTIME},torch,report]"

RUN useradd --create-home --uid 10001 evaluator
USER evaluator
WORKDIR /home/evaluator
ENTRYPOINT ["evaluator"]
CMD ["assess", "/app/models/lenet5_fmnist.onnx"]
