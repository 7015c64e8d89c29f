"""HopSkipJump: ours against foolbox's and ART's, same model, samples and label budget per sample.

    python bench/hsj_strength.py [MODEL.onnx] [--samples 200] [--start 0] [--queries 1000] [--backend onnx|torch]

Ours queries the deployed ONNX Runtime graph's top-1 label. foolbox's HopSkipJumpAttack and ART's
HopSkipJump query a NumPy callable: the same ONNX graph (default) or the PyTorch source (--backend torch).
Every call is counted per sample. Neither library takes a query budget, so each runs with a hook at the
start of every iteration that records its current adversarials, the queries spent so far and the clock;
per sample the last snapshot within the budget is its result and its clock reading its time (the run is
stopped once every sample is past the budget). foolbox queries all samples in lockstep, so its count
per sample is its total rows / N; ART attacks one sample at a time (its initial predict of all inputs and
its final success check are not counted). Every candidate is judged by the evaluator on the deployed
graph with evaluator.norms.distances: not adversarial there means no candidate (distance inf).
Medians run over the clean-correct samples. Where a library stops short of the budget (its next iteration
would pass it), ours runs again with that library's mean spend per sample ("evaluator @ Q").
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from evaluator.attacks import AttackTarget, Norm
from evaluator.attacks.decision import L2HopSkipJump, LinfHopSkipJump
from evaluator.datasets import load_dataset
from evaluator.norms import distances
from evaluator.runtime import OnnxClassifier

ROOT = Path(__file__).resolve().parents[1]


class OverBudget(Exception):
    """Raised inside a reference attack once every sample has spent its budget."""


@dataclass
class Counted:
    """A NumPy classifier (x (M, C, H, W) -> logits (M, K)) that counts the rows it is sent."""

    logits: Callable[[np.ndarray], np.ndarray]
    rows: int = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.rows += len(x)
        return self.logits(np.asarray(x, np.float32))


@dataclass
class Outcome:
    x_adv: np.ndarray  # (N, C, H, W) float32
    queries: np.ndarray  # (N,)
    seconds: float  # wall clock
    cpu_seconds: float  # this process's CPU time (all threads): steadier than the wall clock on a shared machine


def clocks() -> np.ndarray:
    """(wall, CPU) seconds now."""
    return np.array([time.perf_counter(), time.process_time()])


def judged(model: OnnxClassifier, x: np.ndarray, y: np.ndarray, x_adv: np.ndarray, norm: Norm) -> np.ndarray:
    """Per-sample distance (N,) of candidates that are in [0, 1] and fool the deployed graph; inf otherwise."""
    x_adv = np.asarray(x_adv, np.float32)
    flat = x_adv.reshape(len(x), -1)
    valid = np.isfinite(flat).all(axis=1) & (np.nan_to_num(flat, nan=-1).min(axis=1) >= 0) & (np.nan_to_num(flat, nan=2).max(axis=1) <= 1)
    fooled = valid & (model.predict(np.where(valid[:, None, None, None], x_adv, x)) != y)
    return np.where(fooled, distances(x, x_adv, norm), np.inf)


def run_ours(target: AttackTarget, x: np.ndarray, y: np.ndarray, norm: Norm, queries: int) -> Outcome:
    attack = L2HopSkipJump(queries=queries) if norm is Norm.L2 else LinfHopSkipJump(queries=queries)
    start = clocks()
    output = attack.run_minimal(target, x, y, seed=0)
    assert output.queries is not None
    return Outcome(output.x_adv, output.queries, *(clocks() - start))


def run_foolbox(classifier: Counted, x: np.ndarray, y: np.ndarray, norm: Norm, queries: int) -> Outcome:
    """foolbox HopSkipJumpAttack (its defaults: blended-noise start, 100 sqrt(t) probes), snapshots per step."""
    import foolbox

    snapshots: list[tuple[int, np.ndarray, np.ndarray]] = []  # (queries per sample, adversarials, (wall, CPU) s)
    start = clocks()

    class Recorded(foolbox.attacks.HopSkipJumpAttack):  # type: ignore[misc]
        def approximate_gradients(self, is_adversarial: Any, x_advs: Any, steps: int, delta: Any) -> Any:
            spent = classifier.rows // len(x)
            if spent > queries:
                raise OverBudget
            snapshots.append((spent, x_advs.numpy().astype(np.float32), clocks() - start))
            return super().approximate_gradients(is_adversarial, x_advs, steps, delta)

    np.random.seed(0)  # eagerpy's NumPy tensors draw from the global generator
    model = foolbox.models.NumPyModel(classifier, bounds=(0, 1))
    attack = Recorded(steps=10_000, constraint="l2" if norm is Norm.L2 else "linf")
    classifier.rows = 0
    try:
        attack.run(model, x, foolbox.criteria.Misclassification(y))
    except OverBudget:
        pass
    spent, x_adv, seconds = snapshots[-1] if snapshots else (0, x.copy(), clocks() - start)
    return Outcome(x_adv, np.full(len(x), spent), *seconds)


def run_art(classifier: Counted, x: np.ndarray, y: np.ndarray, norm: Norm, queries: int) -> Outcome:
    """ART HopSkipJump (its defaults: uniform-noise start, 100 sqrt(t) probes), one sample at a time, snapshots
    per iteration; each sample's time runs from its start to its last snapshot within the budget."""
    from art.attacks.evasion import HopSkipJump
    from art.estimators.classification import BlackBoxClassifier

    results = x.copy()
    spent = np.zeros(len(x), np.int64)
    seconds = np.zeros(2)

    class Recorded(HopSkipJump):  # type: ignore[misc]
        def _perturb(self, x: np.ndarray, y: int, y_p: int, *args: Any, **kwargs: Any) -> np.ndarray:
            self.first_row, self.started, self.snapshots = classifier.rows, clocks(), [(0, x, np.zeros(2))]
            try:
                final = super()._perturb(x, y, y_p, *args, **kwargs)
                self.record(final)
            except OverBudget:
                pass
            return self.snapshots[-1][1]

        def record(self, sample: np.ndarray) -> None:
            used = classifier.rows - self.first_row
            if used > queries:
                raise OverBudget
            self.snapshots.append((used, sample.copy(), clocks() - self.started))

        def _compute_delta(self, current_sample: np.ndarray, *args: Any, **kwargs: Any) -> float:
            self.record(current_sample)
            return super()._compute_delta(current_sample, *args, **kwargs)

    estimator = BlackBoxClassifier(classifier, x.shape[1:], 10, clip_values=(0.0, 1.0))
    attack = Recorded(estimator, norm=2 if norm is Norm.L2 else np.inf, max_iter=10_000, verbose=False)
    np.random.seed(0)  # the gradient probes; ART's start draws from an unseeded RandomState
    for i in range(len(x)):  # ART loops over samples itself; one call each lets us read its per-sample state
        attack.generate(x[i:i + 1], np.eye(10, dtype=np.float32)[y[i:i + 1]])
        spent[i], results[i], elapsed = attack.snapshots[-1]
        seconds += elapsed
    return Outcome(results, spent, *seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, default=ROOT / "models/lenet5_fmnist_filter-l1_cr4.onnx")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--start", type=int, default=0, help="first test image (the samples are consecutive)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--backend", choices=("onnx", "torch"), default="onnx", help="what the libraries query")
    parser.add_argument("--norms", default="L2,Linf")
    parser.add_argument("--skip", default="", help="comma-separated implementations to leave out (foolbox, ART)")
    args = parser.parse_args()

    target = AttackTarget(OnnxClassifier(args.model, "cpu"), args.model.with_suffix(".pt2"))
    test = load_dataset("fashion-mnist").test
    x_all, y_all = test.x[args.start:args.start + args.samples], test.y[args.start:args.start + args.samples]
    correct = target.deployed.predict(x_all) == y_all
    x, y = x_all[correct], y_all[correct]
    if args.backend == "onnx":
        library_model = OnnxClassifier(args.model, "cpu")  # its own session, so our query counter stays apart
        logits: Callable[[np.ndarray], np.ndarray] = library_model.logits
    else:
        import torch

        source = target.source()

        def logits(batch: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return source(torch.from_numpy(batch)).numpy()
    print(f"{args.model.name}: {len(x)} clean-correct of test images {args.start}..{args.start + args.samples - 1}, "
          f"budget {args.queries} labels per sample, libraries query the {args.backend} model")
    print(f"{'norm':5} {'implementation':16} {'median':>8} {'p25':>8} {'p75':>8} {'found':>7} {'queries mean/max':>17} {'seconds':>8} {'CPU s':>7}")
    skip = {name.strip().lower() for name in args.skip.split(",") if name.strip()}
    for norm in (Norm(name) for name in args.norms.split(",")):
        runs: list[tuple[str, Callable[[], Outcome]]] = [("evaluator (ORT)", lambda: run_ours(target, x, y, norm, args.queries))]
        if "foolbox" not in skip:
            runs.append(("foolbox", lambda: run_foolbox(Counted(logits), x, y, norm, args.queries)))
        if "art" not in skip:
            runs.append(("ART", lambda: run_art(Counted(logits), x, y, norm, args.queries)))
        while runs:
            label, run = runs.pop(0)
            outcome = run()
            gap = judged(target.deployed, x, y, outcome.x_adv, norm)
            p25, median, p75 = np.percentile(gap, [25, 50, 75])
            print(f"{norm.value:5} {label:16} {median:8.4f} {p25:8.4f} {p75:8.4f} {int(np.isfinite(gap).sum()):>3}/{len(x):<3} "
                  f"{outcome.queries.mean():8.1f}/{int(outcome.queries.max()):<8d} {outcome.seconds:8.1f} {outcome.cpu_seconds:7.1f}")
            spent = int(outcome.queries.mean())
            if not label.startswith("evaluator") and spent < 0.99 * args.queries:  # it stopped short: ours at its spend too
                runs.insert(0, (f"evaluator @ {spent}", lambda spent=spent: run_ours(target, x, y, norm, spent)))  # type: ignore[misc]


if __name__ == "__main__":
    main()
