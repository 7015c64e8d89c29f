#!/usr/bin/env bash
# Build the evaluator's image and check it with the commands of the README's "Docker" section, as written there
# (tests/test_container.py keeps the two the same): an assessment of the zoo's LeNet-5, a sign-off against
# policies/edge.toml whose reports land in a mounted folder, the image's size, and on a machine with an NVIDIA GPU
# an assessment on the CUDA EP.
#   bash docker/smoke.sh [--runtime cpu|gpu] [--tag IMAGE] [--engine docker|podman]
# The image is evaluator (cpu) or evaluator:gpu (gpu) unless --tag names another. The engine is docker where
# `docker info` works, else podman. EXTRA_BUILD_OPTS adds options to the build (for a machine whose proxy needs its
# CA certificate inside the build, with podman: "-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro
# -v $HOME/pip.conf:/etc/pip.conf:ro"). Exit 0: passed; 1: a check failed; 77: no working container engine.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runtime=cpu image="" engine=""
max_cpu_bytes=2000000000  # 2 GB: a CUDA build of torch makes the CPU image 5.6 GB
while [ $# -gt 0 ]; do
  case "$1" in
    --runtime) runtime=$2; shift 2 ;;
    --tag) image=$2; shift 2 ;;
    --engine) engine=$2; shift 2 ;;
    *) echo "usage: bash docker/smoke.sh [--runtime cpu|gpu] [--tag IMAGE] [--engine docker|podman]" >&2; exit 2 ;;
  esac
done
case "$runtime" in cpu) image=${image:-evaluator} ;; gpu) image=${image:-evaluator:gpu} ;;
  *) echo "--runtime must be cpu or gpu, got '$runtime'" >&2; exit 2 ;; esac
if [ -z "$engine" ]; then
  for candidate in docker podman; do
    if command -v "$candidate" >/dev/null && "$candidate" info >/dev/null 2>&1; then engine=$candidate; break; fi
  done
fi
if [ -z "$engine" ] || ! "$engine" info >/dev/null 2>&1; then
  echo "smoke: skipped: no working container engine (\`${engine:-docker|podman} info\` fails)"; exit 77
fi
read -r -a extra_build_opts <<< "${EXTRA_BUILD_OPTS:-}"
# The README's commands say `docker`; here they run on the engine found.
docker() {
  if [ "$1" = build ]; then shift; command "$engine" build "${extra_build_opts[@]}" "$@"; else command "$engine" "$@"; fi
}
fail() { echo "smoke: FAILED: $*"; exit 1; }

echo "smoke: building $image (RUNTIME=$runtime) with $engine"
start=$SECONDS
docker build -t "$image" --build-arg RUNTIME="$runtime" .
build_s=$((SECONDS - start))
size=$("$engine" image inspect --format '{{.Size}}' "$image")
echo "smoke: built in ${build_s} s; image size $(awk "BEGIN {printf \"%.2f\", $size / 1e9}") GB"
if [ "$runtime" = cpu ] && [ "$size" -ge "$max_cpu_bytes" ]; then
  fail "the CPU image is $size bytes, over $max_cpu_bytes: is its torch a CUDA build?"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
docker run --rm "$image" assess models/lenet5_fmnist.onnx --samples 100
status=0
mkdir -p out && docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/out:/out" "$image" assess models/lenet5_fmnist_filter-l1_cr4.onnx --samples 100 --policy policies/edge.toml --json /out/report.json --markdown /out/signoff.md || status=$?
# the policy's exit code: 0 every rule passed, 1 one failed, 2 an error
[ "$status" -le 1 ] || fail "the sign-off against policies/edge.toml exited $status"
[ -s out/report.json ] && [ -s out/signoff.md ] || fail "no report in the mounted folder"
echo "smoke: sign-off exit $status; reports written: $(ls out | tr '\n' ' ')"
if [ "$runtime" = gpu ]; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    docker run --rm --gpus all --user "$(id -u):$(id -g)" -v "$PWD/out:/out" "$image" assess models/lenet5_fmnist.onnx --samples 100 --provider cuda --json /out/gpu.json
    # --provider cuda falls back to the CPU with a note when the CUDA EP cannot start: the report says which ran
    grep -q '"provider": "CUDAExecutionProvider"' out/gpu.json || fail "ONNX Runtime did not run on the CUDA EP (the notes above say why)"
  else
    echo "smoke: the run with --gpus all is skipped: no NVIDIA GPU here"
  fi
fi
cd "$repo"
echo "smoke: passed ($image, $engine, built in ${build_s} s, $size bytes)"
