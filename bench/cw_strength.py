"""Our CW-L2 against foolbox's L2CarliniWagnerAttack: median minimal L2 distance, ratio and seconds, per model.

    python bench/cw_strength.py [MODEL.onnx ...] [--samples 1000] [--binary-search-steps 9] [--steps 100]
                                [--stepsize 0.02] [--initial-const 0.001] [--no-warm-start]
                                [--foolbox-defaults] [--defaults-samples 100]

Both attacks run on the PyTorch source (.pt2 beside the model) with the same binary_search_steps, steps,
stepsize and initial const (our defaults unless given), on the same clean-correct samples of a seeded test
subset; --no-warm-start runs ours as the original algorithm (a fresh start for every c). Every distance is
judged by the evaluator on the deployed ONNX graph: ours by evaluate_minimal; foolbox's adversarials are
re-checked there by evaluator.robustness.judge_candidates, as ours are (not adversarial there = not found = inf).
Medians run over all sampled images, 0 for those misclassified without attack (the evaluator's convention).
--foolbox-defaults also compares our defaults with foolbox's (9 x 10000 steps at stepsize 0.01; slow on a
CPU, so on the first --defaults-samples of the subset).
Needs the test-only library foolbox.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from evaluator.assessment import attack_subset
from evaluator.attacks import AttackTarget, create_attack
from evaluator.attacks import cw  # noqa: F401  (registers cw-l2)
from evaluator.datasets import Split, load_dataset
from evaluator.norms import Norm
from evaluator.robustness import evaluate_minimal, judge_candidates
from evaluator.runtime import OnnxClassifier

ROOT = Path(__file__).resolve().parents[1]
ZOO = (ROOT / "models/lenet5_fmnist.onnx", ROOT / "models/lenet5_fmnist_filter-l1_cr4.onnx")


def foolbox_distances(target: AttackTarget, split: Split, budget: dict[str, float]) -> tuple[np.ndarray, float]:
    """Per sample (N,) the L2 distance of foolbox's CW-L2 adversarial, judged on the deployed graph, and seconds."""
    import foolbox

    found = np.full(len(split), np.inf)
    correct = target.deployed.predict(split.x) == split.y
    found[~correct] = 0.0
    x, y = split.x[correct], split.y[correct]
    attack = foolbox.attacks.L2CarliniWagnerAttack(**budget)  # type: ignore[arg-type]
    model = foolbox.PyTorchModel(target.source(), bounds=(0, 1))
    start = time.perf_counter()
    adversarials = attack.run(model, torch.from_numpy(x), torch.from_numpy(y)).numpy().astype(np.float32)
    seconds = time.perf_counter() - start
    found[correct] = judge_candidates(target.deployed, x, y, adversarials, Norm.L2)[0]
    return found, seconds


def compare(model: Path, split: Split, budget: dict[str, float], foolbox_budget: dict[str, float], label: str) -> None:
    """One line: our and foolbox's medians over `split`, their ratio and seconds, on one model."""
    target = AttackTarget(OnnxClassifier(model, "cpu"), model.with_suffix(".pt2"))
    target.source()
    start = time.perf_counter()
    ours = evaluate_minimal(create_attack("cw-l2", **budget), target, split, seed=0)
    ours_seconds = time.perf_counter() - start
    theirs, theirs_seconds = foolbox_distances(target, split, foolbox_budget)
    ours_median, theirs_median = float(np.median(ours.distances)), float(np.median(theirs))
    attacked = ours.distances > 0
    print(f"{model.name:34} {label:9} ours median {ours_median:.4f} ({ours.found}/{ours.attacked} found, {ours_seconds:6.1f} s)"
          f" | foolbox median {theirs_median:.4f} ({int((np.isfinite(theirs) & (theirs > 0)).sum())} found,"
          f" {theirs_seconds:6.1f} s) | ratio {ours_median / theirs_median:.4f}"
          f" | attacked-only medians {np.median(ours.distances[attacked]):.4f} / {np.median(theirs[theirs > 0]):.4f}"
          f" | ours smaller on {int((ours.distances < theirs).sum())}, larger on {int((ours.distances > theirs).sum())}",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, default=list(ZOO))
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--binary-search-steps", type=int, default=9)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--stepsize", type=float, default=0.02)
    parser.add_argument("--initial-const", type=float, default=1e-3)
    parser.add_argument("--no-warm-start", action="store_true")
    parser.add_argument("--foolbox-defaults", action="store_true")
    parser.add_argument("--defaults-samples", type=int, default=100)
    args = parser.parse_args()
    split = attack_subset(load_dataset("fashion-mnist").test, args.samples, 0)
    budget = {"binary_search_steps": args.binary_search_steps, "steps": args.steps, "stepsize": args.stepsize,
              "initial_const": args.initial_const}
    ours = {**budget, "warm_start": not args.no_warm_start}
    print(f"{args.samples} test samples, CW-L2 budget {budget}, ours warm_start={ours['warm_start']},"
          f" torch threads {torch.get_num_threads()}", flush=True)
    for model in args.models:
        compare(model, split, ours, budget, "same")
        if args.foolbox_defaults:
            compare(model, split.head(args.defaults_samples), {}, {}, f"defaults ({args.defaults_samples} samples)")
    print("medians over all sampled images (0 = misclassified without attack, inf = not found); ratio = ours / foolbox")


if __name__ == "__main__":
    main()
