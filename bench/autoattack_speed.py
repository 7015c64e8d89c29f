"""Our APGD-CE, APGD-T and attack cascades against AutoAttack's own, side by side: robust accuracy and wall time.

    python bench/autoattack_speed.py --autoattack PATH [MODEL.onnx ...] [--samples 1000] [--eps 8/255] [--eps-l2 1.0]
        [--norms Linf,L2] [--ours CASCADE [--ours CASCADE ...]] [--reference apgd-ce,apgd-t,standard] [--threads 1]
        [--seed 0] [--aa-batch 250] [--no-command] [--json results.json]

PATH is a checkout of fra31/auto-attack (https://github.com/fra31/auto-attack); it is put on sys.path for this run
only. Models default to the zoo's LeNet-5 and its filter-pruned child. The test images are those `evaluator assess
--samples N --seed S` attacks (evaluator.assessment.attack_subset), and every tool attacks the ones the deployed
ONNX graph classifies correctly. Per model and norm (Linf at --eps, L2 at --eps-l2) it runs:

  ours:        apgd-ce-NORM alone, apgd-t-NORM alone (9 target classes), the norm's default cascade
               (evaluator.default_attacks) and each --ours cascade, a comma list of attack specs (NAME[:KEY=VALUE...],
               {norm} standing for linf or l2) where each attack runs only on the samples the ones before it left
               robust, as `evaluator assess` runs them; then the default command itself, `evaluator assess MODEL`
               (with --eps-l2 for L2) in a fresh process, timed whole: loading, clean accuracy on the whole test set,
               latency and the attacks (--no-command skips it);
  AutoAttack:  APGD-CE alone (1 restart, 100 iterations) and APGD-T alone (9 target classes) in this process, and
               version='standard' (APGD-CE, APGD-T, FAB-T, Square with 5,000 queries) as a user runs it, in a fresh
               process (bench/autoattack_process.py) timed whole; all on the same images and the same PyTorch
               source (evaluator.source.load_source), with seed --seed.

Every adversarial example of every tool is re-judged by the evaluator on the deployed ONNX graph: a sample is robust
when the graph classifies it correctly and no candidate within the budget (the evaluator's own distance) fools it.
Robust accuracy is over all sampled images. "seconds" is wall time of the attack alone (a cascade row: cumulative,
up to and including that attack); "AA / ours" is AutoAttack's seconds over ours for the same attack, for a
cascade's last row AutoAttack standard's attack time over the whole cascade's, and for the default command row the
whole AutoAttack process's wall time over the whole command's (both start Python, import torch and load the
source; the command also measures latency and clean accuracy on the whole test set). --threads sets torch's and ONNX Runtime's threads
for both tools (default 1: the machine is shared, and spinning threads measure contention, not attacks).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from evaluator.assessment import attack_subset
from evaluator.attacks import AttackTarget
from evaluator.attacks.base import parse_attack_spec
from evaluator.datasets import load_dataset
from evaluator.default_attacks import DEFAULT_CASCADES
from evaluator.norms import Norm
from evaluator.results import BUDGET_SLACK, AttackResult
from evaluator.robustness import evaluate_attack, judge_candidates
from evaluator.runtime import OnnxClassifier

ROOT = Path(__file__).resolve().parents[1]
MODELS = (ROOT / "models/lenet5_fmnist.onnx", ROOT / "models/lenet5_fmnist_filter-l1_cr4.onnx")
REFERENCES = ("apgd-ce", "apgd-t", "standard")


@dataclass
class Row:
    """One line of the table: an attack (or a cascade step) by us and, where there is one, by AutoAttack."""

    model: str
    norm: str
    epsilon: float
    attack: str
    ours: float | None = None  # robust accuracy
    ours_seconds: float | None = None
    theirs: float | None = None
    theirs_seconds: float | None = None
    theirs_name: str = ""


def robust_after(deployed: OnnxClassifier, x: np.ndarray, y: np.ndarray, x_adv: np.ndarray, norm: Norm,
                 epsilon: float) -> np.ndarray:
    """(N,) bool: x (N, C, H, W) still classified as y by the deployed graph, given candidates x_adv, judged as the
    evaluator judges every candidate (judge_candidates: a candidate that is not finite or leaves [0, 1] is no attack)
    and within the budget (the evaluator's distance, BUDGET_SLACK)."""
    judged, _ = judge_candidates(deployed, x, y, x_adv, norm)
    return ~(judged <= epsilon * (1 + BUDGET_SLACK) + BUDGET_SLACK)


def timed(run: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


def autoattack_run(autoattack: Any, source: Any, x: np.ndarray, y: np.ndarray, norm: Norm, epsilon: float, seed: int,
                   which: str, batch: int) -> np.ndarray:
    """AutoAttack's candidates for x (N, C, H, W) from one of its attacks alone, `which` apgd-ce or apgd-t (its
    version='custom' with the standard settings: one restart, 100 iterations, 9 target classes)."""
    attack = autoattack.AutoAttack(source, norm="Linf" if norm is Norm.LINF else "L2", eps=epsilon, seed=seed,
                                   version="custom", attacks_to_run=[which], verbose=False, device="cpu")
    attack.apgd.n_restarts = 1
    attack.apgd_targeted.n_restarts = 1
    attack.apgd_targeted.n_target_classes = 9
    return attack.run_standard_evaluation(torch.from_numpy(x), torch.from_numpy(y), bs=batch).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, default=list(MODELS))
    parser.add_argument("--autoattack", type=Path, required=True, help="a checkout of fra31/auto-attack")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--eps", default="8/255", help="Linf budget")
    parser.add_argument("--eps-l2", type=float, default=1.0, help="L2 budget")
    parser.add_argument("--norms", default="Linf,L2")
    parser.add_argument("--ours", action="append", default=[], help="a cascade besides the default; may be repeated")
    parser.add_argument("--reference", default=",".join(REFERENCES), help="AutoAttack runs: apgd-ce,apgd-t,standard or none")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--aa-batch", type=int, default=250, help="AutoAttack's batch size (its default)")
    parser.add_argument("--no-command", action="store_true", help="do not time the default `evaluator assess` command")
    parser.add_argument("--json", type=Path, help="write the rows here too")
    args = parser.parse_args()
    if not (args.autoattack / "autoattack" / "autopgd_base.py").is_file():
        parser.error(f"{args.autoattack} is not a checkout of fra31/auto-attack (no autoattack/autopgd_base.py)")
    sys.path.insert(0, str(args.autoattack.resolve()))
    import autoattack

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    norms = [Norm.LINF if name.strip().lower() == "linf" else Norm.L2 for name in args.norms.split(",")]
    references = [name for name in args.reference.split(",") if name in REFERENCES]
    epsilons = {Norm.LINF: float(Fraction(args.eps)), Norm.L2: args.eps_l2}
    print(f"{args.samples} test images (seed {args.seed}), torch threads {torch.get_num_threads()}, ORT threads "
          f"{args.threads}, AutoAttack batch {args.aa_batch}; extra cascades: {' | '.join(args.ours) or 'none'}", flush=True)
    rows: list[Row] = []
    datasets: dict[str, Any] = {}
    for path in args.models:
        deployed = OnnxClassifier(path, "cpu", threads=args.threads)
        name = (deployed.metadata or {}).get("dataset") or "fashion-mnist"
        datasets.setdefault(name, load_dataset(name))
        subset = attack_subset(datasets[name].test, args.samples, args.seed)
        predictions = deployed.predict(subset.x)
        correct = predictions == subset.y
        target = AttackTarget(deployed, path.with_suffix(".pt2"))
        source = target.source()
        x, y = subset.x[correct], subset.y[correct]
        for norm in norms:
            epsilon, suffix = epsilons[norm], "linf" if norm is Norm.LINF else "l2"
            cache: dict[tuple[str, bytes | None], tuple[AttackResult, float]] = {}

            def ours(spec: str, still_robust: np.ndarray | None) -> tuple[AttackResult, float]:
                key = (spec, None if still_robust is None else np.packbits(still_robust).tobytes())
                if key not in cache:
                    cache[key] = timed(lambda: evaluate_attack(parse_attack_spec(spec), target, subset, epsilon, args.seed,
                                                               predictions, still_robust))
                return cache[key]

            def theirs(which: str) -> tuple[float, float]:
                x_adv, seconds = timed(lambda: autoattack_run(autoattack, source, x, y, norm, epsilon, args.seed, which,
                                                              args.aa_batch))
                robust = robust_after(deployed, x, y, x_adv, norm, epsilon)
                return float(robust.sum() / len(subset)), seconds

            label = f"{path.stem} {norm.value} {epsilon:.4g}"
            for attack, reference in ((f"apgd-ce-{suffix}", "apgd-ce"), (f"apgd-t-{suffix}", "apgd-t")):
                result, seconds = ours(attack, None)
                row = Row(path.stem, norm.value, epsilon, attack, result.robust_accuracy, seconds)
                if reference in references:
                    row.theirs, row.theirs_seconds = theirs(reference)
                    row.theirs_name = f"AutoAttack {reference}"
                rows.append(row)
                print(f"{label}: {format_row(row)}", flush=True)
            standard = process = None
            if "standard" in references:
                robust, attack_seconds, process_seconds = autoattack_process(args, path, norm, epsilon, deployed, subset,
                                                                             correct)
                standard, process = (robust, attack_seconds), (robust, process_seconds)
            cascades = [list(DEFAULT_CASCADES[norm.value])]
            cascades += [[spec.strip().format(norm=suffix) for spec in cascade.split(",")] for cascade in args.ours]
            for specs in cascades:
                still_robust, total = None, 0.0
                for position, spec in enumerate(specs):
                    result, seconds = ours(spec, still_robust)
                    still_robust, total = result.robust, total + seconds
                    row = Row(path.stem, norm.value, epsilon, ("then " if position else "") + spec, result.robust_accuracy, total)
                    if position == len(specs) - 1 and standard is not None:
                        row.theirs, row.theirs_seconds = standard
                        row.theirs_name = "AutoAttack standard"
                    rows.append(row)
                    print(f"{label}: {format_row(row)}", flush=True)
            if not args.no_command:
                row = Row(path.stem, norm.value, epsilon, "`evaluator assess` default command (whole run)",
                          *default_command(path, norm, epsilon, args.samples, args.seed, args.threads))
                if process is not None:
                    row.theirs, row.theirs_seconds = process
                    row.theirs_name = "AutoAttack standard, whole process"
                rows.append(row)
                print(f"{label}: {format_row(row)}", flush=True)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=1))


