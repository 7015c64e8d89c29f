#!/usr/bin/env bash
# Rebuild the zoo. Default: the shipped LeNet-5 trained on Fashion-MNIST and its filter-pruned (L1, CR 4)
# child (committed). With `all`: also ResNet-8 (width 0.5) and VGG-11 with batch norm (width 0.25),
# trained on Fashion-MNIST on demand (not committed; a few minutes each on 2 CPU cores).
# Deterministic for a given seed, torch version and thread count.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
evaluator train lenet5 --dataset fashion-mnist --out "$here" --name lenet5_fmnist --epochs 30 --patience 3 --seed 0
evaluator prune "$here/lenet5_fmnist.pt2" --method filter-l1 --rate 4 --finetune-epochs 15 --patience 3 --seed 0
if [ "${1:-}" = all ]; then
  evaluator train resnet8 --dataset fashion-mnist --out "$here" --name resnet8_fmnist --width 0.5 --epochs 15 --patience 3 --seed 0
  evaluator train vgg11 --dataset fashion-mnist --out "$here" --name vgg11_fmnist --width 0.25 --epochs 15 --patience 3 --seed 0
fi
