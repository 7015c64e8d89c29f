#!/usr/bin/env bash
# Regenerate docs/reproduction.md: the study's sweep (sweeps/study-ARCH.toml) of each zoo parent, then the page.
#   bash docs/reproduce.sh                 # lenet5, resnet8 and vgg11
#   bash docs/reproduce.sh resnet8         # one architecture; the others keep the data committed beside the page
#                                          # (docs/reproduction/ARCH_fmnist/table.json), or stay "not measured yet"
# Sweeps resume from their caches (results/study-ARCH), so an interrupted run picks up where it stopped. Each parent
# is also swept alone in fp32, int8 and fp16 (results/precision-ARCH: the page's "deployment precision" table).
# ResNet-8 and VGG-11 parents are trained first when missing (models/make_zoo.sh all; it also rebuilds the
# committed LeNet-5 pair, byte-identical).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(lenet5 resnet8 vgg11)
for arch in "${archs[@]}"; do
  [ -f "models/${arch}_fmnist.pt2" ] || bash models/make_zoo.sh all
  evaluator sweep --config "sweeps/study-$arch.toml"
  evaluator sweep --config "sweeps/study-$arch.toml" --rates 1 --precisions fp32,int8,fp16 --out "results/precision-$arch"
done
sources=()
for arch in lenet5 resnet8 vgg11; do
  if [ -f "results/study-$arch/table.json" ]; then sources+=("results/study-$arch")
  elif [ -f "docs/reproduction/${arch}_fmnist/table.json" ]; then sources+=("docs/reproduction/${arch}_fmnist")
  else sources+=("results/study-$arch"); fi
done
precision=()
for arch in lenet5 resnet8 vgg11; do
  if [ -f "results/precision-$arch/table.json" ]; then precision+=(--precision "results/precision-$arch")
  elif [ -f "docs/reproduction/${arch}_fmnist/precision.json" ]; then precision+=(--precision "docs/reproduction/${arch}_fmnist/precision.json"); fi
done
python -m evaluator.app.reproduction "${sources[@]}" "${precision[@]}" --out docs/reproduction.md