def autoattack_process(args: argparse.Namespace, model: Path, norm: Norm, epsilon: float, deployed: OnnxClassifier,
                       subset: Any, correct: np.ndarray) -> tuple[float, float, float]:
    """AutoAttack standard in a fresh process (bench/autoattack_process.py) on the whole subset: robust accuracy judged
    on the deployed graph, the attack's own seconds and the whole process's wall seconds."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "adv.npz"
        command = [sys.executable, str(ROOT / "bench" / "autoattack_process.py"), str(model.with_suffix(".pt2")),
                   "--autoattack", str(args.autoattack), "--norm", norm.value, "--eps", repr(epsilon), "--out", str(out),
                   "--samples", str(args.samples), "--seed", str(args.seed), "--threads", str(args.threads),
                   "--batch", str(args.aa_batch)]
        _, seconds = timed(lambda: subprocess.run(command, check=True, capture_output=True, cwd=ROOT))
        with np.load(out) as saved:
            x_adv, attack_seconds = saved["x_adv"], float(saved["attack_seconds"])
    robust = correct & robust_after(deployed, subset.x, subset.y, x_adv, norm, epsilon)
    return float(robust.sum() / len(subset)), attack_seconds, seconds


def default_command(model: Path, norm: Norm, epsilon: float, samples: int, seed: int, threads: int) -> tuple[float, float]:
    """Worst-case robust accuracy and wall seconds of `evaluator assess MODEL` with its default attacks for `norm` (the
    L2 cascade is what `--eps-l2` alone selects), in a fresh process."""
    budget = ["--eps", repr(epsilon)] if norm is Norm.LINF else ["--eps-l2", repr(epsilon)]
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "assessment.json"
        command = [sys.executable, "-m", "evaluator", "assess", str(model), *budget, "--samples", str(samples), "--seed",
                   str(seed), "--threads", str(threads), "--json", str(report)]
        _, seconds = timed(lambda: subprocess.run(command, check=True, capture_output=True, cwd=ROOT))
        entry = json.loads(report.read_text())["models"][0]["robustness"][0]
    return float(entry["robust_accuracy"]), seconds


def format_row(row: Row) -> str:
    theirs = f"{row.theirs:.3f} ({row.theirs_name}, {row.theirs_seconds:.1f} s)" if row.theirs is not None else "-"
    return f"{row.attack}: ours {row.ours:.3f} ({row.ours_seconds:.1f} s), theirs {theirs}"


def print_table(rows: list[Row]) -> None:
    """The markdown table: robust accuracy and seconds of ours and AutoAttack's, the time ratio, the difference."""
    print("\n| model | norm | eps | attack (ours) | robust ours | robust AutoAttack | AutoAttack run | seconds ours | "
          "seconds AutoAttack | AA / ours | AA - ours (points) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        has = row.theirs is not None
        print(f"| {row.model} | {row.norm} | {row.epsilon:.4g} | {row.attack} | {row.ours:.3f} | "
              f"{f'{row.theirs:.3f}' if has else ''} | {row.theirs_name} | {row.ours_seconds:.1f} | "
              f"{f'{row.theirs_seconds:.1f}' if has else ''} | "
              f"{f'{row.theirs_seconds / row.ours_seconds:.2f}x' if has else ''} | "
              f"{f'{100 * (row.theirs - row.ours):+.1f}' if has else ''} |")
    print("robust accuracy over all sampled images, judged on the deployed ONNX graph; a cascade row is the robust accuracy "
          "and cumulative seconds after that attack; its last row is compared with AutoAttack standard")


if __name__ == "__main__":
    main()
