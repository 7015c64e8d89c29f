#!/usr/bin/env bash
# Set up the evaluator in ./.venv: torch 2.13.0 (CPU wheel), the package with its torch and test extras,
# ONNX Runtime (EVALUATOR_RUNTIME=gpu installs onnxruntime-gpu instead of onnxruntime), and
# Fashion-MNIST from Debian's dataset-fashion-mnist package. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
runtime=${EVALUATOR_RUNTIME:-cpu}
case "$runtime" in cpu|gpu) ;; *) echo "EVALUATOR_RUNTIME must be cpu or gpu, got '$runtime'" >&2; exit 2 ;; esac

if [ ! -d /usr/share/datasets/fashion-mnist ] && [ -z "${EVALUATOR_DATA_DIR:-}" ]; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else sudo="none"; fi
  if [ "$sudo" = none ]; then
    echo "Fashion-MNIST is missing: run 'apt-get install dataset-fashion-mnist' as root, or set EVALUATOR_DATA_DIR" >&2
  else
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0
other=$([ "$runtime" = cpu ] && echo onnxruntime-gpu || echo onnxruntime)
.venv/bin/python -m pip uninstall -q -y "$other" 2>/dev/null || true  # exactly one ONNX Runtime
.venv/bin/python -m pip install -q -e ".[$runtime,torch,dev]"
.venv/bin/python -m pip install -q --no-deps torchattacks  # test-only reference; it declares torchvision, which it does not need
echo "evaluator installed in .venv (ONNX Runtime: $runtime)"
