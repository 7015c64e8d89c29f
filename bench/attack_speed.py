"""Our attacks against the established libraries, side by side in one run: time ratios and strength.

    python bench/attack_speed.py [MODEL.onnx] [--samples 500] [--eps 8/255] [--eps-l2 1.0] [--k 10]
                                 [--queries 1000] [--l0-samples 100] [--repeats 3] [--threads N] [--only square-linf,...]
                                 [--device cpu|cuda|cuda:N] [--provider cpu|cuda]

Score attacks (ours query the deployed ONNX Runtime graph; the libraries query the PyTorch source of the same
model, on the same samples, with the same query budget and p_init):
  square-linf   vs torchattacks' Square(norm="Linf")
  square-l2     vs torchattacks' Square(norm="L2")
  sparse-rs-l0  vs torchattacks' OnePixel(pixels=k): differential evolution over k pixels set to any values, the
                only fixed-k L0 attack in the installed libraries; population and steps give about --queries queries
                per sample. It loops over samples in Python, so the L0 rows use the first --l0-samples samples.
White-box PGD-Linf (40 steps, step eps/30, random start): ours, foolbox, ART and torchattacks, on the PyTorch source.

Every implementation runs --repeats times, interleaved with the others; the table shows the median wall time (and
its spread), the median CPU time of the process (all threads: steadier than wall time on a shared machine, but it
also counts threads that spin while they wait) and the ratios of medians to ours. "forwards" is the model forward
passes per attacked sample: the work a score attack buys. After the table, for each score attack, comes the time
the forward passes took inside the runs (ONNX Runtime's session calls for ours, the source's forward for theirs,
per sample and as a share of the run) and the ratio ours would reach if its forwards were all it spent: the most
any attack making as many queries on ONNX Runtime could reach on this machine. Every robust accuracy is
judged by the evaluator on the deployed graph, over all sampled images (misclassified ones count as not robust).

--device is where torch computes: the libraries get the source and the samples on that device (results come back
with .cpu()), and the evaluator's white-box attacks run their model there (AttackTarget's torch_device). --provider is
where ONNX Runtime runs the deployed graph: cuda is the evaluator's CUDA path (CUDA graphs replayed through IOBinding,
else plain CUDA; the line under the header says which) on the GPU --device names (cuda:N; else GPU 0), so ORT + CUDA
graphs can be set against torchattacks on CUDA.
Asking for CUDA where there is none (torch without a GPU, or an ONNX Runtime that falls back to the CPU) is one
line and exit code 2. With either on CUDA the clock is the wall clock (time.perf_counter) read after
torch.cuda.synchronize(), and the CPU-time columns are left out: the process's CPU time does not count GPU work.

--threads sets both ONNX Runtime's and torch's thread count (default: each library's own, ORT one per core). On a
machine busy with other work, use --threads 1: two spinning threads per library on two busy cores make both
libraries several times slower, torch most, and the ratios then measure the contention rather than the attacks.
Needs the test-only libraries (pip install foolbox adversarial-robustness-toolbox; pip install --no-deps torchattacks).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from evaluator.assessment import attack_subset
from evaluator.attacks import AttackTarget, create_attack
from evaluator.datasets import load_dataset
from evaluator.errors import EvaluatorError
from evaluator.norms import Norm, distances
from evaluator.runtime import CUDA_EP, OnnxClassifier
from evaluator.source import load_source
from evaluator.torch_device import choose_torch_device

ROOT = Path(__file__).resolve().parents[1]
ALL = ("square-linf", "square-l2", "sparse-rs-l0", "pgd-linf")


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on a CUDA device, so that the clock read next counts it; nothing on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class CountingModel(torch.nn.Module):
    """The source with a count of the samples it has been run on (forward passes, like ORT's query count) and the
    seconds those forward passes took (on CUDA, synchronized before each clock reading)."""

    def __init__(self, model: Any, device: torch.device) -> None:
        super().__init__()
        self.model = model
        self.device = device
        self.samples = 0
        self.seconds = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.samples += len(x)
        synchronize(self.device)
        start = time.perf_counter()
        logits = self.model(x)
        synchronize(self.device)
        self.seconds += time.perf_counter() - start
        return logits


class TimedSession:
    """Wraps an OnnxClassifier's run_batch to add up the seconds its ONNX Runtime session calls take."""

    def __init__(self, classifier: OnnxClassifier) -> None:
        self.seconds = 0.0
        run_batch = classifier.run_batch

        def timed(x: np.ndarray) -> np.ndarray:
            start = time.perf_counter()
            logits = run_batch(x)
            self.seconds += time.perf_counter() - start
            return logits

        classifier.run_batch = timed  # type: ignore[method-assign]


@dataclass
class Row:
    """One implementation of one attack: times of every repeat, robust accuracy and forwards per sample of the last."""

    attack: str
    implementation: str
    run: Callable[[], Run]
    norm: Norm
    epsilon: float
    samples: int  # sampled test images these candidates belong to (clean-correct ones are attacked)
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    forward_seconds: list[float] = field(default_factory=list)  # in the model's forward passes, each repeat
    robust: float = 0.0
    forwards: float | None = None


@dataclass
class Run:
    """What one repeat of an implementation returns."""

    candidates: np.ndarray
    forwards: float | None = None  # forward passes per attacked sample (None: not counted)
    forward_seconds: float | None = None  # seconds spent in them (None: not timed)


def judged(target: AttackTarget, x: np.ndarray, y: np.ndarray, x_adv: np.ndarray, norm: Norm, epsilon: float) -> int:
    """Samples still classified correctly by the deployed graph; candidates outside the budget count as no attack."""
    inside = distances(x, x_adv, norm) <= epsilon * (1 + 1e-6) + 1e-6
    x_adv = np.where(inside[:, None, None, None], np.clip(x_adv, 0, 1), x).astype(np.float32)
    return int((target.deployed.predict(x_adv) == y).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, default=ROOT / "models/lenet5_fmnist.onnx")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--eps", default="8/255", help="Linf budget")
    parser.add_argument("--eps-l2", type=float, default=1.0, help="L2 budget")
    parser.add_argument("--k", type=int, default=10, help="L0 budget in pixels")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--l0-samples", type=int, default=100, help="sampled images for the L0 rows (OnePixel is slow)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="ORT and torch threads (default: each library's own)")
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--device", default="cpu", help="where torch computes: cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--provider", choices=("cpu", "cuda"), default="cpu", help="where ONNX Runtime runs (default cpu)")
    args = parser.parse_args()
    try:
        bench(args)
    except EvaluatorError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None


