#!/usr/bin/env bash
# Regenerate docs/reproduction.md: the study's sweep (sweeps/study-ARCH.toml) of each zoo parent, then the page.
#   bash docs/reproduce.sh                 # lenet5, resnet8 and vgg11
#   bash docs/reproduce.sh lenet5          # one architecture (the others stay "not measured yet")
# Sweeps resume from their caches (results/study-ARCH), so an interrupted run picks up where it stopped.
# ResNet-8 and VGG-11 parents are trained first when missing (models/make_zoo.sh all, about 14 minutes on 2 cores;
# it also rebuilds the committed LeNet-5 pair, byte-identical).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(lenet5 resnet8 vgg11)
for arch in "${archs[@]}"; do
  [ -f "models/${arch}_fmnist.pt2" ] || bash models/make_zoo.sh all
  evaluator sweep --config "sweeps/study-$arch.toml"
done
python -m evaluator.report.reproduction results/study-lenet5 results/study-resnet8 results/study-vgg11 --out docs/reproduction.md
