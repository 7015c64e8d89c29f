#!/usr/bin/env bash
# Set up the evaluator in ./.venv: torch 2.13.0 (CPU wheel), the package with its torch, report and test extras,
# at the versions pinned in constraints.txt (shared with the Dockerfile),
# ONNX Runtime (EVALUATOR_RUNTIME=gpu installs onnxruntime-gpu instead of onnxruntime), Fashion-MNIST from
# Debian's dataset-fashion-mnist package and, for the HTML report's browser test, Debian's chromium and
# chromium-driver (skipped with EVALUATOR_NO_BROWSER=1). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
runtime=${EVALUATOR_RUNTIME:-cpu}
case "$runtime" in cpu|gpu) ;; *) echo "EVALUATOR_RUNTIME must be cpu or gpu, got '$runtime'" >&2; exit 2 ;; esac

packages=()
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ -z "${EVALUATOR_DATA_DIR:-}" ]; then packages+=(dataset-fashion-mnist); fi
if [ -z "${EVALUATOR_NO_BROWSER:-}" ] && ! command -v chromedriver >/dev/null; then packages+=(chromium chromium-driver); fi
if [ ${#packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else sudo="none"; fi
  if [ "$sudo" = none ]; then
    echo "missing Debian packages: run 'apt-get install ${packages[*]}' as root (or set EVALUATOR_DATA_DIR / EVALUATOR_NO_BROWSER=1)" >&2
  else
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt torch
other=$([ "$runtime" = cpu ] && echo onnxruntime-gpu || echo onnxruntime)
.venv/bin/python -m pip uninstall -q -y "$other" 2>/dev/null || true  # exactly one ONNX Runtime
.venv/bin/python -m pip install -q -c constraints.txt -e ".[$runtime,torch,report,dev]"
.venv/bin/python -m pip install -q --no-deps torchattacks  # test-only reference; it declares torchvision, which it does not need
echo "evaluator installed in .venv (ONNX Runtime: $runtime)"
