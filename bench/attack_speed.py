"""Our attacks against the established libraries, side by side in one run: time ratios and strength.

    python bench/attack_speed.py [MODEL.onnx] [--samples 500] [--eps 8/255] [--queries 1000]

Square-Linf: ours queries the deployed ONNX Runtime graph; torchattacks' Square queries the PyTorch
source (same model, same samples, same query budget and p_init). PGD-Linf (40 steps, step eps/30,
random start): ours, foolbox, ART and torchattacks, all on the PyTorch source. Every robust accuracy is
judged by the evaluator on the deployed graph. Needs the test-only libraries (pip install foolbox
adversarial-robustness-toolbox; pip install --no-deps torchattacks).
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from evaluator.assessment import attack_subset
from evaluator.attacks import AttackTarget, create_attack
from evaluator.data import load_dataset
from evaluator.metrics import Norm, distances
from evaluator.runtime import OnnxClassifier

ROOT = Path(__file__).resolve().parents[1]


def judged(target: AttackTarget, x: np.ndarray, y: np.ndarray, x_adv: np.ndarray, epsilon: float) -> float:
    """Robust accuracy on the deployed graph of candidates inside the budget (others count as no attack)."""
    inside = distances(x, x_adv, Norm.LINF) <= epsilon + 1e-6
    x_adv = np.where(inside[:, None, None, None], np.clip(x_adv, 0, 1), x).astype(np.float32)
    return float((target.deployed.predict(x_adv) == y).mean())


def timed(run: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, default=ROOT / "models/lenet5_fmnist.onnx")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--eps", default="8/255")
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    import foolbox
    import torchattacks
    from art.attacks.evasion import ProjectedGradientDescentPyTorch
    from art.estimators.classification import PyTorchClassifier

    epsilon = float(Fraction(args.eps))
    target = AttackTarget(OnnxClassifier(args.model, "cpu"), args.model.with_suffix(".pt2"))
    test = attack_subset(load_dataset("fashion-mnist").test, args.samples, 0)
    correct = target.deployed.predict(test.x) == test.y
    x, y = test.x[correct], test.y[correct]  # every library attacks the same clean-correct samples
    source = target.source()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    print(f"{args.model.name}: {len(x)} clean-correct of {args.samples} test samples, eps {args.eps}, torch threads {torch.get_num_threads()}")

    rows = []
    ours, seconds = timed(lambda: create_attack("square-linf", queries=args.queries).run(target, x, y, epsilon, 0).x_adv)
    rows.append(("square-linf", "evaluator (ORT)", seconds, judged(target, x, y, ours, epsilon)))
    square = torchattacks.Square(source, norm="Linf", eps=epsilon, n_queries=args.queries, p_init=0.8, seed=0)
    theirs, seconds = timed(lambda: square(xt, yt).detach().numpy())
    rows.append(("square-linf", "torchattacks (torch)", seconds, judged(target, x, y, theirs, epsilon)))

    step = epsilon / 30
    ours, seconds = timed(lambda: create_attack("pgd-linf").run(target, x, y, epsilon, 0).x_adv)
    rows.append(("pgd-linf", "evaluator", seconds, judged(target, x, y, ours, epsilon)))
    fmodel = foolbox.PyTorchModel(source, bounds=(0, 1))
    theirs, seconds = timed(lambda: foolbox.attacks.LinfPGD(steps=40)(fmodel, xt, yt, epsilons=epsilon)[1].numpy())
    rows.append(("pgd-linf", "foolbox", seconds, judged(target, x, y, theirs, epsilon)))
    classifier = PyTorchClassifier(source, loss=torch.nn.CrossEntropyLoss(), input_shape=x.shape[1:], nb_classes=10,
                                   clip_values=(0.0, 1.0))
    art_pgd = ProjectedGradientDescentPyTorch(classifier, eps=epsilon, eps_step=step, max_iter=40, num_random_init=1,
                                              batch_size=500, verbose=False)
    theirs, seconds = timed(lambda: art_pgd.generate(x, y))
    rows.append(("pgd-linf", "ART", seconds, judged(target, x, y, theirs, epsilon)))
    ta_pgd = torchattacks.PGD(source, eps=epsilon, alpha=step, steps=40, random_start=True)
    theirs, seconds = timed(lambda: ta_pgd(xt, yt).detach().numpy())
    rows.append(("pgd-linf", "torchattacks", seconds, judged(target, x, y, theirs, epsilon)))

    print(f"{'attack':12} {'implementation':22} {'seconds':>8} {'robust acc':>10} {'time / ours':>11}")
    for attack, implementation, seconds, robust in rows:
        ours_seconds = next(s for a, i, s, _ in rows if a == attack and i.startswith("evaluator"))
        print(f"{attack:12} {implementation:22} {seconds:8.2f} {robust * len(x) / args.samples:10.3f} {seconds / ours_seconds:11.2f}")
    print("robust accuracy over all sampled test images (misclassified ones count as not robust)")


if __name__ == "__main__":
    main()
