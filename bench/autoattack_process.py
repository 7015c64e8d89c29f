"""AutoAttack 'standard' as a user runs it: one fresh process that loads the PyTorch source and the test images, attacks
them and saves the adversarial examples; bench/autoattack_speed.py times the whole process beside `evaluator assess`.

    python bench/autoattack_process.py --autoattack PATH MODEL.pt2 --norm Linf|L2 --eps EPS --out adv.npz
        [--samples 1000] [--seed 0] [--threads 1] [--batch 250] [--dataset fashion-mnist]

The images are those `evaluator assess --samples N --seed S` attacks (evaluator.assessment.attack_subset). adv.npz
holds `x_adv` (N, C, H, W) float32 in the subset's order and `attack_seconds`, the wall time of
run_standard_evaluation alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the model's .pt2")
    parser.add_argument("--autoattack", type=Path, required=True, help="a checkout of fra31/auto-attack")
    parser.add_argument("--norm", choices=("Linf", "L2"), required=True)
    parser.add_argument("--eps", required=True, help="budget; fractions allowed")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=250, help="AutoAttack's batch size (its default)")
    parser.add_argument("--dataset", default="fashion-mnist")
    args = parser.parse_args()
    sys.path.insert(0, str(args.autoattack.resolve()))
    import numpy as np
    import torch
    import autoattack

    from evaluator.assessment import attack_subset
    from evaluator.datasets import load_dataset
    from evaluator.source import load_source

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    model = load_source(args.source)
    subset = attack_subset(load_dataset(args.dataset, test_only=True).test, args.samples, args.seed)
    attack = autoattack.AutoAttack(model, norm=args.norm, eps=float(Fraction(args.eps)), seed=args.seed, version="standard",
                                   verbose=False, device="cpu")
    start = time.perf_counter()
    x_adv = attack.run_standard_evaluation(torch.from_numpy(subset.x), torch.from_numpy(subset.y), bs=args.batch)
    seconds = time.perf_counter() - start
    np.savez(args.out, x_adv=x_adv.numpy().astype(np.float32), attack_seconds=np.float64(seconds))


if __name__ == "__main__":
    main()
