"""Parent vs filter-pruned child on ONNX Runtime: batch latency side by side, one run, as ratios.

    python bench/prune_latency.py [PARENT.onnx CHILD.onnx] [--batch 256] [--rounds 5] [--threads N]
                                  [--provider cpu|cuda] [--device-id 0]

Rounds alternate parent and child so machine noise hits both alike; the ratio of medians is printed
next to the parameter and MAC reductions, the figures pruning promises.

--provider is where ONNX Runtime runs (default cpu). cuda is the evaluator's CUDA path on GPU --device-id: CUDA graphs
replayed through IOBinding where the graph allows, else plain CUDA (the header says which, per model). Each run is
timed on the wall clock (time.perf_counter, evaluator.latency) around a call that returns the logits on the host, so a
GPU run is complete when the clock is read. CUDA asked for where ONNX Runtime cannot use it is one line, exit code 2.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from evaluator.errors import EvaluatorError
from evaluator.latency import measure_latency
from evaluator.profile import profile_model
from evaluator.runtime import CUDA_EP, OnnxClassifier

ROOT = Path(__file__).resolve().parents[1]


def runtime_label(classifier: OnnxClassifier) -> str:
    """'CPU', 'CUDA graphs' or 'plain CUDA (why)': where ONNX Runtime runs the graph."""
    if classifier.runtime.used != CUDA_EP:
        return "CPU"
    return "CUDA graphs" if classifier.runtime.cuda_graph else f"plain CUDA ({classifier.runtime.note})"


def load(path: Path, provider: str, threads: int | None, device_id: int) -> OnnxClassifier:
    """The model on `provider`; CUDA asked for and not used is an EvaluatorError (it would time the CPU as CUDA)."""
    classifier = OnnxClassifier(path, provider, threads=threads, device_id=device_id)  # type: ignore[arg-type]
    if provider == "cuda" and classifier.runtime.used != CUDA_EP:
        raise EvaluatorError(f"ONNX Runtime provider cuda requested but {path.name} runs on {classifier.runtime.used}: "
                             f"{classifier.runtime.note or 'no reason given'}")
    return classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path,
                        default=[ROOT / "models/lenet5_fmnist.onnx", ROOT / "models/lenet5_fmnist_filter-l1_cr4.onnx"])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--provider", choices=("cpu", "cuda"), default="cpu", help="where ONNX Runtime runs (default cpu)")
    parser.add_argument("--device-id", type=int, default=0, help="the GPU for --provider cuda (default 0)")
    args = parser.parse_args()
    try:
        bench(args)
    except EvaluatorError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None


def bench(args: argparse.Namespace) -> None:
    parent_path, child_path = args.models
    parent = load(parent_path, args.provider, args.threads, args.device_id)
    child = load(child_path, args.provider, args.threads, args.device_id)
    medians: dict[str, list[float]] = {"parent": [], "child": []}
    for _ in range(args.rounds):
        for label, model in (("parent", parent), ("child", child)):
            medians[label].append(measure_latency(model, args.batch, min_runs=30, min_seconds=1.0).p50_ms)
    parent_ms, child_ms = statistics.median(medians["parent"]), statistics.median(medians["child"])
    parent_profile, child_profile = profile_model(parent_path, parent.model), profile_model(child_path, child.model)
    where = f"{parent.threads} threads" if args.provider == "cpu" else f"GPU {args.device_id}"
    print(f"ONNX Runtime {args.provider.upper()}, batch {args.batch}, {where}, median of {args.rounds} alternating rounds")
    print(f"{'model':40} {'p50 ms':>9} {'params':>9} {'MACs':>10}  runs on")
    for path, ms, profile, model in ((parent_path, parent_ms, parent_profile, parent),
                                     (child_path, child_ms, child_profile, child)):
        print(f"{path.name:40} {ms:9.3f} {profile.params:9d} {profile.macs:10d}  {runtime_label(model)}")
    print(f"latency ratio parent/child: {parent_ms / child_ms:.2f}x  "
          f"(params {parent_profile.params / child_profile.params:.2f}x, MACs {parent_profile.macs / child_profile.macs:.2f}x)")


if __name__ == "__main__":
    main()
