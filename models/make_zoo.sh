#!/usr/bin/env bash
# Rebuild the shipped zoo: LeNet-5 trained on Fashion-MNIST and its filter-pruned (L1, CR 4) child.
# Deterministic for a given seed, torch version and thread count; takes a few minutes on 2 CPU cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
evaluator train lenet5 --dataset fashion-mnist --out "$here" --name lenet5_fmnist --epochs 30 --patience 3 --seed 0
evaluator prune "$here/lenet5_fmnist.pt2" --method filter-l1 --rate 4 --finetune-epochs 15 --patience 3 --seed 0