def deployed_classifier(path: Path, provider: str, threads: int | None, device_id: int) -> OnnxClassifier:
    """The deployed graph on `provider` (GPU `device_id` for cuda); CUDA asked for and not used is an EvaluatorError
    (the bench would time the CPU under a CUDA label)."""
    classifier = OnnxClassifier(path, provider, threads=threads, device_id=device_id)  # type: ignore[arg-type]
    if provider == "cuda" and classifier.runtime.used != CUDA_EP:
        raise EvaluatorError(f"ONNX Runtime provider cuda requested but the graph runs on {classifier.runtime.used}: "
                             f"{classifier.runtime.note or 'no reason given'}")
    return classifier


def runtime_label(classifier: OnnxClassifier) -> str:
    """'CPU', 'CUDA graphs' or 'plain CUDA (why)': where the deployed graph runs."""
    if classifier.runtime.used != CUDA_EP:
        return "CPU"
    return "CUDA graphs" if classifier.runtime.cuda_graph else f"plain CUDA ({classifier.runtime.note})"


def bench(args: argparse.Namespace) -> None:
    device = choose_torch_device(args.device)  # before anything is loaded: no GPU is one line, exit 2
    gpu = device.type == "cuda" or args.provider == "cuda"  # GPU work in the runs: wall clock only
    if args.threads:
        torch.set_num_threads(args.threads)
    only = set(args.only.split(","))
    epsilon = float(Fraction(args.eps))
    gpu_index = device.index if device.type == "cuda" and device.index is not None else 0  # ORT on torch's GPU
    target = AttackTarget(deployed_classifier(args.model, args.provider, args.threads, gpu_index),
                          args.model.with_suffix(".pt2"), torch_device=str(device))
    import torchattacks

    test = attack_subset(load_dataset("fashion-mnist").test, args.samples, 0)
    correct = target.deployed.predict(test.x) == test.y
    x, y = test.x[correct], test.y[correct]  # every library attacks the same clean-correct samples
    l0_correct = int(correct[:args.l0_samples].sum())
    x0, y0 = x[:l0_correct], y[:l0_correct]  # the clean-correct ones among the first --l0-samples
    # The libraries get the source itself on the device and tensors there, as their users run them; ours hand the
    # model CPU tensors (evaluator.torch_device.OnDevice) and keep their state on the CPU.
    source = CountingModel(load_source(target.source_path).to(device).eval(), device)  # type: ignore[arg-type]
    session = TimedSession(target.deployed)
    print(f"{args.model.name}: {len(x)} clean-correct of {args.samples} test samples; Linf {args.eps}, L2 {args.eps_l2}, "
          f"L0 {args.k} pixels ({l0_correct} of the first {args.l0_samples}); {args.queries} queries; "
          f"ORT threads {target.deployed.threads}, torch threads {torch.get_num_threads()}; {args.repeats} repeats")
    print(f"ONNX Runtime: {runtime_label(target.deployed)}; torch: {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))

    def ours(name: str, x: np.ndarray, y: np.ndarray, eps: float, **options: Any) -> Callable[[], Run]:
        def run() -> Run:
            before, seconds = target.deployed.queries, session.seconds
            candidates = create_attack(name, **options).run(target, x, y, eps, 0).x_adv
            return Run(candidates, (target.deployed.queries - before) / len(x), session.seconds - seconds)
        return run

    def theirs(make: Callable[[], Callable[[torch.Tensor, torch.Tensor], Any]], x: np.ndarray, y: np.ndarray) -> Callable[[], Run]:
        def run() -> Run:
            attack, before, seconds = make(), source.samples, source.seconds
            xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
            candidates = np.asarray(attack(xt, yt).detach().cpu().numpy())
            return Run(candidates, (source.samples - before) / len(x), source.seconds - seconds)
        return run

    rows: list[Row] = []
    if "square-linf" in only:
        rows.append(Row("square-linf", "evaluator (ORT)", ours("square-linf", x, y, epsilon, queries=args.queries),
                        Norm.LINF, epsilon, args.samples))
        rows.append(Row("square-linf", "torchattacks (torch)", theirs(lambda: torchattacks.Square(
            source, norm="Linf", eps=epsilon, n_queries=args.queries, p_init=0.8, seed=0), x, y), Norm.LINF, epsilon, args.samples))
    if "square-l2" in only:
        rows.append(Row("square-l2", "evaluator (ORT)", ours("square-l2", x, y, args.eps_l2, queries=args.queries),
                        Norm.L2, args.eps_l2, args.samples))
        rows.append(Row("square-l2", "torchattacks (torch)", theirs(lambda: torchattacks.Square(
            source, norm="L2", eps=args.eps_l2, n_queries=args.queries, p_init=0.8, seed=0), x, y), Norm.L2, args.eps_l2, args.samples))
    if "sparse-rs-l0" in only:
        rows.append(Row("sparse-rs-l0", "evaluator (ORT)", ours("sparse-rs-l0", x0, y0, args.k, queries=args.queries),
                        Norm.L0, args.k, args.l0_samples))
        genes = 3 * args.k  # row, column and one value per channel (grey images) for each of the k pixels
        population = 2 * genes
        rows.append(Row("sparse-rs-l0", "torchattacks OnePixel", theirs(lambda: torchattacks.OnePixel(
            source, pixels=args.k, steps=max(args.queries // population - 1, 1), popsize=population, inf_batch=256), x0, y0),
            Norm.L0, args.k, args.l0_samples))
    if "pgd-linf" in only:
        rows += pgd_rows(target, source, x, y, epsilon, args.samples, device)

    for _ in range(args.repeats):
        for row in rows:
            synchronize(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            result = row.run()
            synchronize(device)
            row.seconds.append(time.perf_counter() - start)
            row.cpu_seconds.append(time.process_time() - cpu_start)
            if result.forward_seconds is not None:
                row.forward_seconds.append(result.forward_seconds)
            clean_x, clean_y = (x0, y0) if row.norm is Norm.L0 else (x, y)
            row.robust = judged(target, clean_x, clean_y, result.candidates, row.norm, row.epsilon) / row.samples
            row.forwards = result.forwards

    print(f"{'attack':13} {'implementation':22} {'seconds':>8} {'spread':>12} {'cpu s':>8} {'robust acc':>10} {'forwards':>8} "
          f"{'time / ours':>11} {'cpu / ours':>10}")
    for row in rows:
        ours_row = next(r for r in rows if r.attack == row.attack and r.implementation.startswith("evaluator"))
        median = float(np.median(row.seconds))
        spread = f"{min(row.seconds):.2f}-{max(row.seconds):.2f}"
        forwards = f"{row.forwards:8.0f}" if row.forwards is not None else f"{'':8}"
        cpu = float(np.median(row.cpu_seconds))
        cpu_text, cpu_ratio = (f"{'-':>8}", f"{'-':>10}") if gpu else \
            (f"{cpu:8.2f}", f"{cpu / float(np.median(ours_row.cpu_seconds)):10.2f}")
        print(f"{row.attack:13} {row.implementation:22} {median:8.2f} {spread:>12} {cpu_text} {row.robust:10.3f} {forwards} "
              f"{median / float(np.median(ours_row.seconds)):11.2f} {cpu_ratio}")
    print("seconds: median wall time (spread: fastest-slowest); cpu s: median CPU time of this process, all threads"
          f"{' (left out: GPU work is not CPU time)' if gpu else ''}; robust accuracy over all sampled test images "
          "(misclassified ones count as not robust); forwards: model forward passes per attacked sample")
    for row in (r for r in rows if r.implementation.startswith("evaluator") and r.forward_seconds and r.attack != "sparse-rs-l0"):
        theirs = next(r for r in rows if r.attack == row.attack and r is not row)
        ours_forward, their_forward = float(np.median(row.forward_seconds)), float(np.median(theirs.forward_seconds))
        per_sample = [f"{seconds / (r.forwards * len(x)) * 1e6:.2f} us per sample ({seconds / float(np.median(r.seconds)):.0%} of the run)"
                      for r, seconds in ((row, ours_forward), (theirs, their_forward))]  # type: ignore[operator]
        print(f"{row.attack}: forward passes on ONNX Runtime ({runtime_label(target.deployed)}) {per_sample[0]}, on torch "
              f"({device}) {per_sample[1]}; with nothing but its "
              f"forwards ours would be {float(np.median(theirs.seconds)) / ours_forward:.2f}x faster than {theirs.implementation}")


def pgd_rows(target: AttackTarget, source: CountingModel, x: np.ndarray, y: np.ndarray, epsilon: float, samples: int,
             device: torch.device) -> list[Row]:
    """PGD-Linf with 40 steps of eps/30 and a random start: ours, foolbox, ART and torchattacks on the source, each
    computing on `device` (ART on the current CUDA device when it is one)."""
    import foolbox
    import torchattacks
    from art.attacks.evasion import ProjectedGradientDescentPyTorch
    from art.estimators.classification import PyTorchClassifier

    step = epsilon / 30
    xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    fmodel = foolbox.PyTorchModel(source.model, bounds=(0, 1), device=device)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # ART's "gpu" is the current CUDA device
    classifier = PyTorchClassifier(source.model, loss=torch.nn.CrossEntropyLoss(), input_shape=x.shape[1:],
                                   nb_classes=target.deployed.num_classes, clip_values=(0.0, 1.0),
                                   device_type="gpu" if device.type == "cuda" else "cpu")
    art_pgd = ProjectedGradientDescentPyTorch(classifier, eps=epsilon, eps_step=step, max_iter=40, num_random_init=1,
                                              batch_size=500, verbose=False)
    ta_pgd = torchattacks.PGD(source.model, eps=epsilon, alpha=step, steps=40, random_start=True)
    runs: list[tuple[str, Callable[[], np.ndarray]]] = [
        ("evaluator", lambda: create_attack("pgd-linf").run(target, x, y, epsilon, 0).x_adv),
        ("foolbox", lambda: foolbox.attacks.LinfPGD(steps=40)(fmodel, xt, yt, epsilons=epsilon)[1].cpu().numpy()),
        ("ART", lambda: art_pgd.generate(x, y)),
        ("torchattacks", lambda: ta_pgd(xt, yt).detach().cpu().numpy()),
    ]
    return [Row("pgd-linf", name, (lambda run=run: Run(run())), Norm.LINF, epsilon, samples) for name, run in runs]


if __name__ == "__main__":
    main()
