"""Minimal-norm strength against foolbox: our L0 attacks vs L0 Brendel-Bethge, fmn-l2 vs Carlini-Wagner L2.

    python bench/l0_strength.py [MODEL.onnx ...] [--samples 1000] [--bb-steps 1000]
                                [--cw-binary-steps 9] [--cw-steps 1000] [--cache DIR] [--threads 1] [--skip-l0|--skip-l2]

Per model, on the first --samples Fashion-MNIST test images: l0-greedy and fmn-l0 (default options) through
evaluator.robustness.evaluate_minimal, foolbox's L0BrendelBethgeAttack (its default start: a
LinearSearchBlendedUniformNoiseAttack with default options, then --bb-steps steps), fmn-l2 (default options)
and foolbox's L2CarliniWagnerAttack (--cw-binary-steps x --cw-steps, stepsize 0.01, confidence 0,
initial_const 0.001, abort_early). Every candidate is judged on the deployed ONNX graph with the evaluator's
distance: 0 for a sample the graph misclassifies anyway, inf where the candidate does not fool the graph; the
medians run over all samples, as in MinimalNormResult. Brendel-Bethge needs numba (pip install numba) and takes
hours on two CPU cores; --cache keeps foolbox's per-sample distances (keyed by model, samples and settings) so a
second run only re-runs ours. Goals: L0 median ratio (ours / BB) <= 1.1, L2 median ratio (fmn-l2 / CW) <= 1.05.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from evaluator.attacks import AttackTarget, create_attack
from evaluator.attacks import fmn  # noqa: F401  (registration)
from evaluator.attacks.base import Norm
from evaluator.datasets import Split, load_dataset
from evaluator.robustness import evaluate_minimal, judge_candidates
from evaluator.runtime import OnnxClassifier

ROOT = Path(__file__).resolve().parents[1]
MODELS = (ROOT / "models/lenet5_fmnist.onnx", ROOT / "models/lenet5_fmnist_filter-l1_cr4.onnx")


def judged(target: AttackTarget, split: Split, correct: np.ndarray, x_adv: np.ndarray, norm: Norm) -> np.ndarray:
    """Per-sample distances (N,) of candidates x_adv for the correct samples, judged on the deployed graph as the
    evaluator judges its own (robustness.judge_candidates); 0 for the samples misclassified without attack."""
    found = np.zeros(len(split))
    found[correct] = judge_candidates(target.deployed, split.x[correct], split.y[correct], x_adv, norm)[0]
    return found


def cached(cache: Path | None, key: str, compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, float | None]:
    """compute()'s distances and its seconds, or the stored distances (seconds None) when --cache has them."""
    path = cache / f"{key}.npy" if cache else None
    if path is not None and path.is_file():
        return np.load(path), None
    start = time.perf_counter()
    result = compute()
    seconds = time.perf_counter() - start
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, result)
    return result, seconds


def line(label: str, found: np.ndarray, seconds: float | None) -> str:
    took = "cached" if seconds is None else f"{seconds:7.1f} s"
    return f"  {label:34s} median {np.median(found):8.4f}   mean(found) {found[np.isfinite(found)].mean():8.4f}   " \
           f"not found {int(np.isinf(found).sum()):3d}   {took}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, default=list(MODELS))
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--bb-steps", type=int, default=1000)
    parser.add_argument("--cw-binary-steps", type=int, default=9)
    parser.add_argument("--cw-steps", type=int, default=1000)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--skip-l2", action="store_true")
    parser.add_argument("--skip-l0", action="store_true", help="only the L2 comparison (e.g. in a second process)")
    args = parser.parse_args()
    import foolbox

    if args.threads:
        torch.set_num_threads(args.threads)
    test = load_dataset("fashion-mnist").test.head(args.samples)
    for path in args.models:
        target = AttackTarget(OnnxClassifier(path, provider="cpu"), path.with_suffix(".pt2"))
        correct = target.deployed.predict(test.x) == test.y
        x, y = torch.from_numpy(test.x[correct]), torch.from_numpy(test.y[correct])
        model = foolbox.PyTorchModel(target.source(), bounds=(0, 1))
        print(f"{path.name}: {args.samples} test images, {int(correct.sum())} correct on the deployed graph", flush=True)

        def ours(name: str) -> tuple[np.ndarray, float]:
            start = time.perf_counter()
            result = evaluate_minimal(create_attack(name), target, test, seed=0)
            assert result.out_of_box == 0
            return result.distances, time.perf_counter() - start

        def brendel_bethge() -> np.ndarray:
            attack = foolbox.attacks.L0BrendelBethgeAttack(steps=args.bb_steps)
            return judged(target, test, correct, attack.run(model, x, y).numpy(), Norm.L0)

        if not args.skip_l0:
            bb, bb_seconds = cached(args.cache, f"bb-l0_{path.stem}_{args.samples}_{args.bb_steps}", brendel_bethge)
            print(line(f"foolbox L0 Brendel-Bethge ({args.bb_steps} steps)", bb, bb_seconds), flush=True)
            for name in ("l0-greedy", "fmn-l0"):
                found, seconds = ours(name)
                print(line(name, found, seconds) + f"   ratio {np.median(found) / np.median(bb):.3f}", flush=True)
        if args.skip_l2:
            continue

        def carlini_wagner() -> np.ndarray:
            attack = foolbox.attacks.L2CarliniWagnerAttack(binary_search_steps=args.cw_binary_steps, steps=args.cw_steps)
            return judged(target, test, correct, attack.run(model, x, y).numpy(), Norm.L2)

        cw, cw_seconds = cached(args.cache, f"cw-l2_{path.stem}_{args.samples}_{args.cw_binary_steps}x{args.cw_steps}", carlini_wagner)
        print(line(f"foolbox CW-L2 ({args.cw_binary_steps} x {args.cw_steps} steps)", cw, cw_seconds), flush=True)
        found, seconds = ours("fmn-l2")
        print(line("fmn-l2", found, seconds) + f"   ratio {np.median(found) / np.median(cw):.3f}", flush=True)


if __name__ == "__main__":
    main()
